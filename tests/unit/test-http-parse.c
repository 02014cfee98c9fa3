/* Unit tests for http/parse: the strict request framing. Every message that two
 * implementations could frame differently must be refused (that is what makes request
 * smuggling impossible through a proxy in front of us), and every valid one must parse
 * the same whether its bytes arrive at once or one at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/parse.h"

typedef struct Parsed {
        char buf[HTTP_HEAD_MAX + 1024];
        HttpHead head;
        HttpError err;
        long len; /* of the head; -1 refused, 0 incomplete */
} Parsed;

/* Scans `raw` one byte at a time (the worst a client can do), then parses the head. */
static Parsed *parse(const char *raw)
{
        Parsed *p = calloc(1, sizeof(*p));
        size_t n = strlen(raw);
        HttpScan s = {0};

        assert_non_null(p);
        assert_true(n < sizeof(p->buf));
        memcpy(p->buf, raw, n);
        for (size_t i = 1; i <= n && p->len == 0; i++)
                p->len = http_scan_head(&s, p->buf, i, &p->err);
        if (p->len > 0 && http_parse_head(&s, p->buf, (size_t) p->len, &p->head, &p->err) < 0)
                p->len = -1;
        return p;
}

static void assert_refused(const char *raw, unsigned status)
{
        Parsed *p = parse(raw);
        if (p->len != -1)
                fail_msg("accepted: %s", raw);
        assert_int_equal(p->err.status, status);
        assert_non_null(p->err.message);
        free(p);
}

static void test_a_plain_request(void **state)
{
        static const char raw[] = "\r\nPOST /execute?x=1 HTTP/1.1\r\nHost: a\r\n"
                                  "Content-Length: 12\r\nX-Empty:\r\nX-Pad:  \t v a \t\r\n\r\nbody";
        Parsed *p = parse(raw);

        assert_int_equal(p->len, (long) strlen(raw) - 4); /* "body" is not the head's */
        assert_string_equal(p->head.method, "POST");
        assert_string_equal(p->head.path, "/execute");
        assert_int_equal(p->head.minor, 1);
        assert_int_equal(p->head.body, HTTP_BODY_LENGTH);
        assert_int_equal(p->head.content_length, 12);
        assert_false(p->head.close);
        assert_string_equal(http_field(&p->head, "host"), "a");
        assert_string_equal(http_field(&p->head, "X-EMPTY"), "");
        assert_string_equal(http_field(&p->head, "x-pad"), "v a");
        assert_null(http_field(&p->head, "X-None"));
        free(p);
}

static void test_connection_semantics(void **state)
{
        Parsed *p = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n");
        assert_true(p->head.close);
        free(p);
        p = parse("GET / HTTP/1.0\r\n\r\n"); /* HTTP/1.0: no Host needed, never kept alive */
        assert_true(p->len > 0);
        assert_true(p->head.close);
        free(p);
        p = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n"
                  "Expect: 100-continue\r\n\r\n");
        assert_int_equal(p->head.body, HTTP_BODY_CHUNKED);
        assert_true(p->head.expect_continue);
        free(p);
}

static void test_absolute_form(void **state)
{
        Parsed *p = parse("GET http://example.com:80/health?q HTTP/1.1\r\nHost: e\r\n\r\n");
        assert_string_equal(p->head.path, "/health");
        free(p);
        p = parse("GET HTTPS://example.com HTTP/1.1\r\nHost: e\r\n\r\n");
        assert_string_equal(p->head.path, "/");
        free(p);
        assert_refused("GET * HTTP/1.1\r\nHost: e\r\n\r\n", 400);
        assert_refused("GET ftp://e/x HTTP/1.1\r\nHost: e\r\n\r\n", 400);
        assert_refused("GET http:///x HTTP/1.1\r\nHost: e\r\n\r\n", 400);
}

static void test_framing_conflicts(void **state)
{
        assert_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n",
                       400);
        assert_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                       "Content-Length: 5\r\n\r\n",
                       400);
        assert_refused(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                400);
        assert_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n",
                       400);
        assert_refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
}

static void test_bad_lengths_and_codings(void **state)
{
        static const char *const lengths[] = {"5, 5",
                                              "+5",
                                              "-1",
                                              "4 0",
                                              "",
                                              "0x10",
                                              "9223372036854775808",
                                              "99999999999999999999"};
        static const char *const codings[] = {"gzip, chunked", "chunked, chunked", "xchunked",
                                              "chunked;x",     "identity",         ""};
        char raw[256];

        for (size_t i = 0; i < sizeof(lengths) / sizeof(*lengths); i++) {
                (void) snprintf(raw, sizeof(raw),
                                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n",
                                lengths[i]);
                assert_refused(raw, 400);
        }
        for (size_t i = 0; i < sizeof(codings) / sizeof(*codings); i++) {
                (void) snprintf(raw, sizeof(raw),
                                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
                                codings[i]);
                assert_refused(raw, 400);
        }
        Parsed *p =
                parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n");
        assert_int_equal(p->head.content_length, INT64_MAX);
        free(p);
}

