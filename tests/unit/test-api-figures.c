/* Unit tests for the figures a result frame returns (api/figures.c, figures_to_response):
 * what the contract allows is copied into the response, anything else is refused as a frame
 * that is not the harness's (-EBADMSG), leaving the response and *ret_bytes untouched. Each
 * refusal breaks one rule alone, on a figure that is valid otherwise. The headers are built
 * here by hand, PNGs included (a header is all the service reads of one). */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"
#include "api/files.h"
#include "util/base64.h"

#define UNTOUCHED ((size_t) 0xDEADBEEF)
#define PNG_MAX   512

/* A PNG's head: the signature, then the IHDR chunk (length 13, type, width, height, the
 * other five fields, CRC; the CRC is not checked by the service, and left 0 here), then
 * `extra` bytes of other chunks' stand-in, to set the size. */
typedef struct Png {
        unsigned char b[PNG_MAX];
        size_t n;
} Png;

static void put32(unsigned char *p, uint32_t v)
{
        p[0] = (unsigned char) (v >> 24);
        p[1] = (unsigned char) (v >> 16);
        p[2] = (unsigned char) (v >> 8);
        p[3] = (unsigned char) v;
}

static Png png(uint32_t w, uint32_t h, size_t extra)
{
        static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        Png p = {.n = 33 + extra};

        assert_true(p.n <= PNG_MAX);
        memcpy(p.b, signature, 8);
        put32(p.b + 8, 13);
        memcpy(p.b + 12, "IHDR", 4);
        put32(p.b + 16, w);
        put32(p.b + 20, h);
        p.b[24] = 8; /* bit depth; colour type, compression, filter, interlace 0 */
        for (size_t i = 33; i < p.n; i++)
                p.b[i] = (unsigned char) (i * 131 + 7);
        return p;
}

/* The base64 of p's bytes (a string of its own). */
static json_t *b64(const Png *p)
{
        char out[PNG_MAX * 4 / 3 + 8];

        base64_encode(p->b, p->n, out);
        return json_string(out);
}

/* One entry of "figures": {"format": "png", "width": w, "height": h, "content": p}. */
static json_t *figure(const Png *p, json_int_t w, json_int_t h)
{
        json_t *f = json_pack("{s:s,s:I,s:I,s:o}", "format", "png", "width", w, "height", h,
                              "content", b64(p));
        assert_non_null(f);
        return f;
}

/* A valid figure of w x h pixels, `extra` bytes past its IHDR. */
static json_t *valid(uint32_t w, uint32_t h, size_t extra)
{
        Png p = png(w, h, extra);
        return figure(&p, w, h);
}

/* A header {"status": "ok", "figures": [entries...]} (NULL-terminated; steals them). */
static json_t *header_of(json_t *first, ...)
{
        json_t *h = json_pack("{s:s,s:[]}", "status", "ok", "figures"), *list;
        va_list ap;

        assert_non_null(h);
        list = json_object_get(h, "figures");
        va_start(ap, first);
        for (json_t *f = first; f; f = va_arg(ap, json_t *))
                assert_int_equal(json_array_append_new(list, f), 0);
        va_end(ap);
        return h;
}

static size_t content_len(json_t *header, size_t i)
{
        return json_string_length(
                json_object_get(json_array_get(json_object_get(header, "figures"), i), "content"));
}

/* figures_to_response(header, budget) accepts: the response object holds exactly the
 * header's figures (and figures_truncated: true when `truncated`), *ret_bytes is
 * `png_bytes`. Consumes the header. */
static void accepted(json_t *header, size_t budget, size_t png_bytes, bool truncated)
{
        json_t *obj = json_object(), *figures = json_object_get(header, "figures");
        size_t bytes = UNTOUCHED;
        int r = figures_to_response(header, budget, obj, &bytes);

        if (r != 0) {
                char *dump = json_dumps(header, JSON_COMPACT);
                fail_msg("refused (%d), budget %zu: %.400s", r, budget, dump);
        }
        assert_int_equal(bytes, png_bytes);
        if (json_array_size(figures) > 0)
                assert_true(json_equal(json_object_get(obj, "figures"), figures));
        else
                assert_null(json_object_get(obj, "figures"));
        if (truncated)
                assert_true(json_is_true(json_object_get(obj, "figures_truncated")));
        else
                assert_null(json_object_get(obj, "figures_truncated"));
        assert_int_equal(json_object_size(obj), (json_array_size(figures) > 0) + truncated);
        json_decref(obj);
        json_decref(header);
}

