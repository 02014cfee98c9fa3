/* The executor: owns the zygote, the queue of jobs, the running sandboxes and their
 * deadlines. One thread runs an epoll loop over the zygote socket and every sandbox's
 * descriptors, so no thread is blocked per waiting request; callers submit jobs from any
 * thread and are called back, on the executor thread, once no process of the job can run
 * again: every one killed at once (cgroup.kill), or the sandbox reaped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "exec/exec.h"

typedef struct Executor Executor;

/* Called exactly once per accepted job, on the executor thread. It takes the outcome's
 * byte ranges (exec/exec.h): release them with exec_outcome_release(), now or later. */
typedef void (*ExecDoneFn)(ExecOutcome *outcome, void *userdata);

enum {
        EXECUTOR_E_OVERLOADED = 1, /* queue full: try again later */
        EXECUTOR_E_STOPPING,       /* shutting down */
};

/* Starts the zygote, waits until it is ready (or failed: message in errbuf), then starts
 * the executor thread. Call before any other thread exists. Returns 0 or -errno. */
int executor_new(const Config *cfg, Executor **ret, char *errbuf, size_t errlen);

/* How a zygote is started: zygote_launch()'s contract (zygote/zygote.h), with `userdata`.
 * The unit tests start a fake zygote that speaks the same protocol. */
typedef struct Cgroups Cgroups;
typedef int (*ZygoteLaunchFn)(const Config *cfg, const Cgroups *cg, bool plot, pid_t *ret_pid,
                              int *ret_sock, void *userdata);

/* executor_new() with another way to start zygotes. */
int executor_new_with_launcher(const Config *cfg, ZygoteLaunchFn launch, void *userdata,
                               Executor **ret, char *errbuf, size_t errlen);

/* Queues a job, taking req->script (no copy; freed also on failure, and req->script is
 * then NULL). Returns 0, a positive EXECUTOR_E_*, or -errno. */
int executor_submit(Executor *ex, ExecRequest *req, ExecDoneFn done, void *userdata);

typedef struct ExecutorStats {
        unsigned long long queued;         /* requests waiting for a sandbox */
        unsigned long long busy;           /* sandboxes serving a request */
        unsigned long long warm_ready;     /* warm sandboxes ready */
        unsigned long long setup_failures; /* sandboxes that failed a set-up stage */
        unsigned long long oom_kills;      /* jobs ended by the memory cgroup */
        unsigned long long timeouts;       /* jobs killed at their deadline */
        unsigned long long zygote_starts;  /* zygotes started after the first of each lane */
        unsigned long long zygotes_up;     /* zygotes serving (cfg->zygotes, + the plot one) */
} ExecutorStats;

/* A consistent snapshot of the executor's gauges and counters. */
void executor_stats(Executor *ex, ExecutorStats *ret);

/* True when the zygote is up and accepting spawns. */
bool executor_ready(Executor *ex);

/* Stops accepting jobs, waits up to grace_ms for running ones, kills the rest (each still
 * gets its callback), stops the zygote and the thread. */
void executor_shutdown(Executor *ex, uint32_t grace_ms);

/* Frees a shut-down executor. NULL is fine. */
void executor_free(Executor *ex);

static inline void executor_freep(Executor **ex)
{
        executor_free(*ex);
}
