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
 * answer goes at once; so it does when PID 1 was the sandbox's last task (job_pid1_alone).
 * Otherwise, and for every other end (timeout, output limit, crash,
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
 * every layer in place. Which warm sandbox a request takes, and what the next one is to be
 * (from the plot zygote, with the learned prefault set), is warm.c's choice.
 *
 * Priorities (when the service may raise them again, CAP_SYS_NICE): the pool is
 * background work. Warm sandboxes do their set-up and warm-up, and wait, at nice +10; the
 * zygote runs at +10 unless a request waits for a cold sandbox or in the queue. Adopting a
 * sandbox raises it to the service's priority; once answered it exits at nice 19 (with a
 * pool, so spare slots exist). Measured on 2 cores: the refill and the exit that a
 * request's end triggers no longer compete with that request's response (hello with 25-30
 * ms between requests: p50 2.8 -> 1.1 ms, p90 4.0 -> 2.1 ms).
 *
 * Zygotes: cfg->zygotes serve side by side (lanes, zygotes.c); a spawn goes to the one with
 * the shortest backlog. Every cfg->zygote_max_spawns sandboxes or cfg->zygote_max_age, a
 * fresh one is started next to a lane's zygote (so that sandboxes do not share one
 * address-space layout forever); once it is ready it takes over, and the old one is closed
 * when its last sandbox is gone. A zygote that dies is restarted with a back-off; its
 * sandboxes die with it (PR_SET_PDEATHSIG) and their requests are answered INTERNAL. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "pool/internal.h"
#include "util/base64.h"
#include "util/clock.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"

static bool any_zygote(const Executor *ex)
{
        for (unsigned i = 0; i < ex->n_lanes; i++)
                if (ex->lanes[i].current)
                        return true;
        return false;
}

/* Asks a serving zygote (the least busy one) for a sandbox in a free slot. Returns false
 * if it cannot. */
