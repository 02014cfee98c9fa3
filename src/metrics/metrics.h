/* Prometheus metrics: counters and a latency histogram updated lock-free by the HTTP
 * threads, rendered in the text exposition format for GET /metrics together with the
 * executor's gauges and counters. */
#pragma once

#include <stddef.h>

#include "api/api.h"
#include "pool/executor.h"

typedef enum MetricsEndpoint {
        ENDPOINT_EXECUTE,
        ENDPOINT_HEALTH,
        ENDPOINT_READY,
        ENDPOINT_METRICS,
        ENDPOINT_OTHER,
        _ENDPOINT_MAX,
} MetricsEndpoint;

typedef struct Metrics Metrics;

Metrics *metrics_new(void);
void metrics_free(Metrics *m);

/* Counts one answered request; `seconds` feeds the latency histogram for /execute. */
void metrics_observe(Metrics *m, MetricsEndpoint e, ApiCode code, double seconds);

/* The bytes a request brought in and its answer took out, besides script and result. */
typedef enum MetricsBytes {
        METRICS_BYTES_FILES_IN, /* input files, decoded */
        METRICS_BYTES_STDIN,
        METRICS_BYTES_FILES_OUT, /* returned files, decoded */
        METRICS_BYTES_FIGURES,   /* returned figures, PNG bytes */
        _METRICS_BYTES_MAX,
} MetricsBytes;

void metrics_add_bytes(Metrics *m, MetricsBytes which, unsigned long long n);

/* Renders every metric. Returns 0 and a malloc'ed text, or -ENOMEM. */
int metrics_render(const Metrics *m, const ExecutorStats *st, char **ret, size_t *ret_len);
