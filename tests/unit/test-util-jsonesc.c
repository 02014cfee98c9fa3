/* Unit tests for util/jsonesc: what json_escape writes must, once quoted, always be one
 * valid JSON string (checked with jansson), whatever bytes go in and however small the
 * destination is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "util/jsonesc.h"

/* Parses "\"" esc "\"" with jansson and returns the decoded string (free it), failing the
 * test if it is not valid JSON. */
static char *decode(const char *esc, size_t *ret_len)
{
        size_t n = strlen(esc);
        char *quoted = malloc(n + 3);
        json_error_t err;
        json_t *j;
        char *s;

        assert_non_null(quoted);
        quoted[0] = '"';
        memcpy(quoted + 1, esc, n);
        memcpy(quoted + 1 + n, "\"", 2);
        j = json_loads(quoted, JSON_DECODE_ANY, &err);
        if (!j)
                fail_msg("not a valid JSON string: %s (%s)", quoted, err.text);
        assert_true(json_is_string(j));
        *ret_len = json_string_length(j);
        s = malloc(*ret_len + 1);
        assert_non_null(s);
        memcpy(s, json_string_value(j), *ret_len + 1);
        json_decref(j);
        free(quoted);
        return s;
}

static void check_escape(const char *in, const char *expected)
{
        char dst[512];
        size_t n = json_escape(dst, sizeof(dst), in);

        assert_string_equal(dst, expected);
        assert_int_equal(n, strlen(expected));
}

/* For ASCII and valid UTF-8 input, escaping and decoding gives the input back. */
static void check_round_trip(const char *in)
{
        char dst[512];
        size_t len;
        char *back;

        (void) json_escape(dst, sizeof(dst), in);
        back = decode(dst, &len);
        assert_int_equal(len, strlen(in));
        assert_string_equal(back, in);
        free(back);
}

static void test_plain(void **state)
{
        check_escape("", "");
        check_escape("hello world", "hello world");
        check_escape("a/b", "a/b");
        check_escape("\x7f", "\x7f"); /* DEL needs no escape in JSON */
}

static void test_quotes_and_backslash(void **state)
{
        check_escape("say \"hi\"", "say \\\"hi\\\"");
        check_escape("C:\\dir\\", "C:\\\\dir\\\\");
        check_escape("\\\"", "\\\\\\\"");
        check_round_trip("\"quoted\" and \\back\\slashed\\");
}

static void test_control_characters(void **state)
{
        char in[2] = {0, 0};
        char expected[8];

        check_escape("a\nb\rc\td", "a\\nb\\rc\\td");
        check_escape("\x01", "\\u0001");
        check_escape("\b\f", "\\u0008\\u000c");
        check_escape("\x1f", "\\u001f");
        /* Every control character comes out escaped and decodes back to itself. */
        for (int c = 1; c < 0x20; c++) {
                char dst[16];
                in[0] = (char) c;
                (void) json_escape(dst, sizeof(dst), in);
                assert_int_equal(dst[0], '\\');
                for (const char *p = dst; *p; p++)
                        assert_true((unsigned char) *p >= 0x20);
                if (c != '\n' && c != '\r' && c != '\t') {
                        (void) snprintf(expected, sizeof(expected), "\\u%04x", c);
                        assert_string_equal(dst, expected);
                }
                check_round_trip(in);
        }
}

static void test_non_ascii_passthrough(void **state)
{
        check_escape("\xC3\xA9t\xC3\xA9", "\xC3\xA9t\xC3\xA9");
        check_escape("\xE2\x82\xAC 5", "\xE2\x82\xAC 5");
        check_escape("\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80");
        check_escape("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF");
        check_round_trip("na\xC3\xAFve \xE2\x82\xAC \xF0\x9F\x98\x80 \"x\"\n");
}

static void test_invalid_bytes_escaped(void **state)
{
        check_escape("a\xFF"
                     "b",
                     "a\\u00ffb");
        check_escape("\x80", "\\u0080");
        check_escape("\xC0\x80", "\\u00c0\\u0080");            /* overlong */
        check_escape("\xED\xA0\x80", "\\u00ed\\u00a0\\u0080"); /* surrogate */
        check_escape("\xF4\x90\x80\x80", "\\u00f4\\u0090\\u0080\\u0080");
        check_escape("x\xE2\x82", "x\\u00e2\\u0082"); /* cut at the end */
        check_escape("\xE2\x82"
                     "A",
                     "\\u00e2\\u0082A");
        /* A bad byte does not swallow the good character after it. */
        check_escape("\xFF\xC3\xA9", "\\u00ff\xC3\xA9");
}

static void test_any_bytes_give_valid_json(void **state)
{
        unsigned seed = 99;
        char in[48], dst[48 * 6 + 1];

        for (int round = 0; round < 5000; round++) {
                size_t n = (size_t) (rand_r(&seed) % (int) (sizeof(in) - 1)), len, w;
                char *back;

                for (size_t i = 0; i < n; i++)
                        in[i] = (char) (1 + rand_r(&seed) % 255);
                in[n] = '\0';
                w = json_escape(dst, sizeof(dst), in);
                assert_int_equal(w, strlen(dst));
                back = decode(dst, &len);
                free(back);
        }
}

static void test_truncation_at_capacity(void **state)
{
        /* Every kind of token: plain, two-char escapes, \u escapes, multi-byte UTF-8. */
        const char *in = "ab\"c\\\n\x01\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xFFz";
        char full[256], dst[256];
        size_t full_len = json_escape(full, sizeof(full), in);

        assert_true(full_len > 0 && full_len < sizeof(full) - 1);
        for (size_t cap = 1; cap <= full_len + 2; cap++) {
                size_t n, len;
                char *back;

                memset(dst, 'X', sizeof(dst));
                n = json_escape(dst, cap, in);
                /* NUL-terminated inside the capacity, nothing written past it. */
                assert_true(n < cap);
                assert_int_equal(dst[n], '\0');
                assert_int_equal(strlen(dst), n);
                for (size_t i = cap; i < sizeof(dst); i++)
                        assert_int_equal(dst[i], 'X');
                /* A prefix of the full escape, cut between tokens: still a valid string. */
                assert_memory_equal(dst, full, n);
                back = decode(dst, &len);
                free(back);
                if (cap > full_len)
                        assert_int_equal(n, full_len);
                else
                        /* Stopped only because the next token (at most 6 bytes) did not
                         * fit. */
                        assert_true(n + 6 >= cap);
        }
}

static void test_zero_capacity(void **state)
{
        char dst[4] = "XYZ";

        assert_int_equal(json_escape(dst, 0, "abc"), 0);
        assert_string_equal(dst, "XYZ"); /* untouched */
        assert_int_equal(json_escape(dst, 1, "abc"), 0);
        assert_string_equal(dst, "");
        /* An escape that does not fit whole is left out entirely. */
        assert_int_equal(json_escape(dst, 3, "\x01"), 0);
        assert_string_equal(dst, "");
        assert_int_equal(json_escape(dst, 3, "\""), 2);
        assert_string_equal(dst, "\\\"");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain),
                cmocka_unit_test(test_quotes_and_backslash),
                cmocka_unit_test(test_control_characters),
                cmocka_unit_test(test_non_ascii_passthrough),
                cmocka_unit_test(test_invalid_bytes_escaped),
                cmocka_unit_test(test_any_bytes_give_valid_json),
                cmocka_unit_test(test_truncation_at_capacity),
                cmocka_unit_test(test_zero_capacity),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
