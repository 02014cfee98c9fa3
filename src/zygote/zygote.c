/* See zygote.h: the zygote process itself. One loop, one thread: it reads SPAWN requests
 * from the supervisor, clones a sandbox for each, hands the supervisor the sandbox's
 * descriptors, and reports every exit status it reaps.
 *
 * Each sandbox is created by one clone3() with the sandbox's namespace flags: it is PID 1
 * of a new pid namespace without a second fork, so when it exits the kernel kills
 * everything the script started. The state below belongs to this process alone and is
 * written once, before the first fork. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "sandbox/prefault.h"
#include "sandbox/sandbox.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"
#include "zygote/image.h"
#include "zygote/zygote.h"

#define SCRIPT_MAX (1U << 30)

typedef struct Slot {
        int netns_fd;
        int view_fd; /* its view's mount namespace (sandbox/view.c) */
        int cgroup_fds[SANDBOX_MAX_CGROUP_FDS];
        size_t n_cgroup_fds;
} Slot;

static struct {
        ZygoteConfig cfg;
        uint64_t vm_size;
        Slot *slots;
        uint32_t trees; /* the read-only trees of the root (mount_build_root) */
        SeccompProgram seccomp;
        int background_nice;  /* a ZYGOTE_SPAWN_BACKGROUND sandbox's nice value */
        PrefaultSet prefault; /* what a warm sandbox takes before its request (may be empty) */
        bool views;           /* each slot has a view (prepare_views) */
} zygote;

#ifdef PYEXECD_PHASE_TRACE
/* Benchmarking builds only (meson -Dphase_trace=true, bench/phases.py): the CPU time and
 * minor page faults of each phase of a sandbox's life, written to its own stderr (so into
 * the response) before the result frame. The exit that follows is not in it. */
static struct {
        const char *name[8];
        struct timespec cpu[8];
        long minflt[8];
        int n;
} phases;

static void phase(const char *name)
{
        struct rusage ru;

        if (phases.n >= (int) ELEMENTSOF(phases.name))
                return;
        (void) clock_gettime(CLOCK_THREAD_CPUTIME_ID, &phases.cpu[phases.n]);
        (void) getrusage(RUSAGE_SELF, &ru);
        phases.name[phases.n] = name;
        phases.minflt[phases.n++] = ru.ru_minflt;
}

static void phases_report(void)
{
        char line[512];
        size_t n = (size_t) snprintf(line, sizeof(line), "pyexecd-phases");

        for (int i = 1; i < phases.n && n < sizeof(line); i++) {
                long us = (phases.cpu[i].tv_sec - phases.cpu[i - 1].tv_sec) * 1000000L +
                          (phases.cpu[i].tv_nsec - phases.cpu[i - 1].tv_nsec) / 1000L;
                n += (size_t) snprintf(line + n, sizeof(line) - n, " %s=%ld/%ld", phases.name[i],
                                       us, phases.minflt[i] - phases.minflt[i - 1]);
        }
        if (n < sizeof(line) - 1) {
                line[n++] = '\n';
                (void) !write(2, line, n);
        }
}
#else
static inline void phase(const char *name)
{
        (void) name;
}
static inline void phases_report(void)
{
}
#endif

