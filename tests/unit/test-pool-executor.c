/* Unit tests for pool/executor without root: the executor is driven through its public
 * API, with a fake zygote started by its launcher hook. The fake speaks the real protocols
 * (zygote/proto.h): it reports ready, forks a "sandbox" process per SPAWN, hands over its
 * pidfd, ctl socket and output pipes, and reports each exit. What a fake sandbox does is
 * read from its own script, so each test says what happens with the script it submits:
 *
 *   "ok"          hello, ack, "out" on stdout, "err" on stderr, the frame FRAME, exit 0
 *   "sleep"       hello, ack, then sleeps until killed
 *   "exit:N"      hello, then exit N before acknowledging its job (the service's fault)
 *   "kill-zygote" hello, ack, then SIGKILL to the fake zygote (a zygote crash)
 *   "ppid"        like "ok", with the pid of its zygote on stdout instead of "out"
 *   "matplotlib"  the same (a script that names matplotlib: for the plot zygote)
 *
 * Covered: answers and their outcomes, the unacknowledged exit, deadlines, warm adoption,
 * admission (overload), queue expiry, a request counted free once answered, zygote loss and
 * restart, several zygotes (spawns spread, one lost while the others serve), the plot
 * zygote (started at the first script that names matplotlib, then serving those), shutdown, and
 * the busy/queued/warm counts. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool/executor.h"
#include "util/fd.h"
#include "zygote/proto.h"

#define FRAME "{\"status\":\"ok\"}\n42"

/* ---- the fake sandbox and zygote (child processes) ------------------------------------ */

static _Noreturn void fake_sandbox(int ctl, int out, int err)
{
        SandboxHello hello = {.magic = SANDBOX_MAGIC};
        SandboxJob job;
        char script[64] = "";
        uint64_t ack = SANDBOX_JOB_ACK, len = strlen(FRAME);

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (write_all(ctl, &hello, sizeof(hello)) < 0 || read_exact(ctl, &job, sizeof(job)) < 0 ||
            job.magic != SANDBOX_MAGIC || job.script_len >= sizeof(script) ||
            read_exact(ctl, script, job.script_len) < 0)
                _exit(SANDBOX_EXIT_JOB);
        if (strncmp(script, "exit:", 5) == 0)
                _exit(atoi(script + 5));
        if (write_all(ctl, &ack, sizeof(ack)) < 0)
                _exit(SANDBOX_EXIT_JOB);
        if (strcmp(script, "sleep") == 0)
                for (;;)
                        (void) pause();
        if (strcmp(script, "kill-zygote") == 0) {
                (void) kill(getppid(), SIGKILL);
                for (;;)
                        (void) pause();
        }
        if (strcmp(script, "ppid") == 0 || strcmp(script, "matplotlib") == 0) {
                char pid[16];
                int n = snprintf(pid, sizeof(pid), "%d", (int) getppid());
                if (write_all(out, pid, (size_t) n) < 0)
                        _exit(SANDBOX_EXIT_FRAME);
        } else if (write_all(out, "out", 3) < 0)
                _exit(SANDBOX_EXIT_FRAME);
        if (write_all(err, "err", 3) < 0 || write_all(ctl, &len, sizeof(len)) < 0 ||
            write_all(ctl, FRAME, len) < 0)
                _exit(SANDBOX_EXIT_FRAME);
        _exit(0);
}

