/* The zygotes: starting one, waiting for it, handing over to a successor, losing one (its
 * sandboxes die with it and their requests are answered INTERNAL), and the messages it
 * sends (SPAWNED, SPAWN_FAILED, EXITED), plus the SIGCHLD that reaps them.
 *
 * cfg->zygotes lanes serve side by side, each with its own zygote process: one zygote
 * clones sandboxes one at a time (~1.5 ms of its CPU each), so on many cores one would cap
 * throughput (docs/PERFORMANCE.md, "More zygotes"). A spawn goes to the serving zygote with
 * the shortest backlog. Each lane is replaced, restarted and backed off on its own; at most
 * one zygote starts at a time, since a start (importing pandas) takes seconds of CPU.
 *
 * The plot lane (config_plot_lane) is one more, whose zygote preloads matplotlib as well:
 * that costs every sandbox cloned from it ~1 ms of CPU more (a bigger image to copy and
 * tear down; docs/PERFORMANCE.md), so only the scripts that name matplotlib go there. It
 * starts when the first such script arrives (that one runs where it would otherwise, and
 * imports matplotlib itself). Any zygote can run any script: a lane is a cost choice,
 * never a security one. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool/internal.h"
#include "util/clock.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"

static void zygote_update_ready(Executor *ex)
{
        unsigned up = 0;

        for (unsigned i = 0; i < ex->n_lanes; i++)
                up += ex->lanes[i].current != NULL;
        (void) pthread_mutex_lock(&ex->lock);
        ex->zygote_ready = up > 0;
        ex->stats.zygotes_up = up;
        (void) pthread_mutex_unlock(&ex->lock);
}

/* The plot lane's serving zygote, or NULL. */
Zygote *zygote_plot(Executor *ex)
{
        return ex->n_lanes > ex->n_plain ? ex->lanes[ex->n_plain].current : NULL;
}

/* Whether a lane is to have a zygote: every lane but the plot lane, and that one once a
 * script named matplotlib. */
bool lane_active(const Executor *ex, unsigned lane)
{
        return !ex->lanes[lane].plot || (ex->plot_wanted && !ex->plot_failed);
}

/* A serving zygote for a sandbox: the plot zygote for a plot script when it is up;
 * otherwise, of the other lanes, the one with the fewest SPAWNs still to answer, the search
 * starting at the lane after the last pick (so that equal ones take turns); the plot
 * zygote when none of those is up. NULL while none serves. */
Zygote *zygote_pick(Executor *ex, bool plot)
{
        Zygote *best = NULL;

        if (plot && zygote_plot(ex))
                return zygote_plot(ex);
        for (unsigned k = 0; k < ex->n_plain; k++) {
                Zygote *z = ex->lanes[(ex->next_lane + k) % ex->n_plain].current;
                if (z && (!best || z->cloning < best->cloning))
                        best = z;
        }
        if (best)
                ex->next_lane = (best->lane + 1) % ex->n_plain;
        return best ? best : zygote_plot(ex);
}

static void zygote_event(DispatchWatch *w, uint32_t events, void *ctx)
{
        (void) events;
        zygote_on_readable(ctx, w->data);
}

int zygote_start(Executor *ex, unsigned lane)
{
        Zygote *z = NULL;
        int r;

        for (size_t i = 0; i < N_ZYGOTES && !z; i++)
                if (ex->zygotes[i].state == ZYGOTE_FREE)
                        z = &ex->zygotes[i];
        if (!z)
                return -EBUSY;
        r = ex->launch(ex->cfg, ex->cgroups, ex->lanes[lane].plot, &z->pid, &z->sock,
                       ex->launch_userdata);
        if (r < 0)
                return r;
        /* The first start of each lane is not a restart. */
        if (ex->lanes[lane].starts++ > 0)
                STAT_ADD(ex, zygote_starts);
        *z = (Zygote){.state = ZYGOTE_STARTING,
                      .lane = lane,
                      .start_usec = now_usec(),
                      .pid = z->pid,
                      .sock = z->sock,
                      .watch = {zygote_event, z}};
        if ((r = fd_set_nonblock(z->sock)) < 0 ||
            (r = dispatch_add(ex->epfd, z->sock, EPOLLIN, &z->watch)) < 0) {
                /* Closing its socket makes it exit; the SIGCHLD handler reaps it. */
                z->sock = safe_close(z->sock);
                z->state = ZYGOTE_GONE;
                return r;
        }
        return 0;
}

