/* A job's life after the loop made it: killing it, ending it for a reason, handing its
 * outcome to the request's owner (job_answer) and releasing its slot once the sandbox is
 * reaped (job_retire). Every process of a job is killed before it is answered. */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool/internal.h"
#include "util/clock.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"

Job *job_new(Executor *ex)
{
        Job *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        j->pidfd = j->ctl = j->out = j->err = -EBADF;
        sandbox_watches_init(j);
        j->client_fd = -EBADF;
        buf_init(&j->out_buf, ex->cfg->output_limit);
        buf_init(&j->err_buf, ex->cfg->output_limit);
        buf_init(&j->frame, FRAME_HEAD + ex->cfg->result_limit + FRAME_HEADER_ALLOWANCE);
        return j;
}

void job_free(Job *j)
{
        if (!j)
                return;
        free(j->script);
        free(j->input);
        buf_free(&j->out_buf);
        buf_free(&j->err_buf);
        buf_free(&j->frame);
        free(j);
}

/* Stops watching and closes one of a job's descriptors. */
void job_close_fd(Executor *ex, int *fd)
{
        if (*fd < 0)
                return;
        (void) epoll_ctl(ex->epfd, EPOLL_CTL_DEL, *fd, NULL);
        *fd = safe_close(*fd);
}

/* True if, once PID 1 has a SIGKILL queued, no task of the job can run another user
 * instruction: PID 1 is the only task its slot's cgroup holds. The argument (v1, or v2
 * before cgroup.kill):
 * - the pids controller charges a task to the cgroup from before it exists (a fork under
 *   way, counted before copy_process can still fail) until it is released (reaped); every
 *   thread is a task. A sandbox cannot leave its cgroup: it has no cgroupfs, no privilege
 *   and no clone3 (CLONE_INTO_CGROUP). The slot holds no other job's tasks (it is reused
 *   only after this job's reap). So a count of 1 read now is PID 1 alone.
 * - SIGKILL to a process queues it on each of its threads under the siglock; a fork
 *   finishing after that fails (copy_process checks for a pending signal under the same
 *   lock), and a task with SIGKILL queued never returns to user mode.
 * - PID 1 is not yet reaped (the zygote has not said so), so the count includes it: 0
 *   means the whole sandbox is already released. */
static bool job_pid1_alone(const Executor *ex, const Job *j)
{
        uint64_t tasks;

        return ex->cgroups && cgroup_pids_current(ex->cgroups, j->slot, &tasks) == 0 && tasks <= 1;
}

/* SIGKILLs every process of the job. With cgroup.kill, all of them at once: none runs
 * another instruction after this returns (the kernel has queued the signal on each and
 * kicked those running), so the request may be answered now. Without it, PID 1 through
 * its pidfd (no pid-reuse race); with a pid namespace its exit kills the rest, so the
 * request is answered only once it is reaped, unless PID 1 was the last task left: then
 * that one SIGKILL reached them all (job_pid1_alone). */
void job_kill(Executor *ex, Job *j)
{
        if (j->kill != JOB_NOT_KILLED || j->pidfd < 0 || j->exited)
                return;
        if (ex->kill_at_once) {
                int r = cgroup_kill(ex->cgroups, j->slot);
                if (r < 0)
                        log_errno(LOG_LEVEL_ERROR, -r, j->request_id,
                                  "Failed to kill the cgroup of sandbox %d", (int) j->pid);
                j->kill = r == 0 ? JOB_KILLED_ALL : JOB_KILLED_PID1;
        }
        if (syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0) < 0) {
                if (errno != ESRCH)
                        log_errno(LOG_LEVEL_ERROR, errno, j->request_id,
                                  "Failed to kill sandbox %d", (int) j->pid);
        } else if (j->kill == JOB_NOT_KILLED && job_pid1_alone(ex, j)) {
                j->kill = JOB_KILLED_ALL;
        }
        if (j->kill == JOB_NOT_KILLED)
                j->kill = JOB_KILLED_PID1;
}

/* Ends a job for a reason of the service (not of the script). */
void job_fail(Executor *ex, Job *j, const char *what, int err)
{
        if (j->end == EXEC_END_NORMAL) {
                j->end = EXEC_END_INTERNAL;
                j->internal_what = what;
                j->internal_errno = err < 0 ? -err : err;
        }
        job_kill(ex, j);
}