/* The sandbox's life, from the first instruction after clone to _exit. Never returns. */
static _Noreturn void sandbox_child(uint32_t slot, uint32_t flags, int ctl, int out, int err)
{
        const Slot *sl = &zygote.slots[slot];
        SandboxHello hello = {.magic = SANDBOX_MAGIC};
        SandboxStage stage = SANDBOX_STAGE_OK;
        SandboxParams params = {
                .layers = zygote.cfg.layers,
                .uid = zygote.cfg.uid_base + slot,
                .gid = zygote.cfg.uid_base + slot,
                .as_bytes = sandbox_as_limit(zygote.vm_size, zygote.cfg.memory_mb),
                .cpu_seconds = zygote.cfg.timeout_ms / 1000 + 1,
                .nproc = zygote.cfg.pids_max,
                .tmp_bytes = zygote.cfg.tmp_size,
                .trees = zygote.trees,
                .netns_fd = sl->netns_fd,
                .view_fd = sl->view_fd,
                .n_cgroup_fds = sl->n_cgroup_fds,
                .seccomp = &zygote.seccomp,
                .prefault = flags & ZYGOTE_SPAWN_PREFAULT && zygote.prefault.n > 0
                                    ? &zygote.prefault
                                    : NULL,
        };
        int io[3] = {out, err, ctl};
        SandboxJob job;
        char *script = NULL, *input = NULL, *frame = NULL;
        size_t frame_len = 0;
        int r;

        phase("start");
        memcpy(params.cgroup_fds, sl->cgroup_fds, sizeof(params.cgroup_fds));
        /* An absolute value: the supervisor may have lowered the zygote (and so this
         * copy) already. Lowering one's priority needs no privilege; failing to costs
         * only latency. */
        if (flags & ZYGOTE_SPAWN_BACKGROUND)
                (void) setpriority(PRIO_PROCESS, 0, zygote.background_nice);
        runtime_after_fork_child();
        phase("after_fork");

        r = sandbox_enter(&params, io, &stage);
        phase("layers");
        if (r == 0) {
                /* Python code runs from here on: under every layer, seccomp included. */
                stage = SANDBOX_STAGE_RUNTIME;
                if (flags & ZYGOTE_SPAWN_PREWARM)
                        r = runtime_warmup();
                phase("warmup");
                if (r == 0)
                        r = runtime_reseed();
                phase("reseed");
        }
        if (r < 0) {
                hello.stage = (int32_t) stage;
                hello.err = -r;
        }
        if (write_all(io[2], &hello, sizeof(hello)) < 0 || r < 0)
                _exit(SANDBOX_EXIT_SETUP);

        /* io[2] is fd 3 now. */
        if (read_exact(3, &job, sizeof(job)) < 0 || job.magic != SANDBOX_MAGIC ||
            job.script_len > SCRIPT_MAX || job.input_len > SCRIPT_MAX)
                _exit(SANDBOX_EXIT_JOB);
        script = malloc(job.script_len + 1);
        if (!script || read_exact(3, script, job.script_len) < 0)
                _exit(SANDBOX_EXIT_JOB);
        script[job.script_len] = '\0';
        if (job.input_len > 0) {
                input = malloc(job.input_len);
                if (!input || read_exact(3, input, job.input_len) < 0)
                        _exit(SANDBOX_EXIT_JOB);
        }
        phase("job");

        if (zygote.cfg.layers & LAYER_RLIMITS &&
            sandbox_apply_job_limits(sandbox_as_limit(zygote.vm_size, job.memory_mb),
                                     job.timeout_ms / 1000 + 1) < 0)
                _exit(SANDBOX_EXIT_LIMITS);
        /* Input files and stdin, written by the harness before any code of the script. */
        r = runtime_prepare(input, job.input_len);
        if (r == -ENOSPC || r == -EDQUOT || r == -EFBIG)
                _exit(SANDBOX_EXIT_NO_SPACE);
        if (r < 0)
                _exit(SANDBOX_EXIT_INPUT);
        free(input);
        /* The last word of the service's own code: from here on the script's runs. */
        {
                uint64_t ack = SANDBOX_JOB_ACK;
                if (write_all(3, &ack, sizeof(ack)) < 0)
                        _exit(SANDBOX_EXIT_JOB);
        }

        r = runtime_run(script, job.script_len, job.result_limit, &frame, &frame_len);
        if (r < 0)
                _exit(SANDBOX_EXIT_HARNESS);
        phase("run");

        /* As PID 1 of the namespace: kill and reap everything the script left behind
         * before reporting, so that when the supervisor has the frame nothing of the
         * script runs any more (it answers at once, without waiting for our own exit). */
        if (zygote.cfg.layers & LAYER_PIDNS) {
                (void) kill(-1, SIGKILL);
                while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
                        ;
        }
        phase("reap");
        phases_report();
        {
                uint64_t len = frame_len;
                if (write_all(3, &len, sizeof(len)) < 0 || write_all(3, frame, frame_len) < 0)
                        _exit(SANDBOX_EXIT_FRAME);
        }
        if (flags & ZYGOTE_SPAWN_EXIT_BACKGROUND)
                (void) setpriority(PRIO_PROCESS, 0, PRIO_MAX - 1);
        /* No Py_FinalizeEx: it costs tens of milliseconds and nothing needs it. */
        _exit(0);
}

static int send_msg(int sock, const ZygoteMsg *m, const int *fds, size_t n_fds)
{
        return send_with_fds(sock, m, sizeof(*m), fds, n_fds);
}

