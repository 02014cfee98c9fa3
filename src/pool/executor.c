/* See executor.h.
 *
 * Threads: callers touch only `lock`-protected fields (the submission queue, the admission
 * count, `stopping`); everything else belongs to the executor thread. A job moves
 *
 *   QUEUED -> SPAWNING -> HELLO -> [READY, warm only] -> RUNNING -> answered -> retired
 *
 * Every process of a job is killed before it is answered. A complete result frame ends
 * the job (the script may have written it itself, so the job is killed there too); with
 * cgroup.kill (v2, Linux 5.14) every process of the sandbox gets SIGKILL at once and the
 * answer goes at once. Otherwise, and for every other end (timeout, output limit, crash,
 * ...), the answer waits until the zygote has reaped the sandbox and every descriptor
 * reached EOF: with a pid namespace, PID 1's exit means every process of the script is
 * dead. A job is retired, and its slot released, only after that reap in all cases.
 *
 * Slots: every sandbox holds one of config_slots() slots (cfg->concurrency for running
 * requests, cfg->pool_size more for warm sandboxes); the slot picks the sandbox's uid,
 * cgroup and network namespace. A slot is reused only after its previous sandbox was
 * reaped.
 *
 * Warm pool: up to cfg->pool_size sandboxes are spawned ahead of requests, with the
 * PREWARM flag (they run a throw-away script to take their first-touch page faults), and
 * wait in JOB_READY, blocked on their ctl socket. A request adopts one (its set-up is then
 * off the request path) or, when none is ready, gets a sandbox of its own (cold). A warm
 * sandbox is handed out once (adopting moves it to JOB_RUNNING) and only after it reported
 * every layer in place.
 *
 * Priorities (when the service may raise them again, CAP_SYS_NICE): the pool is
 * background work. Warm sandboxes do their set-up and warm-up, and wait, at nice +10; the
 * zygote runs at +10 unless a request waits for a cold sandbox or in the queue. Adopting a
 * sandbox raises it to the service's priority; once answered it exits at nice 19 (with a
 * pool, so spare slots exist). Measured on 2 cores: the refill and the exit that a
 * request's end triggers no longer compete with that request's response (hello with 25-30
 * ms between requests: p50 2.8 -> 1.1 ms, p90 4.0 -> 2.1 ms).
 *
 * Zygotes: one serves. Every cfg->zygote_max_spawns sandboxes or cfg->zygote_max_age, a
 * fresh one is started next to it (so that sandboxes do not share one address-space layout
 * forever); once it is ready it takes over, and the old one is closed when its last
 * sandbox is gone. A zygote that dies is restarted with a back-off; its sandboxes die with
 * it (PR_SET_PDEATHSIG) and their requests are answered INTERNAL. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool/executor.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"
#include "zygote/zygote.h"

#define SETUP_GRACE_USEC       (10ULL * 1000000) /* spawn + sandbox set-up, at most */
#define READY_TIMEOUT_MS       120000            /* first zygote start (imports pandas) */
#define RESTART_MIN_USEC       (100ULL * 1000)
#define RESTART_MAX_USEC       (5ULL * 1000000)
#define READ_CHUNK             65536
#define FRAME_HEADER_ALLOWANCE 65536            /* result frame = header line + result */
#define FRAME_ACK              sizeof(uint64_t) /* SANDBOX_JOB_ACK, first on the stream */
#define FRAME_PREFIX           sizeof(uint64_t) /* the frame's length, before it */
#define FRAME_HEAD             (FRAME_ACK + FRAME_PREFIX)

typedef enum JobState {
        JOB_QUEUED,
        JOB_SPAWNING, /* SPAWN sent, waiting for the zygote's SPAWNED */
        JOB_HELLO,    /* sandbox created, waiting for its set-up report */
        JOB_READY,    /* warm: every layer in place, waiting for a request */
        JOB_RUNNING,  /* job sent (or being sent); collecting output */
} JobState;

typedef enum WatchKind {
        WATCH_WAKE,
        WATCH_SIGNAL,
        WATCH_ZYGOTE,
        WATCH_CTL,
        WATCH_OUT,
        WATCH_ERR,
        WATCH_CLIENT, /* the HTTP client's socket: only its hang-up is of interest */
} WatchKind;

typedef struct Job Job;

typedef struct Zygote Zygote;

typedef struct Watch {
        WatchKind kind;
        Job *job;       /* WATCH_CTL, WATCH_OUT, WATCH_ERR */
        Zygote *zygote; /* WATCH_ZYGOTE */
} Watch;

struct Job {
        Job *next; /* in the submission queue, then in the graveyard */
        uint64_t token;
        char *script;
        size_t script_len;
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
        Watch w_ctl, w_out, w_err, w_client;

        SandboxHello hello;
        size_t hello_got;
        SandboxJob header;
        size_t sent; /* bytes of header + script written */

        Buf out_buf, err_buf, frame;
        bool exited;
        int wait_status;
        bool killed;
        bool all_killed; /* every process of the job at once (cgroup.kill), not only PID 1 */
        ExecEnd end;
        const char *internal_what;
        int internal_errno;
        uint64_t deadline_usec;
        uint64_t submit_usec, spawn_usec, started_usec, finished_usec;
        uint64_t oom_kills_before; /* the slot's OOM-kill count when the job started */
        bool warm;                 /* a pool sandbox no request has adopted yet */
        bool prewarmed;            /* set-up happened before the request arrived */
        bool answered; /* the request got its response (the sandbox may still be exiting) */
        bool finished; /* retired: slot released; freed at the end of the event batch */
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
        pid_t pid;
        int sock;
        Watch watch;
        unsigned jobs; /* sandboxes asked for and not yet finished */
        uint64_t spawns;
        uint64_t up_usec;
        bool background; /* at the warm pool's lower priority (see zygote_set_background) */
};

#define N_ZYGOTES 2 /* the serving one, and its successor or predecessor */

struct Executor {
        const Config *cfg;
        Cgroups *cgroups; /* NULL with the cgroups layer off */
        pthread_t thread;
        bool thread_started;

        /* Shared with submitting threads, under `lock`. */
        pthread_mutex_t lock;
        Job *queue_head, *queue_tail;
        unsigned admitted; /* submitted and not yet finished */
        ExecutorStats stats;
        bool stopping;
        uint64_t stop_deadline_usec;
        bool zygote_ready; /* mirror of current != NULL */

        /* Executor thread only (and the constructor before it starts). */
        int epfd, wakefd, sigfd;
        Watch w_wake, w_signal;
        Job **slots;
        unsigned n_slots;
        unsigned running;         /* slots in use */
        unsigned busy;            /* sandboxes serving a request (at most cfg->concurrency) */
        unsigned warm;            /* warm sandboxes not yet adopted */
        uint64_t warm_retry_usec; /* after a warm sandbox failed its set-up */
        bool kill_at_once;        /* cgroup.kill: answer at the frame, not at the reap */
        bool background_warm;     /* warm sandboxes wait at a lower priority (see adopt) */
        int nice;                 /* the service's own nice value: a request's priority */
        uint64_t next_token;
        Zygote zygotes[N_ZYGOTES];
        Zygote *current; /* the one that serves; NULL while none is up */
        unsigned long long zygotes_started;
        uint64_t restart_at_usec, restart_backoff_usec;
        Job *graveyard; /* finished jobs whose watches may still be in the event batch */
};

