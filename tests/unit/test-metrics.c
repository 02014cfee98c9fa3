/* Unit tests for metrics: the Prometheus text GET /metrics serves. What matters is that
 * every observation lands in the right series, that the histogram is cumulative with
 * bucket bounds that include their edge (le), that out-of-range input is ignored rather
 * than written out of bounds, and that the executor's gauges appear as given. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/metrics.h"

/* The value of the series named exactly `series` (with its labels), or -1 if absent. */
static long long value_of(const char *text, const char *series)
{
        size_t n = strlen(series);

        for (const char *line = text; *line;) {
                const char *end = strchr(line, '\n');
                if (!end)
                        end = line + strlen(line);
                if ((size_t) (end - line) > n && strncmp(line, series, n) == 0 && line[n] == ' ')
                        return strtoll(line + n + 1, NULL, 10);
                line = *end ? end + 1 : end;
        }
        return -1;
}

static char *render(const Metrics *m, const ExecutorStats *st)
{
        char *text = NULL;
        size_t len = 0;

        assert_int_equal(metrics_render(m, st, &text, &len), 0);
        assert_non_null(text);
        assert_int_equal(strlen(text), len);
        assert_int_equal(text[len - 1], '\n');
        return text;
}

static void test_counts_by_endpoint_and_code(void **state)
{
        Metrics *m = metrics_new();
        ExecutorStats st = {0};
        char *text;
        (void) state;

        assert_non_null(m);
        metrics_observe(m, ENDPOINT_EXECUTE, API_OK, 0.002);
        metrics_observe(m, ENDPOINT_EXECUTE, API_OK, 0.003);
        metrics_observe(m, ENDPOINT_EXECUTE, API_TIMEOUT, 5.0);
        metrics_observe(m, ENDPOINT_HEALTH, API_OK, 0.0001);
        /* Out of range: ignored, not written past the tables. */
        metrics_observe(m, _ENDPOINT_MAX, API_OK, 1);
        metrics_observe(m, (MetricsEndpoint) -1, API_OK, 1);
        metrics_observe(m, ENDPOINT_EXECUTE, _API_CODE_MAX, 1);
        text = render(m, &st);

        assert_int_equal(
                value_of(text, "pyexecd_requests_total{endpoint=\"/execute\",code=\"OK\"}"), 2);
        assert_int_equal(
                value_of(text, "pyexecd_requests_total{endpoint=\"/execute\",code=\"TIMEOUT\"}"),
                1);
        assert_int_equal(value_of(text, "pyexecd_requests_total{endpoint=\"/health\",code=\"OK\"}"),
                         1);
        /* A series never observed is not written. */
        assert_int_equal(value_of(text, "pyexecd_requests_total{endpoint=\"/ready\",code=\"OK\"}"),
                         -1);
        /* Only /execute feeds the histogram. */
        assert_int_equal(value_of(text, "pyexecd_request_duration_seconds_count"), 3);
        assert_non_null(strstr(text, "pyexecd_request_duration_seconds_sum 5.005000\n"));
        free(text);
        metrics_free(m);
}

static void test_histogram_is_cumulative_and_includes_its_edge(void **state)
{
        Metrics *m = metrics_new();
        ExecutorStats st = {0};
        char *text;
        (void) state;

        metrics_observe(m, ENDPOINT_EXECUTE, API_OK, 0.001);  /* on the edge: le="0.001" */
        metrics_observe(m, ENDPOINT_EXECUTE, API_OK, 0.0011); /* next bucket */
        metrics_observe(m, ENDPOINT_EXECUTE, API_OK, 31);     /* beyond the last: +Inf only */
        text = render(m, &st);
        assert_int_equal(value_of(text, "pyexecd_request_duration_seconds_bucket{le=\"0.0005\"}"),
                         0);
        assert_int_equal(value_of(text, "pyexecd_request_duration_seconds_bucket{le=\"0.001\"}"),
                         1);
        assert_int_equal(value_of(text, "pyexecd_request_duration_seconds_bucket{le=\"0.0025\"}"),
                         2);
        assert_int_equal(value_of(text, "pyexecd_request_duration_seconds_bucket{le=\"30\"}"), 2);
        assert_int_equal(value_of(text, "pyexecd_request_duration_seconds_bucket{le=\"+Inf\"}"), 3);
        assert_int_equal(value_of(text, "pyexecd_request_duration_seconds_count"), 3);
        free(text);
        metrics_free(m);
}

static void test_executor_stats_as_given(void **state)
{
        Metrics *m = metrics_new();
        ExecutorStats st = {.queued = 1,
                            .busy = 2,
                            .warm_ready = 3,
                            .setup_failures = 4,
                            .oom_kills = 5,
                            .timeouts = 6,
                            .zygote_starts = 7,
                            .zygotes_up = 8};
        char *text;
        (void) state;

        text = render(m, &st);
        assert_int_equal(value_of(text, "pyexecd_queue_depth"), 1);
        assert_int_equal(value_of(text, "pyexecd_sandboxes_in_use"), 2);
        assert_int_equal(value_of(text, "pyexecd_sandboxes_warm"), 3);
        assert_int_equal(value_of(text, "pyexecd_sandbox_setup_failures_total"), 4);
        assert_int_equal(value_of(text, "pyexecd_oom_kills_total"), 5);
        assert_int_equal(value_of(text, "pyexecd_timeouts_total"), 6);
        assert_int_equal(value_of(text, "pyexecd_zygote_restarts_total"), 7);
        assert_int_equal(value_of(text, "pyexecd_zygotes_up"), 8);
        assert_non_null(strstr(text, "# TYPE pyexecd_zygotes_up gauge\n"));
        assert_non_null(strstr(text, "# TYPE pyexecd_queue_depth gauge\n"));
        assert_non_null(strstr(text, "# TYPE pyexecd_timeouts_total counter\n"));
        free(text);
        metrics_free(m);
}

static void test_bytes_in_and_out(void **state)
{
        Metrics *m = metrics_new();
        ExecutorStats st = {0};
        char *text;
        (void) state;

        assert_non_null(m);
        text = render(m, &st);
        /* Present from the start, at 0. */
        assert_int_equal(value_of(text, "pyexecd_input_file_bytes_total"), 0);
        assert_int_equal(value_of(text, "pyexecd_output_file_bytes_total"), 0);
        free(text);
        metrics_add_bytes(m, METRICS_BYTES_FILES_IN, 100);
        metrics_add_bytes(m, METRICS_BYTES_FILES_IN, 23);
        metrics_add_bytes(m, METRICS_BYTES_STDIN, 5);
        metrics_add_bytes(m, METRICS_BYTES_FILES_OUT, 7);
        metrics_add_bytes(m, _METRICS_BYTES_MAX, 9); /* ignored */
        text = render(m, &st);
        assert_int_equal(value_of(text, "pyexecd_input_file_bytes_total"), 123);
        assert_int_equal(value_of(text, "pyexecd_stdin_bytes_total"), 5);
        assert_int_equal(value_of(text, "pyexecd_output_file_bytes_total"), 7);
        free(text);
        metrics_free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_counts_by_endpoint_and_code),
                cmocka_unit_test(test_histogram_is_cumulative_and_includes_its_edge),
                cmocka_unit_test(test_executor_stats_as_given),
                cmocka_unit_test(test_bytes_in_and_out),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
