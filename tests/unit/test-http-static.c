/* Unit tests for http/static: the table of the playground's files, the headers each is
 * served with, and If-None-Match. What matters is that only the exact paths of the table
 * are found (no prefix, suffix, case folding or path tricks), that every answer carries
 * the CSP and nosniff, and that a 304 is given only for the file's current entity tag. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/static.h"

static void test_find(void **state)
{
        static const char *const found[] = {
                "/",
                "/static/app.js",
                "/static/app.css",
                "/static/favicon.svg",
                "/static/codemirror.js",
                "/static/codemirror.css",
                "/static/python.js",
                "/static/matchbrackets.js",
        };
        static const char *const missing[] = {
                "",
                "/index.html",
                "/static/",
                "/static",
                "/static/APP.JS",
                "/static/app.js/",
                "/static/app.jsx",
                "/static//app.js",
                "/static/../static/app.js",
                "/static/./app.js",
                "//",
                "/static/app",
                "/web/app.js",
        };

        for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++) {
                const StaticAsset *a = static_find(found[i]);

                if (!a)
                        fail_msg("%s is not served", found[i]);
                assert_string_equal(a->path, found[i]);
                assert_true(a->len > 0);
                assert_int_equal(strlen(a->data), a->len); /* text, NUL-terminated */
        }
        for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
                if (static_find(missing[i]))
                        fail_msg("\"%s\" is served", missing[i]);
        assert_string_equal(static_find("/")->type, "text/html; charset=utf-8");
        assert_string_equal(static_find("/static/app.js")->type, "text/javascript; charset=utf-8");
        assert_string_equal(static_find("/static/app.css")->type, "text/css; charset=utf-8");
        assert_string_equal(static_find("/static/favicon.svg")->type, "image/svg+xml");
}

static void test_page_names_versioned_files(void **state)
{
        const StaticAsset *page = static_find("/");
        const StaticAsset *js = static_find("/static/app.js");
        char want[128];

        /* The ETag is a quoted hash; the page asks for the file by it. */
        assert_int_equal(strlen(js->etag), 22);
        assert_true(js->etag[0] == '"' && js->etag[21] == '"');
        (void) snprintf(want, sizeof(want), "/static/app.js?v=%.20s\"", js->etag + 1);
        assert_non_null(strstr(page->data, want));
        assert_string_not_equal(page->etag, js->etag);
}

static void test_headers(void **state)
{
        char buf[1024];
        int n = static_headers(static_find("/"), buf, sizeof(buf));

        assert_true(n > 0 && (size_t) n == strlen(buf));
        assert_non_null(strstr(buf, "Content-Security-Policy: default-src 'self'; img-src 'self' "
                                    "data:; object-src 'none'; base-uri 'none'; form-action "
                                    "'none'; frame-ancestors 'none'\r\n"));
        assert_non_null(strstr(buf, "X-Content-Type-Options: nosniff\r\n"));
        assert_non_null(strstr(buf, "Cache-Control: no-cache\r\n"));
        assert_non_null(strstr(buf, "ETag: \""));
        assert_null(strstr(buf, "unsafe"));

        n = static_headers(static_find("/static/app.js"), buf, sizeof(buf));
        assert_true(n > 0);
        assert_non_null(strstr(buf, "Content-Security-Policy: default-src 'self';"));
        assert_non_null(strstr(buf, "X-Content-Type-Options: nosniff\r\n"));
        assert_non_null(strstr(buf, "Cache-Control: public, max-age=31536000, immutable\r\n"));

        /* Too small a buffer: an error, not a cut header. */
        assert_int_equal(static_headers(static_find("/"), buf, 40), -ENOBUFS);
}

static void test_not_modified(void **state)
{
        const StaticAsset *a = static_find("/static/app.js");
        char value[256];
        const char *other = "\"0123456789abcdef0123\"";

        assert_false(static_not_modified(a, NULL));
        assert_false(static_not_modified(a, ""));
        assert_true(static_not_modified(a, "*"));
        assert_true(static_not_modified(a, a->etag));
        (void) snprintf(value, sizeof(value), "W/%s", a->etag);
        assert_true(static_not_modified(a, value));
        (void) snprintf(value, sizeof(value), "%s, %s", other, a->etag);
        assert_true(static_not_modified(a, value));
        (void) snprintf(value, sizeof(value), " \t%s ,%s", a->etag, other);
        assert_true(static_not_modified(a, value));
        /* A comma inside another tag does not split it. */
        (void) snprintf(value, sizeof(value), "\"x,%s\"", a->etag + 1);
        assert_false(static_not_modified(a, value));

        assert_false(static_not_modified(a, other));
        assert_false(static_not_modified(a, "W/"));
        assert_false(static_not_modified(a, "\""));
        (void) snprintf(value, sizeof(value), "%.21s", a->etag); /* no closing quote */
        assert_false(static_not_modified(a, value));
        (void) snprintf(value, sizeof(value), "%sx", a->etag); /* longer */
        assert_false(static_not_modified(a, value));
        (void) snprintf(value, sizeof(value), "%s", a->etag + 1); /* unquoted */
        assert_false(static_not_modified(a, value));
        assert_false(static_not_modified(a, static_find("/")->etag));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_find),
                cmocka_unit_test(test_page_names_versioned_files),
                cmocka_unit_test(test_headers),
                cmocka_unit_test(test_not_modified),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
