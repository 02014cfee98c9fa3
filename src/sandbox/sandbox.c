/* See sandbox.h. Order matters: the parent-death signal first (so nothing outlives the
 * zygote), limits while we may still raise them, credentials last but one, no_new_privs
 * last. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <grp.h>

#include "sandbox/sandbox.h"
#include "util/macro.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#define SANDBOX_NOFILE 256
#define SANDBOX_NPROC  64
#define SANDBOX_FSIZE  (64ULL << 20)

static const char *const stage_names[_SANDBOX_STAGE_MAX] = {
        [SANDBOX_STAGE_OK] = "ok",
        [SANDBOX_STAGE_CLONE] = "clone",
        [SANDBOX_STAGE_FDS] = "file descriptors",
        [SANDBOX_STAGE_SIGNALS] = "signals",
        [SANDBOX_STAGE_PDEATHSIG] = "parent-death signal",
        [SANDBOX_STAGE_RLIMITS] = "rlimits",
        [SANDBOX_STAGE_CREDENTIALS] = "credentials",
        [SANDBOX_STAGE_NO_NEW_PRIVS] = "no_new_privs",
        [SANDBOX_STAGE_CWD] = "working directory",
        [SANDBOX_STAGE_RUNTIME] = "python runtime",
};

const char *sandbox_stage_name(int stage)
{
        if (stage < 0 || stage >= _SANDBOX_STAGE_MAX || !stage_names[stage])
                return "unknown";
        return stage_names[stage];
}

uint64_t sandbox_clone_flags(void)
{
        return CLONE_NEWPID;
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
        sigset_t all;
        struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};

        /* The zygote blocks SIGCHLD for its signalfd; the script must start clean. */
        if (sigemptyset(&all) < 0 || sigprocmask(SIG_SETMASK, &all, NULL) < 0)
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
        /* Soft limit first: SIGXCPU at the soft limit, SIGKILL one second later. */
        struct rlimit cpu = {.rlim_cur = cpu_seconds, .rlim_max = (rlim_t) cpu_seconds + 1};
        if (setrlimit(RLIMIT_CPU, &cpu) < 0)
                return -errno;
        return 0;
}

int sandbox_enter(const SandboxParams *p, SandboxStage *ret_stage)
{
        SandboxStage stage;
        int r;

        stage = SANDBOX_STAGE_PDEATHSIG;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                goto fail_errno;

        stage = SANDBOX_STAGE_SIGNALS;
        r = reset_signals();
        if (r < 0)
                goto fail;

        stage = SANDBOX_STAGE_RLIMITS;
        if ((r = set_limit(RLIMIT_CORE, 0)) < 0 || (r = set_limit(RLIMIT_MEMLOCK, 0)) < 0 ||
            (r = set_limit(RLIMIT_NOFILE, SANDBOX_NOFILE)) < 0 ||
            (r = set_limit(RLIMIT_NPROC, SANDBOX_NPROC)) < 0 ||
            (r = set_limit(RLIMIT_FSIZE, SANDBOX_FSIZE)) < 0 ||
            (r = sandbox_apply_job_limits(p->as_bytes, p->cpu_seconds)) < 0)
                goto fail;

        stage = SANDBOX_STAGE_CREDENTIALS;
        if (p->uid == 0 || p->gid == 0) {
                r = -EPERM;
                goto fail;
        }
        if (setgroups(0, NULL) < 0 || setresgid(p->gid, p->gid, p->gid) < 0 ||
            setresuid(p->uid, p->uid, p->uid) < 0)
                goto fail_errno;
        /* Verify, do not trust: a kernel or LSM that silently kept root must not pass. */
        if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid ||
            getegid() != p->gid || setresuid(0, 0, 0) == 0) {
                r = -EPERM;
                goto fail;
        }

        stage = SANDBOX_STAGE_NO_NEW_PRIVS;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                goto fail_errno;

        stage = SANDBOX_STAGE_CWD;
        if (chdir("/tmp") < 0)
                goto fail_errno;

        return 0;

fail_errno:
        r = -errno;
fail:
        *ret_stage = stage;
        return r;
}
