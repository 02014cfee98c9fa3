/* Priorities: the warm pool is background work (see executor.c). Needs the right to raise
 * a priority again (CAP_SYS_NICE), probed once at start; without it nothing is lowered. */
#include <errno.h>
#include <sys/resource.h>

#include "pool/internal.h"
#include "util/log.h"

/* Whether this process may raise a priority again once lowered (CAP_SYS_NICE in the
 * initial user namespace), probed on the calling thread: one step away from its nice value
 * and back, one of the two steps being a raise. Without it warm sandboxes keep the normal
 * priority, since adopt() could not restore it. */
bool priority_can_raise(int *ret_nice)
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

/* The zygote's cloning for the warm pool is background work: at the service's own
 * priority it competes with the requests being answered (on 2 cores it delayed the
 * response of the request whose end triggered the refill by ~1.5 ms). While a request
 * waits for a cold sandbox, that cloning is the request's own work and runs at full
 * priority. The zygote is our child, reaped only by us: its pid cannot be reused. */
void priority_zygote_background(Executor *ex, Zygote *z, bool background)
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

/* A warm sandbox was adopted: it waited (and did its warm-up) in the background; from now
 * on it is the request. It is not reaped yet (we have not seen its EXITED), so the pid is
 * its. */
void priority_adopted(Executor *ex, Job *w)
{
        if (ex->background_warm && setpriority(PRIO_PROCESS, (id_t) w->pid, ex->nice) < 0)
                log_errno(LOG_LEVEL_DEBUG, errno, w->request_id,
                          "cannot raise the priority of sandbox %d", (int) w->pid);
}

/* After each event batch: a serving zygote is background work unless a request waits, in
 * the queue (`queued`: any zygote may be asked for its sandbox) or for a cold sandbox it is
 * cloning. */
void priority_update(Executor *ex, bool queued)
{
        for (unsigned lane = 0; lane < ex->n_lanes; lane++) {
                Zygote *z = ex->lanes[lane].current;
                bool cold = queued;

                if (!z)
                        continue;
                for (unsigned i = 0; i < ex->n_slots && !cold; i++) {
                        const Job *j = ex->slots[i];
                        cold = j && j->state == JOB_SPAWNING && j->origin != JOB_WARM &&
                               j->zygote == z;
                }
                priority_zygote_background(ex, z, !cold);
        }
}
