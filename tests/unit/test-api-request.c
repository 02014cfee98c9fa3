/* Unit tests for api/request: the parser of POST /execute bodies. It is strict, so every
 * malformed body must come back as API_INVALID_REQUEST with a message (never 0, never a
 * negative internal error, never a crash), and a good body must carry exactly the limits
 * the caller asked for, defaulting to the server's maxima. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"

static const RequestLimits LIMITS = {.max_timeout_ms = 10000, .max_memory_mb = 256};
static char errbuf[512];

static ExecRequest parse_ok_n(const char *body, size_t len, const RequestLimits *lim)
{
        ExecRequest req;
        int r;

        errbuf[0] = '\0';
        r = request_parse(body, len, lim, &req, errbuf, sizeof(errbuf));
        if (r != 0)
                fail_msg("request_parse(%s) returned %d: %s", body, r, errbuf);
        assert_non_null(req.script);
        assert_int_equal(req.script[req.script_len], '\0');
        assert_int_equal(strlen(req.script), req.script_len);
        return req;
}

static ExecRequest parse_ok(const char *body, const RequestLimits *lim)
{
        return parse_ok_n(body, strlen(body), lim);
}

static void check_invalid_n(const char *body, size_t len, const RequestLimits *lim)
{
        ExecRequest req, before;
        int r;

        memset(&req, 0x5A, sizeof(req));
        before = req;
        errbuf[0] = '\0';
        r = request_parse(body, len, lim, &req, errbuf, sizeof(errbuf));
        if (r != API_INVALID_REQUEST)
                fail_msg("request_parse(%.200s) returned %d, expected INVALID_REQUEST", body, r);
        if (strlen(errbuf) == 0)
                fail_msg("request_parse(%.200s) gave no message", body);
        /* ret is written only on success. */
        assert_memory_equal(&req, &before, sizeof(req));
}

static void check_invalid(const char *body, const RequestLimits *lim)
{
        check_invalid_n(body, strlen(body), lim);
}

static void test_minimal_body_gets_the_maxima(void **state)
{
        ExecRequest req = parse_ok("{\"script\": \"def main():\\n    return 1\\n\"}", &LIMITS);

        assert_string_equal(req.script, "def main():\n    return 1\n");
        assert_int_equal(req.script_len, strlen("def main():\n    return 1\n"));
        assert_int_equal(req.timeout_ms, 10000);
        assert_int_equal(req.memory_mb, 256);
        request_done(&req);
        assert_null(req.script);
        request_done(&req); /* twice is harmless */
}

static void test_unicode_script_kept_exactly(void **state)
{
        /* Raw UTF-8 and an escaped surrogate pair both arrive as UTF-8 bytes. */
        ExecRequest req =
                parse_ok("{\"script\":\"print('\xC3\xA9\\ud83d\\ude00\\u20ac')\"}", &LIMITS);

        assert_string_equal(req.script, "print('\xC3\xA9\xF0\x9F\x98\x80\xE2\x82\xAC')");
        request_done(&req);
}

static void test_timeout(void **state)
{
        static const struct {
                const char *value;
                uint32_t ms;
        } good[] = {
                {"1.5", 1500},  {"1", 1000},  {"0.25", 250},   {"10", 10000},   {"10.0", 10000},
                {"1e1", 10000}, {"0.001", 1}, {"9.999", 9999}, {"2.5e-1", 250},
        };
        static const char *const invalid[] = {
                "0",    "0.0",   "-0.0", "-1",    "-0.001", "10.001", "10.0001", "11",
                "1e10", "\"5\"", "true", "false", "null",   "[]",     "{}",      "[1]",
        };
        char body[128];

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                ExecRequest req;
                (void) snprintf(body, sizeof(body), "{\"script\":\"x\",\"timeout\":%s}",
                                good[i].value);
                req = parse_ok(body, &LIMITS);
                if (req.timeout_ms != good[i].ms)
                        fail_msg("timeout %s gave %u ms, expected %u", good[i].value,
                                 (unsigned) req.timeout_ms, (unsigned) good[i].ms);
                assert_int_equal(req.memory_mb, 256);
                request_done(&req);
        }
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                (void) snprintf(body, sizeof(body), "{\"script\":\"x\",\"timeout\":%s}",
                                invalid[i]);
                check_invalid(body, &LIMITS);
        }
        /* The message says what the maximum is. */
        check_invalid("{\"script\":\"x\",\"timeout\":11}", &LIMITS);
        assert_non_null(strstr(errbuf, "timeout"));
        assert_non_null(strstr(errbuf, "10"));
}

static void test_timeout_tiny_is_not_zero(void **state)
{
        /* A positive timeout too small for a millisecond still gets one: 0 would mean
         * "already expired". */
        ExecRequest req = parse_ok("{\"script\":\"x\",\"timeout\":1e-300}", &LIMITS);

        assert_int_equal(req.timeout_ms, 1);
        request_done(&req);
}

