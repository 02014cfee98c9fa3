/* The sandbox a script runs in, applied by the freshly cloned child before any user code.
 * Each step is one SandboxStage; a failure names its stage and errno, and the caller
 * reports it to the supervisor and exits (fail closed: never run the script with a layer
 * missing).
 *
 * Layers in this version: a new pid namespace (from the clone flags: everything the script
 * starts dies with it), parent-death signal, a clean signal state, rlimits (CPU, AS, FSIZE,
 * NOFILE, NPROC, CORE, MEMLOCK), an unprivileged uid/gid per slot with no supplementary
 * groups (which also clears every effective and permitted capability), no_new_privs. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

typedef enum SandboxStage {
        SANDBOX_STAGE_OK = 0,
        SANDBOX_STAGE_CLONE,
        SANDBOX_STAGE_FDS,
        SANDBOX_STAGE_SIGNALS,
        SANDBOX_STAGE_PDEATHSIG,
        SANDBOX_STAGE_RLIMITS,
        SANDBOX_STAGE_CREDENTIALS,
        SANDBOX_STAGE_NO_NEW_PRIVS,
        SANDBOX_STAGE_CWD,
        SANDBOX_STAGE_RUNTIME,
        _SANDBOX_STAGE_MAX,
} SandboxStage;

typedef struct SandboxParams {
        uid_t uid;
        gid_t gid;
        uint64_t as_bytes;    /* RLIMIT_AS; 0 = leave unlimited (sanitizer builds) */
        uint32_t cpu_seconds; /* RLIMIT_CPU */
} SandboxParams;

/* The clone(2) flags a sandbox is created with. */
uint64_t sandbox_clone_flags(void);

/* Applies every layer to the calling (freshly cloned) process. Returns 0, or -errno with
 * the failing stage in *ret_stage. */
int sandbox_enter(const SandboxParams *p, SandboxStage *ret_stage);

/* Lowers the address-space and CPU limits for one job (a request may only lower them). */
int sandbox_apply_job_limits(uint64_t as_bytes, uint32_t cpu_seconds);

/* The RLIMIT_AS for a script allowed `memory_mb`, given the zygote's VmSize: the image the
 * child inherits is not the script's to pay for. 0 when RLIMIT_AS cannot be used (ASan). */
uint64_t sandbox_as_limit(uint64_t zygote_vm_size, uint32_t memory_mb);

const char *sandbox_stage_name(int stage);