static void zygote_maybe_retire(Executor *ex, Zygote *z);

#define STAT_ADD(ex, field)                               \
        do {                                              \
                (void) pthread_mutex_lock(&(ex)->lock);   \
                (ex)->stats.field++;                      \
                (void) pthread_mutex_unlock(&(ex)->lock); \
        } while (0)

static int epoll_add(Executor *ex, int fd, uint32_t events, Watch *w)
{
        struct epoll_event ev = {.events = events, .data.ptr = w};
        return epoll_ctl(ex->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int epoll_mod(Executor *ex, int fd, uint32_t events, Watch *w)
{
        struct epoll_event ev = {.events = events, .data.ptr = w};
        return epoll_ctl(ex->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

/* Stops watching and closes one of a job's descriptors. */
static void job_close_fd(Executor *ex, int *fd)
{
        if (*fd < 0)
                return;
        (void) epoll_ctl(ex->epfd, EPOLL_CTL_DEL, *fd, NULL);
        *fd = safe_close(*fd);
}

static void job_free(Job *j)
{
        if (!j)
                return;
        free(j->script);
        buf_free(&j->out_buf);
        buf_free(&j->err_buf);
        buf_free(&j->frame);
        free(j);
}

/* SIGKILLs every process of the job. With cgroup.kill, all of them at once: none runs
 * another instruction after this returns (the kernel has queued the signal on each and
 * kicked those running), so the request may be answered now. Without it, PID 1 through
 * its pidfd (no pid-reuse race); with a pid namespace its exit kills the rest, so the
 * request is answered only once it is reaped. */
static void job_kill(Executor *ex, Job *j)
{
        if (j->killed || j->pidfd < 0 || j->exited)
                return;
        if (ex->kill_at_once) {
                int r = cgroup_kill(ex->cgroups, j->slot);
                if (r < 0)
                        log_errno(LOG_LEVEL_ERROR, -r, j->request_id,
                                  "Failed to kill the cgroup of sandbox %d", (int) j->pid);
                j->all_killed = r == 0;
        }
        if (syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                log_errno(LOG_LEVEL_ERROR, errno, j->request_id, "Failed to kill sandbox %d",
                          (int) j->pid);
        j->killed = true;
}

/* Ends a job for a reason of the service (not of the script). */
static void job_fail(Executor *ex, Job *j, const char *what, int err)
{
        if (j->end == EXEC_END_NORMAL) {
                j->end = EXEC_END_INTERNAL;
                j->internal_what = what;
                j->internal_errno = err < 0 ? -err : err;
        }
        job_kill(ex, j);
}

static void job_end(Executor *ex, Job *j, ExecEnd end)
{
        if (j->end == EXEC_END_NORMAL)
                j->end = end;
        job_kill(ex, j);
}

/* The sandbox acknowledged its job: its limits are applied and the script's code may
 * have run. The stream after the job is [u64 SANDBOX_JOB_ACK][u64 length][frame]. */
static bool job_acked(const Job *j)
{
        uint64_t ack;

        if (j->frame.len < FRAME_ACK)
                return false;
        memcpy(&ack, j->frame.data, sizeof(ack));
        return ack == SANDBOX_JOB_ACK;
}

/* The result frame, once the sandbox sent all of it. */
static bool frame_complete(const Job *j, const char **ret_frame, size_t *ret_len)
{
        uint64_t declared;

        if (!job_acked(j) || j->frame.len < FRAME_HEAD)
                return false;
        memcpy(&declared, j->frame.data + FRAME_ACK, FRAME_PREFIX);
        if (declared > j->frame.len - FRAME_HEAD)
                return false;
        *ret_frame = j->frame.data + FRAME_HEAD;
        *ret_len = (size_t) declared;
        return true;
}

/* Hands the outcome to the request's owner. */
static void answer(Executor *ex, Job *j)
{
        ExecOutcome o = {
                .end = j->end,
                .request_id = j->request_id,
                .have_status = j->exited && j->wait_status >= 0,
                .wait_status = j->wait_status,
                .setup_stage = j->hello.stage,
                .setup_errno = j->hello.err,
                .internal_what = j->internal_what,
                .internal_errno = j->internal_errno,
                .out = j->out_buf.data,
                .out_len = j->out_buf.len,
                .out_truncated = j->out_buf.truncated,
                .err = j->err_buf.data,
                .err_len = j->err_buf.len,
                .err_truncated = j->err_buf.truncated,
                .timeout_ms = j->timeout_ms,
        };
        uint64_t end_usec = j->finished_usec ? j->finished_usec : now_usec();

        o.script_started = job_acked(j);
        if (o.end == EXEC_END_NORMAL && !o.script_started) {
                /* Only the service's code ran: its failure, whatever the exit looks like. */
                o.internal_what = o.have_status ? sandbox_exit_stage(o.wait_status)
                                                : "before acknowledging its job";
                log_event(LOG_LEVEL_ERROR, j->request_id, NULL,
                          "Sandbox %d ended %s (wait status %#x); the script was not run",
                          (int) j->pid, o.internal_what, (unsigned) o.wait_status);
        }
        o.frame_complete = frame_complete(j, &o.frame, &o.frame_len);
        if (!o.frame_complete && o.script_started && j->frame.len > FRAME_HEAD) {
                /* Cut short (killed, or the script wrote to the channel itself): whatever
                 * came after the length is handed over, to be judged as such. */
                o.frame = j->frame.data + FRAME_HEAD;
                o.frame_len = j->frame.len - FRAME_HEAD;
        }
        if (j->started_usec) {
                o.duration_ms = (double) (end_usec - j->started_usec) / 1000.0;
                if (!j->prewarmed)
                        o.setup_ms = (double) (j->started_usec - j->spawn_usec) / 1000.0;
        }
        if (ex->cgroups && j->state != JOB_QUEUED) {
                uint64_t kills;
                if (cgroup_oom_kills(ex->cgroups, j->slot, &kills) == 0)
                        o.oom_killed = kills > j->oom_kills_before;
        }
        if (o.oom_killed)
                STAT_ADD(ex, oom_kills);
        if (o.end == EXEC_END_TIMEOUT)
                STAT_ADD(ex, timeouts);

        if (j->client_watched) {
                /* Before the HTTP layer gets the connection back (and may close it). */
                (void) epoll_ctl(ex->epfd, EPOLL_CTL_DEL, j->client_fd, NULL);
                j->client_watched = false;
        }
        j->answered = true;
        if (j->state != JOB_QUEUED && !j->warm)
                ex->busy--;
        j->done(&o, j->userdata);
        (void) pthread_mutex_lock(&ex->lock);
        ex->admitted--;
        (void) pthread_mutex_unlock(&ex->lock);
}

/* The sandbox is reaped and its descriptors are closed: release its slot. */
static void retire(Executor *ex, Job *j)
{
        if (j->done && !j->answered)
                answer(ex, j);

        job_close_fd(ex, &j->ctl);
        job_close_fd(ex, &j->out);
        job_close_fd(ex, &j->err);
        j->pidfd = safe_close(j->pidfd);
        if (j->state != JOB_QUEUED) {
                ex->slots[j->slot] = NULL;
                ex->running--;
                if (j->warm)
                        ex->warm--;
        }
        if (j->zygote) {
                j->zygote->jobs--;
                zygote_maybe_retire(ex, j->zygote);
        }
        j->finished = true;
        j->next = ex->graveyard;
        ex->graveyard = j;
}

/* Reads what is available on one stream into its buffer. Returns true at EOF. */
static bool drain(int fd, Buf *b, bool *ret_over)
{
        char chunk[READ_CHUNK];

        for (int rounds = 0; rounds < 16; rounds++) {
                ssize_t k = read(fd, chunk, sizeof(chunk));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return errno != EAGAIN;
                if (k == 0)
                        return true;
                if (buf_append(b, chunk, (size_t) k) != 0)
                        *ret_over = true;
        }
        return false;
}

static void maybe_finish(Executor *ex, Job *j)
{
        const char *frame;
        size_t len;

        if (j->finished || j->state == JOB_SPAWNING)
                return; /* the zygote still owes us an answer */

        /* A complete frame ends the job: the harness sends it last, after killing and
         * reaping everything else the script started, and exits. But the script can write
         * one itself (nothing in its process can be trusted) and go on running, so every
         * process of the job is killed here, before anything is answered. When that kill
         * reached all of them at once (cgroup.kill), the answer goes now, and the exit
         * (tearing down a copy of the 64 MiB image) is off the request path; the slot is
         * released only once the sandbox is reaped. Otherwise the answer waits for that
         * reap. Output written before the frame is already in the pipes. */
        if (!j->answered && j->done && j->end == EXEC_END_NORMAL && j->state == JOB_RUNNING &&
            frame_complete(j, &frame, &len)) {
                job_kill(ex, j); /* response.c does not read this SIGKILL as a crash */
                if (j->all_killed) {
                        bool over = false;
                        if (j->out >= 0 && drain(j->out, &j->out_buf, &over))
                                job_close_fd(ex, &j->out);
                        if (j->err >= 0 && drain(j->err, &j->err_buf, &over))
                                job_close_fd(ex, &j->err);
                        if (!j->finished_usec)
                                j->finished_usec = now_usec();
                        if (over)
                                j->end = EXEC_END_OUTPUT_LIMIT;
                        answer(ex, j);
                }
        }
        if (j->exited && j->ctl < 0 && j->out < 0 && j->err < 0)
                retire(ex, j);
}

/* ---- the zygotes --------------------------------------------------------------------- */

static void zygote_set_ready(Executor *ex, bool ready)
{
        (void) pthread_mutex_lock(&ex->lock);
        ex->zygote_ready = ready;
        (void) pthread_mutex_unlock(&ex->lock);
}

static int zygote_start(Executor *ex)
{
        Zygote *z = NULL;
        int r;

        for (size_t i = 0; i < N_ZYGOTES && !z; i++)
                if (ex->zygotes[i].state == ZYGOTE_FREE)
                        z = &ex->zygotes[i];
        if (!z)
                return -EBUSY;
        r = zygote_launch(ex->cfg, ex->cgroups, &z->pid, &z->sock);
        if (r < 0)
                return r;
        if (ex->zygotes_started++ > 0)
                STAT_ADD(ex, zygote_starts);
        *z = (Zygote){.state = ZYGOTE_STARTING,
                      .pid = z->pid,
                      .sock = z->sock,
                      .watch = {WATCH_ZYGOTE, NULL, z}};
        if ((r = fd_set_nonblock(z->sock)) < 0 ||
            (r = epoll_add(ex, z->sock, EPOLLIN, &z->watch)) < 0) {
                /* Closing its socket makes it exit; the SIGCHLD handler reaps it. */
                z->sock = safe_close(z->sock);
                z->state = ZYGOTE_GONE;
                return r;
        }
        return 0;
}

/* The zygote's cloning for the warm pool is background work: at the service's own
 * priority it competes with the requests being answered (on 2 cores it delayed the
 * response of the request whose end triggered the refill by ~1.5 ms). While a request
 * waits for a cold sandbox, that cloning is the request's own work and runs at full
 * priority. The zygote is our child, reaped only by us: its pid cannot be reused. */
static void zygote_set_background(Executor *ex, Zygote *z, bool background)
{
        int nice = background ? sandbox_background_nice(ex->nice) : ex->nice;

        if (!ex->background_warm || z->state == ZYGOTE_FREE || z->background == background)
                return;
        if (setpriority(PRIO_PROCESS, (id_t) z->pid, nice) < 0) {
                log_errno(LOG_LEVEL_DEBUG, errno, NULL, "cannot change the zygote's priority");
                return;
        }
        z->background = background;
}

/* Closes a zygote's socket: it exits, and its sandboxes (if any) with it. */
static void zygote_close(Executor *ex, Zygote *z)
{
        if (z->sock >= 0) {
                (void) epoll_ctl(ex->epfd, EPOLL_CTL_DEL, z->sock, NULL);
                z->sock = safe_close(z->sock);
        }
        z->state = z->pid > 0 ? ZYGOTE_GONE : ZYGOTE_FREE;
        if (ex->current == z) {
                ex->current = NULL;
                zygote_set_ready(ex, false);
        }
}

static void zygote_maybe_retire(Executor *ex, Zygote *z)
{
        if (z->state == ZYGOTE_DRAINING && z->jobs == 0) {
                log_info("zygote %d retired after %llu sandboxes", (int) z->pid,
                         (unsigned long long) z->spawns);
                zygote_close(ex, z);
        }
}

/* A zygote is gone (or broke the protocol): every sandbox it made is dead or dying (they
 * have PR_SET_PDEATHSIG), and no exit status will ever come for them. */
static void zygote_lost(Executor *ex, Zygote *z, const char *why)
{
        if (z->state == ZYGOTE_FREE || z->state == ZYGOTE_GONE)
                return;
        log_event(LOG_LEVEL_ERROR, NULL, NULL, "zygote %d lost: %s", (int) z->pid, why);
        if (ex->current == z || (!ex->current && z->state == ZYGOTE_STARTING)) {
                ex->restart_at_usec = now_usec() + ex->restart_backoff_usec;
                ex->restart_backoff_usec = MIN(ex->restart_backoff_usec * 2, RESTART_MAX_USEC);
        }
        zygote_close(ex, z);
        if (z->pid > 0)
                (void) kill(z->pid, SIGKILL); /* reaped by the SIGCHLD handler */

        for (unsigned i = 0; i < ex->n_slots; i++) {
                Job *j = ex->slots[i];
                if (!j || j->zygote != z)
                        continue;
                job_fail(ex, j, "the zygote died", EPIPE);
                j->exited = true;
                j->wait_status = -1;
                if (j->state == JOB_SPAWNING)
                        j->state = JOB_HELLO; /* no descriptors will come */
                maybe_finish(ex, j);
        }
}

/* A zygote said it is ready: it serves from now on, its predecessor drains. */
static void zygote_up(Executor *ex, Zygote *z)
{
        Zygote *old = ex->current;

        z->state = ZYGOTE_UP;
        z->up_usec = now_usec();
        ex->current = z;
        ex->restart_backoff_usec = RESTART_MIN_USEC;
        zygote_set_ready(ex, true);
        log_info("zygote %d ready", (int) z->pid);
        if (old && old != z) {
                old->state = ZYGOTE_DRAINING;
                /* Its idle warm sandboxes would keep it alive: let the new one replace them. */
                for (unsigned i = 0; i < ex->n_slots; i++)
                        if (ex->slots[i] && ex->slots[i]->zygote == old && ex->slots[i]->warm)
                                job_fail(ex, ex->slots[i], "zygote replaced", ESTALE);
                zygote_maybe_retire(ex, old);
        }
}

/* Starts a successor when the serving zygote is due, or a zygote when none is up. */
static void zygote_housekeeping(Executor *ex)
{
        uint64_t now = now_usec();
        Zygote *cur = ex->current;
        bool busy = false;
        int r;

        for (size_t i = 0; i < N_ZYGOTES; i++)
                if (&ex->zygotes[i] != cur && ex->zygotes[i].state != ZYGOTE_FREE)
                        busy = true; /* one successor (or draining predecessor) at a time */
        if (busy)
                return;
        if (cur) {
                bool due =
                        (ex->cfg->zygote_max_spawns && cur->spawns >= ex->cfg->zygote_max_spawns) ||
                        (ex->cfg->zygote_max_age_ms &&
                         now - cur->up_usec >= (uint64_t) ex->cfg->zygote_max_age_ms * 1000);
                if (!due)
                        return;
                log_info("zygote %d is due for replacement (%llu sandboxes)", (int) cur->pid,
                         (unsigned long long) cur->spawns);
        } else if (now < ex->restart_at_usec)
                return;

        r = zygote_start(ex);
        if (r < 0) {
                log_errno(LOG_LEVEL_ERROR, r, NULL, "Failed to start a zygote");
                ex->restart_at_usec = now + ex->restart_backoff_usec;
                ex->restart_backoff_usec = MIN(ex->restart_backoff_usec * 2, RESTART_MAX_USEC);
        }
}

static Job *job_by_token(Executor *ex, uint64_t token)
{
        for (unsigned i = 0; i < ex->n_slots; i++)
                if (ex->slots[i] && ex->slots[i]->token == token)
                        return ex->slots[i];
        return NULL;
}

static Job *job_by_pid(Executor *ex, pid_t pid)
{
        for (unsigned i = 0; i < ex->n_slots; i++)
                if (ex->slots[i] && ex->slots[i]->state != JOB_SPAWNING && ex->slots[i]->pid == pid)
                        return ex->slots[i];
        return NULL;
}

static void on_spawned(Executor *ex, const ZygoteMsg *m, int *fds)
{
        Job *j = job_by_token(ex, m->token);
        int r;

        if (!j || j->state != JOB_SPAWNING) {
                /* Not ours (cannot happen with a sane zygote): kill it, drop the fds. */
                (void) syscall(SYS_pidfd_send_signal, fds[SANDBOX_FD_PIDFD], SIGKILL, NULL, 0);
                for (int i = 0; i < SANDBOX_N_FDS; i++)
                        (void) safe_close(fds[i]);
                return;
        }
        j->state = JOB_HELLO;
        j->pid = m->pid;
        j->pidfd = fds[SANDBOX_FD_PIDFD];
        j->ctl = fds[SANDBOX_FD_CTL];
        j->out = fds[SANDBOX_FD_STDOUT];
        j->err = fds[SANDBOX_FD_STDERR];
        if ((r = fd_set_nonblock(j->ctl)) < 0 || (r = fd_set_nonblock(j->out)) < 0 ||
            (r = fd_set_nonblock(j->err)) < 0 ||
            (r = epoll_add(ex, j->ctl, EPOLLIN, &j->w_ctl)) < 0 ||
            (r = epoll_add(ex, j->out, EPOLLIN, &j->w_out)) < 0 ||
            (r = epoll_add(ex, j->err, EPOLLIN, &j->w_err)) < 0) {
                job_fail(ex, j, "watching the sandbox", r);
                /* Without the watches no EOF will be seen: close now, wait for the exit. */
                job_close_fd(ex, &j->ctl);
                job_close_fd(ex, &j->out);
                job_close_fd(ex, &j->err);
        }
}

static void on_zygote_message(Executor *ex, Zygote *z, const ZygoteMsg *m, int *fds, size_t n_fds)
{
        Job *j;

        switch (m->type) {
        case ZYGOTE_SPAWNED:
                if (n_fds != SANDBOX_N_FDS)
                        break;
                on_spawned(ex, m, fds);
                return;
        case ZYGOTE_SPAWN_FAILED:
                j = job_by_token(ex, m->token);
                if (!j || j->state != JOB_SPAWNING || n_fds != 0)
                        break;
                j->state = JOB_HELLO;
                job_fail(ex, j, "creating the sandbox", m->status);
                j->exited = true;
                j->wait_status = -1;
                maybe_finish(ex, j);
                return;
        case ZYGOTE_EXITED:
                if (n_fds != 0)
                        break;
                j = job_by_pid(ex, m->pid);
                if (!j)
                        return; /* a sandbox we already gave up on */
                j->exited = true;
                j->wait_status = m->status;
                maybe_finish(ex, j);
                return;
        default:
                break;
        }
        for (size_t i = 0; i < n_fds; i++)
                (void) safe_close(fds[i]);
        zygote_lost(ex, z, "protocol violation");
}

static void on_zygote(Executor *ex, Zygote *z)
{
        while (z->sock >= 0) {
                union {
                        ZygoteMsg msg;
                        ZygoteReady ready;
                } u;
                int fds[SANDBOX_N_FDS];
                size_t n_fds = 0;
                ssize_t n;

                if (z->state == ZYGOTE_STARTING) {
                        int r = zygote_read_ready(z->sock, &u.ready);
                        if (r == -EAGAIN)
                                return;
                        if (r < 0) {
                                zygote_lost(ex, z,
                                            r == -EPIPE ? "exited during start-up"
                                                        : "failed to start");
                                return;
                        }
                        zygote_up(ex, z);
                        continue;
                }
                n = recv_with_fds(z->sock, &u.msg, sizeof(u.msg), fds, SANDBOX_N_FDS, &n_fds);
                if (n == -EAGAIN)
                        return;
                if (n <= 0) {
                        zygote_lost(ex, z, n == 0 ? "connection closed" : "receive failed");
                        return;
                }
                if ((size_t) n != sizeof(u.msg) || u.msg.magic != ZYGOTE_MAGIC) {
                        for (size_t i = 0; i < n_fds; i++)
                                (void) safe_close(fds[i]);
                        zygote_lost(ex, z, "malformed message");
                        return;
                }
                on_zygote_message(ex, z, &u.msg, fds, n_fds);
        }
}

static void on_sigchld(Executor *ex)
{
        struct signalfd_siginfo si;

        while (read(ex->sigfd, &si, sizeof(si)) == sizeof(si))
                ;
        /* Our own children are the zygotes. If we are PID 1 (a container without an init),
         * orphans are re-parented to us as well: reap them too. */
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return;
                for (size_t i = 0; i < N_ZYGOTES; i++) {
                        Zygote *z = &ex->zygotes[i];
                        if (z->pid != pid)
                                continue;
                        zygote_lost(ex, z,
                                    WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited");
                        z->pid = 0;
                        z->state = ZYGOTE_FREE;
                }
        }
}

/* ---- sandboxes ----------------------------------------------------------------------- */

static void send_job(Executor *ex, Job *j)
{
        size_t total = sizeof(j->header) + j->script_len;

        while (j->sent < total) {
                const char *p;
                size_t n;
                if (j->sent < sizeof(j->header)) {
                        p = (const char *) &j->header + j->sent;
                        n = sizeof(j->header) - j->sent;
                } else {
                        p = j->script + (j->sent - sizeof(j->header));
                        n = total - j->sent;
                }
                ssize_t k = send(j->ctl, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        (void) epoll_mod(ex, j->ctl, EPOLLIN | EPOLLOUT, &j->w_ctl);
                        return;
                }
                if (k < 0) {
                        /* The sandbox died (EPIPE); its exit status tells the rest. */
                        j->sent = total;
                        break;
                }
                j->sent += (size_t) k;
        }
        (void) epoll_mod(ex, j->ctl, EPOLLIN, &j->w_ctl);
        free(j->script); /* no longer needed: the sandbox has it */
        j->script = NULL;
}

static void on_hello(Executor *ex, Job *j)
{
        if (j->hello.magic != SANDBOX_MAGIC) {
                job_fail(ex, j, "sandbox protocol violation", EPROTO);
                return;
        }
        if (j->end != EXEC_END_NORMAL) {
                /* Ended while the sandbox was being made (client gone, shutdown): it had
                 * no pidfd to be killed through then; it does now. */
                job_kill(ex, j);
                return;
        }
        if (j->hello.stage != 0) {
                log_event(LOG_LEVEL_ERROR, j->request_id, NULL,
                          "Sandbox set-up failed at stage %s: %s",
                          sandbox_stage_name(j->hello.stage), strerror(j->hello.err));
                STAT_ADD(ex, setup_failures);
                if (j->warm) /* do not spin: requests get cold sandboxes (and the error) */
                        ex->warm_retry_usec = now_usec() + RESTART_MAX_USEC;
                job_end(ex, j, EXEC_END_SETUP_FAILED);
                return;
        }
        if (j->warm) {
                j->state = JOB_READY;
                j->deadline_usec = UINT64_MAX;
                if (j->zygote->state == ZYGOTE_DRAINING)
                        job_fail(ex, j, "zygote replaced", ESTALE);
                return;
        }
        j->state = JOB_RUNNING;
        j->started_usec = now_usec();
        j->deadline_usec = j->started_usec + (uint64_t) j->timeout_ms * 1000;
        send_job(ex, j);
}

static void on_ctl(Executor *ex, Job *j, uint32_t events)
{
        bool over = false;

        if (events & EPOLLOUT && j->state == JOB_RUNNING)
                send_job(ex, j);

        if (j->state == JOB_HELLO) {
                ssize_t k = read(j->ctl, (char *) &j->hello + j->hello_got,
                                 sizeof(j->hello) - j->hello_got);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (k <= 0) {
                        /* Died before reporting: the exit status will say how. */
                        job_close_fd(ex, &j->ctl);
                        if (!j->exited)
                                job_fail(ex, j, "the sandbox died during set-up", EPIPE);
                        maybe_finish(ex, j);
                        return;
                }
                j->hello_got += (size_t) k;
                if (j->hello_got == sizeof(j->hello))
                        on_hello(ex, j);
                return;
        }

        if (drain(j->ctl, &j->frame, &over)) {
                if (!j->finished_usec)
                        j->finished_usec = now_usec();
                job_close_fd(ex, &j->ctl);
        } else {
                const char *frame;
                size_t len;
                if (!j->finished_usec && frame_complete(j, &frame, &len))
                        j->finished_usec = now_usec();
        }
        if (over)
                job_end(ex, j, EXEC_END_RESULT_LIMIT);
        maybe_finish(ex, j);
}

static void on_stream(Executor *ex, Job *j, int *fd, Buf *b)
{
        bool over = false;

        if (drain(*fd, b, &over))
                job_close_fd(ex, fd);
        if (over)
                job_end(ex, j, EXEC_END_OUTPUT_LIMIT);
        maybe_finish(ex, j);
}

/* ---- the loop ------------------------------------------------------------------------ */

static Job *job_new(Executor *ex)
{
        Job *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        j->pidfd = j->ctl = j->out = j->err = -EBADF;
        j->w_ctl = (Watch){WATCH_CTL, j, NULL};
        j->w_out = (Watch){WATCH_OUT, j, NULL};
        j->w_err = (Watch){WATCH_ERR, j, NULL};
        j->w_client = (Watch){WATCH_CLIENT, j, NULL};
        j->client_fd = -EBADF;
        buf_init(&j->out_buf, ex->cfg->output_limit);
        buf_init(&j->err_buf, ex->cfg->output_limit);
        buf_init(&j->frame, FRAME_HEAD + ex->cfg->result_limit + FRAME_HEADER_ALLOWANCE);
        return j;
}

/* Asks the serving zygote for a sandbox in a free slot. Returns false if it cannot. */
static bool spawn(Executor *ex, Job *j, uint32_t flags)
{
        unsigned slot;
        int r;

        if (!ex->current || ex->running >= ex->n_slots)
                return false;
        for (slot = 0; ex->slots[slot]; slot++)
                ;
        j->slot = slot;
        j->state = JOB_SPAWNING;
        j->token = ++ex->next_token;
        j->spawn_usec = now_usec();
        j->deadline_usec = j->spawn_usec + SETUP_GRACE_USEC;
        ex->slots[slot] = j;
        ex->running++;
        j->zygote = ex->current;
        j->zygote->jobs++;
        j->zygote->spawns++;
        if (ex->cgroups)
                (void) cgroup_oom_kills(ex->cgroups, slot, &j->oom_kills_before);
        if (!(flags & ZYGOTE_SPAWN_PREWARM))
                zygote_set_background(ex, j->zygote, false);

        /* With a warm pool there are spare slots for exiting sandboxes (pool_size more
         * than can run); without one a slow exit would hold up the next request. */
        if (ex->background_warm && ex->cfg->pool_size > 0)
                flags |= ZYGOTE_SPAWN_EXIT_BACKGROUND;

        ZygoteMsg m = {
                .magic = ZYGOTE_MAGIC,
                .type = ZYGOTE_SPAWN,
                .token = j->token,
                .slot = slot,
                .flags = flags,
        };
        r = send_with_fds(j->zygote->sock, &m, sizeof(m), NULL, 0);
        if (r < 0)
                zygote_lost(ex, j->zygote, "send failed"); /* fails j too */
        return true;
}

static bool queue_nonempty(Executor *ex)
{
        bool r;

        (void) pthread_mutex_lock(&ex->lock);
        r = ex->queue_head != NULL;
        (void) pthread_mutex_unlock(&ex->lock);
        return r;
}

static Job *take_request(Executor *ex)
{
        Job *q;

        (void) pthread_mutex_lock(&ex->lock);
        q = ex->queue_head;
        if (q) {
                ex->stats.queued--;
                ex->queue_head = q->next;
                if (!ex->queue_head)
                        ex->queue_tail = NULL;
                q->next = NULL;
        }
        (void) pthread_mutex_unlock(&ex->lock);
        return q;
}

/* Kills the job's sandbox if its client hangs up: nobody would read the answer. (The
 * HTTP library does not watch the sockets of suspended connections.) */
static void watch_client(Executor *ex, Job *j)
{
        if (j->client_fd < 0)
                return;
        if (epoll_add(ex, j->client_fd, EPOLLRDHUP, &j->w_client) == 0)
                j->client_watched = true;
}

static void on_client(Executor *ex, Job *j, uint32_t events)
{
        if (!(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) || j->answered)
                return;
        (void) epoll_ctl(ex->epfd, EPOLL_CTL_DEL, j->client_fd, NULL);
        j->client_watched = false;
        log_event(LOG_LEVEL_INFO, j->request_id, NULL, "client went away; stopping its sandbox");
        job_end(ex, j, EXEC_END_CLIENT_GONE);
        maybe_finish(ex, j);
}

/* A request takes over a ready warm sandbox: the request's Job `q` is emptied into `w`. */
static void adopt(Executor *ex, Job *w, Job *q)
{
        w->script = TAKE_PTR(q->script);
        w->script_len = q->script_len;
        w->timeout_ms = q->timeout_ms;
        w->memory_mb = q->memory_mb;
        memcpy(w->request_id, q->request_id, sizeof(w->request_id));
        w->done = q->done;
        w->userdata = q->userdata;
        w->header = q->header;
        w->client_fd = q->client_fd;
        w->submit_usec = q->submit_usec;
        job_free(q);
        watch_client(ex, w);
        /* It waited (and did its warm-up) in the background: from now on it is the
         * request. It is not reaped yet (we have not seen its EXITED), so the pid is its. */
        if (ex->background_warm && setpriority(PRIO_PROCESS, (id_t) w->pid, ex->nice) < 0)
                log_errno(LOG_LEVEL_DEBUG, errno, w->request_id,
                          "cannot raise the priority of sandbox %d", (int) w->pid);

        w->warm = false;
        w->prewarmed = true;
        ex->warm--;
        ex->busy++;
        w->state = JOB_RUNNING;
        w->started_usec = now_usec();
        w->deadline_usec = w->started_usec + (uint64_t) w->timeout_ms * 1000;
        send_job(ex, w);
}

static Job *ready_warm(Executor *ex)
{
        for (unsigned i = 0; i < ex->n_slots; i++)
                if (ex->slots[i] && ex->slots[i]->state == JOB_READY && !ex->slots[i]->killed)
                        return ex->slots[i];
        return NULL;
}

static void start_jobs(Executor *ex, bool stopping)
{
        while (ex->busy < ex->cfg->concurrency) {
                Job *w = ready_warm(ex), *q;

                if (!w && (!ex->current || ex->running >= ex->n_slots))
                        break;
                q = take_request(ex);
                if (!q)
                        break;
                /* Its client has waited as long as the script may run: answer, do not run. */
                if (now_usec() - q->submit_usec >= (uint64_t) q->timeout_ms * 1000) {
                        q->end = EXEC_END_EXPIRED;
                        q->exited = true;
                        retire(ex, q);
                        continue;
                }
                if (w)
                        adopt(ex, w, q);
                else {
                        ex->busy++;
                        watch_client(ex, q);
                        (void) spawn(ex, q, 0);
                }
        }

        /* Refill the pool in the background, but not while a request runs and a warm
         * sandbox is still ready: the refill's clone and set-up would compete with that
         * request for the CPU (and for the zygote, which also reaps it). */
        while (!stopping && ex->warm < ex->cfg->pool_size && now_usec() >= ex->warm_retry_usec) {
                Job *w;
                if (!ex->current || ex->running >= ex->n_slots)
                        break;
                if (ex->busy > 0 && ready_warm(ex))
                        break;
                /* Requests waiting: they get cold sandboxes as slots free up. A warm one
                 * costs its warm-up run on top, which buys latency only when idle. */
                if (queue_nonempty(ex))
                        break;
                w = job_new(ex);
                if (!w)
                        break;
                w->warm = true;
                ex->warm++;
                (void) spawn(ex, w,
                             ZYGOTE_SPAWN_PREWARM |
                                     (ex->background_warm ? ZYGOTE_SPAWN_BACKGROUND : 0));
        }
}

/* Kills what is over its deadline; returns the epoll timeout until the next one (ms). */
static int check_deadlines(Executor *ex)
{
        uint64_t now = now_usec(), next = UINT64_MAX;

        for (unsigned i = 0; i < ex->n_slots; i++) {
                Job *j = ex->slots[i];
                if (!j || j->killed || j->exited)
                        continue;
                if (now >= j->deadline_usec) {
                        if (j->state == JOB_RUNNING)
                                job_end(ex, j, EXEC_END_TIMEOUT);
                        else
                                job_fail(ex, j, "sandbox set-up took too long", ETIMEDOUT);
                        continue;
                }
                next = MIN(next, j->deadline_usec);
        }
        if (!ex->current)
                next = MIN(next, ex->restart_at_usec);
        else if (ex->cfg->zygote_max_age_ms)
                next = MIN(next,
                           ex->current->up_usec + (uint64_t) ex->cfg->zygote_max_age_ms * 1000);
        (void) pthread_mutex_lock(&ex->lock);
        if (ex->stopping) {
                if (now >= ex->stop_deadline_usec) {
                        for (unsigned i = 0; i < ex->n_slots; i++)
                                if (ex->slots[i])
                                        job_fail(ex, ex->slots[i], "the service is shutting down",
                                                 ESHUTDOWN);
                } else
                        next = MIN(next, ex->stop_deadline_usec);
        }
        (void) pthread_mutex_unlock(&ex->lock);

        if (next == UINT64_MAX)
                return -1;
        return next <= now ? 0 : (int) MIN((next - now + 999) / 1000, 60000);
}

static void *executor_loop(void *arg)
{
        Executor *ex = arg;
        sigset_t stop;

        /* SIGTERM/SIGINT belong to the main thread (graceful shutdown), never to this one. */
        (void) sigemptyset(&stop);
        (void) sigaddset(&stop, SIGTERM);
        (void) sigaddset(&stop, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &stop, NULL);

        for (;;) {
                struct epoll_event evs[64];
                int timeout = check_deadlines(ex);
                int n = epoll_wait(ex->epfd, evs, ELEMENTSOF(evs), timeout);

                if (n < 0 && errno != EINTR) {
                        log_errno(LOG_LEVEL_ERROR, errno, NULL, "epoll_wait failed");
                        (void) usleep(10000);
                }
                for (int i = 0; i < n; i++) {
                        Watch *w = evs[i].data.ptr;
                        uint32_t e = evs[i].events;
                        uint64_t v;

                        switch (w->kind) {
                        case WATCH_WAKE:
                                (void) !read(ex->wakefd, &v, sizeof(v));
                                break;
                        case WATCH_SIGNAL:
                                on_sigchld(ex);
                                break;
                        case WATCH_ZYGOTE:
                                on_zygote(ex, w->zygote);
                                break;
                        case WATCH_CTL:
                                if (!w->job->finished && w->job->ctl >= 0)
                                        on_ctl(ex, w->job, e);
                                break;
                        case WATCH_OUT:
                                if (!w->job->finished && w->job->out >= 0)
                                        on_stream(ex, w->job, &w->job->out, &w->job->out_buf);
                                break;
                        case WATCH_CLIENT:
                                if (!w->job->finished)
                                        on_client(ex, w->job, e);
                                break;
                        case WATCH_ERR:
                                if (!w->job->finished && w->job->err >= 0)
                                        on_stream(ex, w->job, &w->job->err, &w->job->err_buf);
                                break;
                        }
                }
                /* Only now no event of the batch can point at a finished job. */
                while (ex->graveyard) {
                        Job *j = ex->graveyard;
                        ex->graveyard = j->next;
                        job_free(j);
                }

                unsigned ready = 0;
                for (unsigned i = 0; i < ex->n_slots; i++)
                        ready += ex->slots[i] && ex->slots[i]->state == JOB_READY;
                (void) pthread_mutex_lock(&ex->lock);
                ex->stats.busy = ex->busy;
                ex->stats.warm_ready = ready;
                bool stopping = ex->stopping, past = now_usec() >= ex->stop_deadline_usec;
                bool queue_empty = !ex->queue_head;
                (void) pthread_mutex_unlock(&ex->lock);
                if (!stopping)
                        zygote_housekeeping(ex);
                if (stopping) /* idle warm sandboxes: nothing to wait for */
                        for (unsigned i = 0; i < ex->n_slots; i++)
                                if (ex->slots[i] && ex->slots[i]->warm)
                                        job_fail(ex, ex->slots[i], "the service is shutting down",
                                                 ESHUTDOWN);
                if (!(stopping && past))
                        start_jobs(ex, stopping);
                if (ex->current) {
                        bool cold = !queue_empty;
                        for (unsigned i = 0; i < ex->n_slots && !cold; i++) {
                                const Job *j = ex->slots[i];
                                cold = j && j->state == JOB_SPAWNING && !j->warm &&
                                       j->zygote == ex->current;
                        }
                        zygote_set_background(ex, ex->current, !cold);
                }
                /* Past the grace period the queued jobs are answered by executor_shutdown(). */
                if (stopping && ex->running == 0 && (queue_empty || past))
                        return NULL;
        }
}

/* ---- public -------------------------------------------------------------------------- */

/* Whether this process may raise a priority again once lowered (CAP_SYS_NICE in the
 * initial user namespace), probed on the calling thread: one step away from its nice value
 * and back, one of the two steps being a raise. Without it warm sandboxes keep the normal
 * priority, since adopt() could not restore it. */
static bool can_raise_priority(int *ret_nice)
{
        int cur, probe;

        errno = 0;
        cur = getpriority(PRIO_PROCESS, 0);
        if (cur == -1 && errno != 0)
                return false;
        *ret_nice = cur;
        probe = cur > -20 ? cur - 1 : cur + 1;
        if (setpriority(PRIO_PROCESS, 0, probe) < 0)
                return false;
        return setpriority(PRIO_PROCESS, 0, cur) == 0;
}

int executor_submit(Executor *ex, const ExecParams *p, ExecDoneFn done, void *userdata)
{
        Job *j;
        uint64_t one = 1;
        int r = 0;

        j = job_new(ex);
        if (!j)
                return -ENOMEM;
        j->script = malloc(p->script_len ? p->script_len : 1);
        if (!j->script) {
                job_free(j);
                return -ENOMEM;
        }
        memcpy(j->script, p->script, p->script_len);
        j->script_len = p->script_len;
        j->timeout_ms = p->timeout_ms;
        j->memory_mb = p->memory_mb;
        (void) snprintf(j->request_id, sizeof(j->request_id), "%s",
                        p->request_id ? p->request_id : "");
        j->done = done;
        j->userdata = userdata;
        j->client_fd = p->client_fd;
        j->submit_usec = now_usec();
        j->header = (SandboxJob){
                .magic = SANDBOX_MAGIC,
                .script_len = (uint32_t) p->script_len,
                .timeout_ms = p->timeout_ms,
                .memory_mb = p->memory_mb,
                .result_limit = ex->cfg->result_limit,
        };

        (void) pthread_mutex_lock(&ex->lock);
        if (ex->stopping)
                r = EXECUTOR_E_STOPPING;
        else if (ex->admitted >= ex->cfg->concurrency + ex->cfg->queue_size)
                r = EXECUTOR_E_OVERLOADED;
        else {
                ex->admitted++;
                ex->stats.queued++;
                if (ex->queue_tail)
                        ex->queue_tail->next = j;
                else
                        ex->queue_head = j;
                ex->queue_tail = j;
        }
        (void) pthread_mutex_unlock(&ex->lock);
        if (r != 0) {
                job_free(j);
                return r;
        }
        if (write(ex->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                return log_errno(LOG_LEVEL_ERROR, errno, NULL, "Failed to wake the executor");
        return 0;
}

void executor_stats(Executor *ex, ExecutorStats *ret)
{
        (void) pthread_mutex_lock(&ex->lock);
        *ret = ex->stats;
        (void) pthread_mutex_unlock(&ex->lock);
}

bool executor_ready(Executor *ex)
{
        bool ready;

        (void) pthread_mutex_lock(&ex->lock);
        ready = ex->zygote_ready && !ex->stopping;
        (void) pthread_mutex_unlock(&ex->lock);
        return ready;
}

/* The first zygote is awaited synchronously, so a host that cannot build a sandbox stops
 * pyexecd at start with the zygote's own message. */
static int wait_first_ready(Executor *ex, Zygote *z, char *errbuf, size_t errlen)
{
        struct pollfd p = {.fd = z->sock, .events = POLLIN};
        ZygoteReady zr = {0};
        int r;

        do
                r = poll(&p, 1, READY_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0) {
                (void) snprintf(errbuf, errlen, "the zygote did not start within %d s",
                                READY_TIMEOUT_MS / 1000);
                return -ETIMEDOUT;
        }
        r = zygote_read_ready(z->sock, &zr);
        if (r == -EPIPE)
                (void) snprintf(errbuf, errlen, "the zygote exited during start-up");
        else if (r == -EPROTO)
                (void) snprintf(errbuf, errlen, "the zygote sent a malformed message");
        else if (r < 0 && zr.message[0])
                (void) snprintf(errbuf, errlen, "%s", zr.message);
        else if (r < 0)
                (void) snprintf(errbuf, errlen, "the zygote failed to start: %s", strerror(-r));
        if (r < 0)
                return r;
        zygote_up(ex, z);
        return 0;
}

/* Closes every zygote and waits for it: their sandboxes die with them. */
static void zygotes_stop(Executor *ex)
{
        for (size_t i = 0; i < N_ZYGOTES; i++) {
                Zygote *z = &ex->zygotes[i];
                zygote_close(ex, z);
                if (z->pid > 0) {
                        (void) waitpid(z->pid, NULL, 0);
                        z->pid = 0;
                }
                z->state = ZYGOTE_FREE;
        }
}

int executor_new(const Config *cfg, Executor **ret, char *errbuf, size_t errlen)
{
        Executor *ex;
        sigset_t mask;
        int r;

        ex = calloc(1, sizeof(*ex));
        if (!ex)
                return -ENOMEM;
        ex->cfg = cfg;
        ex->epfd = ex->wakefd = ex->sigfd = -EBADF;
        for (size_t i = 0; i < N_ZYGOTES; i++)
                ex->zygotes[i] = (Zygote){.state = ZYGOTE_FREE, .sock = -EBADF};
        ex->w_wake = (Watch){WATCH_WAKE, NULL, NULL};
        ex->w_signal = (Watch){WATCH_SIGNAL, NULL, NULL};
        ex->restart_backoff_usec = RESTART_MIN_USEC;
        (void) pthread_mutex_init(&ex->lock, NULL);
        ex->n_slots = config_slots(cfg);
        ex->background_warm = can_raise_priority(&ex->nice);
        if (!ex->background_warm && cfg->pool_size > 0)
                log_info("cannot raise process priorities (no CAP_SYS_NICE): the warm pool "
                         "is refilled at the same priority as requests are served");
        ex->slots = calloc(ex->n_slots, sizeof(Job *));
        if (!ex->slots) {
                r = -ENOMEM;
                goto fail;
        }

        /* SIGCHLD is taken through a signalfd on the executor thread: block it before any
         * thread exists, so every thread inherits the mask. */
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGCHLD);
        if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) {
                r = -EINVAL;
                goto fail;
        }
        ex->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        ex->epfd = epoll_create1(EPOLL_CLOEXEC);
        ex->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ex->sigfd < 0 || ex->epfd < 0 || ex->wakefd < 0) {
                r = -errno;
                goto fail;
        }
        if ((r = epoll_add(ex, ex->wakefd, EPOLLIN, &ex->w_wake)) < 0 ||
            (r = epoll_add(ex, ex->sigfd, EPOLLIN, &ex->w_signal)) < 0)
                goto fail;

        if (!(cfg->disabled_layers & LAYER_CGROUPS)) {
                r = cgroup_setup(ex->n_slots, (uint64_t) cfg->memory_mb << 20, cfg->pids_max,
                                 &ex->cgroups, errbuf, errlen);
                if (r < 0)
                        goto fail;
                ex->kill_at_once = cgroup_can_kill(ex->cgroups);
                if (cgroup_own_mount(ex->cgroups))
                        log_info("/sys/fs/cgroup is read-only here (a container's default): "
                                 "remounted it writable for pyexecd alone, in a "
                                 "mount namespace of pyexecd's own");
        }
        r = zygote_start(ex);
        if (r < 0) {
                (void) snprintf(errbuf, errlen, "cannot start the zygote: %s", strerror(-r));
                goto fail;
        }
        r = wait_first_ready(ex, &ex->zygotes[0], errbuf, errlen);
        if (r < 0)
                goto fail;

        r = -pthread_create(&ex->thread, NULL, executor_loop, ex);
        if (r < 0)
                goto fail;
        ex->thread_started = true;
        *ret = ex;
        return 0;

fail:
        executor_free(ex);
        return r;
}

void executor_shutdown(Executor *ex, uint32_t grace_ms)
{
        uint64_t one = 1;

        if (!ex || !ex->thread_started)
                return;
        (void) pthread_mutex_lock(&ex->lock);
        ex->stopping = true;
        ex->stop_deadline_usec = now_usec() + (uint64_t) grace_ms * 1000;
        (void) pthread_mutex_unlock(&ex->lock);
        (void) !write(ex->wakefd, &one, sizeof(one));
        (void) pthread_join(ex->thread, NULL);
        ex->thread_started = false;

        /* Jobs still queued were never started: answer them too. */
        for (Job *j = ex->queue_head, *next; j; j = next) {
                next = j->next;
                j->end = EXEC_END_INTERNAL;
                j->internal_what = "the service is shutting down";
                j->internal_errno = ESHUTDOWN;
                j->exited = true;
                retire(ex, j);
        }
        ex->queue_head = ex->queue_tail = NULL;
        while (ex->graveyard) {
                Job *j = ex->graveyard;
                ex->graveyard = j->next;
                job_free(j);
        }
        zygotes_stop(ex);
}

void executor_free(Executor *ex)
{
        if (!ex)
                return;
        if (ex->thread_started)
                executor_shutdown(ex, 0);
        zygotes_stop(ex);
        (void) safe_close(ex->epfd);
        (void) safe_close(ex->wakefd);
        (void) safe_close(ex->sigfd);
        (void) pthread_mutex_destroy(&ex->lock);
        cgroup_free(ex->cgroups); /* every sandbox is gone with the zygotes */
        free(ex->slots);
        free(ex);
}