static void test_malformed_lines(void **state)
{
        assert_refused("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n", 400); /* obs-fold */
        assert_refused("GET / HTTP/1.1\r\nHost: a\r\n\tX: b\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\nHost: a\n\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost: a\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01 b\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", 400);
        assert_refused("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
        assert_refused("GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400);
        assert_refused("GET /\r\nHost: a\r\n\r\n", 400);
        assert_refused("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
        assert_refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
        assert_refused("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505);
        assert_refused("GET / http/1.1\r\nHost: a\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\n\r\n", 400);
        assert_refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
}

static void test_later_minor_is_1_1(void **state)
{
        Parsed *p = parse("GET / HTTP/1.7\r\nHost: a\r\n\r\n");
        assert_true(p->len > 0);
        assert_int_equal(p->head.minor, 1);
        free(p);
}

static void test_obs_text_is_a_value(void **state)
{
        Parsed *p = parse("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n");
        assert_string_equal(http_field(&p->head, "X"), "caf\xc3\xa9");
        free(p);
}

static void test_nul_in_the_head(void **state)
{
        static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
        static const char line[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
        char buf[sizeof(raw)];
        HttpScan s = {0};
        HttpHead h;
        HttpError err;
        long n;

        memcpy(buf, raw, sizeof(raw));
        n = http_scan_head(&s, buf, sizeof(raw) - 1, &err);
        assert_int_equal(n, (long) sizeof(raw) - 1);
        assert_int_equal(http_parse_head(&s, buf, (size_t) n, &h, &err), -1);
        memcpy(buf, line, sizeof(line));
        s = (HttpScan){0};
        n = http_scan_head(&s, buf, sizeof(line) - 1, &err);
        assert_int_equal(http_parse_head(&s, buf, (size_t) n, &h, &err), -1);
}

static void test_limits(void **state)
{
        char *raw = malloc(HTTP_HEAD_MAX + 200);
        size_t n;

        assert_non_null(raw);
        n = (size_t) sprintf(raw, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
        memset(raw + n, 'x', HTTP_HEAD_MAX);
        strcpy(raw + n + HTTP_HEAD_MAX, "\r\n\r\n");
        assert_refused(raw, 431);
        n = (size_t) sprintf(raw, "GET / HTTP/1.1\r\nHost: a\r\n");
        for (int i = 0; i < HTTP_FIELDS_MAX; i++)
                n += (size_t) sprintf(raw + n, "X%d: y\r\n", i);
        strcpy(raw + n, "\r\n");
        assert_refused(raw, 431);
        free(raw);
}

/* ---- chunked --------------------------------------------------------------------- */

/* Decodes `raw` in pieces of `step` bytes; returns the consumed length or -1. */
static long dechunk(const char *raw, size_t step, Buf *out, size_t limit, HttpError *err)
{
        HttpChunked c = {0};
        size_t n = strlen(raw), at = 0;
        bool done = false;

        buf_init(out, limit);
        while (at < n && !done) {
                size_t k = n - at < step ? n - at : step;
                long r = http_chunked_feed(&c, raw + at, k, out, &done, err);
                if (r < 0)
                        return -1;
                at += (size_t) r;
                if ((size_t) r < k && !done)
                        fail_msg("consumed %ld of %zu without finishing", r, k);
        }
        return done ? (long) at : 0;
}

static void test_chunked_valid(void **state)
{
        static const char raw[] = "5\r\nhello\r\n1;ext=\"v\"\r\n \r\nA ; e\r\n0123456789\r\n"
                                  "0\r\nX-Trailer: 1\r\nContent-Length: 5\r\n\r\nNEXT";
        for (size_t step = 1; step <= sizeof(raw); step++) {
                Buf b;
                HttpError err;
                long r = dechunk(raw, step, &b, 1024, &err);
                assert_int_equal(r, (long) strlen(raw) - 4);
                assert_int_equal(b.len, 16);
                assert_memory_equal(b.data, "hello 0123456789", 16);
                buf_free(&b);
        }
}

static void test_chunked_invalid(void **state)
{
        static const char *const bad[] = {
                "zz\r\nx\r\n0\r\n\r\n",
                "-1\r\nx\r\n0\r\n\r\n",
                " 5\r\nhello\r\n0\r\n\r\n",
                "5 \r\nhello\r\n0\r\n\r\n",
                "5\nhello\r\n0\r\n\r\n",
                "5\r\nhello\n0\r\n\r\n",
                "5\r\nhelloX\r\n0\r\n\r\n",
                "5\r\nhello\r\n0\r\n\n",
                "5\rhello\r\n0\r\n\r\n",
                "10000000000000000\r\n",
                "8000000000000000\r\n",
                "0\r\n X: folded\r\n\r\n",
                "0\r\nX : y\r\n\r\n",
                "0\r\nX: a\x01\r\n\r\n",
                "5;a\x01\r\nhello\r\n0\r\n\r\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                Buf b;
                HttpError err = {0};
                if (dechunk(bad[i], 1, &b, 1024, &err) != -1)
                        fail_msg("accepted chunked body #%zu", i);
                assert_int_equal(err.status, 400);
                buf_free(&b);
        }
}

static void test_chunked_over_the_limit(void **state)
{
        Buf b;
        HttpError err;

        assert_true(dechunk("a\r\n0123456789\r\n0\r\n\r\n", 3, &b, 4, &err) > 0);
        assert_true(b.truncated);
        assert_int_equal(b.len, 4);
        buf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_plain_request),
                cmocka_unit_test(test_connection_semantics),
                cmocka_unit_test(test_absolute_form),
                cmocka_unit_test(test_framing_conflicts),
                cmocka_unit_test(test_bad_lengths_and_codings),
                cmocka_unit_test(test_malformed_lines),
                cmocka_unit_test(test_later_minor_is_1_1),
                cmocka_unit_test(test_obs_text_is_a_value),
                cmocka_unit_test(test_nul_in_the_head),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_chunked_valid),
                cmocka_unit_test(test_chunked_invalid),
                cmocka_unit_test(test_chunked_over_the_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
