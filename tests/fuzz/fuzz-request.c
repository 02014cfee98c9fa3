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
 *     (0, max]) and "memory_mb" (an integer in [1, max]);
 *   - an accepted request carries the body's script byte for byte, NUL-terminated, and
 *     limits within the server's; a refused one leaves *ret untouched.
 *
 * The same bytes also go to request_from_script() (the `pyexecd exec` path). */
#include <errno.h>
#include <jansson.h>
#include <math.h>

#include "api/api.h"
#include "util/utf8.h"

#include "fuzz.h"

static const RequestLimits limits[] = {
        {.max_timeout_ms = 10000, .max_memory_mb = 256},       /* the defaults */
        {.max_timeout_ms = 1, .max_memory_mb = 16},            /* the lowest allowed */
        {.max_timeout_ms = 3600000, .max_memory_mb = 1048576}, /* the highest allowed */
};

/* What the contract says about `root`: true if it is a request the server must accept. */
static bool acceptable(const json_t *root, const RequestLimits *lim)
{
        const char *key;
        json_t *v;
        bool script = false;

        if (!json_is_object(root))
                return false;
        json_object_foreach((json_t *) root, key, v)
        {
                if (strcmp(key, "script") == 0) {
                        if (!json_is_string(v) || json_string_length(v) == 0 ||
                            memchr(json_string_value(v), '\0', json_string_length(v)))
                                return false;
                        script = true;
                } else if (strcmp(key, "timeout") == 0) {
                        if (!json_is_number(v) || !(json_number_value(v) > 0) ||
                            json_number_value(v) > lim->max_timeout_ms / 1000.0)
                                return false;
                } else if (strcmp(key, "memory_mb") == 0) {
                        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                            json_integer_value(v) > (json_int_t) lim->max_memory_mb)
                                return false;
                } else
                        return false;
        }
        return script;
}

static void check_errbuf(const char *errbuf, size_t errlen, const char *what)
{
        fuzz_check(memchr(errbuf, '\0', errlen), "%s: message not NUL-terminated", what);
        fuzz_check(errbuf[0] != '\0', "%s: refused without a message", what);
}

static void check_parse(const char *body, size_t len, const json_t *root, const RequestLimits *lim)
{
        char errbuf[256];
        ExecRequest req, before;
        bool expect = acceptable(root, lim);
        int r;

        memset(&req, 0xA5, sizeof(req));
        before = req;
        memset(errbuf, 'x', sizeof(errbuf));
        r = request_parse(body, len, lim, &req, errbuf, sizeof(errbuf));
        if (r == -ENOMEM)
                return;
        fuzz_check(r == 0 || r == API_INVALID_REQUEST, "request_parse returned %d", r);
        if (r != 0) {
                fuzz_check(!expect, "a valid request was refused: %s", errbuf);
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
                           (memory ? (uint32_t) json_integer_value(memory) : lim->max_memory_mb),
                   "memory_mb %u not what was asked", req.memory_mb);
        request_done(&req);
        fuzz_check(req.script == NULL, "request_done left the script");
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
        json_t *root = json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);

        for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
                check_parse(body, size, root, &limits[i]);
        check_script(body, size);
        json_decref(root);
        free(body);
        return 0;
}