static int spawn(int sock, const ZygoteMsg *req)
{
        int ctl[2] = {-EBADF, -EBADF}, out[2] = {-EBADF, -EBADF}, err[2] = {-EBADF, -EBADF};
        int pidfd = -EBADF, r;
        ZygoteMsg reply = {.magic = ZYGOTE_MAGIC, .token = req->token, .slot = req->slot};
        struct clone_args args = {
                /* With views per slot no copy of the zygote's mount namespace: the sandbox
                 * enters a copy of its slot's view instead (sandbox_enter). */
                .flags = CLONE_PIDFD | (sandbox_clone_flags(zygote.cfg.layers) &
                                        ~(zygote.views ? (uint64_t) CLONE_NEWNS : 0)),
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
        };
        long pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0 ||
            pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }

        runtime_before_fork();
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
                sandbox_child(req->slot, req->flags, ctl[1], out[1], err[1]);
        r = -errno;
        runtime_after_fork_parent();
        if (pid < 0)
                goto fail;

        ctl[1] = safe_close(ctl[1]);
        out[1] = safe_close(out[1]);
        err[1] = safe_close(err[1]);

        reply.type = ZYGOTE_SPAWNED;
        reply.pid = (int32_t) pid;
        {
                int fds[SANDBOX_N_FDS] = {
                        [SANDBOX_FD_PIDFD] = pidfd,
                        [SANDBOX_FD_CTL] = ctl[0],
                        [SANDBOX_FD_STDOUT] = out[0],
                        [SANDBOX_FD_STDERR] = err[0],
                };
                r = send_msg(sock, &reply, fds, SANDBOX_N_FDS);
        }
        for (int *fd = (int[]){pidfd, ctl[0], out[0], err[0]}, i = 0; i < 4; i++)
                (void) safe_close(fd[i]);
        if (r < 0) {
                /* The supervisor never heard of this sandbox: do not leave it waiting. */
                (void) kill((pid_t) pid, SIGKILL);
                return r;
        }
        return 0;

fail:
        for (int *fd = (int[]){ctl[0], ctl[1], out[0], out[1], err[0], err[1]}, i = 0; i < 6; i++)
                (void) safe_close(fd[i]);
        log_errno(LOG_LEVEL_ERROR, r, NULL, "Failed to create a sandbox");
        reply.type = ZYGOTE_SPAWN_FAILED;
        reply.status = r;
        return send_msg(sock, &reply, NULL, 0);
}

static int reap(int sock)
{
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid <= 0)
                        return 0; /* ECHILD or nothing left to reap */
                ZygoteMsg m = {
                        .magic = ZYGOTE_MAGIC,
                        .type = ZYGOTE_EXITED,
                        .pid = pid,
                        .status = status,
                };
                int r = send_msg(sock, &m, NULL, 0);
                if (r < 0)
                        return r;
        }
}

/* Each slot's view (sandbox/view.c), made once: its sandboxes enter copies of it. Where
 * that is not allowed (no CAP_SYS_CHROOT: the README's docker run without its optional
 * --cap-add SYS_CHROOT), each sandbox builds its whole view, as isolated but dearer:
 * ~0.3 ms more set-up, and its exit waits for the overlays' teardown (docs/PERFORMANCE.md). */
static int prepare_views(char *errbuf, size_t errlen)
{
        _cleanup_free_ int *fds = calloc(zygote.cfg.slots, sizeof(int));
        int r;

        if (!fds)
                return -ENOMEM;
        r = mount_views_create(zygote.trees, fds, zygote.cfg.slots, errbuf, errlen);
        if (r == -EPERM) {
                log_info("views per sandbox: joining a mount namespace needs CAP_SYS_CHROOT, "
                         "which this service lacks; each sandbox builds its own view (its "
                         "exit is slower)");
                return 0;
        }
        for (uint32_t i = 0; r == 0 && i < zygote.cfg.slots; i++)
                zygote.slots[i].view_fd = fds[i];
        zygote.views = r == 0;
        return r;
}

/* Receives the slots' cgroup descriptors, creates the slots' network namespaces, compiles
 * the seccomp filter and builds the read-only root, as the configured layers require. */
