/* The executor's inside, shared by its files (see executor.c for the whole picture): the
 * job, zygote and executor structs, and the functions one file calls in another. Only the
 * executor thread touches these, except the `lock`-protected fields of Executor. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pool/executor.h"
#include "util/buf.h"
#include "util/dispatch.h"
#include "zygote/zygote.h"

#define SETUP_GRACE_USEC       (10ULL * 1000000) /* spawn + sandbox set-up, at most */
#define READY_TIMEOUT_MS       120000            /* first zygote start (imports pandas) */
#define START_TIMEOUT_USEC     ((uint64_t) READY_TIMEOUT_MS * 1000) /* any later start */
#define RESTART_MIN_USEC       (100ULL * 1000)
#define RESTART_MAX_USEC       (5ULL * 1000000)
#define READ_CHUNK             65536
#define FRAME_HEADER_ALLOWANCE 65536 /* result frame = header line + result */
/* With return_files the header line lists files as well: each one's path (up to 1024
 * bytes, 6 each when escaped) and fields, and its content, base64. */
#define FRAME_FILE_ALLOWANCE (6 * 1024 + 128)
#define FRAME_ACK            sizeof(uint64_t) /* SANDBOX_JOB_ACK, first on the stream */
#define FRAME_PREFIX         sizeof(uint64_t) /* the frame's length, before it */
#define FRAME_HEAD           (FRAME_ACK + FRAME_PREFIX)

typedef enum JobState {
        JOB_QUEUED,
        JOB_SPAWNING, /* SPAWN sent, waiting for the zygote's SPAWNED */
        JOB_HELLO,    /* sandbox created, waiting for its set-up report */
        JOB_READY,    /* warm: every layer in place, waiting for a request */
        JOB_RUNNING,  /* job sent (or being sent); collecting output */
} JobState;

/* Where the sandbox came from. A warm one is counted in Executor.warm until adopted. */
typedef enum JobOrigin {
        JOB_COLD,    /* spawned for its request */
        JOB_WARM,    /* a pool sandbox no request has adopted yet */
        JOB_ADOPTED, /* a pool sandbox a request took: its set-up was off the request path */
} JobOrigin;

/* How the job was killed, if it was (job_kill). */
typedef enum JobKill {
        JOB_NOT_KILLED,
        JOB_KILLED_PID1, /* PID 1 by its pidfd: the rest die with it (pid namespace) */
        JOB_KILLED_ALL,  /* every process has SIGKILL queued (cgroup.kill, or PID 1 was the
                          * last task): none runs another instruction */
} JobKill;

/* The request's side, one way only: LIVE -> ANSWERED (its owner has the outcome; the
 * sandbox may still be exiting) -> RETIRED (slot released; freed after the event batch).
 * A warm job no request adopted goes from LIVE to RETIRED. */
typedef enum JobPhase {
        JOB_LIVE,
        JOB_ANSWERED,
        JOB_RETIRED,
} JobPhase;

typedef struct Job Job;

typedef struct Zygote Zygote;

struct Job {
        Job *next; /* in the submission queue, then in the graveyard */
        uint64_t token;
        char *script;
        size_t script_len;
        char *input; /* ExecRequest.input, sent after the script; NULL: none */
        size_t input_len;
        bool return_files;
        unsigned max_output_files;
        size_t output_files_limit;
        uint32_t timeout_ms;
        uint32_t memory_mb;
        char request_id[80]; /* up to 64 characters (http/server.c) */
        ExecDoneFn done;
        void *userdata;

        JobState state;
        unsigned slot;
        Zygote *zygote; /* the one that made (or is making) the sandbox */
        pid_t pid;
        int pidfd, ctl, out, err;
        int client_fd; /* borrowed from the HTTP layer; watched for hang-up only */
        bool client_watched;
        DispatchWatch w_ctl, w_out, w_err, w_client; /* data: the job */

        SandboxHello hello;
        size_t hello_got;
        SandboxJob header;
        size_t sent; /* bytes of header + script + input written */

        Buf out_buf, err_buf, frame;
        bool exited;
        int wait_status;
        JobKill kill;
        ExecEnd end;
        const char *internal_what;
        int internal_errno;
        uint64_t deadline_usec;
        uint64_t submit_usec, spawn_usec, started_usec, finished_usec;
        uint64_t oom_kills_before; /* the slot's OOM-kill count when the job started */
        JobOrigin origin;
        JobPhase phase;
        bool plot;   /* for (or from) the plot zygote: its script names matplotlib */
        bool hinted; /* warm_note_hints has counted it (it may be taken from the queue twice) */
};

typedef enum ZygoteState {
        ZYGOTE_FREE,     /* no process */
        ZYGOTE_STARTING, /* launched, ZygoteReady not yet received */
        ZYGOTE_UP,       /* serving */
        ZYGOTE_DRAINING, /* replaced; closed once its last sandbox is gone */
        ZYGOTE_GONE,     /* socket closed, process not yet reaped */
} ZygoteState;

struct Zygote {
        ZygoteState state;
        unsigned lane; /* which of ex->lanes it serves (or will) */
        pid_t pid;
        int sock;
        DispatchWatch watch; /* data: the zygote */
        unsigned jobs;       /* sandboxes asked for and not yet finished */
        unsigned cloning;    /* SPAWNs sent, not yet answered (its backlog) */
        uint64_t spawns;
        uint64_t start_usec, up_usec;
        bool background; /* at the warm pool's lower priority (see zygote_set_background) */
};

/* A lane is one serving zygote (cfg->zygotes of them, side by side), replaced in turn by
 * its successor; each has its own restart back-off. */
