/* See sandbox.h: the ordered entry into the sandbox. Order matters:
 *   1. parent-death signal, so nothing outlives the zygote;
 *   2. the slot's network namespace and cgroups, then a cgroup namespace rooted there,
 *      while we are still root and hold the descriptors;
 *   3. descriptors: 1..3 installed, everything else closed;
 *   4. mounts (the sandbox's own view: view.c), then stdin from its /dev/null, and host
 *      name, needing CAP_SYS_ADMIN;
 *   5. signals and rlimits, while limits may still be raised;
 *   6. capabilities (bounding set, securebits), then the unprivileged uid/gid, then
 *      no_new_privs;
 *   7. a warm sandbox's learned prefault set (prefault.h): charged to the slot's cgroup,
 *      and before seccomp, whose table does not allow MADV_POPULATE_WRITE to scripts;
 *   8. seccomp, last, once nothing privileged is left to do. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/prefault.h"
#include "sandbox/sandbox.h"
#include "util/fd.h"
#include "util/macro.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#define SANDBOX_NOFILE 256
#define SANDBOX_FSIZE  (64ULL << 20)
#define HOSTNAME       "sandbox"

static const char *const stage_names[_SANDBOX_STAGE_MAX] = {
        [SANDBOX_STAGE_OK] = "ok",
        [SANDBOX_STAGE_CLONE] = "clone",
        [SANDBOX_STAGE_PDEATHSIG] = "parent-death signal",
        [SANDBOX_STAGE_NETNS] = "network namespace",
        [SANDBOX_STAGE_CGROUPS] = "cgroups",
        [SANDBOX_STAGE_CGROUPNS] = "cgroup namespace",
        [SANDBOX_STAGE_FDS] = "file descriptors",
        [SANDBOX_STAGE_MOUNTS] = "mounts",
        [SANDBOX_STAGE_HOSTNAME] = "host name",
        [SANDBOX_STAGE_SIGNALS] = "signals",
        [SANDBOX_STAGE_RLIMITS] = "rlimits",
        [SANDBOX_STAGE_CAPABILITIES] = "capabilities",
        [SANDBOX_STAGE_CREDENTIALS] = "credentials",
        [SANDBOX_STAGE_NO_NEW_PRIVS] = "no_new_privs",
        [SANDBOX_STAGE_CWD] = "working directory",
        [SANDBOX_STAGE_SECCOMP] = "seccomp",
        [SANDBOX_STAGE_RUNTIME] = "python runtime",
};

const char *sandbox_stage_name(int stage)
{
        if (stage < 0 || stage >= _SANDBOX_STAGE_MAX || !stage_names[stage])
                return "unknown";
        return stage_names[stage];
}

uint64_t sandbox_clone_flags(uint32_t layers)
{
        uint64_t flags = 0;

        if (layers & LAYER_PIDNS)
                flags |= CLONE_NEWPID;
        if (layers & LAYER_MOUNTNS)
                flags |= CLONE_NEWNS;
        if (layers & LAYER_IPCNS)
                flags |= CLONE_NEWIPC;
        if (layers & LAYER_UTSNS)
                flags |= CLONE_NEWUTS;
        /* The network namespace is the slot's (setns), the cgroup namespace is created
         * after joining the slot's cgroup (so that it is rooted there). */
        return flags;
}

uint64_t sandbox_as_limit(uint64_t zygote_vm_size, uint32_t memory_mb)
{
#ifdef HAVE_ASAN
        (void) zygote_vm_size, (void) memory_mb;
        return 0; /* ASan reserves terabytes of shadow; memory is bounded by cgroups there */
#else
        return zygote_vm_size + ((uint64_t) memory_mb << 20);
#endif
}

static int set_limit(int resource, rlim_t value)
{
        struct rlimit rl = {.rlim_cur = value, .rlim_max = value};
        return setrlimit(resource, &rl) < 0 ? -errno : 0;
}

static int reset_signals(void)
{
        sigset_t none;
        struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};

        /* The zygote blocks SIGCHLD for its signalfd; the script must start clean. */
        if (sigemptyset(&none) < 0 || sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                return -errno;
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);
        /* As in any Python program: a write to a closed pipe raises BrokenPipeError. */
        if (sigaction(SIGPIPE, &ign, NULL) < 0)
                return -errno;
        return 0;
}

int sandbox_apply_job_limits(uint64_t as_bytes, uint32_t cpu_seconds)
{
        int r;

        if (as_bytes > 0) {
                r = set_limit(RLIMIT_AS, as_bytes);
                if (r < 0)
                        return r;
        }
        /* SIGXCPU at the soft limit (reported as TIMEOUT), SIGKILL one second later. */
        struct rlimit cpu = {.rlim_cur = cpu_seconds, .rlim_max = (rlim_t) cpu_seconds + 1};
        if (setrlimit(RLIMIT_CPU, &cpu) < 0)
                return -errno;
        return 0;
}

/* Moves io[i] to descriptor number i + 1, then closes everything else, 0 included (see
 * open_stdin). The sources may themselves be small numbers, so everything is lifted above
 * the targets first. */
static int install_fds(int io[3])
{
        for (int i = 0; i < 3; i++) {
                int hi = fcntl(io[i], F_DUPFD_CLOEXEC, 16);
                if (hi < 0)
                        return -errno;
                io[i] = hi;
        }
        for (int i = 0; i < 3; i++) {
                if (dup2(io[i], i + 1) < 0) /* dup2 leaves the target without CLOEXEC */
                        return -errno;
                io[i] = i + 1;
        }
        if (syscall(SYS_close_range, 4U, ~0U, 0) < 0 || (close(0) < 0 && errno != EBADF))
                return -errno;
        return 0;
}