static void spawn_one(int sock, const ZygoteMsg *req)
{
        int ctl[2], out[2], err[2], fds[SANDBOX_N_FDS];
        ZygoteMsg reply = {.magic = ZYGOTE_MAGIC, .token = req->token, .slot = req->slot};
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0 ||
            pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
                _exit(3);
        pid = fork();
        if (pid < 0)
                _exit(3);
        if (pid == 0) {
                (void) close(sock);
                fake_sandbox(ctl[1], out[1], err[1]);
        }
        fds[SANDBOX_FD_PIDFD] = (int) syscall(SYS_pidfd_open, pid, 0);
        fds[SANDBOX_FD_CTL] = ctl[0];
        fds[SANDBOX_FD_STDOUT] = out[0];
        fds[SANDBOX_FD_STDERR] = err[0];
        if (fds[SANDBOX_FD_PIDFD] < 0)
                _exit(3);
        reply.type = ZYGOTE_SPAWNED;
        reply.pid = pid;
        if (send_with_fds(sock, &reply, sizeof(reply), fds, SANDBOX_N_FDS) < 0)
                _exit(3);
        for (int i = 0; i < SANDBOX_N_FDS; i++)
                (void) close(fds[i]);
        (void) close(ctl[1]);
        (void) close(out[1]);
        (void) close(err[1]);
}

/* `delay_ms` before it says it is ready; `refuse`: it says it cannot start, and exits. */
static _Noreturn void fake_zygote(int sock, unsigned delay_ms, bool refuse)
{
        ZygoteReady ready = {.magic = ZYGOTE_MAGIC};
        struct pollfd p = {.fd = sock, .events = POLLIN};

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (delay_ms)
                (void) usleep(delay_ms * 1000);
        if (refuse) {
                ready.status = -ENOENT;
                (void) snprintf(ready.message, sizeof(ready.message), "no module named x");
        }
        if (send_with_fds(sock, &ready, sizeof(ready), NULL, 0) < 0 || refuse)
                _exit(2);
        for (;;) {
                int status;
                pid_t pid;

                while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                        ZygoteMsg m = {.magic = ZYGOTE_MAGIC,
                                       .type = ZYGOTE_EXITED,
                                       .pid = pid,
                                       .status = status};
                        if (send_with_fds(sock, &m, sizeof(m), NULL, 0) < 0)
                                _exit(2);
                }
                if (poll(&p, 1, 5) <= 0)
                        continue;
                ZygoteMsg req;
                size_t n_fds = 0;
                ssize_t n = recv_with_fds(sock, &req, sizeof(req), NULL, 0, &n_fds);
                if (n <= 0)
                        _exit(0); /* the executor closed us */
                if ((size_t) n != sizeof(req) || req.magic != ZYGOTE_MAGIC ||
                    req.type != ZYGOTE_SPAWN)
                        _exit(2);
                spawn_one(sock, &req);
        }
}

typedef struct Launches {
        int count;
        int plot;               /* of which plot zygotes */
        unsigned plot_delay_ms; /* before a plot zygote says it is ready */
        bool plot_refuses;      /* a plot zygote says it cannot start */
} Launches;

static int launch_fake(const Config *cfg, const Cgroups *cg, bool plot, pid_t *ret_pid,
                       int *ret_sock, void *userdata)
{
        Launches *l = userdata;
        int sv[2];
        pid_t pid;

        (void) cfg;
        (void) cg;
        if (plot)
                __atomic_add_fetch(&l->plot, 1, __ATOMIC_SEQ_CST);
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                (void) close(sv[0]);
                fake_zygote(sv[1], plot ? l->plot_delay_ms : 0, plot && l->plot_refuses);
        }
        (void) close(sv[1]);
        __atomic_add_fetch(&l->count, 1, __ATOMIC_SEQ_CST);
        *ret_pid = pid;
        *ret_sock = sv[0];
        return 0;
}

/* ---- the test side ---------------------------------------------------------------------- */

/* One answer, copied out of the callback. */
typedef struct Answer {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
        ExecOutcome o;
        char frame[256], out[64], err[64], what[128];
} Answer;

