/* libFuzzer target: request_parse(), a POST /execute body from the network -> ExecRequest.
 *
 * Input: the raw body, so corpus files are plain request bodies. Each is parsed under the
 * server's default limits and under the smallest and largest limits --timeout and
 * --memory-mb accept. An independent reading of the body with jansson is the oracle:
 *
 *   - the parser returns 0, or API_INVALID_REQUEST with a non-empty message; never -errno
 *     (nothing here can fail but malloc) and never another code;
 *   - it accepts exactly the bodies the contract allows: one JSON object, no duplicate
 *     keys, only "script" (a non-empty string without NUL), "timeout" (seconds in
 *     (0, max]), "memory_mb" (an integer in [1, max]), "stdin" (a string), "args" (an
 *     array), "kwargs" (an object), "return_files" (a boolean) and "files" (at most
 *     max_files objects of "path", "content" and an optional "encoding" "utf-8" or
 *     "base64" with strict base64, paths under the path rules, none twice, none a
 *     directory of another); input files that cannot fit in /tmp are PAYLOAD_TOO_LARGE;
 *   - an accepted request carries the body's script byte for byte, NUL-terminated, and
 *     limits within the server's; with any of the fields the harness reads, its input is
 *     a control object, a newline and the body; a refused one leaves *ret untouched.
 *
 * The same bytes also go to request_from_script() (the `pyexecd exec` path). */
#include <errno.h>
#include <jansson.h>
#include <math.h>

#include "api/api.h"
#include "util/utf8.h"

#include "fuzz.h"

static const RequestLimits limits[] = {
        /* the defaults */
        {.max_timeout_ms = 10000,
         .max_memory_mb = 256,
         .max_files = 100,
         .tmp_bytes = 64 << 20,
         .max_output_files = 100,
         .output_files_limit = 8 << 20},
        /* the lowest allowed */
        {.max_timeout_ms = 1, .max_memory_mb = 16, .max_files = 0, .tmp_bytes = 1 << 20},
        /* the highest allowed, and a /tmp that holds two pages */
        {.max_timeout_ms = 3600000,
         .max_memory_mb = 1048576,
         .max_files = 100000,
         .tmp_bytes = 8192,
         .max_output_files = 100000,
         .output_files_limit = 1 << 30},
};

typedef enum Verdict { ACCEPT, REFUSE, TOO_LARGE } Verdict;

