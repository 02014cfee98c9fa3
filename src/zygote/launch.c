/* See zygote.h: the supervisor's side of starting a zygote. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fd.h"
#include "util/macro.h"
#include "zygote/zygote.h"

/* The zygote's entire environment, and so every sandbox's: nothing of the service's leaks
 * in. The thread pins keep pandas' numexpr (and any BLAS/OpenMP) from starting worker
 * threads in the zygote, which must stay single-threaded to fork safely. */
static char *const zygote_env[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/tmp",
        "LANG=C.UTF-8",
        /* matplotlib draws off-screen (plt.show() returns at once); figures.py renders what
         * a script leaves open. */
        "MPLBACKEND=Agg",
        "NUMEXPR_MAX_THREADS=1",
        "NUMEXPR_NUM_THREADS=1",
        "OMP_NUM_THREADS=1",
        "OPENBLAS_NUM_THREADS=1",
        "MKL_NUM_THREADS=1",
        "VECLIB_MAXIMUM_THREADS=1",
        NULL,
};

static int send_slots(int sock, const Cgroups *cg, unsigned n_slots)
{
        for (unsigned slot = 0; slot < n_slots; slot++) {
                ZygoteMsg m = {.magic = ZYGOTE_MAGIC, .type = ZYGOTE_SLOT, .slot = slot};
                int fds[SANDBOX_MAX_CGROUP_FDS];
                size_t n = 0;
                int r = cgroup_open_procs(cg, slot, fds, SANDBOX_MAX_CGROUP_FDS, &n);
                if (r < 0)
                        return r;
                r = send_with_fds(sock, &m, sizeof(m), fds, n);
                for (size_t i = 0; i < n; i++)
                        (void) close(fds[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A sealed in-memory copy of our own binary, to execute the zygote from. Every sandbox is
 * a fork of the zygote, and /proc/self/exe and /proc/self/maps name the executable: with a
 * copy they say "/memfd:pyexecd (deleted)" instead of the binary's path on the host (the
 * service's directory must not be visible in a sandbox). runc does the same for its init. */
static int binary_copy(void)
{
        _cleanup_close_ int src = -EBADF, dst = -EBADF;
        struct stat st;
        int r;

        src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (src < 0 || fstat(src, &st) < 0)
                return -errno;
        dst = memfd_create("pyexecd", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (dst < 0)
                return -errno;
        if ((r = copy_bytes(dst, src, (uint64_t) st.st_size)) < 0)
                return r;
        /* Root may execute it; a sandbox's uid may not open it through /proc/self/exe. */
        if (fchmod(dst, 0500) < 0 ||
            fcntl(dst, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        return TAKE_FD(dst);
}

int zygote_launch(const Config *cfg, const Cgroups *cg, bool plot, pid_t *ret_pid, int *ret_sock)
{
        _cleanup_close_ int parent_end = -EBADF, child_end = -EBADF, exe = -EBADF;
        int sv[2], r;
        ZygoteConfig zc = {
                .magic = ZYGOTE_MAGIC,
                .uid_base = cfg->uid_base,
                .slots = config_slots(cfg),
                .timeout_ms = cfg->timeout_ms,
                .memory_mb = cfg->memory_mb,
                .log_level = (uint32_t) cfg->log_level,
                .log_format = (uint32_t) cfg->log_format,
                .layers = _LAYER_ALL & ~cfg->disabled_layers,
                .pids_max = cfg->pids_max,
                .tmp_size = cfg->tmp_size,
        };
        char *const argv[] = {"pyexecd", ZYGOTE_ARGV1, NULL};
        pid_t pid;

        static_assert(sizeof(zc.preload) >= CONFIG_PRELOAD_MAX, "preload does not fit");
        if (!plot)
                memcpy(zc.preload, cfg->preload, sizeof(cfg->preload));
        else if ((r = config_plot_preload(cfg, zc.preload, sizeof(zc.preload))) < 0)
                return r;

        exe = binary_copy();
        if (exe < 0)
                return exe;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        parent_end = sv[0];
        child_end = sv[1];

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* Only async-signal-safe calls from here to execve. */
                sigset_t none;
                if (dup2(child_end, ZYGOTE_FD) < 0 || dup2(exe, ZYGOTE_FD + 1) < 0 ||
                    fcntl(ZYGOTE_FD + 1, F_SETFD, FD_CLOEXEC) < 0)
                        _exit(127);
                if (syscall(SYS_close_range, ZYGOTE_FD + 2, ~0U, 0) < 0)
                        _exit(127);
                (void) sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                (void) syscall(SYS_execveat, ZYGOTE_FD + 1, "", argv, zygote_env, AT_EMPTY_PATH);
                _exit(127);
        }
        child_end = safe_close(child_end);

        r = send_with_fds(parent_end, &zc, sizeof(zc), NULL, 0);
        if (r == 0 && cg)
                r = send_slots(parent_end, cg, config_slots(cfg));
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        *ret_pid = pid;
        *ret_sock = TAKE_FD(parent_end);
        return 0;
}

int zygote_read_ready(int sock, ZygoteReady *ret)
{
        ZygoteReady zr;
        size_t n_fds = 0;
        int fds[1];
        ssize_t n = recv_with_fds(sock, &zr, sizeof(zr), fds, 0, &n_fds);

        if (n < 0)
                return (int) n;
        if (n == 0)
                return -EPIPE;
        if ((size_t) n != sizeof(zr) || zr.magic != ZYGOTE_MAGIC)
                return -EPROTO;
        zr.message[sizeof(zr.message) - 1] = '\0';
        *ret = zr;
        return zr.status < 0 ? zr.status : 0;
}