static bool spawn(Executor *ex, Job *j, uint32_t flags)
{
        Zygote *z;
        unsigned slot;
        int r;

        if (ex->running >= ex->n_slots || !(z = zygote_pick(ex, j->plot)))
                return false;
        assert(j->state == JOB_QUEUED);
        for (slot = 0; ex->slots[slot]; slot++)
                ;
        j->slot = slot;
        j->state = JOB_SPAWNING;
        j->token = ++ex->next_token;
        j->spawn_usec = now_usec();
        j->deadline_usec = j->spawn_usec + SETUP_GRACE_USEC;
        ex->slots[slot] = j;
        ex->running++;
        j->zygote = z;
        j->plot = ex->lanes[z->lane].plot;
        z->jobs++;
        z->spawns++;
        z->cloning++;
        if (ex->cgroups)
                (void) cgroup_oom_kills(ex->cgroups, slot, &j->oom_kills_before);
        if (!(flags & ZYGOTE_SPAWN_PREWARM))
                priority_zygote_background(ex, j->zygote, false);

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

/* Puts q back at the head of the queue, to be taken first when a slot frees. */
static void requeue_first(Executor *ex, Job *q)
{
        (void) pthread_mutex_lock(&ex->lock);
        q->next = ex->queue_head;
        ex->queue_head = q;
        if (!ex->queue_tail)
                ex->queue_tail = q;
        ex->stats.queued++;
        (void) pthread_mutex_unlock(&ex->lock);
}

static Job *take_request(Executor *ex)
{
        Job *q;

        (void) pthread_mutex_lock(&ex->lock);
        q = ex->queue_head;
        if (q) {
                assert(ex->stats.queued > 0);
                ex->stats.queued--;
                ex->queue_head = q->next;
                if (!ex->queue_head)
                        ex->queue_tail = NULL;
                q->next = NULL;
        }
        (void) pthread_mutex_unlock(&ex->lock);
        return q;
}

/* A request takes over a ready warm sandbox: the request's Job `q` is emptied into `w`. */
static void adopt(Executor *ex, Job *w, Job *q)
{
        assert(w->state == JOB_READY && w->origin == JOB_WARM && !w->done);
        assert(q->state == JOB_QUEUED);
        w->script = TAKE_PTR(q->script);
        w->script_len = q->script_len;
        w->input = TAKE_PTR(q->input);
        w->input_len = q->input_len;
        w->return_files = q->return_files;
        w->max_output_files = q->max_output_files;
        w->output_files_limit = q->output_files_limit;
        w->frame.limit = q->frame.limit;
        w->timeout_ms = q->timeout_ms;
        w->memory_mb = q->memory_mb;
        memcpy(w->request_id, q->request_id, sizeof(w->request_id));
        w->done = q->done;
        w->userdata = q->userdata;
        w->header = q->header;
        w->client_fd = q->client_fd;
        w->submit_usec = q->submit_usec;
        job_free(q);
        sandbox_watch_client(ex, w);
        priority_adopted(ex, w);

        w->origin = JOB_ADOPTED;
        assert(ex->warm > 0);
        ex->warm--;
        ex->busy++;
        w->state = JOB_RUNNING;
        w->started_usec = now_usec();
        w->deadline_usec = w->started_usec + (uint64_t) w->timeout_ms * 1000;
        sandbox_send_job(ex, w);
}

static void start_jobs(Executor *ex, bool stopping)
{
        while (ex->busy < ex->cfg->concurrency) {
                bool can_spawn = any_zygote(ex) && ex->running < ex->n_slots, wait;
                Job *w, *q;

                if (!can_spawn && !warm_ready(ex))
                        break;
                q = take_request(ex);
                if (!q)
                        break;
                /* Its client has waited as long as the script may run: answer, do not run. */
                if (now_usec() - q->submit_usec >= (uint64_t) q->timeout_ms * 1000) {
                        q->end = EXEC_END_EXPIRED;
                        q->exited = true;
                        job_retire(ex, q);
                        continue;
                }
                warm_note_hints(ex, q);
                w = warm_for(ex, q, can_spawn, &wait);
                if (wait) {
                        requeue_first(ex, q);
                        break;
                }
                if (w)
                        adopt(ex, w, q);
                else {
                        ex->busy++;
                        sandbox_watch_client(ex, q);
                        (void) spawn(ex, q, 0);
                }
        }

        if (!stopping)
                warm_plot_make_room(ex);
        /* Refill the pool in the background, but not while a request runs and a warm
         * sandbox is still ready: the refill's clone and set-up would compete with that
         * request for the CPU (and for the zygote, which also reaps it). */
        while (!stopping && ex->warm < ex->cfg->pool_size && now_usec() >= ex->warm_retry_usec) {
                Job *w;
                if (!any_zygote(ex) || ex->running >= ex->n_slots)
                        break;
                if (ex->busy > 0 && warm_ready(ex))
                        break;
                /* Requests waiting: they get cold sandboxes as slots free up. A warm one
                 * costs its warm-up run on top, which buys latency only when idle. */
                if (queue_nonempty(ex))
                        break;
                w = job_new(ex);
                if (!w)
                        break;
                w->origin = JOB_WARM;
                w->plot = warm_plot_wanted(ex);
                ex->warm++;
                (void) spawn(ex, w,
                             ZYGOTE_SPAWN_PREWARM |
                                     (ex->background_warm ? ZYGOTE_SPAWN_BACKGROUND : 0) |
                                     (warm_prefault_wanted(ex) ? ZYGOTE_SPAWN_PREFAULT : 0));
        }
}

/* Kills what is over its deadline; returns the epoll timeout until the next one (ms). */
static int check_deadlines(Executor *ex)
{
        uint64_t now = now_usec(), next = UINT64_MAX;

        for (unsigned i = 0; i < ex->n_slots; i++) {
                Job *j = ex->slots[i];
                if (!j || j->kill != JOB_NOT_KILLED || j->exited)
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
        (void) pthread_mutex_lock(&ex->lock);
        if (!ex->stopping) /* no zygote is started or replaced while stopping */
                next = MIN(next, zygote_next_usec(ex));
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

void executor_publish(Executor *ex)
{
        unsigned ready = 0;

        for (unsigned i = 0; i < ex->n_slots; i++)
                ready += ex->slots[i] && ex->slots[i]->state == JOB_READY;
        (void) pthread_mutex_lock(&ex->lock);
        ex->stats.busy = ex->busy;
        ex->stats.warm_ready = ready;
        (void) pthread_mutex_unlock(&ex->lock);
}

static void on_wake(DispatchWatch *w, uint32_t events, void *ctx)
{
        Executor *ex = ctx;
        uint64_t v;

        (void) w;
        (void) events;
        (void) !read(ex->wakefd, &v, sizeof(v));
}

static void on_signal(DispatchWatch *w, uint32_t events, void *ctx)
{
        (void) w;
        (void) events;
        zygotes_on_sigchld(ctx);
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
                int n = dispatch_run(ex->epfd, check_deadlines(ex), ex);

                if (n < 0 && n != -EINTR) {
                        log_errno(LOG_LEVEL_ERROR, -n, NULL, "epoll_wait failed");
                        (void) usleep(10000);
                }
                /* Only now no event of the batch can point at a finished job. */
                while (ex->graveyard) {
                        Job *j = ex->graveyard;
                        ex->graveyard = j->next;
                        job_free(j);
                }

                (void) pthread_mutex_lock(&ex->lock);
                bool stopping = ex->stopping, past = now_usec() >= ex->stop_deadline_usec;
                bool queue_empty = !ex->queue_head;
                (void) pthread_mutex_unlock(&ex->lock);
                if (!stopping)
                        zygote_housekeeping(ex);
                if (stopping) /* idle warm sandboxes: nothing to wait for */
                        for (unsigned i = 0; i < ex->n_slots; i++)
                                if (ex->slots[i] && ex->slots[i]->origin == JOB_WARM)
                                        job_fail(ex, ex->slots[i], "the service is shutting down",
                                                 ESHUTDOWN);
                if (!(stopping && past))
                        start_jobs(ex, stopping);
                priority_update(ex, !queue_empty);
                executor_publish(ex);
                /* Past the grace period the queued jobs are answered by executor_shutdown(). */
                if (stopping && ex->running == 0 && (queue_empty || past))
                        return NULL;
        }
}

int executor_submit(Executor *ex, ExecRequest *p, ExecDoneFn done, void *userdata)
{
        Job *j;
        uint64_t one = 1;
        int r = 0;

        j = job_new(ex);
        if (!j) {
                free(TAKE_PTR(p->script));
                free(TAKE_PTR(p->input));
                return -ENOMEM;
        }
        j->script = TAKE_PTR(p->script);
        j->script_len = p->script_len;
        j->input = TAKE_PTR(p->input);
        j->input_len = p->input_len;
        if (p->return_files) {
                j->return_files = true;
                j->max_output_files = p->max_output_files;
                j->output_files_limit = p->output_files_limit;
                /* The files travel in the frame's header line. */
                j->frame.limit += base64_encoded_len(p->output_files_limit) +
                                  ((size_t) p->max_output_files + EXEC_FILES_OMITTED_MAX) *
                                          FRAME_FILE_ALLOWANCE;
        }
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
                .input_len = (uint32_t) j->input_len,
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

static int launch_zygote(const Config *cfg, const Cgroups *cg, bool plot, pid_t *ret_pid,
                         int *ret_sock, void *userdata)
{
        (void) userdata;
        return zygote_launch(cfg, cg, plot, ret_pid, ret_sock);
}

int executor_new(const Config *cfg, Executor **ret, char *errbuf, size_t errlen)
{
        return executor_new_with_launcher(cfg, launch_zygote, NULL, ret, errbuf, errlen);
}

int executor_new_with_launcher(const Config *cfg, ZygoteLaunchFn launch, void *userdata,
                               Executor **ret, char *errbuf, size_t errlen)
{
        Executor *ex;
        sigset_t mask;
        int r;

        ex = calloc(1, sizeof(*ex));
        if (!ex)
                return -ENOMEM;
        ex->cfg = cfg;
        ex->launch = launch;
        ex->launch_userdata = userdata;
        ex->epfd = ex->wakefd = ex->sigfd = -EBADF;
        for (size_t i = 0; i < N_ZYGOTES; i++)
                ex->zygotes[i] = (Zygote){.state = ZYGOTE_FREE, .sock = -EBADF};
        ex->w_wake = (DispatchWatch){on_wake, NULL};
        ex->w_signal = (DispatchWatch){on_signal, NULL};
        ex->n_plain = MAX(1u, MIN(cfg->zygotes, (unsigned) CONFIG_ZYGOTES_MAX));
        ex->n_lanes = ex->n_plain;
        if (config_plot_lane(cfg))
                ex->lanes[ex->n_lanes++].plot = true;
        for (unsigned i = 0; i < N_LANES; i++)
                ex->lanes[i].restart_backoff_usec = RESTART_MIN_USEC;
        (void) pthread_mutex_init(&ex->lock, NULL);
        ex->n_slots = config_slots(cfg);
        ex->background_warm = priority_can_raise(&ex->nice);
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
        if ((r = dispatch_add(ex->epfd, ex->wakefd, EPOLLIN, &ex->w_wake)) < 0 ||
            (r = dispatch_add(ex->epfd, ex->sigfd, EPOLLIN, &ex->w_signal)) < 0)
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
        /* The first lane's zygote is awaited here; the executor thread starts the others. */
        r = zygote_start(ex, 0);
        if (r < 0) {
                (void) snprintf(errbuf, errlen, "cannot start the zygote: %s", strerror(-r));
                goto fail;
        }
        r = zygote_wait_first_ready(ex, &ex->zygotes[0], errbuf, errlen);
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
                job_retire(ex, j);
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