/* figures_to_response(header, budget) refuses with -EBADMSG, touching neither the response
 * object nor *ret_bytes. Consumes the header. */
static void refused_(json_t *header, size_t budget, const char *what)
{
        json_t *obj = json_object();
        size_t bytes = UNTOUCHED;
        int r = figures_to_response(header, budget, obj, &bytes);

        if (r != -EBADMSG)
                fail_msg("%s: returned %d, not -EBADMSG", what, r);
        assert_int_equal(json_object_size(obj), 0);
        assert_int_equal(bytes, UNTOUCHED);
        json_decref(obj);
        json_decref(header);
}
#define refused(header) refused_((header), SIZE_MAX, #header)

/* A valid 8x8 figure with `key` set to `value` (stolen; NULL: deleted). */
static json_t *with(const char *key, json_t *value)
{
        json_t *f = valid(8, 8, 20);

        if (value)
                assert_int_equal(json_object_set_new(f, key, value), 0);
        else
                assert_int_equal(json_object_del(f, key), 0);
        return f;
}

/* A valid 8x8 figure whose PNG has byte `at` set to `byte`. */
static json_t *png_byte(size_t at, unsigned char byte)
{
        Png p = png(8, 8, 20);
        p.b[at] = byte;
        return figure(&p, 8, 8);
}

/* A valid 8x8 figure whose content is `content`. */
static json_t *content(const char *content)
{
        return with("content", json_string(content));
}

/* ---- accepted ------------------------------------------------------------------------- */

static void test_accepted(void **state)
{
        json_t *h;
        (void) state;

        accepted(header_of(valid(640, 480, 100), NULL), SIZE_MAX, 133, false);
        accepted(header_of(valid(1, 1, 0), valid(3, 2, 1), valid(2, 3, 2), NULL), SIZE_MAX,
                 33 + 34 + 35, false);
        /* The least PNG head there is (24 bytes), and the largest dimensions PNG allows. */
        {
                Png p = png(7, 9, 0);
                p.n = 24;
                accepted(header_of(figure(&p, 7, 9), NULL), SIZE_MAX, 24, false);
        }
        accepted(header_of(valid(INT32_MAX, INT32_MAX, 0), valid(1, INT32_MAX, 0), NULL), SIZE_MAX,
                 66, false);

        /* figures_truncated: true is copied, with or without figures; false is left out, and
         * so is an empty list. */
        h = header_of(valid(4, 4, 0), NULL);
        assert_int_equal(json_object_set_new(h, "figures_truncated", json_true()), 0);
        accepted(h, SIZE_MAX, 33, true);
        h = json_pack("{s:s,s:b}", "status", "ok", "figures_truncated", 1);
        accepted(h, SIZE_MAX, 0, true);
        h = json_pack("{s:s,s:[],s:b}", "status", "ok", "figures", "figures_truncated", 0);
        accepted(h, SIZE_MAX, 0, false);
        /* No figure at all: nothing, 0 bytes, whatever the budget. */
        accepted(json_pack("{s:s}", "status", "ok"), 0, 0, false);
        accepted(json_pack("{s:s,s:[]}", "status", "ok", "figures"), 0, 0, false);
}

static void test_sixteen_at_most(void **state)
{
        json_t *h = header_of(NULL);
        size_t bytes = 0;
        (void) state;

        for (uint32_t k = 1; k <= FIGURES_MAX; k++) {
                assert_int_equal(
                        json_array_append_new(json_object_get(h, "figures"), valid(k, k, k)), 0);
                bytes += 33 + k;
        }
        accepted(json_deep_copy(h), SIZE_MAX, bytes, false);
        assert_int_equal(json_array_append_new(json_object_get(h, "figures"), valid(1, 1, 0)), 0);
        refused(h);
}

/* ---- refused ---------------------------------------------------------------------------- */