void job_end(Executor *ex, Job *j, ExecEnd end)
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
bool job_frame_complete(const Job *j, const char **ret_frame, size_t *ret_len)
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
static void job_answer(Executor *ex, Job *j)
{
        ExecOutcome o = {
                .end = j->end,
                .request_id = j->request_id,
                .have_status = j->exited && j->wait_status >= 0,
                .wait_status = j->wait_status,
                .setup_stage = sandbox_stage_name(j->hello.stage),
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
                .return_files = j->return_files,
                .max_output_files = j->max_output_files,
                .output_files_limit = j->output_files_limit,
                .result_limit = ex->cfg->result_limit,
        };
        uint64_t end_usec = j->finished_usec ? j->finished_usec : now_usec();

        o.script_started = job_acked(j);
        o.input_no_space = !o.script_started && o.have_status && WIFEXITED(o.wait_status) &&
                           WEXITSTATUS(o.wait_status) == SANDBOX_EXIT_NO_SPACE;
        if (o.end == EXEC_END_NORMAL && !o.script_started && !o.input_no_space) {
                /* Only the service's code ran: its failure, whatever the exit looks like. */
                o.internal_what = o.have_status ? sandbox_exit_stage(o.wait_status)
                                                : "before acknowledging its job";
                log_event(LOG_LEVEL_ERROR, j->request_id, NULL,
                          "Sandbox %d ended %s (wait status %#x); the script was not run",
                          (int) j->pid, o.internal_what, (unsigned) o.wait_status);
        }
        o.frame_complete = job_frame_complete(j, &o.frame, &o.frame_len);
        if (!o.frame_complete && o.script_started && j->frame.len > FRAME_HEAD) {
                /* Cut short (killed, or the script wrote to the channel itself): whatever
                 * came after the length is handed over, to be judged as such. */
                o.frame = j->frame.data + FRAME_HEAD;
                o.frame_len = j->frame.len - FRAME_HEAD;
        }
        if (j->started_usec) {
                o.duration_ms = (double) (end_usec - j->started_usec) / 1000.0;
                if (j->origin != JOB_ADOPTED)
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
        assert(j->phase == JOB_LIVE);
        j->phase = JOB_ANSWERED;
        if (j->state != JOB_QUEUED && j->origin != JOB_WARM) {
                assert(ex->busy > 0);
                ex->busy--;
        }
        /* Counted free before the owner hears of it: an owner that submits again at once
         * (or a start-up that opens the port next) must not find the request still
         * admitted or the gauges still showing it. */
        (void) pthread_mutex_lock(&ex->lock);
        assert(ex->admitted > 0);
        ex->admitted--;
        (void) pthread_mutex_unlock(&ex->lock);
        executor_publish(ex);
        /* The byte ranges go with the outcome: the owner builds the response on its own
         * thread. What the sandbox still writes after this is dropped. */
        o.owned[0] = buf_steal(&j->frame);
        o.owned[1] = buf_steal(&j->out_buf);
        o.owned[2] = buf_steal(&j->err_buf);
        j->done(&o, j->userdata);
}

/* The sandbox is reaped and its descriptors are closed: release its slot. */
void job_retire(Executor *ex, Job *j)
{
        if (j->done && j->phase == JOB_LIVE)
                job_answer(ex, j);

        job_close_fd(ex, &j->ctl);
        job_close_fd(ex, &j->out);
        job_close_fd(ex, &j->err);
        j->pidfd = safe_close(j->pidfd);
        if (j->state != JOB_QUEUED) {
                ex->slots[j->slot] = NULL;
                assert(ex->running > 0);
                ex->running--;
                if (j->origin == JOB_WARM) {
                        assert(ex->warm > 0);
                        ex->warm--;
                }
        }
        if (j->zygote) {
                assert(j->zygote->jobs > 0);
                j->zygote->jobs--;
                zygote_maybe_retire(ex, j->zygote);
        }
        assert(j->phase != JOB_RETIRED);
        j->phase = JOB_RETIRED;
        j->next = ex->graveyard;
        ex->graveyard = j;
}

/* Reads what is available on one stream into its buffer. Returns true at EOF. */
bool job_drain(int fd, Buf *b, bool *ret_over)
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

void job_maybe_finish(Executor *ex, Job *j)
{
        const char *frame;
        size_t len;

        if (j->phase == JOB_RETIRED || j->state == JOB_SPAWNING)
                return; /* the zygote still owes us an answer */

        /* A complete frame ends the job: the harness sends it last, after killing and
         * reaping everything else the script started, and exits. But the script can write
         * one itself (nothing in its process can be trusted) and go on running, so every
         * process of the job is killed here, before anything is answered. When that kill
         * reached all of them at once (cgroup.kill, or PID 1 alone), the answer goes now, and the
         * exit (tearing down a copy of the 64 MiB image) is off the request path; the slot is
         * released only once the sandbox is reaped. Otherwise the answer waits for that
         * reap. Output written before the frame is already in the pipes. */
        if (j->phase == JOB_LIVE && j->done && j->end == EXEC_END_NORMAL &&
            j->state == JOB_RUNNING && job_frame_complete(j, &frame, &len)) {
                job_kill(ex, j); /* response.c does not read this SIGKILL as a crash */
                if (j->kill == JOB_KILLED_ALL) {
                        bool over = false;
                        if (j->out >= 0 && job_drain(j->out, &j->out_buf, &over))
                                job_close_fd(ex, &j->out);
                        if (j->err >= 0 && job_drain(j->err, &j->err_buf, &over))
                                job_close_fd(ex, &j->err);
                        if (!j->finished_usec)
                                j->finished_usec = now_usec();
                        if (over)
                                j->end = EXEC_END_OUTPUT_LIMIT;
                        job_answer(ex, j);
                }
        }
        if (j->exited && j->ctl < 0 && j->out < 0 && j->err < 0)
                job_retire(ex, j);
}