/* Standard input: /dev/null, opened only once the sandbox's view is in place, so that it is
 * the sandbox's own node (a lock on the host's would be seen by everyone). It takes the
 * lowest free number, 0, and stays open across exec. */
static int open_stdin(void)
{
        int fd = open("/dev/null", O_RDONLY);

        if (fd < 0)
                return -errno;
        if (fd != 0) {
                (void) close(fd);
                return -EBADF;
        }
        return 0;
}

static int set_rlimits(const SandboxParams *p)
{
        int r;

        if ((r = set_limit(RLIMIT_CORE, 0)) < 0 || (r = set_limit(RLIMIT_MEMLOCK, 0)) < 0 ||
            (r = set_limit(RLIMIT_NOFILE, SANDBOX_NOFILE)) < 0 ||
            (r = set_limit(RLIMIT_NPROC, p->nproc)) < 0 ||
            (r = set_limit(RLIMIT_FSIZE, SANDBOX_FSIZE)) < 0)
                return r;
        return sandbox_apply_job_limits(p->as_bytes, p->cpu_seconds);
}

static int drop_privileges(const SandboxParams *p, SandboxStage *stage)
{
        int r;

        *stage = SANDBOX_STAGE_CAPABILITIES;
        if (p->uid == 0 || p->gid == 0)
                return -EPERM;
        r = caps_drop_bounding();
        if (r < 0)
                return r;

        *stage = SANDBOX_STAGE_CREDENTIALS;
        if (setgroups(0, NULL) < 0 || setresgid(p->gid, p->gid, p->gid) < 0 ||
            setresuid(p->uid, p->uid, p->uid) < 0)
                return -errno;
        /* Verify, do not trust: a kernel or LSM that silently kept root must not pass. */
        if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid ||
            getegid() != p->gid || setresuid(0, 0, 0) == 0 || getgroups(0, NULL) != 0)
                return -EPERM;
        *stage = SANDBOX_STAGE_CAPABILITIES;
        r = caps_verify_none();
        if (r < 0)
                return r;

        *stage = SANDBOX_STAGE_NO_NEW_PRIVS;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

int sandbox_enter(const SandboxParams *p, int io[3], SandboxStage *ret_stage)
{
        char why[160]; /* what failed, in words: a sandbox reports only its stage and errno
                        * (mount_probe_view, at start, reports the words) */
        SandboxStage stage;
        int r = 0;

        stage = SANDBOX_STAGE_PDEATHSIG;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                goto fail_errno;

        stage = SANDBOX_STAGE_NETNS;
        if (p->layers & LAYER_NETNS && (r = netns_enter(p->netns_fd)) < 0)
                goto fail;

        /* Before the descriptors are closed: the slot's view is entered by its descriptor. */
        stage = SANDBOX_STAGE_MOUNTS;
        if (p->layers & LAYER_MOUNTNS && p->view_fd >= 0 && (r = mount_view_enter(p->view_fd)) < 0)
                goto fail;

        stage = SANDBOX_STAGE_CGROUPS;
        if (p->layers & LAYER_CGROUPS) {
                if (p->n_cgroup_fds == 0) {
                        r = -ENOENT;
                        goto fail;
                }
                /* "0" is the writing process. Root on the host may write these files. */
                for (size_t i = 0; i < p->n_cgroup_fds; i++)
                        if ((r = write_all(p->cgroup_fds[i], "0", 1)) < 0)
                                goto fail;
        }

        stage = SANDBOX_STAGE_CGROUPNS;
        if (p->layers & LAYER_CGROUPNS && unshare(CLONE_NEWCGROUP) < 0)
                goto fail_errno;

        stage = SANDBOX_STAGE_FDS;
        if ((r = install_fds(io)) < 0)
                goto fail;

        stage = SANDBOX_STAGE_MOUNTS;
        if (p->layers & LAYER_MOUNTNS &&
            (r = p->view_fd >= 0 ? mount_view_finish(p->uid, p->gid, p->tmp_bytes, why, sizeof(why))
                                 : mount_sandbox(p->uid, p->gid, p->tmp_bytes, p->trees, why,
                                                 sizeof(why))) < 0)
                goto fail;
        stage = SANDBOX_STAGE_FDS;
        if ((r = open_stdin()) < 0)
                goto fail;

        stage = SANDBOX_STAGE_HOSTNAME;
        if (p->layers & LAYER_UTSNS && sethostname(HOSTNAME, strlen(HOSTNAME)) < 0)
                goto fail_errno;

        stage = SANDBOX_STAGE_SIGNALS;
        if ((r = reset_signals()) < 0)
                goto fail;

        stage = SANDBOX_STAGE_RLIMITS;
        if (p->layers & LAYER_RLIMITS && (r = set_rlimits(p)) < 0)
                goto fail;

        if (p->layers & LAYER_CREDENTIALS && (r = drop_privileges(p, &stage)) < 0)
                goto fail;

        stage = SANDBOX_STAGE_CWD;
        if (chdir(p->layers & LAYER_MOUNTNS ? "/tmp" : "/") < 0)
                goto fail_errno;

        /* Best effort: a range the zygote has unmapped since is only a missed prefault. */
        if (p->prefault)
                (void) prefault_apply(p->prefault);

        stage = SANDBOX_STAGE_SECCOMP;
        if (p->layers & LAYER_SECCOMP && (!p->seccomp || (r = seccomp_install(p->seccomp)) < 0))
                goto fail;
        return 0;

fail_errno:
        r = -errno;
fail:
        *ret_stage = stage;
        return r < 0 ? r : -EINVAL;
}