static void test_refused_lists(void **state)
{
        (void) state;

        refused(json_pack("{s:s,s:{s:o}}", "status", "ok", "figures", "0", valid(8, 8, 0)));
        refused(json_pack("{s:s,s:s}", "status", "ok", "figures", "iVBORw0KGgo="));
        refused(json_pack("{s:s,s:n}", "status", "ok", "figures"));
        refused(json_pack("{s:s,s:i}", "status", "ok", "figures", 1));
        refused(json_pack("{s:s,s:s}", "status", "ok", "figures_truncated", "yes"));
        refused(json_pack("{s:s,s:i}", "status", "ok", "figures_truncated", 1));
        refused(json_pack("{s:s,s:n}", "status", "ok", "figures_truncated"));
        refused(json_pack("{s:s,s:[]}", "status", "ok", "figures_truncated"));
        /* A valid figure does not excuse a bad flag. */
        {
                json_t *h = header_of(valid(8, 8, 0), NULL);
                assert_int_equal(json_object_set_new(h, "figures_truncated", json_string("true")),
                                 0);
                refused(h);
        }
}

static void test_refused_entries(void **state)
{
        json_t *f;
        (void) state;

        refused(header_of(json_string("iVBORw0KGgo="), NULL));
        refused(header_of(json_pack("[s]", "png"), NULL));
        refused(header_of(json_null(), NULL));
        refused(header_of(with("dpi", json_integer(100)), NULL));
        refused(header_of(with("Format", json_string("png")), NULL));
        refused(header_of(with("format", NULL), NULL));
        refused(header_of(with("width", NULL), NULL));
        refused(header_of(with("height", NULL), NULL));
        refused(header_of(with("content", NULL), NULL));
        /* Four keys, but one of them foreign. */
        f = with("format", NULL);
        assert_int_equal(json_object_set_new(f, "type", json_string("png")), 0);
        refused(header_of(f, NULL));

        refused(header_of(with("format", json_string("svg")), NULL));
        refused(header_of(with("format", json_string("PNG")), NULL));
        refused(header_of(with("format", json_string("png ")), NULL));
        refused(header_of(with("format", json_string("")), NULL));
        refused(header_of(with("format", json_integer(1)), NULL));
        refused(header_of(with("format", json_null()), NULL));
        refused(header_of(with("content", json_integer(0)), NULL));
        refused(header_of(with("content", json_pack("[]")), NULL));
        /* One bad figure among good ones, wherever it is. */
        refused(header_of(valid(1, 1, 0), valid(2, 2, 0), with("format", json_string("gif")),
                          NULL));
        refused(header_of(with("format", json_string("gif")), valid(1, 1, 0), NULL));
}

static void test_refused_dimensions(void **state)
{
        Png p = png(640, 480, 10);
        (void) state;

        refused(header_of(figure(&p, 641, 480), NULL));
        refused(header_of(figure(&p, 640, 481), NULL));
        refused(header_of(figure(&p, 480, 640), NULL));
        refused(header_of(figure(&p, 640 + ((json_int_t) 1 << 32), 480), NULL));
        refused(header_of(figure(&p, -640, 480), NULL));
        refused(header_of(with("width", json_real(8.0)), NULL));
        refused(header_of(with("height", json_string("8")), NULL));
        refused(header_of(with("width", json_true()), NULL));
        /* Out of PNG's range, though the claim matches the IHDR. */
        refused(header_of(valid(0, 8, 0), NULL));
        refused(header_of(valid(8, 0, 0), NULL));
        refused(header_of(valid((uint32_t) INT32_MAX + 1, 8, 0), NULL));
        refused(header_of(valid(8, UINT32_MAX, 0), NULL));
}

static void test_refused_png(void **state)
{
        Png p;
        (void) state;

        refused(header_of(png_byte(0, 'G'), NULL)); /* signature */
        refused(header_of(png_byte(7, '\0'), NULL));
        refused(header_of(png_byte(11, 14), NULL));  /* IHDR length 14 */
        refused(header_of(png_byte(8, 1), NULL));    /* length 2^24 + 13 */
        refused(header_of(png_byte(12, 'i'), NULL)); /* iHDR */
        refused(header_of(png_byte(15, 'T'), NULL)); /* IHDT */
        refused(header_of(content(""), NULL));
        refused(header_of(content("iVBORw0KGgo="), NULL)); /* the signature alone */

        /* 23 bytes: cut inside the height. Read as 24 bytes, the padded last group would
         * give 0xFFFFFF, which is what this figure claims: only the length refuses it. */
        p = png(8, 0x00ABCDEF, 0);
        p.n = 23;
        refused(header_of(figure(&p, 8, 0x00FFFFFF), NULL));
        p.n = 22;
        refused(header_of(figure(&p, 8, 0x00FFFFFF), NULL));
}