static void test_timeout_boundary_other_maxima(void **state)
{
        const RequestLimits odd = {.max_timeout_ms = 1500, .max_memory_mb = 16};
        const RequestLimits big = {.max_timeout_ms = 3600000, .max_memory_mb = 1048576};
        ExecRequest req;

        req = parse_ok("{\"script\":\"x\",\"timeout\":1.5}", &odd);
        assert_int_equal(req.timeout_ms, 1500);
        request_done(&req);
        check_invalid("{\"script\":\"x\",\"timeout\":1.501}", &odd);
        req = parse_ok("{\"script\":\"x\"}", &odd);
        assert_int_equal(req.timeout_ms, 1500);
        assert_int_equal(req.memory_mb, 16);
        request_done(&req);

        req = parse_ok("{\"script\":\"x\",\"timeout\":3600,\"memory_mb\":1048576}", &big);
        assert_int_equal(req.timeout_ms, 3600000);
        assert_int_equal(req.memory_mb, 1048576);
        request_done(&req);
        check_invalid("{\"script\":\"x\",\"timeout\":3600.001}", &big);
        check_invalid("{\"script\":\"x\",\"memory_mb\":1048577}", &big);
}

static void test_memory_mb(void **state)
{
        static const struct {
                const char *value;
                uint32_t mb;
        } good[] = {{"64", 64}, {"1", 1}, {"256", 256}, {"255", 255}};
        static const char *const invalid[] = {
                "0",
                "-1",
                "257",
                "64.0",
                "64.5",
                "1e2",
                "\"64\"",
                "true",
                "null",
                "[64]",
                "{}",
                "4294967297",
                "-9223372036854775808",
                "99999999999999999999999",
        };
        char body[128];

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                ExecRequest req;
                (void) snprintf(body, sizeof(body), "{\"memory_mb\":%s,\"script\":\"x\"}",
                                good[i].value);
                req = parse_ok(body, &LIMITS);
                assert_int_equal(req.memory_mb, good[i].mb);
                assert_int_equal(req.timeout_ms, 10000);
                request_done(&req);
        }
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                (void) snprintf(body, sizeof(body), "{\"script\":\"x\",\"memory_mb\":%s}",
                                invalid[i]);
                check_invalid(body, &LIMITS);
        }
        check_invalid("{\"script\":\"x\",\"memory_mb\":257}", &LIMITS);
        assert_non_null(strstr(errbuf, "memory_mb"));
        assert_non_null(strstr(errbuf, "256"));
}

static void test_all_fields(void **state)
{
        ExecRequest req = parse_ok("{\"timeout\":2,\"script\":\"pass\",\"memory_mb\":32}", &LIMITS);

        assert_string_equal(req.script, "pass");
        assert_int_equal(req.timeout_ms, 2000);
        assert_int_equal(req.memory_mb, 32);
        request_done(&req);
}

static void test_script_checks(void **state)
{
        check_invalid("{}", &LIMITS);
        assert_non_null(strstr(errbuf, "script"));
        check_invalid("{\"timeout\":1}", &LIMITS);
        check_invalid("{\"script\":\"\"}", &LIMITS);
        check_invalid("{\"script\":null}", &LIMITS);
        check_invalid("{\"script\":5}", &LIMITS);
        check_invalid("{\"script\":[\"x\"]}", &LIMITS);
        check_invalid("{\"script\":{\"a\":1}}", &LIMITS);
        check_invalid("{\"script\":true}", &LIMITS);
        /* NUL: escaped, or a raw byte inside the string. */
        check_invalid("{\"script\":\"a\\u0000b\"}", &LIMITS);
        check_invalid_n("{\"script\":\"a\0b\"}", 16, &LIMITS);
        /* Not UTF-8: raw invalid bytes, overlongs, escaped lone surrogates. */
        check_invalid("{\"script\":\"a\xFF"
                      "b\"}",
                      &LIMITS);
        check_invalid("{\"script\":\"\xC0\x80\"}", &LIMITS);
        check_invalid("{\"script\":\"\xED\xA0\x80\"}", &LIMITS);
        check_invalid("{\"script\":\"\\ud800\"}", &LIMITS);
        check_invalid("{\"script\":\"\\udc00x\"}", &LIMITS);
}

