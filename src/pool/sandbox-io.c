/* One sandbox's descriptors, as the loop sees them: its set-up report (hello), the job
 * sent to it, the result stream ([ack][length][frame]), its stdout and stderr, and the
 * hang-up of the HTTP client that waits for it. */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool/internal.h"
#include "util/clock.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"

void sandbox_send_job(Executor *ex, Job *j)
{
        const size_t head = sizeof(j->header), body = head + j->script_len;
        const size_t total = body + j->input_len;

        while (j->sent < total) {
                const char *p;
                size_t n;
                if (j->sent < head) {
                        p = (const char *) &j->header + j->sent;
                        n = head - j->sent;
                } else if (j->sent < body) {
                        p = j->script + (j->sent - head);
                        n = body - j->sent;
                } else {
                        p = j->input + (j->sent - body);
                        n = total - j->sent;
                }
                ssize_t k = send(j->ctl, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        (void) dispatch_mod(ex->epfd, j->ctl, EPOLLIN | EPOLLOUT, &j->w_ctl);
                        return;
                }
                if (k < 0) {
                        /* The sandbox died (EPIPE); its exit status tells the rest. */
                        j->sent = total;
                        break;
                }
                j->sent += (size_t) k;
        }
        (void) dispatch_mod(ex->epfd, j->ctl, EPOLLIN, &j->w_ctl);
        free(j->script); /* no longer needed: the sandbox has them */
        j->script = NULL;
        free(j->input);
        j->input = NULL;
}

static void sandbox_on_hello(Executor *ex, Job *j)
{
        assert(j->state == JOB_HELLO && j->hello_got == sizeof(j->hello));
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
                if (j->origin ==
                    JOB_WARM) /* do not spin: requests get cold sandboxes (and the error) */
                        ex->warm_retry_usec = now_usec() + RESTART_MAX_USEC;
                job_end(ex, j, EXEC_END_SETUP_FAILED);
                return;
        }
        if (j->origin == JOB_WARM) {
                j->state = JOB_READY;
                j->deadline_usec = UINT64_MAX;
                if (j->zygote->state == ZYGOTE_DRAINING)
                        job_fail(ex, j, "zygote replaced", ESTALE);
                return;
        }
        j->state = JOB_RUNNING;
        j->started_usec = now_usec();
        j->deadline_usec = j->started_usec + (uint64_t) j->timeout_ms * 1000;
        sandbox_send_job(ex, j);
}

void sandbox_on_ctl(Executor *ex, Job *j, uint32_t events)
{
        bool over = false;

        if (events & EPOLLOUT && j->state == JOB_RUNNING)
                sandbox_send_job(ex, j);

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
                        job_maybe_finish(ex, j);
                        return;
                }
                j->hello_got += (size_t) k;
                if (j->hello_got == sizeof(j->hello))
                        sandbox_on_hello(ex, j);
                return;
        }

        if (job_drain(j->ctl, &j->frame, &over)) {
                if (!j->finished_usec)
                        j->finished_usec = now_usec();
                job_close_fd(ex, &j->ctl);
        } else {
                const char *frame;
                size_t len;
                if (!j->finished_usec && job_frame_complete(j, &frame, &len))
                        j->finished_usec = now_usec();
        }
        if (over)
                job_end(ex, j, EXEC_END_RESULT_LIMIT);
        job_maybe_finish(ex, j);
}

void sandbox_on_stream(Executor *ex, Job *j, int *fd, Buf *b)
{
        bool over = false;

        if (job_drain(*fd, b, &over))
                job_close_fd(ex, fd);
        if (over)
                job_end(ex, j, EXEC_END_OUTPUT_LIMIT);
        job_maybe_finish(ex, j);
}

/* Kills the job's sandbox if its client hangs up: nobody would read the answer. (The
 * HTTP library does not watch the sockets of suspended connections.) */
void sandbox_watch_client(Executor *ex, Job *j)
{
        if (j->client_fd < 0)
                return;
        if (dispatch_add(ex->epfd, j->client_fd, EPOLLRDHUP, &j->w_client) == 0)
                j->client_watched = true;
}

void sandbox_on_client(Executor *ex, Job *j, uint32_t events)
{
        if (!(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) || j->phase != JOB_LIVE)
                return;
        (void) epoll_ctl(ex->epfd, EPOLL_CTL_DEL, j->client_fd, NULL);
        j->client_watched = false;
        log_event(LOG_LEVEL_INFO, j->request_id, NULL, "client went away; stopping its sandbox");
        job_end(ex, j, EXEC_END_CLIENT_GONE);
        job_maybe_finish(ex, j);
}

/* The watches of a job's descriptors. An event of the batch may still come for a job that
 * finished earlier in it (freed only after the batch), or for a descriptor closed since. */
static void on_ctl_event(DispatchWatch *w, uint32_t events, void *ctx)
{
        Job *j = w->data;
        if (j->phase != JOB_RETIRED && j->ctl >= 0)
                sandbox_on_ctl(ctx, j, events);
}

static void on_out_event(DispatchWatch *w, uint32_t events, void *ctx)
{
        Job *j = w->data;
        (void) events;
        if (j->phase != JOB_RETIRED && j->out >= 0)
                sandbox_on_stream(ctx, j, &j->out, &j->out_buf);
}

static void on_err_event(DispatchWatch *w, uint32_t events, void *ctx)
{
        Job *j = w->data;
        (void) events;
        if (j->phase != JOB_RETIRED && j->err >= 0)
                sandbox_on_stream(ctx, j, &j->err, &j->err_buf);
}

static void on_client_event(DispatchWatch *w, uint32_t events, void *ctx)
{
        Job *j = w->data;
        if (j->phase != JOB_RETIRED)
                sandbox_on_client(ctx, j, events);
}

void sandbox_watches_init(Job *j)
{
        j->w_ctl = (DispatchWatch){on_ctl_event, j};
        j->w_out = (DispatchWatch){on_out_event, j};
        j->w_err = (DispatchWatch){on_err_event, j};
        j->w_client = (DispatchWatch){on_client_event, j};
}