/* Closes a zygote's socket: it exits, and its sandboxes (if any) with it. */
static void zygote_close(Executor *ex, Zygote *z)
{
        if (z->sock >= 0) {
                (void) epoll_ctl(ex->epfd, EPOLL_CTL_DEL, z->sock, NULL);
                z->sock = safe_close(z->sock);
        }
        /* Reused only once reaped and its sandboxes' jobs are retired (they point at it). */
        z->state = z->pid > 0 || z->jobs > 0 ? ZYGOTE_GONE : ZYGOTE_FREE;
        z->cloning = 0;
        if (ex->lanes[z->lane].current == z) {
                ex->lanes[z->lane].current = NULL;
                zygote_update_ready(ex);
        }
}

void zygote_maybe_retire(Executor *ex, Zygote *z)
{
        if (z->state == ZYGOTE_GONE && z->pid == 0 && z->jobs == 0) {
                z->state = ZYGOTE_FREE; /* reaped, and its last job retired */
                return;
        }
        if (z->state == ZYGOTE_DRAINING && z->jobs == 0) {
                log_info("zygote %d retired after %llu sandboxes", (int) z->pid,
                         (unsigned long long) z->spawns);
                zygote_close(ex, z);
        }
}

/* A zygote is gone (or broke the protocol): every sandbox it made is dead or dying (they
 * have PR_SET_PDEATHSIG), and no exit status will ever come for them. */
void zygote_lost(Executor *ex, Zygote *z, const char *why)
{
        if (z->state == ZYGOTE_FREE || z->state == ZYGOTE_GONE)
                return;
        Lane *l = &ex->lanes[z->lane];

        log_event(LOG_LEVEL_ERROR, NULL, NULL, "zygote %d lost: %s", (int) z->pid, why);
        if (l->current == z || z->state == ZYGOTE_STARTING) {
                l->restart_at_usec = now_usec() + l->restart_backoff_usec;
                l->restart_backoff_usec = MIN(l->restart_backoff_usec * 2, RESTART_MAX_USEC);
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
                job_maybe_finish(ex, j);
        }
}

/* A zygote said why it cannot start (a preloaded module missing, ...). The plot lane is
 * then given up: it would fail the same way at every start, and scripts that name
 * matplotlib run anywhere (importing it themselves). */
static void zygote_start_refused(Executor *ex, Zygote *z, const ZygoteReady *zr)
{
        if (zr->message[0])
                log_event(LOG_LEVEL_ERROR, NULL, NULL, "zygote %d cannot start: %.*s", (int) z->pid,
                          (int) sizeof(zr->message), zr->message);
        if (!ex->lanes[z->lane].plot)
                return;
        ex->plot_failed = true;
        log_event(LOG_LEVEL_ERROR, NULL, NULL,
                  "The plot zygote (--plot-zygote) cannot start: scripts that name matplotlib "
                  "run in the other zygotes' sandboxes and import it themselves");
}

/* A zygote said it is ready: it serves its lane from now on, its predecessor drains. */
static void zygote_up(Executor *ex, Zygote *z)
{
        Lane *l = &ex->lanes[z->lane];
        Zygote *old = l->current;

        z->state = ZYGOTE_UP;
        z->up_usec = now_usec();
        l->current = z;
        l->restart_backoff_usec = RESTART_MIN_USEC;
        zygote_update_ready(ex);
        log_info("zygote %d ready", (int) z->pid);
        if (old && old != z) {
                old->state = ZYGOTE_DRAINING;
                /* Its idle warm sandboxes would keep it alive: let the new one replace them. */
                for (unsigned i = 0; i < ex->n_slots; i++)
                        if (ex->slots[i] && ex->slots[i]->zygote == old &&
                            ex->slots[i]->origin == JOB_WARM)
                                job_fail(ex, ex->slots[i], "zygote replaced", ESTALE);
                zygote_maybe_retire(ex, old);
        }
}

/* Whether another zygote of the lane stands in the way of a start: one being started, or,
 * while one serves, its predecessor still draining (one successor per lane at a time). A
 * lost or draining zygote never keeps a lane without a serving one. */
static bool lane_busy(const Executor *ex, unsigned lane)
{
        const Zygote *cur = ex->lanes[lane].current;

        for (size_t i = 0; i < N_ZYGOTES; i++) {
                const Zygote *z = &ex->zygotes[i];
                if (z == cur || z->state == ZYGOTE_FREE || z->lane != lane)
                        continue;
                if (z->state == ZYGOTE_STARTING || cur)
                        return true;
        }
        return false;
}

static bool any_starting(const Executor *ex)
{
        for (size_t i = 0; i < N_ZYGOTES; i++)
                if (ex->zygotes[i].state == ZYGOTE_STARTING)
                        return true;
        return false;
}