typedef struct Lane {
        Zygote *current; /* the one that serves; NULL while none is up */
        uint64_t restart_at_usec, restart_backoff_usec;
        unsigned long long starts;
        bool plot; /* the plot zygote's (config_plot_lane), after the cfg->zygotes others */
} Lane;

#define N_LANES (CONFIG_ZYGOTES_MAX + 1)
/* Per lane: the serving one, its successor or predecessor, and one lost whose sandboxes
 * are still being accounted for. */
#define N_ZYGOTES (3 * N_LANES)

struct Executor {
        const Config *cfg;
        Cgroups *cgroups; /* NULL with the cgroups layer off */
        ZygoteLaunchFn launch;
        void *launch_userdata;
        pthread_t thread;
        bool thread_started;

        /* Shared with submitting threads, under `lock`. */
        pthread_mutex_t lock;
        Job *queue_head, *queue_tail;
        unsigned admitted; /* submitted and not yet finished */
        ExecutorStats stats;
        bool stopping;
        uint64_t stop_deadline_usec;
        bool zygote_ready; /* mirror of "some lane has a current zygote" */

        /* Executor thread only (and the constructor before it starts). */
        int epfd, wakefd, sigfd;
        DispatchWatch w_wake, w_signal;
        Job **slots;
        unsigned n_slots;
        unsigned running;         /* slots in use */
        unsigned busy;            /* sandboxes serving a request (at most cfg->concurrency) */
        unsigned warm;            /* warm sandboxes not yet adopted */
        uint64_t warm_retry_usec; /* after a warm sandbox failed its set-up */
        bool kill_at_once;        /* cgroup.kill: answer at the frame, not at the reap */
        bool background_warm;     /* warm sandboxes wait at a lower priority (see adopt) */
        uint32_t pandas_share;    /* recent requests that name pandas, in 1/65536 (see
                                   * warm_note_hints in warm.c) */
        int nice;                 /* the service's own nice value: a request's priority */
        uint64_t next_token;
        Zygote zygotes[N_ZYGOTES];
        Lane lanes[N_LANES];
        unsigned n_lanes;    /* cfg->zygotes, and the plot lane if there is one */
        unsigned n_plain;    /* cfg->zygotes: the lanes before the plot lane */
        unsigned next_lane;  /* where the search for the least busy zygote starts */
        bool plot_wanted;    /* a script named matplotlib: the plot lane starts */
        bool plot_failed;    /* the plot zygote said it cannot start: the lane stays off */
        uint32_t plot_share; /* recent requests that name matplotlib, in 1/65536 */
        Job *graveyard;      /* finished jobs whose watches may still be in the event batch */
};

#define STAT_ADD(ex, field)                               \
        do {                                              \
                (void) pthread_mutex_lock(&(ex)->lock);   \
                (ex)->stats.field++;                      \
                (void) pthread_mutex_unlock(&(ex)->lock); \
        } while (0)

/* executor.c: copies the executor thread's busy and warm counts into the stats that other
 * threads read (under the lock). */
void executor_publish(Executor *ex);

/* job.c: a job from its creation to its answer and retirement. */
Job *job_new(Executor *ex);
void job_free(Job *j);
void job_close_fd(Executor *ex, int *fd);
void job_kill(Executor *ex, Job *j);
void job_fail(Executor *ex, Job *j, const char *what, int err);
void job_end(Executor *ex, Job *j, ExecEnd end);
bool job_frame_complete(const Job *j, const char **ret_frame, size_t *ret_len);
void job_retire(Executor *ex, Job *j);
bool job_drain(int fd, Buf *b, bool *ret_over);
void job_maybe_finish(Executor *ex, Job *j);

/* sandbox-io.c: a sandbox's sockets (hello, job, result stream, output) and its client's hang-up.
 */
void sandbox_watches_init(Job *j);
void sandbox_send_job(Executor *ex, Job *j);
void sandbox_on_ctl(Executor *ex, Job *j, uint32_t events);
void sandbox_on_stream(Executor *ex, Job *j, int *fd, Buf *b);
void sandbox_watch_client(Executor *ex, Job *j);
void sandbox_on_client(Executor *ex, Job *j, uint32_t events);

/* zygotes.c: the zygote processes (start, hand-over, loss) and their messages. */
int zygote_start(Executor *ex, unsigned lane);
Zygote *zygote_pick(Executor *ex, bool plot);
Zygote *zygote_plot(Executor *ex);
bool lane_active(const Executor *ex, unsigned lane);
void zygote_maybe_retire(Executor *ex, Zygote *z);
void zygote_lost(Executor *ex, Zygote *z, const char *why);
void zygote_housekeeping(Executor *ex);
uint64_t zygote_next_usec(const Executor *ex);
void zygote_on_readable(Executor *ex, Zygote *z);
void zygotes_on_sigchld(Executor *ex);
int zygote_wait_first_ready(Executor *ex, Zygote *z, char *errbuf, size_t errlen);
void zygotes_stop(Executor *ex);

/* warm.c: which warm sandbox a request takes, and what the next warm sandbox is to be. */
void warm_note_hints(Executor *ex, Job *q);
Job *warm_ready(Executor *ex);
Job *warm_for(Executor *ex, const Job *q, bool can_spawn, bool *ret_wait);
bool warm_plot_wanted(Executor *ex);
void warm_plot_make_room(Executor *ex);
bool warm_prefault_wanted(const Executor *ex);

/* priority.c: the warm pool as background work. */
bool priority_can_raise(int *ret_nice);
void priority_zygote_background(Executor *ex, Zygote *z, bool background);
void priority_adopted(Executor *ex, Job *w);
void priority_update(Executor *ex, bool queued);
