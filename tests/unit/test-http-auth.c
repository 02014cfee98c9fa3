/* Unit tests for http/auth: the API keys file and the Authorization check. What matters is
 * that only an exact key after "Bearer " passes (no prefix, suffix, empty or case-folded
 * key), that every key of the file is honoured, and that a bad file is refused with a
 * message rather than loaded half. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/auth.h"

#define KEY_MAX 512 /* as auth.c */

/* Writes `text` to a fresh temporary file; returns its path (static buffer). */
static const char *keys_file(const char *text)
{
        static char path[64];
        int fd;

        (void) snprintf(path, sizeof(path), "/tmp/pyexecd-auth-test-XXXXXX");
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(close(fd), 0);
        return path;
}

static Auth *load_ok(const char *text)
{
        char err[256] = "";
        Auth *a = NULL;
        const char *path = keys_file(text);

        assert_int_equal(auth_load(path, &a, err, sizeof(err)), 0);
        assert_non_null(a);
        (void) unlink(path);
        return a;
}

static int load_fails(const char *text, char *err, size_t errlen)
{
        Auth *a = NULL;
        const char *path = keys_file(text);
        int r = auth_load(path, &a, err, errlen);

        assert_null(a);
        (void) unlink(path);
        return r;
}

static void test_keys_and_comments(void **state)
{
        Auth *a = load_ok("# production keys\n\n  alpha-key \r\n\tbeta\n#gamma\nlast-no-newline");
        (void) state;

        assert_true(auth_check(a, "Bearer alpha-key"));
        assert_true(auth_check(a, "Bearer beta"));
        assert_true(auth_check(a, "Bearer last-no-newline"));
        assert_true(auth_check(a, "bearer beta"));   /* the scheme is case-insensitive */
        assert_false(auth_check(a, "Bearer gamma")); /* commented out */
        assert_false(auth_check(a, "Bearer #gamma"));
        auth_free(a);
}

static void test_only_the_exact_key_passes(void **state)
{
        Auth *a = load_ok("s3cret\n");
        (void) state;

        assert_true(auth_check(a, "Bearer s3cret"));
        assert_false(auth_check(a, NULL));
        assert_false(auth_check(a, ""));
        assert_false(auth_check(a, "Bearer "));
        assert_false(auth_check(a, "Bearer s3cre"));   /* prefix */
        assert_false(auth_check(a, "Bearer s3crett")); /* longer */
        assert_false(auth_check(a, "Bearer S3CRET"));  /* keys are case-sensitive */
        assert_false(auth_check(a, "Bearer  s3cret")); /* not trimmed */
        assert_false(auth_check(a, "Basic s3cret"));   /* another scheme */
        assert_false(auth_check(a, "Bearers3cret"));   /* no separator */
        assert_false(auth_check(a, "s3cret"));         /* no scheme */
        auth_free(a);
}

static void test_key_length_bound(void **state)
{
        char key[KEY_MAX + 2], header[KEY_MAX + 16], err[256] = "";
        Auth *a;
        (void) state;

        memset(key, 'k', KEY_MAX);
        key[KEY_MAX] = '\n';
        key[KEY_MAX + 1] = '\0';
        a = load_ok(key); /* exactly KEY_MAX bytes: fine */
        key[KEY_MAX] = '\0';
        (void) snprintf(header, sizeof(header), "Bearer %s", key);
        assert_true(auth_check(a, header));
        (void) snprintf(header, sizeof(header), "Bearer %sk", key); /* one byte more */
        assert_false(auth_check(a, header));
        auth_free(a);

        memset(key, 'k', KEY_MAX + 1);
        key[KEY_MAX + 1] = '\0';
        assert_int_equal(load_fails(key, err, sizeof(err)), -E2BIG);
        assert_non_null(strstr(err, "longer than"));
}

static void test_bad_files(void **state)
{
        char err[256] = "";
        Auth *a = NULL;
        (void) state;

        assert_int_equal(load_fails("# only a comment\n\n   \n", err, sizeof(err)), -ENODATA);
        assert_non_null(strstr(err, "no API key"));
        assert_int_equal(auth_load("/nonexistent/pyexecd-keys", &a, err, sizeof(err)), -ENOENT);
        assert_null(a);
        assert_non_null(strstr(err, "/nonexistent/pyexecd-keys"));

        /* More keys than the table holds: refused whole, not loaded in part. */
        {
                size_t cap = 1025 * 8 + 1, len = 0;
                char *many = malloc(cap);
                assert_non_null(many);
                for (int i = 0; i < 1025; i++)
                        len += (size_t) snprintf(many + len, cap - len, "k%05d\n", i);
                assert_int_equal(load_fails(many, err, sizeof(err)), -E2BIG);
                assert_non_null(strstr(err, "more than"));
                free(many);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys_and_comments),
                cmocka_unit_test(test_only_the_exact_key_passes),
                cmocka_unit_test(test_key_length_bound),
                cmocka_unit_test(test_bad_files),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