/* Whether a zygote may be started for the lane now, its due time aside. One start at a time
 * (a start imports pandas: seconds of CPU), except that a service left without any other
 * zygote serving or starting gets one at once, whatever else is starting. */
static bool lane_may_start(const Executor *ex, unsigned lane, bool starting)
{
        if (!lane_active(ex, lane) || lane_busy(ex, lane))
                return false;
        if (!starting)
                return true;
        if (ex->lanes[lane].current || ex->lanes[lane].plot)
                return false;
        for (unsigned i = 0; i < ex->n_plain; i++)
                if (ex->lanes[i].current)
                        return false;
        for (size_t i = 0; i < N_ZYGOTES; i++)
                if (ex->zygotes[i].state == ZYGOTE_STARTING && !ex->lanes[ex->zygotes[i].lane].plot)
                        return false;
        return true;
}

/* When a lane is due a start: once its back-off is over, for a lane without a zygote or
 * one whose zygote made --zygote-max-spawns sandboxes or reached --zygote-max-age;
 * UINT64_MAX when not by time (the spawn count is checked at every pass). */
static uint64_t lane_due_usec(const Executor *ex, unsigned lane)
{
        const Lane *l = &ex->lanes[lane];
        uint64_t t;

        if (!l->current)
                return l->restart_at_usec;
        if (ex->cfg->zygote_max_spawns && l->current->spawns >= ex->cfg->zygote_max_spawns)
                t = 0;
        else if (ex->cfg->zygote_max_age_ms)
                t = l->current->up_usec + (uint64_t) ex->cfg->zygote_max_age_ms * 1000;
        else
                return UINT64_MAX;
        return MAX(t, l->restart_at_usec);
}

/* Starts a zygote for a lane that has none up, or a successor for one that is due (the
 * lanes without a zygote first), and gives up on one that did not start in time. */
void zygote_housekeeping(Executor *ex)
{
        uint64_t now = now_usec();
        bool starting;
        int r;

        for (size_t i = 0; i < N_ZYGOTES; i++) {
                Zygote *z = &ex->zygotes[i];
                if (z->state == ZYGOTE_STARTING && now >= z->start_usec + START_TIMEOUT_USEC)
                        zygote_lost(ex, z, "did not start in time");
        }
        starting = any_starting(ex);
        for (unsigned pass = 0; pass < 2; pass++)
                for (unsigned lane = 0; lane < ex->n_lanes; lane++) {
                        Lane *l = &ex->lanes[lane];
                        bool serving = l->current != NULL;
                        if (serving != (pass == 1) || !lane_may_start(ex, lane, starting) ||
                            lane_due_usec(ex, lane) > now)
                                continue;
                        if (serving)
                                log_info("zygote %d is due for replacement (%llu sandboxes)",
                                         (int) l->current->pid,
                                         (unsigned long long) l->current->spawns);
                        r = zygote_start(ex, lane);
                        if (r < 0) {
                                log_errno(LOG_LEVEL_ERROR, r, NULL, "Failed to start a zygote");
                                l->restart_at_usec = now + l->restart_backoff_usec;
                                l->restart_backoff_usec =
                                        MIN(l->restart_backoff_usec * 2, RESTART_MAX_USEC);
                                continue;
                        }
                        starting = true;
                }
}

/* When zygote_housekeeping() next has something to do that no event will announce: a
 * back-off or an age limit ending, a start timing out. UINT64_MAX: nothing. (A zygote's
 * readiness arrives on its socket, its end as SIGCHLD, a spawn count with its SPAWN.) */
uint64_t zygote_next_usec(const Executor *ex)
{
        bool starting = any_starting(ex);
        uint64_t next = UINT64_MAX;

        for (size_t i = 0; i < N_ZYGOTES; i++)
                if (ex->zygotes[i].state == ZYGOTE_STARTING)
                        next = MIN(next, ex->zygotes[i].start_usec + START_TIMEOUT_USEC);
        for (unsigned lane = 0; lane < ex->n_lanes; lane++)
                if (lane_may_start(ex, lane, starting))
                        next = MIN(next, lane_due_usec(ex, lane));
        return next;
}

static Job *job_by_token(Executor *ex, uint64_t token)
{
        for (unsigned i = 0; i < ex->n_slots; i++)
                if (ex->slots[i] && ex->slots[i]->token == token)
                        return ex->slots[i];
        return NULL;
}

/* The job of the sandbox `pid` that zygote `z` made (pids are per zygote: another's
 * may have been reused meanwhile). */