static void test_duplicates_and_unknown_fields(void **state)
{
        check_invalid("{\"script\":\"a\",\"script\":\"b\"}", &LIMITS);
        check_invalid("{\"script\":\"a\",\"timeout\":1,\"timeout\":2}", &LIMITS);
        check_invalid("{\"script\":\"a\",\"memory_mb\":1,\"memory_mb\":1}", &LIMITS);
        check_invalid("{\"script\":\"a\",\"extra\":1}", &LIMITS);
        assert_non_null(strstr(errbuf, "extra"));
        check_invalid("{\"script\":\"a\",\"Script\":\"a\"}", &LIMITS);
        check_invalid("{\"script\":\"a\",\"timeout_ms\":100}", &LIMITS);
        check_invalid("{\"script\":\"a\",\"\":0}", &LIMITS);
        check_invalid("{\"script\":\"a\",\"args\":null}", &LIMITS);
}

static void test_not_a_json_object(void **state)
{
        static const char *const bodies[] = {
                "",
                " ",
                "{",
                "not json",
                "{'script':'x'}",
                "{\"script\":\"x\"} trailing",
                "{\"script\":\"x\"}{}",
                "{\"script\":\"x\",}",
                "{\"script\":\"x\\q\"}",
                "[]",
                "[{\"script\":\"x\"}]",
                "\"def main(): pass\"",
                "1",
                "null",
                "true",
        };

        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
                check_invalid(bodies[i], &LIMITS);
        check_invalid("[]", &LIMITS);
        assert_non_null(strstr(errbuf, "object"));
        /* A NUL byte after the object is not JSON either. */
        check_invalid_n("{\"script\":\"x\"}\0", 15, &LIMITS);
}

static void test_only_len_bytes_are_read(void **state)
{
        static const char body[] = "{\"script\":\"x\"}GARBAGE";
        ExecRequest req = parse_ok_n(body, 14, &LIMITS);

        assert_string_equal(req.script, "x");
        request_done(&req);
        check_invalid_n(body, 13, &LIMITS);
}

static void test_deep_nesting_rejected(void **state)
{
        enum { DEPTH = 100000 };
        static const char head[] = "{\"script\":\"x\",\"x\":";
        static char body[sizeof(head) + 2 * DEPTH + 2];
        size_t n = sizeof(head) - 1;

        memcpy(body, head, n);
        for (size_t i = 0; i < DEPTH; i++)
                body[n++] = '[';
        for (size_t i = 0; i < DEPTH; i++)
                body[n++] = ']';
        body[n++] = '}';
        body[n] = '\0';
        check_invalid_n(body, n, &LIMITS);
}

static void test_short_errbuf(void **state)
{
        ExecRequest req;
        char small[8];

        memset(small, 'X', sizeof(small));
        assert_int_equal(request_parse("{}", 2, &LIMITS, &req, small, 4), API_INVALID_REQUEST);
        assert_int_equal(strnlen(small, 4), 3);
        assert_int_equal(small[4], 'X');
}

static void from_script_invalid(const char *script, size_t len)
{
        ExecRequest req, before;

        memset(&req, 0x5A, sizeof(req));
        before = req;
        errbuf[0] = '\0';
        assert_int_equal(request_from_script(script, len, &LIMITS, &req, errbuf, sizeof(errbuf)),
                         API_INVALID_REQUEST);
        assert_true(strlen(errbuf) > 0);
        assert_memory_equal(&req, &before, sizeof(req));
}

static void test_from_script(void **state)
{
        static const char src[] = "def main():\n    return '\xC3\xA9'\nTRAILING";
        ExecRequest req;
        size_t len = sizeof(src) - 1 - strlen("TRAILING");

        assert_int_equal(request_from_script(src, len, &LIMITS, &req, errbuf, sizeof(errbuf)), 0);
        assert_int_equal(req.script_len, len);
        assert_memory_equal(req.script, src, len);
        assert_int_equal(req.script[len], '\0');
        assert_true(req.script != src);
        assert_int_equal(req.timeout_ms, 10000);
        assert_int_equal(req.memory_mb, 256);
        request_done(&req);

        from_script_invalid("", 0);
        from_script_invalid("x", 0);
        from_script_invalid("a\0b", 3);
        from_script_invalid("\0", 1);
        from_script_invalid("a\xFF", 2);
        from_script_invalid("\xED\xA0\x80", 3);
        from_script_invalid("\xC0\x80", 2);
        from_script_invalid("x = '\xE2\x82", 7); /* cut in the middle of a character */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_minimal_body_gets_the_maxima),
                cmocka_unit_test(test_unicode_script_kept_exactly),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_timeout_tiny_is_not_zero),
                cmocka_unit_test(test_timeout_boundary_other_maxima),
                cmocka_unit_test(test_memory_mb),
                cmocka_unit_test(test_all_fields),
                cmocka_unit_test(test_script_checks),
                cmocka_unit_test(test_duplicates_and_unknown_fields),
                cmocka_unit_test(test_not_a_json_object),
                cmocka_unit_test(test_only_len_bytes_are_read),
                cmocka_unit_test(test_deep_nesting_rejected),
                cmocka_unit_test(test_short_errbuf),
                cmocka_unit_test(test_from_script),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