static void on_done(ExecOutcome *o, void *userdata)
{
        Answer *a = userdata;

        (void) pthread_mutex_lock(&a->lock);
        a->o = *o;
        (void) snprintf(a->frame, sizeof(a->frame), "%.*s", (int) o->frame_len,
                        o->frame ? o->frame : "");
        (void) snprintf(a->out, sizeof(a->out), "%.*s", (int) o->out_len, o->out ? o->out : "");
        (void) snprintf(a->err, sizeof(a->err), "%.*s", (int) o->err_len, o->err ? o->err : "");
        (void) snprintf(a->what, sizeof(a->what), "%s", o->internal_what ? o->internal_what : "");
        exec_outcome_release(o);
        a->o.frame = a->o.out = a->o.err = a->o.internal_what = NULL;
        a->o.request_id = NULL;
        a->done = true;
        (void) pthread_cond_signal(&a->cond);
        (void) pthread_mutex_unlock(&a->lock);
}

static Answer *answer_new(void)
{
        Answer *a = calloc(1, sizeof(*a));

        assert_non_null(a);
        (void) pthread_mutex_init(&a->lock, NULL);
        (void) pthread_cond_init(&a->cond, NULL);
        return a;
}

static int submit(Executor *ex, const char *script, uint32_t timeout_ms, Answer *a)
{
        ExecRequest p = {
                .script = strdup(script),
                .script_len = strlen(script),
                .timeout_ms = timeout_ms,
                .memory_mb = 100,
                .request_id = "test",
                .client_fd = -1,
        };
        return executor_submit(ex, &p, on_done, a);
}

/* Waits (at most 20 s: a liveness guard, not a timing assertion) for the answer. */
static void wait_answer(Answer *a)
{
        struct timespec until;

        assert_int_equal(clock_gettime(CLOCK_REALTIME, &until), 0);
        until.tv_sec += 20;
        (void) pthread_mutex_lock(&a->lock);
        while (!a->done)
                if (pthread_cond_timedwait(&a->cond, &a->lock, &until) == ETIMEDOUT)
                        break;
        (void) pthread_mutex_unlock(&a->lock);
        assert_true(a->done);
}

static Answer *run(Executor *ex, const char *script, uint32_t timeout_ms)
{
        Answer *a = answer_new();

        assert_int_equal(submit(ex, script, timeout_ms, a), 0);
        wait_answer(a);
        return a;
}

static void answer_free(Answer *a)
{
        (void) pthread_mutex_destroy(&a->lock);
        (void) pthread_cond_destroy(&a->cond);
        free(a);
}

/* Polls `pred` for up to 20 s. */
static bool eventually(bool (*pred)(Executor *ex), Executor *ex)
{
        for (int i = 0; i < 2000; i++) {
                if (pred(ex))
                        return true;
                (void) usleep(10000);
        }
        return false;
}

static bool one_warm(Executor *ex)
{
        ExecutorStats st;
        executor_stats(ex, &st);
        return st.warm_ready == 1;
}

static bool one_busy(Executor *ex)
{
        ExecutorStats st;
        executor_stats(ex, &st);
        return st.busy == 1;
}

static bool idle(Executor *ex)
{
        ExecutorStats st;
        executor_stats(ex, &st);
        return st.busy == 0 && st.queued == 0;
}

typedef struct Fixture {
        Config cfg;
        Launches launches;
        Executor *ex;
} Fixture;

/* The fake plot zygote: none, or one that says it is ready after `delay_ms` (or refuses). */
typedef struct PlotFake {
        bool on;
        unsigned delay_ms;
        bool refuses;
} PlotFake;

static Fixture *start_with(unsigned concurrency, unsigned pool, unsigned queue, unsigned zygotes,
                           PlotFake plot)
{
        Fixture *f = calloc(1, sizeof(*f));
        char err[256] = "";

        assert_non_null(f);
        config_defaults(&f->cfg);
        f->cfg.concurrency = concurrency;
        f->cfg.pool_size = pool;
        f->cfg.queue_size = queue;
        f->cfg.zygotes = zygotes;
        f->cfg.plot_zygote = plot.on;
        f->cfg.disabled_layers = LAYER_CGROUPS; /* no root here */
        f->cfg.log_level = LOG_LEVEL_ERROR;
        f->launches.plot_delay_ms = plot.delay_ms;
        f->launches.plot_refuses = plot.refuses;
        assert_int_equal(executor_new_with_launcher(&f->cfg, launch_fake, &f->launches, &f->ex, err,
                                                    sizeof(err)),
                         0);
        assert_true(executor_ready(f->ex));
        return f;
}