static void test_refused_base64(void **state)
{
        Png p = png(8, 8, 62); /* 95 bytes: base64 of 128 characters, one "=" */
        char text[PNG_MAX * 4 / 3 + 8], bad[PNG_MAX * 2];
        size_t n;
        (void) state;

        base64_encode(p.b, p.n, text);
        n = strlen(text);
        assert_int_equal(n, 128);
        assert_int_equal(text[n - 1], '=');
        assert_int_not_equal(text[n - 2], '=');
        /* Every rule broken past the PNG's head (the first 32 characters): its header
         * alone, read without the check, would pass. */
        (void) snprintf(bad, sizeof(bad), "%.76s\n%s", text, text + 76); /* MIME lines */
        refused(header_of(content(bad), NULL));
        (void) snprintf(bad, sizeof(bad), "%s\n", text);
        refused(header_of(content(bad), NULL));
        (void) snprintf(bad, sizeof(bad), "%.40s %s", text, text + 40);
        refused(header_of(content(bad), NULL));
        (void) snprintf(bad, sizeof(bad), "%.*s", (int) n - 1, text); /* no padding */
        refused(header_of(content(bad), NULL));
        (void) snprintf(bad, sizeof(bad), "%s====", text);
        refused(header_of(content(bad), NULL));
        (void) snprintf(bad, sizeof(bad), "%s", text);
        bad[60] = '='; /* padding inside */
        refused(header_of(content(bad), NULL));
        (void) snprintf(bad, sizeof(bad), "%s", text);
        bad[60] = '-'; /* the URL-safe alphabet */
        refused(header_of(content(bad), NULL));
        bad[60] = '_';
        refused(header_of(content(bad), NULL));
        bad[60] = '*';
        refused(header_of(content(bad), NULL));
        /* A NUL in the content (JSON "\u0000"): the string's whole length is checked. */
        memcpy(bad, text, n);
        memcpy(bad + 64, "\0AAA", 4);
        refused(header_of(with("content", json_stringn(bad, n)), NULL));
        /* The non-canonical last character of a padded group ("unused bits set"). */
        (void) snprintf(bad, sizeof(bad), "%s", text);
        bad[n - 2] = bad[n - 2] == 'A' ? 'B' : (char) (bad[n - 2] ^ 1);
        refused(header_of(content(bad), NULL));
}

/* ---- the budget ----------------------------------------------------------------------------- */

static void test_budget_edge(void **state)
{
        json_t *h = header_of(valid(8, 8, 40), valid(9, 9, 41), NULL);
        size_t total = content_len(h, 0) + content_len(h, 1);
        (void) state;

        /* Exactly equal fits; one byte short does not. */
        accepted(json_deep_copy(h), total, 73 + 74, false);
        refused_(json_deep_copy(h), total - 1, "two figures, one byte short");
        /* The first alone fits what the two do not: still refused, the harness would have
         * dropped the second and said so. */
        refused_(json_deep_copy(h), content_len(h, 0), "the second over the budget");
        refused_(json_deep_copy(h), 0, "no budget");
        json_decref(h);

        h = header_of(valid(8, 8, 40), NULL);
        accepted(json_deep_copy(h), content_len(h, 0), 73, false);
        refused_(json_deep_copy(h), content_len(h, 0) - 1, "one figure, one byte short");
        json_decref(h);
}

/* ---- through response_from_outcome: the budget is the result limit less the result ------ */

/* The response to the frame `<header>\n<result>` with `result_limit`; the PNG bytes it
 * returns in *ret_bytes. */