static int prepare_slots(int sock, char *errbuf, size_t errlen)
{
        struct rlimit nofile;
        uint32_t layers = zygote.cfg.layers;
        int r;

        if (zygote.cfg.slots == 0 || zygote.cfg.slots > 65536) {
                (void) snprintf(errbuf, errlen, "invalid slot count");
                return -EINVAL;
        }
        zygote.slots = calloc(zygote.cfg.slots, sizeof(Slot));
        if (!zygote.slots)
                return -ENOMEM;
        /* Every slot holds up to five descriptors here (network namespace, view, cgroup.procs
         * files): the soft limit (often 1024) would cap the slots at ~200. */
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &nofile);
        }
        for (uint32_t i = 0; i < zygote.cfg.slots; i++)
                zygote.slots[i].netns_fd = zygote.slots[i].view_fd = -EBADF;

        if (layers & LAYER_CGROUPS)
                for (uint32_t i = 0; i < zygote.cfg.slots; i++) {
                        ZygoteMsg m;
                        Slot *sl;
                        size_t n_fds = 0;
                        int fds[SANDBOX_MAX_CGROUP_FDS];
                        ssize_t n =
                                recv_with_fds(sock, &m, sizeof(m), fds, ELEMENTSOF(fds), &n_fds);
                        if (n != (ssize_t) sizeof(m) || m.magic != ZYGOTE_MAGIC ||
                            m.type != ZYGOTE_SLOT || m.slot >= zygote.cfg.slots || n_fds == 0) {
                                (void) snprintf(errbuf, errlen, "bad slot message");
                                return -EPROTO;
                        }
                        sl = &zygote.slots[m.slot];
                        memcpy(sl->cgroup_fds, fds, n_fds * sizeof(int));
                        sl->n_cgroup_fds = n_fds;
                }

        if (layers & LAYER_NETNS)
                for (uint32_t i = 0; i < zygote.cfg.slots; i++) {
                        r = netns_create(&zygote.slots[i].netns_fd);
                        if (r < 0) {
                                (void) snprintf(errbuf, errlen,
                                                "cannot create a network namespace: %s",
                                                strerror(-r));
                                return r;
                        }
                }

        if (layers & LAYER_SECCOMP) {
                r = seccomp_build(&zygote.seccomp);
                if (r < 0) {
                        (void) snprintf(errbuf, errlen, "cannot build the seccomp filter: %s",
                                        strerror(-r));
                        return r;
                }
        }

        if (layers & LAYER_MOUNTNS) {
                r = mount_build_root(zygote.cfg.uid_base, zygote.cfg.slots, &zygote.trees, errbuf,
                                     errlen);
                if (r < 0)
                        return r;
                r = mount_probe_view(zygote.trees, errbuf, errlen);
                if (r < 0)
                        return r;
                r = prepare_views(errbuf, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* At most this much (8 MiB) is taken by a warm sandbox: measured, the set of the README's
 * examples is ~1350 pages, a line plot alone ~3000 more (docs/PERFORMANCE.md). */
#define PREFAULT_MAX_PAGES 2048

/* Learns the pages a representative request writes (sandbox/prefault.h), once, with /proc
 * mounted. Without it warm sandboxes take their faults when they first touch the pages, as
 * before: logged, not fatal. */
static void learn_prefault(void)
{
        int r;

        if (!prefault_supported()) {
                log_info("prefault: MADV_POPULATE_WRITE refused by this kernel (Linux < 5.14?): "
                         "warm sandboxes take their page faults on the request path");
                return;
        }
        runtime_before_fork();
        r = prefault_learn(runtime_probe, PREFAULT_MAX_PAGES, &zygote.prefault);
        runtime_after_fork_parent();
        if (r < 0) {
                log_errno(LOG_LEVEL_WARNING, r, NULL,
                          "prefault: no set learned (-E2BIG: more than %d pages); warm "
                          "sandboxes take their faults on the request path",
                          PREFAULT_MAX_PAGES);
                return;
        }
        log_info("prefault: learned %zu pages in %zu ranges", zygote.prefault.pages,
                 zygote.prefault.n);
}

static void send_ready(int sock, int status, const char *message)
{
        ZygoteReady zr = {.magic = ZYGOTE_MAGIC, .status = status, .vm_size = zygote.vm_size};
        if (message)
                (void) snprintf(zr.message, sizeof(zr.message), "%s", message);
        (void) send_with_fds(sock, &zr, sizeof(zr), NULL, 0);
}

_Noreturn void zygote_main(void)
{
        int sock = ZYGOTE_FD, sfd;
        char errbuf[sizeof(((ZygoteReady *) 0)->message)];
        uint64_t threads = 0;
        sigset_t mask;
        size_t n_fds;
        int r;

        /* Before anything else: the configuration, and nothing from the environment. */
        ssize_t n = recv_with_fds(sock, &zygote.cfg, sizeof(zygote.cfg), NULL, 0, &n_fds);
        if (n != (ssize_t) sizeof(zygote.cfg) || zygote.cfg.magic != ZYGOTE_MAGIC)
                _exit(2);
        zygote.cfg.preload[sizeof(zygote.cfg.preload) - 1] = '\0';
        log_setup((LogFormat) zygote.cfg.log_format, (LogLevel) zygote.cfg.log_level, "zygote");
        /* The service's priority, before the supervisor may change ours (it does so only
         * once we are ready). */
        errno = 0;
        r = getpriority(PRIO_PROCESS, 0);
        zygote.background_nice = sandbox_background_nice(r == -1 && errno != 0 ? 0 : r);

        (void) signal(SIGPIPE, SIG_IGN);
        /* A Ctrl-C or a SIGTERM sent to the whole process group is the supervisor's to
         * handle (it drains, then closes our socket, and we exit): do not die under it. */
        (void) signal(SIGINT, SIG_IGN);
        (void) signal(SIGTERM, SIG_IGN);
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
            (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
                send_ready(sock, -errno, "signalfd failed");
                _exit(1);
        }

        /* Everything a sandbox needs from outside its view, before the pivot. */
        r = prepare_slots(sock, errbuf, sizeof(errbuf));
        if (r < 0) {
                log_event(LOG_LEVEL_ERROR, NULL, NULL, "%s", errbuf);
                send_ready(sock, r, errbuf);
                _exit(1);
        }

        /* Every thread a script starts would otherwise get its own 64 MiB malloc arena,
         * all of it counted against RLIMIT_AS: at 256 MiB, 7 threads would exhaust it. */
        (void) mallopt(M_ARENA_MAX, 2);

        if (zygote.cfg.layers & LAYER_MOUNTNS && (r = mount_preload_tmp()) < 0) {
                send_ready(sock, r, "cannot mount a tmpfs on the zygote's /tmp");
                _exit(1);
        }
        r = runtime_init(zygote.cfg.preload, errbuf, sizeof(errbuf));
        if (r == 0 && zygote.cfg.layers & LAYER_MOUNTNS && umount2("/tmp", MNT_DETACH) < 0) {
                r = -errno;
                (void) snprintf(errbuf, sizeof(errbuf), "cannot unmount the zygote's /tmp: %s",
                                strerror(errno));
        }
        if (r < 0) {
                log_event(LOG_LEVEL_ERROR, NULL, NULL, "%s", errbuf);
                send_ready(sock, r, errbuf);
                _exit(1);
        }
        /* fork() in a multi-threaded process copies one thread and whatever locks the
         * others held: refuse to serve rather than risk it. The pivoted view has no /proc
         * of its own: mount one for this check, then take it away again. */
        if (zygote.cfg.layers & LAYER_MOUNTNS && mount_proc() < 0) {
                send_ready(sock, -errno, "cannot mount /proc in the zygote");
                _exit(1);
        }
        /* Before the heap is collapsed: the zygote's own writes while the probe child shares
         * its pages would split those huge pages for good. */
        learn_prefault();
        {
                uint64_t huge = image_collapse_heap();
                log_event(LOG_LEVEL_DEBUG, NULL, NULL, "%llu MiB of the zygote in huge pages",
                          (unsigned long long) (huge >> 20));
        }
        r = image_status_value("Threads", &threads);
        (void) image_status_value("VmSize", &zygote.vm_size);
        if (zygote.cfg.layers & LAYER_MOUNTNS && umount2("/proc", MNT_DETACH) < 0) {
                send_ready(sock, -errno, "cannot unmount /proc in the zygote");
                _exit(1);
        }
        if (r < 0 || threads != 1) {
                (void) snprintf(errbuf, sizeof(errbuf),
                                "the zygote has %llu threads after preloading; it must have "
                                "exactly 1 (a preloaded module started a thread pool)",
                                (unsigned long long) threads);
                log_event(LOG_LEVEL_ERROR, NULL, NULL, "%s", errbuf);
                send_ready(sock, -EBUSY, errbuf);
                _exit(1);
        }
        send_ready(sock, 0, NULL);
        log_event(LOG_LEVEL_DEBUG, NULL, NULL, "zygote ready (VmSize %llu kB)",
                  (unsigned long long) (zygote.vm_size / 1024));

        for (;;) {
                struct pollfd p[2] = {{.fd = sock, .events = POLLIN},
                                      {.fd = sfd, .events = POLLIN}};
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) == sizeof(si))
                                ;
                        if (reap(sock) < 0)
                                _exit(1);
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ZygoteMsg m;
                        n = recv_with_fds(sock, &m, sizeof(m), NULL, 0, &n_fds);
                        if (n == 0)
                                _exit(0); /* the supervisor is gone; children get SIGKILL */
                        if (n != (ssize_t) sizeof(m) || m.magic != ZYGOTE_MAGIC ||
                            m.type != ZYGOTE_SPAWN || m.slot >= zygote.cfg.slots)
                                _exit(1);
                        if (spawn(sock, &m) < 0)
                                _exit(1);
                }
        }
}