static Fixture *start_zygotes(unsigned concurrency, unsigned pool, unsigned queue, unsigned zygotes)
{
        return start_with(concurrency, pool, queue, zygotes, (PlotFake){0});
}

static Fixture *start(unsigned concurrency, unsigned pool, unsigned queue)
{
        return start_zygotes(concurrency, pool, queue, 1);
}

static void stop(Fixture *f)
{
        executor_shutdown(f->ex, 1000);
        executor_free(f->ex);
        free(f);
        /* Everything the fakes started is reaped: no child is left. */
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_answer_of_a_normal_run(void **state)
{
        Fixture *f = start(2, 0, 4);
        Answer *a = run(f->ex, "ok", 5000);
        (void) state;

        assert_int_equal(a->o.end, EXEC_END_NORMAL);
        assert_true(a->o.script_started);
        assert_true(a->o.frame_complete);
        assert_string_equal(a->frame, FRAME);
        assert_string_equal(a->out, "out");
        assert_string_equal(a->err, "err");
        /* Answered at the reap (no cgroup.kill here): its status is known. */
        assert_true(a->o.have_status);
        assert_true(a->o.setup_ms > 0); /* a cold sandbox: set-up on the request path */
        answer_free(a);
        assert_true(eventually(idle, f->ex));
        stop(f);
}

static void test_exit_before_the_ack_is_the_services(void **state)
{
        Fixture *f = start(1, 0, 4);
        Answer *a = run(f->ex, "exit:125", 5000);
        (void) state;

        assert_int_equal(a->o.end, EXEC_END_NORMAL);
        assert_false(a->o.script_started);
        assert_true(a->o.have_status && WIFEXITED(a->o.wait_status));
        assert_int_equal(WEXITSTATUS(a->o.wait_status), SANDBOX_EXIT_LIMITS);
        assert_string_equal(a->what, "while applying the job's limits");
        answer_free(a);
        stop(f);
}

static void test_deadline(void **state)
{
        Fixture *f = start(1, 0, 4);
        Answer *a = run(f->ex, "sleep", 200);
        ExecutorStats st;
        (void) state;

        assert_int_equal(a->o.end, EXEC_END_TIMEOUT);
        answer_free(a);
        executor_stats(f->ex, &st);
        assert_int_equal(st.timeouts, 1);
        /* The slot is free again: the next request runs. */
        a = run(f->ex, "ok", 5000);
        assert_int_equal(a->o.end, EXEC_END_NORMAL);
        answer_free(a);
        stop(f);
}

static void test_warm_adoption(void **state)
{
        Fixture *f = start(1, 1, 4);
        Answer *a;
        (void) state;

        assert_true(eventually(one_warm, f->ex));
        a = run(f->ex, "ok", 5000);
        assert_int_equal(a->o.end, EXEC_END_NORMAL);
        assert_string_equal(a->frame, FRAME);
        assert_true(a->o.setup_ms == 0); /* adopted: its set-up was off the request path */
        answer_free(a);
        /* The pool is refilled. */
        assert_true(eventually(one_warm, f->ex));
        stop(f);
}

static void test_admission_and_queue_expiry(void **state)
{
        Fixture *f = start(1, 0, 1);
        Answer *running = answer_new(), *queued = answer_new(), *refused = answer_new();
        ExecutorStats st;
        (void) state;

        assert_int_equal(submit(f->ex, "sleep", 1500, running), 0);
        assert_true(eventually(one_busy, f->ex));
        assert_int_equal(submit(f->ex, "ok", 300, queued), 0);
        executor_stats(f->ex, &st);
        assert_int_equal(st.queued, 1);
        /* One running and one queued: the next is refused at once, not queued. */
        assert_int_equal(submit(f->ex, "ok", 300, refused), EXECUTOR_E_OVERLOADED);
        /* The queued one waited longer than its own timeout: answered, never run. */
        wait_answer(queued);
        assert_int_equal(queued->o.end, EXEC_END_EXPIRED);
        wait_answer(running);
        assert_int_equal(running->o.end, EXEC_END_TIMEOUT);
        assert_true(eventually(idle, f->ex));
        answer_free(running);
        answer_free(queued);
        answer_free(refused);
        stop(f);
}

/* What the owner sees from inside its answer callback: whether the request still counts. */
typedef struct Resubmit {
        Executor *ex;
        ExecutorStats st;
        int again;     /* executor_submit() of a next request, from the callback */
        Answer *next;  /* that request's answer */
        Answer *first; /* the first request's answer */
} Resubmit;

static void on_done_resubmit(ExecOutcome *o, void *userdata)
{
        Resubmit *r = userdata;

        executor_stats(r->ex, &r->st);
        r->again = submit(r->ex, "ok", 5000, r->next);
        on_done(o, r->first);
}

/* Once its owner hears the answer, a request no longer counts: not as admitted (with one
 * slot and no queue, a next request is let in) and not in the gauges. A start-up
 * self-check that still counted once the port opened refused the first request. */
static void test_answered_means_counted_free(void **state)
{
        Fixture *f = start(1, 0, 0);
        Resubmit r = {.ex = f->ex, .next = answer_new(), .first = answer_new()};
        ExecRequest p = {
                .script = strdup("ok"),
                .script_len = 2,
                .timeout_ms = 5000,
                .memory_mb = 100,
                .request_id = "test",
                .client_fd = -1,
        };
        (void) state;

        assert_int_equal(executor_submit(f->ex, &p, on_done_resubmit, &r), 0);
        wait_answer(r.first);
        assert_int_equal(r.first->o.end, EXEC_END_NORMAL);
        assert_int_equal(r.st.busy, 0);
        assert_int_equal(r.again, 0);
        wait_answer(r.next);
        assert_int_equal(r.next->o.end, EXEC_END_NORMAL);
        answer_free(r.first);
        answer_free(r.next);
        assert_true(eventually(idle, f->ex));
        stop(f);
}

static void test_zygote_loss_and_restart(void **state)
{
        Fixture *f = start(1, 0, 4);
        Answer *a = run(f->ex, "kill-zygote", 10000);
        ExecutorStats st;
        (void) state;

        assert_int_equal(a->o.end, EXEC_END_INTERNAL);
        assert_string_equal(a->what, "the zygote died");
        answer_free(a);
        assert_true(eventually(executor_ready, f->ex));
        a = run(f->ex, "ok", 5000);
        assert_int_equal(a->o.end, EXEC_END_NORMAL);
        answer_free(a);
        assert_int_equal(f->launches.count, 2);
        executor_stats(f->ex, &st);
        assert_int_equal(st.zygote_starts, 1);
        stop(f);
}

static bool two_zygotes_up(Executor *ex)
{
        ExecutorStats st;
        executor_stats(ex, &st);
        return st.zygotes_up == 2;
}

/* With two zygotes, requests one after the other go to each in turn (equal backlogs take
 * turns), so both serve; the second one's start is not counted as a restart. */
static void test_spawns_spread_over_zygotes(void **state)
{
        Fixture *f = start_zygotes(2, 0, 4, 2);
        char seen[2][64] = {"", ""};
        ExecutorStats st;
        (void) state;

        assert_true(eventually(two_zygotes_up, f->ex));
        for (int i = 0; i < 4; i++) {
                Answer *a = run(f->ex, "ppid", 5000);
                assert_int_equal(a->o.end, EXEC_END_NORMAL);
                assert_string_equal(a->frame, FRAME);
                assert_true(atoi(a->out) > 0);
                if (!seen[0][0] || strcmp(seen[0], a->out) == 0)
                        (void) snprintf(seen[0], sizeof(seen[0]), "%s", a->out);
                else
                        (void) snprintf(seen[1], sizeof(seen[1]), "%s", a->out);
                answer_free(a);
        }
        assert_true(seen[1][0] != '\0');
        assert_string_not_equal(seen[0], seen[1]);
        assert_int_equal(f->launches.count, 2);
        executor_stats(f->ex, &st);
        assert_int_equal(st.zygote_starts, 0);
        stop(f);
}

/* A zygote that dies takes its own sandboxes with it, not the other lane's: the next request
 * is served at once by the zygote still up, and the lost one is restarted. */
static void test_zygote_lost_while_another_serves(void **state)
{
        Fixture *f = start_zygotes(2, 0, 4, 2);
        Answer *a;
        ExecutorStats st;
        (void) state;

        assert_true(eventually(two_zygotes_up, f->ex));
        a = run(f->ex, "kill-zygote", 10000);
        assert_int_equal(a->o.end, EXEC_END_INTERNAL);
        assert_string_equal(a->what, "the zygote died");
        answer_free(a);
        assert_true(executor_ready(f->ex));
        a = run(f->ex, "ok", 5000);
        assert_int_equal(a->o.end, EXEC_END_NORMAL);
        answer_free(a);
        assert_true(eventually(two_zygotes_up, f->ex));
        assert_int_equal(f->launches.count, 3);
        executor_stats(f->ex, &st);
        assert_int_equal(st.zygote_starts, 1);
        stop(f);
}

static Answer *run_ok_pid(Executor *ex, const char *script, char *pid, size_t len)
{
        Answer *a = run(ex, script, 5000);

        assert_int_equal(a->o.end, EXEC_END_NORMAL);
        assert_true(atoi(a->out) > 0);
        (void) snprintf(pid, len, "%s", a->out);
        return a;
}

/* No plot zygote until a script names matplotlib; that script runs at once where it can
 * (a plain zygote), the plot zygote starts, and from then on such scripts go to it and the
 * others do not. */
static void test_plot_zygote_started_on_demand(void **state)
{
        Fixture *f = start_with(1, 0, 4, 1, (PlotFake){.on = true});
        char plain[64], first[64], plot[64], again[64];
        ExecutorStats st;
        (void) state;

        answer_free(run_ok_pid(f->ex, "ppid", plain, sizeof(plain)));
        answer_free(run_ok_pid(f->ex, "ppid", again, sizeof(again)));
        assert_string_equal(plain, again);
        assert_int_equal(f->launches.count, 1);
        assert_int_equal(f->launches.plot, 0);

        answer_free(run_ok_pid(f->ex, "matplotlib", first, sizeof(first)));
        assert_string_equal(first, plain); /* it did not wait for the plot zygote */
        assert_true(eventually(two_zygotes_up, f->ex));
        assert_int_equal(f->launches.plot, 1);
        answer_free(run_ok_pid(f->ex, "matplotlib", plot, sizeof(plot)));
        assert_string_not_equal(plot, plain);
        answer_free(run_ok_pid(f->ex, "ppid", again, sizeof(again)));
        assert_string_equal(again, plain);
        answer_free(run_ok_pid(f->ex, "matplotlib", again, sizeof(again)));
        assert_string_equal(again, plot);
        executor_stats(f->ex, &st);
        assert_int_equal(st.zygote_starts, 0);
        stop(f);
}

static Fixture *start_plot(unsigned delay_ms, bool refuses)
{
        return start_with(1, 0, 4, 1,
                          (PlotFake){.on = true, .delay_ms = delay_ms, .refuses = refuses});
}

static double process_cpu_seconds(void)
{
        struct rusage ru;

        assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
        return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* While a zygote starts, the executor waits for it (its readiness comes on its socket): it
 * does not poll. A lane without a zygote whose back-off was over used to make the
 * executor's epoll timeout 0 for the whole start. Not a timing assertion: a spinning thread
 * takes 0.4-1 s of CPU in that second (its share of a loaded core), an idle one a few ms. */
static void test_no_busy_loop_while_a_zygote_starts(void **state)
{
        Fixture *f = start_plot(1500, false);
        char pid[64];
        double cpu;
        (void) state;

        answer_free(run_ok_pid(f->ex, "matplotlib", pid, sizeof(pid)));
        cpu = process_cpu_seconds();
        (void) usleep(1000 * 1000);
        cpu = process_cpu_seconds() - cpu;
        assert_true(cpu < 0.1);
        assert_true(eventually(two_zygotes_up, f->ex));
        stop(f);
}

static bool one_zygote_up(Executor *ex)
{
        ExecutorStats st;
        executor_stats(ex, &st);
        return st.zygotes_up == 1;
}

/* A plot zygote that says it cannot start (matplotlib missing) is not started again: the
 * scripts that name matplotlib run in the other zygote's sandboxes. */
static void test_plot_zygote_refused_is_given_up(void **state)
{
        Fixture *f = start_plot(0, true);
        char plain[64], pid[64];
        (void) state;

        answer_free(run_ok_pid(f->ex, "ppid", plain, sizeof(plain)));
        answer_free(run_ok_pid(f->ex, "matplotlib", pid, sizeof(pid)));
        (void) usleep(1500 * 1000); /* several restart back-offs (100, 200, 400 ms ...) */
        assert_int_equal(f->launches.plot, 1);
        assert_true(one_zygote_up(f->ex));
        answer_free(run_ok_pid(f->ex, "matplotlib", pid, sizeof(pid)));
        assert_string_equal(pid, plain);
        stop(f);
}

static void test_shutdown_answers_what_runs(void **state)
{
        Fixture *f = start(1, 0, 4);
        Answer *running = answer_new(), *queued = answer_new(), *late = answer_new();
        (void) state;

        assert_int_equal(submit(f->ex, "sleep", 60000, running), 0);
        assert_true(eventually(one_busy, f->ex));
        assert_int_equal(submit(f->ex, "ok", 60000, queued), 0);
        executor_shutdown(f->ex, 200);
        assert_true(running->done && queued->done);
        assert_int_equal(running->o.end, EXEC_END_INTERNAL);
        assert_string_equal(running->what, "the service is shutting down");
        assert_int_equal(queued->o.end, EXEC_END_INTERNAL);
        assert_false(executor_ready(f->ex));
        assert_int_equal(submit(f->ex, "ok", 1000, late), EXECUTOR_E_STOPPING);
        answer_free(running);
        answer_free(queued);
        answer_free(late);
        stop(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_answer_of_a_normal_run),
                cmocka_unit_test(test_exit_before_the_ack_is_the_services),
                cmocka_unit_test(test_deadline),
                cmocka_unit_test(test_warm_adoption),
                cmocka_unit_test(test_admission_and_queue_expiry),
                cmocka_unit_test(test_answered_means_counted_free),
                cmocka_unit_test(test_zygote_loss_and_restart),
                cmocka_unit_test(test_spawns_spread_over_zygotes),
                cmocka_unit_test(test_zygote_lost_while_another_serves),
                cmocka_unit_test(test_plot_zygote_started_on_demand),
                cmocka_unit_test(test_no_busy_loop_while_a_zygote_starts),
                cmocka_unit_test(test_plot_zygote_refused_is_given_up),
                cmocka_unit_test(test_shutdown_answers_what_runs),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