static json_t *answer(const char *header, const char *result, size_t result_limit,
                      size_t *ret_bytes)
{
        char frame[8192];
        ExecOutcome o = {
                .end = EXEC_END_NORMAL,
                .script_started = true,
                .frame_complete = true,
                .have_status = true,
                .result_limit = result_limit,
        };
        ApiResponse resp;
        json_t *body;
        int n = snprintf(frame, sizeof(frame), "%s\n%s", header, result);

        assert_true(n > 0 && (size_t) n < sizeof(frame));
        o.frame = frame;
        o.frame_len = (size_t) n;
        assert_int_equal(response_from_outcome(&o, &resp), 0);
        body = json_loads(resp.body, 0, NULL);
        assert_non_null(body);
        assert_int_equal(resp.http_status, api_code_http(resp.code));
        *ret_bytes = resp.figures_bytes;
        response_done(&resp);
        return body;
}

static bool channel_error(json_t *body)
{
        const char *error = json_string_value(json_object_get(body, "error"));
        const char *code = json_string_value(json_object_get(body, "code"));
        return error && strstr(error, "private result channel") && code &&
               strcmp(code, "RUNTIME_ERROR") == 0 && !json_object_get(body, "figures") &&
               !json_object_get(body, "result");
}

static void test_through_the_response(void **state)
{
        json_t *h = header_of(valid(8, 8, 40), NULL), *body;
        char *header_json = json_dumps(h, JSON_COMPACT);
        size_t len = content_len(h, 0), bytes;
        (void) state;

        assert_non_null(header_json);
        /* "abc" is 5 bytes of result: a limit of 5 + len fits exactly. */
        body = answer(header_json, "\"abc\"", 5 + len, &bytes);
        assert_string_equal(json_string_value(json_object_get(body, "result")), "abc");
        assert_true(json_equal(json_object_get(body, "figures"), json_object_get(h, "figures")));
        assert_int_equal(bytes, 73);
        json_decref(body);

        body = answer(header_json, "\"abc\"", 5 + len - 1, &bytes);
        assert_true(channel_error(body));
        assert_int_equal(bytes, 0);
        json_decref(body);
        /* A result longer than the limit (a frame of the script's own) leaves nothing. */
        body = answer(header_json, "\"abcdefgh\"", 5, &bytes);
        assert_true(channel_error(body));
        json_decref(body);
        free(header_json);

        /* No figures: figures_bytes 0, the keys absent. */
        body = answer("{\"status\":\"ok\"}", "1", 1, &bytes);
        assert_int_equal(json_integer_value(json_object_get(body, "result")), 1);
        assert_null(json_object_get(body, "figures"));
        assert_null(json_object_get(body, "figures_truncated"));
        assert_int_equal(bytes, 0);
        json_decref(body);

        /* An error frame's figures are not passed on (figures come only with a 200). */
        assert_int_equal(json_object_set_new(h, "status", json_string("runtime_error")), 0);
        assert_int_equal(json_object_set_new(h, "error", json_string("E")), 0);
        assert_int_equal(json_object_set_new(h, "figures_truncated", json_true()), 0);
        header_json = json_dumps(h, JSON_COMPACT);
        body = answer(header_json, "", SIZE_MAX, &bytes);
        assert_string_equal(json_string_value(json_object_get(body, "error")), "E");
        assert_null(json_object_get(body, "figures"));
        assert_null(json_object_get(body, "figures_truncated"));
        assert_int_equal(bytes, 0);
        json_decref(body);
        free(header_json);
        json_decref(h);
}

/* "png" followed by a NUL is not "png" (a strcmp() would stop at the NUL and let
 * "png\u0000<svg ...>" reach the client). */
static void test_format_with_a_nul(void **state)
{
        (void) state;

        refused(header_of(with("format", json_stringn("png\0<svg onload=alert(1)>", 25)), NULL));
        refused(header_of(with("format", json_stringn("png\0", 4)), NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_accepted),
                cmocka_unit_test(test_sixteen_at_most),
                cmocka_unit_test(test_refused_lists),
                cmocka_unit_test(test_refused_entries),
                cmocka_unit_test(test_refused_dimensions),
                cmocka_unit_test(test_refused_png),
                cmocka_unit_test(test_refused_base64),
                cmocka_unit_test(test_budget_edge),
                cmocka_unit_test(test_through_the_response),
                cmocka_unit_test(test_format_with_a_nul),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
