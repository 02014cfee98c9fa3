/* See metrics.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics/metrics.h"
#include "util/buf.h"
#include "util/macro.h"

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,   0.5,   1,      2.5,   5,    10,    30};
#define N_BUCKETS ELEMENTSOF(buckets)

static const char *const endpoint_names[_ENDPOINT_MAX] = {
        [ENDPOINT_EXECUTE] = "/execute", [ENDPOINT_HEALTH] = "/health", [ENDPOINT_READY] = "/ready",
        [ENDPOINT_METRICS] = "/metrics", [ENDPOINT_OTHER] = "other",
};

struct Metrics {
        atomic_ullong requests[_ENDPOINT_MAX][_API_CODE_MAX];
        atomic_ullong bucket[N_BUCKETS + 1]; /* the last is +Inf */
        atomic_ullong sum_usec;
        atomic_ullong count;
        atomic_ullong bytes[_METRICS_BYTES_MAX];
};

Metrics *metrics_new(void)
{
        return calloc(1, sizeof(Metrics));
}

void metrics_free(Metrics *m)
{
        free(m);
}

void metrics_observe(Metrics *m, MetricsEndpoint e, ApiCode code, double seconds)
{
        if ((unsigned) e >= _ENDPOINT_MAX || (unsigned) code >= _API_CODE_MAX)
                return;
        atomic_fetch_add_explicit(&m->requests[e][code], 1, memory_order_relaxed);
        if (e != ENDPOINT_EXECUTE)
                return;
        size_t i = 0;
        while (i < N_BUCKETS && seconds > buckets[i])
                i++;
        atomic_fetch_add_explicit(&m->bucket[i], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->sum_usec, (unsigned long long) (seconds * 1e6),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

void metrics_add_bytes(Metrics *m, MetricsBytes which, unsigned long long n)
{
        if ((unsigned) which < _METRICS_BYTES_MAX && n > 0)
                atomic_fetch_add_explicit(&m->bytes[which], n, memory_order_relaxed);
}

static int add(Buf *b, const char *fmt, ...) _printf_(2, 3);

static int add(Buf *b, const char *fmt, ...)
{
        char line[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof(line))
                return -EINVAL;
        return buf_append(b, line, (size_t) n) < 0 ? -ENOMEM : 0;
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

int metrics_render(const Metrics *m, const ExecutorStats *st, char **ret, size_t *ret_len)
{
        Buf b;
        unsigned long long cum = 0;
        int r = 0;

        buf_init(&b, 1 << 20);
        r |= add(&b, "# HELP pyexecd_requests_total HTTP requests answered, by endpoint and "
                     "result code.\n# TYPE pyexecd_requests_total counter\n");
        for (int e = 0; e < _ENDPOINT_MAX; e++)
                for (int c = 0; c < _API_CODE_MAX; c++) {
                        unsigned long long v = LOAD(m->requests[e][c]);
                        if (v)
                                r |= add(&b,
                                         "pyexecd_requests_total{endpoint=\"%s\",code=\"%s\"} "
                                         "%llu\n",
                                         endpoint_names[e], api_code_name((ApiCode) c), v);
                }
        r |= add(&b, "# HELP pyexecd_request_duration_seconds Time from request to response of "
                     "POST /execute.\n# TYPE pyexecd_request_duration_seconds histogram\n");
        for (size_t i = 0; i <= N_BUCKETS; i++) {
                cum += LOAD(m->bucket[i]);
                if (i < N_BUCKETS)
                        r |= add(&b, "pyexecd_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                                 buckets[i], cum);
                else
                        r |= add(&b, "pyexecd_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                                 cum);
        }
        r |= add(&b, "pyexecd_request_duration_seconds_sum %.6f\n",
                 (double) LOAD(m->sum_usec) / 1e6);
        r |= add(&b, "pyexecd_request_duration_seconds_count %llu\n", LOAD(m->count));

        static const struct {
                const char *name, *type, *help;
                size_t offset;
        } stats[] = {
                {"pyexecd_queue_depth", "gauge", "Requests waiting for a sandbox.",
                 offsetof(ExecutorStats, queued)},
                {"pyexecd_sandboxes_in_use", "gauge", "Sandboxes serving a request.",
                 offsetof(ExecutorStats, busy)},
                {"pyexecd_sandboxes_warm", "gauge", "Warm sandboxes ready for a request.",
                 offsetof(ExecutorStats, warm_ready)},
                {"pyexecd_sandbox_setup_failures_total", "counter",
                 "Sandboxes that failed a set-up stage (nothing ran in them).",
                 offsetof(ExecutorStats, setup_failures)},
                {"pyexecd_oom_kills_total", "counter", "Scripts stopped by the memory cgroup.",
                 offsetof(ExecutorStats, oom_kills)},
                {"pyexecd_timeouts_total", "counter", "Scripts killed at their time limit.",
                 offsetof(ExecutorStats, timeouts)},
                {"pyexecd_zygote_restarts_total", "counter",
                 "Zygotes started after the first of each lane (replacements and restarts "
                 "after a crash).",
                 offsetof(ExecutorStats, zygote_starts)},
                {"pyexecd_zygotes_up", "gauge",
                 "Zygotes serving (--zygotes, and the plot zygote once started).",
                 offsetof(ExecutorStats, zygotes_up)},
        };
        static const struct {
                const char *name, *help;
        } bytes[_METRICS_BYTES_MAX] = {
                [METRICS_BYTES_FILES_IN] = {"pyexecd_input_file_bytes_total",
                                            "Bytes of input files (\"files\") sent to scripts."},
                [METRICS_BYTES_STDIN] = {"pyexecd_stdin_bytes_total",
                                         "Bytes of stdin sent to scripts."},
                [METRICS_BYTES_FILES_OUT] = {"pyexecd_output_file_bytes_total",
                                             "Bytes of files returned (\"return_files\")."},
                [METRICS_BYTES_FIGURES] = {"pyexecd_figure_bytes_total",
                                           "Bytes of PNG figures returned (\"figures\")."},
        };
        for (size_t i = 0; i < _METRICS_BYTES_MAX; i++)
                r |= add(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", bytes[i].name,
                         bytes[i].help, bytes[i].name, bytes[i].name, LOAD(m->bytes[i]));
        for (size_t i = 0; i < ELEMENTSOF(stats); i++) {
                unsigned long long v =
                        *(const unsigned long long *) (const void *) ((const char *) st +
                                                                      stats[i].offset);
                r |= add(&b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", stats[i].name, stats[i].help,
                         stats[i].name, stats[i].type, stats[i].name, v);
        }
        if (r != 0 || !buf_cstr(&b)) {
                buf_free(&b);
                return -ENOMEM;
        }
        *ret = b.data;
        *ret_len = b.len;
        return 0;
}
