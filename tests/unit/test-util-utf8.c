/* Unit tests for util/utf8: validation against an independent reference decoder (every
 * string of up to three bytes, a large sample of four-byte ones), and repair that matches
 * the Unicode "maximal subpart" rule byte for byte (the expected outputs are what
 * Python's bytes.decode("utf-8", "replace") gives). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/utf8.h"

#define FFFD "\xEF\xBF\xBD"

/* Reference: decodes by bit patterns and code point arithmetic, unlike utf8.c, which
 * works from the byte ranges of Unicode table 3-7. */
static bool ref_valid(const unsigned char *s, size_t n)
{
        static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        size_t i = 0;

        while (i < n) {
                unsigned char c = s[i];
                size_t len;
                uint32_t cp;

                if (c < 0x80)
                        len = 1, cp = c;
                else if ((c & 0xE0) == 0xC0)
                        len = 2, cp = c & 0x1F;
                else if ((c & 0xF0) == 0xE0)
                        len = 3, cp = c & 0x0F;
                else if ((c & 0xF8) == 0xF0)
                        len = 4, cp = c & 0x07;
                else
                        return false;
                if (i + len > n)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3F);
                }
                if (cp < min_cp[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
                        return false;
                i += len;
        }
        return true;
}

static void check_valid(const char *s, size_t n, bool expected)
{
        assert_int_equal(utf8_valid(s, n), expected);
        assert_int_equal(ref_valid((const unsigned char *) s, n), expected);
}

#define VALID(lit)   check_valid(lit, sizeof(lit) - 1, true)
#define INVALID(lit) check_valid(lit, sizeof(lit) - 1, false)

static void test_valid_sequences(void **state)
{
        check_valid("", 0, true);
        VALID("plain ASCII \t\n\x7f");
        check_valid("a\0b", 3, true); /* NUL is a valid character */
        VALID("\xC2\x80");            /* U+0080, smallest 2-byte */
        VALID("\xC3\xA9t\xC3\xA9");   /* été */
        VALID("\xDF\xBF");            /* U+07FF */
        VALID("\xE0\xA0\x80");        /* U+0800, smallest 3-byte */
        VALID("\xE2\x82\xAC");        /* € */
        VALID("\xED\x9F\xBF");        /* U+D7FF, just below the surrogates */
        VALID("\xEE\x80\x80");        /* U+E000, just above them */
        VALID("\xEF\xBF\xBF");        /* U+FFFF */
        VALID("\xF0\x90\x80\x80");    /* U+10000, smallest 4-byte */
        VALID("\xF0\x9F\x98\x80");    /* 😀 */
        VALID("\xF4\x8F\xBF\xBF");    /* U+10FFFF, the last code point */
}

static void test_invalid_sequences(void **state)
{
        INVALID("\xC0\x80");         /* overlong NUL */
        INVALID("\xC1\xBF");         /* overlong 2-byte */
        INVALID("\xE0\x80\x80");     /* overlong 3-byte */
        INVALID("\xE0\x9F\xBF");     /* overlong U+07FF */
        INVALID("\xF0\x80\x80\x80"); /* overlong 4-byte */
        INVALID("\xF0\x8F\xBF\xBF"); /* overlong U+FFFF */
        INVALID("\xED\xA0\x80");     /* U+D800, a surrogate */
        INVALID("\xED\xBF\xBF");     /* U+DFFF */
        INVALID("\xF4\x90\x80\x80"); /* U+110000 */
        INVALID("\xF5\x80\x80\x80");
        INVALID("\xF8\x88\x80\x80\x80"); /* old 5-byte form */
        INVALID("\xFE");
        INVALID("\xFF");
        INVALID("\x80"); /* lone continuation bytes */
        INVALID("a\xBF");
        INVALID("\xC3\xA9\x80");
        INVALID("\xC3");         /* truncated at the end */
        INVALID("\xE2\x82");     /* truncated 3-byte */
        INVALID("\xF0\x9F\x98"); /* truncated 4-byte */
        INVALID("ok\xE2\x82");   /* valid text, then a cut character */
        INVALID("\xC3\x41");     /* continuation replaced by ASCII */
        INVALID("\xE2\x82\x41");
        INVALID("\xE2\x82\xAC\xE2"); /* a whole character, then a cut one */
}

static void test_length_is_respected(void **state)
{
        /* Only s[0..n) is looked at: a cut inside the given length is invalid even if the
         * bytes after it would complete the character. */
        assert_false(utf8_valid("\xE2\x82\xAC", 2));
        assert_true(utf8_valid("\xE2\x82\xAC", 3));
        assert_true(utf8_valid("\xE2\x82\xAC\xFF", 3));
        assert_true(utf8_valid("\xFF", 0));
}

