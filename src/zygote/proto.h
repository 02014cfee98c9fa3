/* The wire protocols between the supervisor, the zygote and each sandbox. Fixed-size
 * structs only: nothing here is parsed, every message is checked for its exact size and
 * magic, and anything else ends the conversation.
 *
 * supervisor <-> zygote: a SOCK_SEQPACKET socketpair (fd 3 of the zygote).
 *   -> ZygoteConfig (once, first)
 *   -> ZygoteMsg{SLOT, slot} + the slot's cgroup.procs fds (once per slot, with cgroups)
 *                                          <- ZygoteReady (once; status < 0 = start failed)
 *   -> ZygoteMsg{SPAWN, token, slot}       <- ZygoteMsg{SPAWNED, token, pid} + fds
 *                                              [pidfd, ctl, stdout, stderr]
 *                                          <- ZygoteMsg{SPAWN_FAILED, token, err}
 *                                          <- ZygoteMsg{EXITED, pid, status} (wait status)
 *
 * supervisor <-> sandbox: a SOCK_STREAM socketpair (the sandbox's fd 3, "ctl").
 *   <- SandboxHello (set-up finished, or the stage that failed)
 *   -> SandboxJob + script bytes + input bytes (stdin, args, files: runtime/harness.py)
 *   <- uint64_t SANDBOX_JOB_ACK (the job's limits are applied; the script runs next)
 *   <- uint64_t length + result frame (see runtime/harness.py), then EOF
 *
 * Before the acknowledgement only the service's code has run in the sandbox, so an exit
 * without it is the service's failure (500), never the script's: see SandboxExit. After
 * it, nothing the sandbox sends or does can be trusted. */
#pragma once

#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define ZYGOTE_MAGIC  0x7a796730u /* "zyg0" */
#define SANDBOX_MAGIC 0x73627830u /* "sbx0" */

#define ZYGOTE_FD 3 /* the zygote's end of the supervisor socket */

typedef struct ZygoteConfig {
        uint32_t magic;
        uint32_t uid_base;
        uint32_t slots;
        uint32_t timeout_ms; /* maximum per script: RLIMIT_CPU backstop */
        uint32_t memory_mb;  /* maximum per script */
        uint32_t log_level;
        uint32_t log_format;
        uint32_t layers; /* enabled Layer bits */
        uint32_t pids_max;
        uint32_t reserved;
        uint64_t tmp_size;
        char preload[512];
} ZygoteConfig;

typedef struct ZygoteReady {
        uint32_t magic;
        int32_t status;    /* 0 or -errno */
        uint64_t vm_size;  /* the zygote's VmSize after preload, bytes */
        char message[256]; /* why start failed, NUL-terminated */
} ZygoteReady;

typedef enum ZygoteMsgType {
        ZYGOTE_SLOT = 1,
        ZYGOTE_SPAWN,
        ZYGOTE_SPAWNED,
        ZYGOTE_SPAWN_FAILED,
        ZYGOTE_EXITED,
} ZygoteMsgType;

typedef struct ZygoteMsg {
        uint32_t magic;
        uint32_t type;
        uint64_t token; /* the supervisor's id for the sandbox */
        uint32_t slot;
        int32_t pid;
        int32_t status; /* EXITED: wait status; SPAWN_FAILED: -errno */
        uint32_t flags; /* SPAWN: ZYGOTE_SPAWN_* */
} ZygoteMsg;

/* SPAWN flags. PREWARM: run a throw-away script before reporting ready, so that the
 * request's first-touch page faults are taken before the request arrives (warm pool). */
#define ZYGOTE_SPAWN_PREWARM 1u
/* BACKGROUND: the sandbox lowers its own priority, to the service's nice value +
 * SANDBOX_BACKGROUND_NICE, first thing: its set-up and warm-up then yield the CPU to
 * requests being served. The supervisor raises it again when a request adopts it. */
#define ZYGOTE_SPAWN_BACKGROUND 2u
#define SANDBOX_BACKGROUND_NICE 10
/* The nice value of background work for a service running at `service_nice`. */
static inline int sandbox_background_nice(int service_nice)
{
        int nice = service_nice + SANDBOX_BACKGROUND_NICE;
        return nice < PRIO_MAX - 1 ? nice : PRIO_MAX - 1;
}
/* EXIT_BACKGROUND: once its result frame is written (the request is answered), the
 * sandbox drops to the lowest priority for its exit: the teardown of its copy of the image
 * then yields to the requests being served. Only when a spare slot exists, since the slot
 * stays taken until the exit ends. */
#define ZYGOTE_SPAWN_EXIT_BACKGROUND 4u
/* PREFAULT (with PREWARM): the sandbox takes the zygote's learned prefault set
 * (sandbox/prefault.h) before seccomp: the pages the README's numpy and pandas examples
 * copy, so that such a request does not fault them in. ~5 MiB and ~3 ms of CPU per
 * sandbox, which pays only when most requests use pandas (see executor.c). */
#define ZYGOTE_SPAWN_PREFAULT 8u

enum { SANDBOX_FD_PIDFD, SANDBOX_FD_CTL, SANDBOX_FD_STDOUT, SANDBOX_FD_STDERR, SANDBOX_N_FDS };

typedef struct SandboxHello {
        uint32_t magic;
        int32_t stage; /* 0: ready; else the SandboxStage that failed */
        int32_t err;   /* errno of the failure */
        uint32_t reserved;
} SandboxHello;

/* The sandbox's exit codes for its own failures (the script's own exits can be anything,
 * so these mean something only before SANDBOX_JOB_ACK was sent). */
typedef enum SandboxExit {
        SANDBOX_EXIT_NO_SPACE = 121, /* the job's input files do not fit in /tmp */
        SANDBOX_EXIT_INPUT = 122,    /* writing the job's input failed otherwise */
        SANDBOX_EXIT_FRAME = 123,    /* writing the result frame failed */
        SANDBOX_EXIT_HARNESS = 124,  /* the runtime could not run the harness */
        SANDBOX_EXIT_LIMITS = 125,   /* applying the job's limits failed */
        SANDBOX_EXIT_JOB = 126,      /* the job message was short or malformed */
        SANDBOX_EXIT_SETUP = 127,    /* set-up failed, or its hello could not be sent */
} SandboxExit;

#define SANDBOX_JOB_ACK 0x6b63612d30786273ull /* "sbx0-ack", little-endian */

/* What the sandbox was doing when it exited with `status` (a wait status) before it
 * acknowledged its job: for the 500 answer and the log. (SANDBOX_EXIT_SETUP never gets
 * here: a sandbox whose hello failed or never came is answered as a set-up failure.) */
static inline const char *sandbox_exit_stage(int status)
{
        if (WIFEXITED(status) && WEXITSTATUS(status) == SANDBOX_EXIT_JOB)
                return "while reading its job";
        if (WIFEXITED(status) && WEXITSTATUS(status) == SANDBOX_EXIT_LIMITS)
                return "while applying the job's limits";
        if (WIFEXITED(status) && WEXITSTATUS(status) == SANDBOX_EXIT_INPUT)
                return "while writing the job's input";
        if (WIFEXITED(status) && WEXITSTATUS(status) == SANDBOX_EXIT_NO_SPACE)
                return "because the input files do not fit in /tmp";
        return "before acknowledging its job";
}

typedef struct SandboxJob {
        uint32_t magic;
        uint32_t script_len;
        uint32_t timeout_ms;
        uint32_t memory_mb;
        uint64_t result_limit;
        uint32_t input_len; /* bytes of the job's input (JSON) after the script; 0: none */
        uint32_t reserved;
} SandboxJob;
