/* Unit tests for util/buf: the bounded buffer every byte stream from a sandbox goes
 * through. What matters is that nothing beyond `limit` is ever kept, that what is kept is
 * exactly the first `limit` bytes, and that overflow is reported, never silent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"

static void test_append_within_limit(void **state)
{
        Buf b;

        buf_init(&b, 16);
        assert_int_equal(buf_append(&b, "hello", 5), 0);
        assert_int_equal(buf_append(&b, ", you", 5), 0);
        assert_int_equal(b.len, 10);
        assert_false(b.truncated);
        assert_memory_equal(b.data, "hello, you", 10);
        buf_free(&b);
}

static void test_append_exactly_at_limit(void **state)
{
        Buf b;

        buf_init(&b, 8);
        assert_int_equal(buf_append(&b, "abcd", 4), 0);
        assert_int_equal(buf_append(&b, "efgh", 4), 0);
        assert_int_equal(b.len, 8);
        assert_false(b.truncated);
        assert_string_equal(buf_cstr(&b), "abcdefgh");
        /* Full: the next byte, however small, is dropped and reported. */
        assert_int_equal(buf_append(&b, "i", 1), 1);
        assert_true(b.truncated);
        assert_int_equal(b.len, 8);
        assert_string_equal(buf_cstr(&b), "abcdefgh");
        buf_free(&b);
}

static void test_append_over_limit_keeps_prefix(void **state)
{
        Buf b;

        buf_init(&b, 5);
        assert_int_equal(buf_append(&b, "abc", 3), 0);
        assert_int_equal(buf_append(&b, "defgh", 5), 1);
        assert_true(b.truncated);
        assert_int_equal(b.len, 5);
        assert_memory_equal(b.data, "abcde", 5);
        /* Later appends keep the flag and change nothing. */
        assert_int_equal(buf_append(&b, "xyz", 3), 1);
        assert_true(b.truncated);
        assert_int_equal(b.len, 5);
        assert_string_equal(buf_cstr(&b), "abcde");
        buf_free(&b);
}

static void test_single_append_over_limit(void **state)
{
        Buf b;

        buf_init(&b, 3);
        assert_int_equal(buf_append(&b, "abcdef", 6), 1);
        assert_true(b.truncated);
        assert_int_equal(b.len, 3);
        assert_true(b.cap <= 3 + 1);
        assert_string_equal(buf_cstr(&b), "abc");
        buf_free(&b);
}

static void test_large_growth(void **state)
{
        /* Several reallocations: every byte must survive them, in order. */
        enum { LIMIT = 100000 };
        Buf b;
        char chunk[333];
        size_t total = 0;

        buf_init(&b, LIMIT);
        while (total < LIMIT + 1000) {
                for (size_t i = 0; i < sizeof(chunk); i++)
                        chunk[i] = (char) ((total + i) % 251);
                int r = buf_append(&b, chunk, sizeof(chunk));
                total += sizeof(chunk);
                assert_int_equal(r, total <= LIMIT ? 0 : 1);
        }
        assert_int_equal(b.len, LIMIT);
        assert_true(b.truncated);
        assert_true(b.cap <= (size_t) LIMIT + 1);
        for (size_t i = 0; i < LIMIT; i++)
                assert_int_equal((unsigned char) b.data[i], i % 251);
        assert_non_null(buf_cstr(&b));
        assert_int_equal(b.data[LIMIT], '\0');
        buf_free(&b);
}

static void test_cstr_terminates(void **state)
{
        Buf b;
        const char *s;

        buf_init(&b, 64);
        /* Empty buffer: still a valid (empty) C string. */
        s = buf_cstr(&b);
        assert_non_null(s);
        assert_string_equal(s, "");
        assert_int_equal(b.len, 0);

        assert_int_equal(buf_append(&b, "xy", 2), 0);
        s = buf_cstr(&b);
        assert_string_equal(s, "xy");
        /* The NUL is not counted, and appending after buf_cstr overwrites it. */
        assert_int_equal(b.len, 2);
        assert_int_equal(buf_append(&b, "z", 1), 0);
        assert_string_equal(buf_cstr(&b), "xyz");
        assert_int_equal(b.len, 3);
        buf_free(&b);
}

static void test_embedded_nul_kept(void **state)
{
        Buf b;

        buf_init(&b, 8);
        assert_int_equal(buf_append(&b, "a\0b", 3), 0);
        assert_int_equal(b.len, 3);
        assert_memory_equal(buf_cstr(&b), "a\0b\0", 4);
        buf_free(&b);
}

static void test_zero_limit(void **state)
{
        Buf b;

        buf_init(&b, 0);
        /* Appending nothing to an empty zero-limit buffer is not an overflow. */
        assert_int_equal(buf_append(&b, "", 0), 0);
        assert_false(b.truncated);
        assert_int_equal(buf_append(&b, "a", 1), 1);
        assert_true(b.truncated);
        assert_int_equal(b.len, 0);
        assert_string_equal(buf_cstr(&b), "");
        buf_free(&b);
}

static void test_free_resets(void **state)
{
        Buf b;

        buf_init(&b, 4);
        assert_int_equal(buf_append(&b, "abcdef", 6), 1);
        buf_free(&b);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_false(b.truncated);
        /* Freeing twice (an already-reset buffer) is harmless. */
        buf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_append_within_limit),
                cmocka_unit_test(test_append_exactly_at_limit),
                cmocka_unit_test(test_append_over_limit_keeps_prefix),
                cmocka_unit_test(test_single_append_over_limit),
                cmocka_unit_test(test_large_growth),
                cmocka_unit_test(test_cstr_terminates),
                cmocka_unit_test(test_embedded_nul_kept),
                cmocka_unit_test(test_zero_limit),
                cmocka_unit_test(test_free_resets),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