static void test_exhaustive_short_strings(void **state)
{
        unsigned char s[3];

        for (unsigned a = 0; a < 256; a++) {
                s[0] = (unsigned char) a;
                assert_int_equal(utf8_valid((char *) s, 1), ref_valid(s, 1));
                for (unsigned b = 0; b < 256; b++) {
                        s[1] = (unsigned char) b;
                        if (utf8_valid((char *) s, 2) != ref_valid(s, 2))
                                fail_msg("utf8_valid disagrees on %02x %02x", a, b);
                        for (unsigned c = 0; c < 256; c++) {
                                s[2] = (unsigned char) c;
                                if (utf8_valid((char *) s, 3) != ref_valid(s, 3))
                                        fail_msg("utf8_valid disagrees on %02x %02x %02x", a, b, c);
                        }
                }
        }
}

static void test_four_byte_sample(void **state)
{
        static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                              0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xFF};
        unsigned char s[4];

        for (unsigned a = 0xE0; a < 256; a++)
                for (unsigned b = 0; b < 256; b++)
                        for (size_t c = 0; c < sizeof(tails); c++)
                                for (size_t d = 0; d < sizeof(tails); d++) {
                                        s[0] = (unsigned char) a, s[1] = (unsigned char) b;
                                        s[2] = tails[c], s[3] = tails[d];
                                        if (utf8_valid((char *) s, 4) != ref_valid(s, 4))
                                                fail_msg("utf8_valid disagrees on %02x %02x "
                                                         "%02x %02x",
                                                         s[0], s[1], s[2], s[3]);
                                }
}

static void check_sanitize(const char *in, size_t n, const char *expected, size_t expected_len)
{
        size_t len = (size_t) -1;
        char *out = utf8_sanitize(in, n, &len);

        assert_non_null(out);
        assert_int_equal(len, expected_len);
        assert_memory_equal(out, expected, expected_len);
        assert_int_equal(out[len], '\0');
        assert_true(utf8_valid(out, len));
        free(out);
}

#define SANITIZE(in, expected) check_sanitize(in, sizeof(in) - 1, expected, sizeof(expected) - 1)

static void test_sanitize_vectors(void **state)
{
        SANITIZE("", "");
        SANITIZE("plain", "plain");
        SANITIZE("\xC3\xA9\xF0\x9F\x98\x80", "\xC3\xA9\xF0\x9F\x98\x80"); /* valid: unchanged */
        SANITIZE("a\xFF"
                 "b",
                 "a" FFFD "b");
        SANITIZE("\xE2\x82", FFFD); /* cut at the end: one U+FFFD */
        SANITIZE("\xE2\x82\xAC\xE2\x82", "\xE2\x82\xAC" FFFD);
        SANITIZE("\xF0\x9F\x98", FFFD);
        SANITIZE("\xC0\x80", FFFD FFFD);          /* C0 never starts a sequence */
        SANITIZE("\xE0\x80\x80", FFFD FFFD FFFD); /* 80 cannot follow E0 */
        SANITIZE("\xED\xA0\x80", FFFD FFFD FFFD); /* nor A0 follow ED */
        SANITIZE("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);
        SANITIZE("\xF0\x80\x80\x80", FFFD FFFD FFFD FFFD);
        SANITIZE("\xF8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);
        SANITIZE("\x80\xBF", FFFD FFFD); /* lone continuations: one each */
        SANITIZE("\xE2\x82"
                 "A",
                 FFFD "A"); /* maximal subpart E2 82, then A */
        SANITIZE("\xF0\x9F\x98"
                 "\xF0\x9F\x98\x80",
                 FFFD "\xF0\x9F\x98\x80");
        /* Unicode 15, table 3-8. */
        SANITIZE("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
                 "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
        check_sanitize("a\0\xFF", 3, "a\0" FFFD, 5); /* NUL kept, as a character */
}

static void test_sanitize_random_bytes(void **state)
{
        /* Whatever goes in, what comes out is valid, and valid input comes out unchanged. */
        unsigned seed = 12345;
        char in[64];

        for (int round = 0; round < 20000; round++) {
                size_t n = (size_t) (rand_r(&seed) % (int) sizeof(in));
                size_t len;
                char *out;

                for (size_t i = 0; i < n; i++) {
                        /* Bias towards the bytes that make UTF-8 interesting. */
                        int r = rand_r(&seed);
                        in[i] = (char) (r & 1 ? 0x80 + (r >> 1) % 0x80 : (r >> 1) % 256);
                }
                out = utf8_sanitize(in, n, &len);
                assert_non_null(out);
                assert_true(utf8_valid(out, len));
                assert_int_equal(out[len], '\0');
                assert_true(len <= 3 * n);
                if (utf8_valid(in, n)) {
                        assert_int_equal(len, n);
                        assert_memory_equal(out, in, n);
                }
                free(out);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_sequences),
                cmocka_unit_test(test_invalid_sequences),
                cmocka_unit_test(test_length_is_respected),
                cmocka_unit_test(test_exhaustive_short_strings),
                cmocka_unit_test(test_four_byte_sample),
                cmocka_unit_test(test_sanitize_vectors),
                cmocka_unit_test(test_sanitize_random_bytes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