/* The path rules, read independently of api/files.c. */
static bool path_ok(const char *p, size_t n)
{
        size_t comp = 0, count = 1;

        if (n == 0 || n > 1024 || p[0] == '/' || memchr(p, '\0', n))
                return false;
        for (size_t i = 0; i <= n; i++) {
                if (i < n && p[i] != '/') {
                        comp++;
                        continue;
                }
                const char *c = p + i - comp;
                if (comp == 0 || comp > 255 || (comp == 1 && c[0] == '.') ||
                    (comp == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (i < n && ++count > 16)
                        return false;
                comp = 0;
        }
        return true;
}

/* Decoded length of strict base64, or -1. */
static long b64_len(const char *s, size_t n)
{
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t pad = 0;

        if (n % 4)
                return -1;
        while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
                pad++;
        for (size_t i = 0; i < n - pad; i++)
                if (!s[i] || !strchr(alphabet, s[i]))
                        return -1;
        if (pad) {
                long last = strchr(alphabet, s[n - pad - 1]) - alphabet;
                if (last & (pad == 1 ? 0x3 : 0xf))
                        return -1;
        }
        return (long) (n / 4 * 3 - pad);
}

static Verdict files_verdict(json_t *files, const RequestLimits *lim)
{
        size_t n, need = 0, i;
        json_t *f;

        if (!json_is_array(files) || (n = json_array_size(files)) > lim->max_files)
                return REFUSE;
        json_array_foreach(files, i, f)
        {
                json_t *path = json_object_get(f, "path"), *content = json_object_get(f, "content"),
                       *enc = json_object_get(f, "encoding");
                long size;
                if (!json_is_object(f) || !json_is_string(path) || !json_is_string(content) ||
                    json_object_size(f) != 2u + (enc != NULL) ||
                    !path_ok(json_string_value(path), json_string_length(path)))
                        return REFUSE;
                if (enc && (!json_is_string(enc) || (strcmp(json_string_value(enc), "utf-8") &&
                                                     strcmp(json_string_value(enc), "base64"))))
                        return REFUSE;
                size = (long) json_string_length(content);
                if (enc && strcmp(json_string_value(enc), "base64") == 0 &&
                    (size = b64_len(json_string_value(content), json_string_length(content))) < 0)
                        return REFUSE;
                need += ((size_t) size + 4095) / 4096 * 4096;
                /* No other entry has this path, or has it as a directory, or is one of its
                 * directories. */
                for (size_t k = 0; k < n; k++) {
                        json_t *o = json_object_get(json_array_get(files, k), "path");
                        const char *a = json_string_value(path), *b = json_string_value(o);
                        size_t al = json_string_length(path), bl = json_string_length(o);
                        if (k == i || !json_is_string(o))
                                continue;
                        if ((al == bl && memcmp(a, b, al) == 0) ||
                            (al < bl && memcmp(a, b, al) == 0 && b[al] == '/'))
                                return REFUSE;
                }
        }
        return need > lim->tmp_bytes ? TOO_LARGE : ACCEPT;
}

/* What the contract says about `root` (integers beyond 64 bits read as reals). */
static Verdict verdict(const json_t *root, const RequestLimits *lim, bool ints_as_reals)
{
        const char *key;
        json_t *v;
        bool script = false;
        Verdict files = ACCEPT;

        if (!json_is_object(root))
                return REFUSE;
        json_object_foreach((json_t *) root, key, v)
        {
                if (strcmp(key, "script") == 0) {
                        if (!json_is_string(v) || json_string_length(v) == 0 ||
                            memchr(json_string_value(v), '\0', json_string_length(v)))
                                return REFUSE;
                        script = true;
                } else if (strcmp(key, "timeout") == 0) {
                        if (!json_is_number(v) || !(json_number_value(v) > 0) ||
                            json_number_value(v) > lim->max_timeout_ms / 1000.0)
                                return REFUSE;
                } else if (strcmp(key, "memory_mb") == 0) {
                        double d = json_number_value(v);
                        bool integer = json_is_integer(v) ||
                                       (ints_as_reals && json_is_real(v) && d == floor(d));
                        if (!integer || d < 1 || d > lim->max_memory_mb)
                                return REFUSE;
                } else if (strcmp(key, "stdin") == 0) {
                        if (!json_is_string(v))
                                return REFUSE;
                } else if (strcmp(key, "args") == 0) {
                        if (!json_is_array(v))
                                return REFUSE;
                } else if (strcmp(key, "kwargs") == 0) {
                        if (!json_is_object(v))
                                return REFUSE;
                } else if (strcmp(key, "return_files") == 0) {
                        if (!json_is_boolean(v))
                                return REFUSE;
                } else if (strcmp(key, "files") == 0) {
                        files = files_verdict(v, lim);
                        if (files == REFUSE)
                                return REFUSE;
                } else
                        return REFUSE;
        }
        if (!script)
                return REFUSE;
        return files;
}

static void check_errbuf(const char *errbuf, size_t errlen, const char *what)
{
        fuzz_check(memchr(errbuf, '\0', errlen), "%s: message not NUL-terminated", what);
        fuzz_check(errbuf[0] != '\0', "%s: refused without a message", what);
}

static void check_parse(const char *body, size_t len, const json_t *root, const RequestLimits *lim,
                        bool ints_as_reals)
{
        char errbuf[256];
        ExecRequest req, before;
        Verdict v = verdict(root, lim, ints_as_reals);
        bool expect = v == ACCEPT;
        int r;

        memset(&req, 0xA5, sizeof(req));
        before = req;
        memset(errbuf, 'x', sizeof(errbuf));
        r = request_parse(body, len, lim, &req, errbuf, sizeof(errbuf));
        if (r == -ENOMEM)
                return;
        fuzz_check(r == 0 || r == API_INVALID_REQUEST || r == API_PAYLOAD_TOO_LARGE,
                   "request_parse returned %d", r);
        if (r != 0) {
                fuzz_check(!expect, "a valid request was refused: %s", errbuf);
                fuzz_check((r == API_PAYLOAD_TOO_LARGE) == (v == TOO_LARGE),
                           "refused as %d, the oracle says %d: %s", r, (int) v, errbuf);
                check_errbuf(errbuf, sizeof(errbuf), "request_parse");
                fuzz_check(memcmp(&req, &before, sizeof(req)) == 0, "*ret written on failure");
                return;
        }
        fuzz_check(expect, "an invalid request was accepted (limits %u ms, %u MiB)",
                   lim->max_timeout_ms, lim->max_memory_mb);

        json_t *script = json_object_get(root, "script");
        json_t *timeout = json_object_get(root, "timeout");
        json_t *memory = json_object_get(root, "memory_mb");

        fuzz_check(req.script && req.script_len > 0, "empty script accepted");
        fuzz_check(req.script[req.script_len] == '\0' && strlen(req.script) == req.script_len,
                   "script not NUL-terminated or holds a NUL");
        fuzz_check(req.script_len == json_string_length(script) &&
                           memcmp(req.script, json_string_value(script), req.script_len) == 0,
                   "script differs from the body's");
        fuzz_check(utf8_valid(req.script, req.script_len), "script is not UTF-8");
        fuzz_check(req.timeout_ms >= 1 && req.timeout_ms <= lim->max_timeout_ms,
                   "timeout_ms %u outside [1, %u]", req.timeout_ms, lim->max_timeout_ms);
        if (timeout) {
                double want = json_number_value(timeout) * 1000.0;
                fuzz_check(fabs(req.timeout_ms - want) <= 0.5 ||
                                   (want < 1.0 && req.timeout_ms == 1),
                           "timeout %g s became %u ms", json_number_value(timeout), req.timeout_ms);
        } else
                fuzz_check(req.timeout_ms == lim->max_timeout_ms, "default timeout not the max");
        fuzz_check(req.memory_mb ==
                           (memory ? (uint32_t) json_number_value(memory) : lim->max_memory_mb),
                   "memory_mb %u not what was asked", req.memory_mb);
        fuzz_check(req.return_files == json_is_true(json_object_get(root, "return_files")),
                   "return_files not what was asked");
        if (req.input) {
                const char *nl = memchr(req.input, '\n', req.input_len);
                fuzz_check(nl && req.input_len - (size_t) (nl + 1 - req.input) == len &&
                                   memcmp(nl + 1, body, len) == 0,
                           "the job input does not end in the body");
        }
        request_done(&req);
        fuzz_check(req.script == NULL && req.input == NULL, "request_done left the script");
}

static void check_script(const char *body, size_t len)
{
        char errbuf[256];
        ExecRequest req;
        int r;

        memset(errbuf, 'x', sizeof(errbuf));
        r = request_from_script(body, len, &limits[0], &req, errbuf, sizeof(errbuf));
        if (r == -ENOMEM)
                return;
        fuzz_check(r == 0 || r == API_INVALID_REQUEST, "request_from_script returned %d", r);
        if (r != 0) {
                fuzz_check(len == 0 || memchr(body, '\0', len) || !utf8_valid(body, len),
                           "a valid script was refused: %s", errbuf);
                check_errbuf(errbuf, sizeof(errbuf), "request_from_script");
                return;
        }
        fuzz_check(req.script_len == len && memcmp(req.script, body, len) == 0 &&
                           req.script[len] == '\0',
                   "script not copied exactly");
        request_done(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* A copy with no slack after it: the body is not NUL-terminated on the wire. */
        char *body = fuzz_dup(data, size, false);
        json_error_t err;
        json_t *root = json_loadb(body, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
        bool ints_as_reals = false;

        if (!root && json_error_code(&err) == json_error_numeric_overflow) {
                root = json_loadb(body, size,
                                  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                                  NULL);
                ints_as_reals = true;
        }
        for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
                check_parse(body, size, root, &limits[i], ints_as_reals);
        check_script(body, size);
        json_decref(root);
        free(body);
        return 0;
}
