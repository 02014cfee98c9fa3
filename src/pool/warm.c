/* The warm pool's choices (see executor.c): which warm sandbox a request takes, and what the
 * next warm sandbox is to be (from the plot zygote or not, with the learned prefault set
 * or not), from hints in the recent scripts' text. */
#include <string.h>

#include "pool/internal.h"
#include "util/macro.h"

/* The learned prefault set (ZYGOTE_SPAWN_PREFAULT) costs every warm sandbox ~3 ms of CPU
 * and saves a pandas request ~2.5 ms of latency at ~0.3 ms of CPU; a request that does not
 * use pandas gains nothing. Measured (docs/PERFORMANCE.md), it pays when more than about 60
 * % of requests use pandas: warm sandboxes take it while a moving average (the last ~16
 * requests) of the scripts that name pandas is above 2/3. A hint, not a guarantee: a
 * comment that says pandas only costs CPU. */
#define SHARE_ONE             65536u
#define PANDAS_SHARE_PREFAULT (SHARE_ONE * 2 / 3)
#define SHARE_WEIGHT_SH       4 /* each request weighs 1/16 */

/* One request in a moving average of the share of requests that have some trait. */
static void share_note(uint32_t *share, bool has)
{
        *share -= *share >> SHARE_WEIGHT_SH;
        if (has)
                *share += SHARE_ONE >> SHARE_WEIGHT_SH;
}

/* Plots: a script that names matplotlib is for the plot zygote (zygotes.c). The pool holds
 * plot sandboxes in proportion to the recent share of such scripts (the same moving
 * average), at least one while more than 1/8 of them are (with a pool of two or more): a
 * cold one costs such a request its clone and set-up (~13 ms here, back to back), where a
 * plain warm one would cost it the import of matplotlib (~380 ms). */
#define PLOT_SHARE_WARM (SHARE_ONE / 8)

void warm_note_hints(Executor *ex, Job *q)
{
        bool pandas = memmem(q->script, q->script_len, "pandas", 6) != NULL;

        if (q->hinted)
                return;
        q->hinted = true;
        q->plot = ex->n_lanes > ex->n_plain && memmem(q->script, q->script_len, CONFIG_PLOT_MODULE,
                                                      sizeof(CONFIG_PLOT_MODULE) - 1) != NULL;
        ex->plot_wanted = ex->plot_wanted || q->plot;
        share_note(&ex->pandas_share, pandas);
        share_note(&ex->plot_share, q->plot);
}

static bool usable(const Job *j)
{
        /* A killed one may have exited before its descriptors' EOF: then no kill is marked. */
        return j && j->state == JOB_READY && j->kill == JOB_NOT_KILLED && !j->exited &&
               j->end == EXEC_END_NORMAL;
}

Job *warm_ready(Executor *ex)
{
        for (unsigned i = 0; i < ex->n_slots; i++)
                if (usable(ex->slots[i]))
                        return ex->slots[i];
        return NULL;
}

/* True if a slot is about to be free: its sandbox was killed, or answered and is exiting. */
static bool slot_freeing(const Executor *ex)
{
        for (unsigned i = 0; i < ex->n_slots; i++) {
                const Job *j = ex->slots[i];
                if (j && (j->kill != JOB_NOT_KILLED || j->phase != JOB_LIVE))
                        return true;
        }
        return false;
}

/* The warm sandbox for request q: one of its own kind (plot or not) if any is ready. A
 * plain script takes a plot one rather than wait for a cold sandbox. A plot script takes a
 * plain one only when no plot sandbox can be had soon: with the plot zygote up it is
 * spawned one (NULL), or, when no slot is free but one is about to be (*ret_wait: the
 * previous request's sandbox still exits after its answer), it waits for that slot. A
 * plain sandbox would cost it the import of matplotlib (~400 ms), the wait ~2 ms. */
Job *warm_for(Executor *ex, const Job *q, bool can_spawn, bool *ret_wait)
{
        Job *other = NULL;

        *ret_wait = false;
        for (unsigned i = 0; i < ex->n_slots; i++) {
                Job *j = ex->slots[i];
                if (!usable(j))
                        continue;
                if (j->plot == q->plot)
                        return j;
                other = other ? other : j;
        }
        if (q->plot && zygote_plot(ex) && (can_spawn || slot_freeing(ex))) {
                *ret_wait = !can_spawn;
                return NULL;
        }
        return other;
}

/* How many of the pool's sandboxes are to come from the plot zygote (see PLOT_SHARE_WARM). */
static unsigned plot_target(Executor *ex)
{
        unsigned pool = ex->cfg->pool_size, n;

        if (ex->plot_share <= PLOT_SHARE_WARM || !zygote_plot(ex))
                return 0;
        n = (unsigned) (((uint64_t) pool * ex->plot_share + SHARE_ONE / 2) / SHARE_ONE);
        return pool >= 2 ? MAX(n, 1u) : n;
}

/* Whether the next warm sandbox is to come from the plot zygote. */
bool warm_plot_wanted(Executor *ex)
{
        unsigned n = 0;

        for (unsigned i = 0; i < ex->n_slots; i++)
                n += ex->slots[i] && ex->slots[i]->origin == JOB_WARM && ex->slots[i]->plot &&
                     ex->slots[i]->kill == JOB_NOT_KILLED;
        return n < plot_target(ex);
}

/* Plots became more frequent while the pool is full: a plain sandbox (ready, not adopted)
 * makes room for a plot one, one at a time. */
void warm_plot_make_room(Executor *ex)
{
        Job *victim = NULL;

        if (ex->warm < ex->cfg->pool_size || !warm_plot_wanted(ex))
                return;
        for (unsigned i = 0; i < ex->n_slots; i++) {
                Job *j = ex->slots[i];
                if (!j || j->origin != JOB_WARM)
                        continue;
                if (j->kill != JOB_NOT_KILLED)
                        return; /* one is going already */
                if (!victim && j->state == JOB_READY && !j->plot)
                        victim = j;
        }
        if (victim)
                job_fail(ex, victim, "replaced by a plot sandbox", ESTALE);
}

bool warm_prefault_wanted(const Executor *ex)
{
        return ex->pandas_share > PANDAS_SHARE_PREFAULT;
}