static Job *job_by_pid(Executor *ex, const Zygote *z, pid_t pid)
{
        for (unsigned i = 0; i < ex->n_slots; i++)
                if (ex->slots[i] && ex->slots[i]->state != JOB_SPAWNING &&
                    ex->slots[i]->zygote == z && ex->slots[i]->pid == pid)
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
            (r = dispatch_add(ex->epfd, j->ctl, EPOLLIN, &j->w_ctl)) < 0 ||
            (r = dispatch_add(ex->epfd, j->out, EPOLLIN, &j->w_out)) < 0 ||
            (r = dispatch_add(ex->epfd, j->err, EPOLLIN, &j->w_err)) < 0) {
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
                z->cloning -= z->cloning > 0;
                on_spawned(ex, m, fds);
                return;
        case ZYGOTE_SPAWN_FAILED:
                j = job_by_token(ex, m->token);
                if (!j || j->state != JOB_SPAWNING || n_fds != 0)
                        break;
                z->cloning -= z->cloning > 0;
                if (j->origin == JOB_WARM) /* do not spin: requests get cold sandboxes */
                        ex->warm_retry_usec = now_usec() + RESTART_MAX_USEC;
                j->state = JOB_HELLO;
                job_fail(ex, j, "creating the sandbox", m->status);
                j->exited = true;
                j->wait_status = -1;
                job_maybe_finish(ex, j);
                return;
        case ZYGOTE_EXITED:
                if (n_fds != 0)
                        break;
                j = job_by_pid(ex, z, m->pid);
                if (!j)
                        return; /* a sandbox we already gave up on */
                j->exited = true;
                j->wait_status = m->status;
                job_maybe_finish(ex, j);
                return;
        default:
                break;
        }
        for (size_t i = 0; i < n_fds; i++)
                (void) safe_close(fds[i]);
        zygote_lost(ex, z, "protocol violation");
}

void zygote_on_readable(Executor *ex, Zygote *z)
{
        while (z->sock >= 0) {
                ZygoteMsg msg;
                int fds[SANDBOX_N_FDS];
                size_t n_fds = 0;
                ssize_t n;

                if (z->state == ZYGOTE_STARTING) {
                        ZygoteReady zr = {0};
                        int r = zygote_read_ready(z->sock, &zr);
                        if (r == -EAGAIN)
                                return;
                        /* Its own refusal: a whole message that says why. */
                        if (r < 0 && zr.magic == ZYGOTE_MAGIC)
                                zygote_start_refused(ex, z, &zr);
                        if (r < 0) {
                                zygote_lost(ex, z,
                                            r == -EPIPE ? "exited during start-up"
                                                        : "failed to start");
                                return;
                        }
                        zygote_up(ex, z);
                        continue;
                }
                n = recv_with_fds(z->sock, &msg, sizeof(msg), fds, SANDBOX_N_FDS, &n_fds);
                if (n == -EAGAIN)
                        return;
                if (n <= 0) {
                        zygote_lost(ex, z, n == 0 ? "connection closed" : "receive failed");
                        return;
                }
                if ((size_t) n != sizeof(msg) || msg.magic != ZYGOTE_MAGIC) {
                        for (size_t i = 0; i < n_fds; i++)
                                (void) safe_close(fds[i]);
                        zygote_lost(ex, z, "malformed message");
                        return;
                }
                on_zygote_message(ex, z, &msg, fds, n_fds);
        }
}

void zygotes_on_sigchld(Executor *ex)
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
                        /* What it said before it died first: a refusal to start (else
                         * taken for a crash and retried), its sandboxes' exits. */
                        if (z->sock >= 0)
                                zygote_on_readable(ex, z);
                        zygote_lost(ex, z,
                                    WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited");
                        z->pid = 0;
                        z->state = z->jobs > 0 ? ZYGOTE_GONE : ZYGOTE_FREE;
                }
        }
}

/* The first zygote is awaited synchronously, so a host that cannot build a sandbox stops
 * pyexecd at start with the zygote's own message. */
int zygote_wait_first_ready(Executor *ex, Zygote *z, char *errbuf, size_t errlen)
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
void zygotes_stop(Executor *ex)
{
        for (size_t i = 0; i < N_ZYGOTES; i++) {
                Zygote *z = &ex->zygotes[i];
                /* One still importing its modules would notice only once it is done. */
                if (z->state == ZYGOTE_STARTING && z->pid > 0)
                        (void) kill(z->pid, SIGKILL);
                zygote_close(ex, z);
                if (z->pid > 0) {
                        (void) waitpid(z->pid, NULL, 0);
                        z->pid = 0;
                }
                z->state = ZYGOTE_FREE;
        }
}
