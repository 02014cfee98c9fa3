/* libFuzzer target: response_from_outcome(), the result decoder. A hostile script controls
 * the result frame (`<header JSON object>\n<result JSON>`) and its stdout and stderr; the
 * rest of the ExecOutcome is what the executor saw (how the sandbox ended, its wait status,
 * truncation, OOM kills). Input layout (missing bytes read as 0):
 *
 *   byte  0      end: value % 8, the ExecEnd values in order; those past the last one
 *                are EXEC_END_NORMAL too (the frame-reading case); bit 7 set: the
 *                sandbox never acknowledged its job (script_started false), and then bit
 *                5, with a wait status: because its input files did not fit
 *                (input_no_space); bit 6: the
 *                request asked for its files (return_files, at most 3 files of 64 bytes
 *                in all)
 *   byte  1      flags: 1 have_status, 2 out_truncated, 4 err_truncated, 8 oom_killed,
 *                16 request_id set, 32 internal_what set, 64 empty ranges are NULL,
 *                128 frame_complete
 *   bytes 2-5    wait_status (int32, little-endian: any value, not only real ones)
 *   byte  6, 7   setup_stage (int8), setup_errno
 *   byte  8      internal_errno; also the ApiCode of the response_error() call below
 *   bytes 9-12   timeout_ms
 *   bytes 13-16  duration in microseconds (the executor's clock: finite, non-negative)
 *   bytes 17-18  stdout length, bytes 19-20 stderr length (capped at what is left)
 *   then         stdout, stderr, and the frame (the rest)
 *
 * Checked for every input: 0 is returned; the body is one JSON object (jansson reads it
 * back, integers as reals since a spliced result may exceed 64 bits) with no NUL byte and no
 * duplicate member of its own; code, "code" and the HTTP status agree with api_code_http();
 * the code follows from how the sandbox ended; an "ok" result is spliced unchanged; stdout
 * and stderr are at most 3 bytes per byte printed (U+FFFD per invalid byte) and exactly the
 * bytes printed when those were valid UTF-8 (less a character cut at the limit); files
 * appear only when asked for, in the answers where the harness collects them, within the
 * limits, each as long as its size says; figures only in an OK answer, at most 16, each a
 * PNG (signature and IHDR) of the size it claims, their base64 text and the result within
 * the result limit (4096 bytes here). */
#include <errno.h>
#include <jansson.h>

#include "api/api.h"
#include "sandbox/sandbox.h"
#include "util/base64.h"
#include "util/utf8.h"

#include "fuzz.h"

enum {
        F_HAVE_STATUS = 1,
        F_OUT_TRUNCATED = 2,
        F_ERR_TRUNCATED = 4,
        F_OOM_KILLED = 8,
        F_REQUEST_ID = 16,
        F_INTERNAL_WHAT = 32,
        F_NULL_WHEN_EMPTY = 64,
        F_FRAME_COMPLETE = 128,
};

#define REQUEST_ID "fuzz-request-id"

static json_t *load(const char *s, size_t n, size_t flags)
{
        return json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL | flags,
                          NULL);
}

/* True if s[0..n) is a proper prefix of a well-formed UTF-8 sequence (a character cut off). */
static bool partial_char(const char *s, size_t n)
{
        static const unsigned char second[] = {0x80, 0x90, 0xA0};
        unsigned char seq[4];

        if (n == 0 || n > 3)
                return false;
        for (size_t c = 0; c < sizeof(second); c++) {
                memcpy(seq, s, n);
                for (size_t i = n; i < 4; i++)
                        seq[i] = i == 1 ? second[c] : 0x80;
                for (size_t len = n + 1; len <= 4; len++)
                        if (utf8_valid((const char *) seq, len) &&
                            !utf8_valid((const char *) seq, len - 1))
                                return true;
        }
        return false;
}

/* A "stdout"/"stderr" member against the bytes the sandbox printed. */
static void check_stream(const json_t *body, const char *key, const char *s, size_t n,
                         bool truncated)
{
        const json_t *v = json_object_get(body, key);
        size_t got;

        if (!v)
                return;
        fuzz_check(json_is_string(v), "\"%s\" is not a string", key);
        got = json_string_length(v);
        fuzz_check(got <= 3 * n, "\"%s\" is %zu bytes from %zu printed", key, got, n);
        if (utf8_valid(s, n)) {
                fuzz_check(got == n && (n == 0 || memcmp(json_string_value(v), s, n) == 0),
                           "\"%s\": valid UTF-8 was changed", key);
                return;
        }
        /* Cut at the limit inside a character: that character is dropped, not replaced. */
        for (size_t k = 1; truncated && k <= 3 && k <= n; k++)
                if (utf8_valid(s, n - k) && partial_char(s + n - k, k)) {
                        fuzz_check(got == n - k && memcmp(json_string_value(v), s, n - k) == 0,
                                   "\"%s\": truncated UTF-8 was not cut at the character", key);
                        return;
                }
}

/* The header's "status" if the frame is well-formed (a JSON object header), else NULL. */
static json_t *frame_header(const char *frame, size_t len, const char **ret_raw,
                            size_t *ret_raw_len)
{
        const char *nl = frame ? memchr(frame, '\n', len) : NULL;
        json_t *h;

        if (!nl)
                return NULL;
        h = json_loadb(frame, (size_t) (nl - frame), JSON_ALLOW_NUL, NULL);
        if (!json_is_object(h)) {
                json_decref(h);
                return NULL;
        }
        *ret_raw = nl + 1;
        *ret_raw_len = len - (size_t) (nl + 1 - frame);
        return h;
}

/* Checks one response body; returns it parsed (the caller drops it). */
static json_t *check_body(const ApiResponse *resp, const char *raw, size_t raw_len)
{
        json_t *j, *code;

        fuzz_check(resp->body != NULL, "no body");
        fuzz_check(strlen(resp->body) == resp->len, "body has a NUL byte at %zu of %zu",
                   strlen(resp->body), resp->len);
        fuzz_check((unsigned) resp->code < _API_CODE_MAX, "code %d out of range", resp->code);
        j = load(resp->body, resp->len, 0);
        fuzz_check(json_is_object(j), "body is not a JSON object: %.300s", resp->body);

        /* Duplicate members are allowed only inside a spliced result that had them. */
        json_t *strict = load(resp->body, resp->len, JSON_REJECT_DUPLICATES);
        if (!strict) {
                json_t *r = raw ? load(raw, raw_len, JSON_REJECT_DUPLICATES) : NULL;
                fuzz_check(raw && !r, "duplicate member in the body: %.300s", resp->body);
                json_decref(r);
        }
        json_decref(strict);

        code = json_object_get(j, "code");
        if (resp->code == API_OK)
                fuzz_check(!code && !json_object_get(j, "error"), "an OK body with an error");
        else {
                fuzz_check(json_is_string(code) &&
                                   strcmp(json_string_value(code), api_code_name(resp->code)) == 0,
                           "\"code\" is not %s", api_code_name(resp->code));
                fuzz_check(json_is_string(json_object_get(j, "error")), "no \"error\" message");
        }
        return j;
}

static void check_files(json_t *j, const ExecOutcome *o, ApiCode code)
{
        json_t *files = json_object_get(j, "files"), *f;
        size_t i, total = 0;
        bool any = files || json_object_get(j, "files_omitted") ||
                   json_object_get(j, "files_truncated");

        if (!any)
                return;
        fuzz_check(o->return_files, "files in an answer that did not ask for them");
        fuzz_check(code == API_OK || code == API_RUNTIME_ERROR || code == API_NOT_JSON_SERIALIZABLE,
                   "files in a %s answer", api_code_name(code));
        fuzz_check(!files || (json_array_size(files) > 0 &&
                              json_array_size(files) <= o->max_output_files),
                   "%zu files", json_array_size(files));
        json_array_foreach(files, i, f)
        {
                const char *c = json_string_value(json_object_get(f, "content"));
                size_t n = json_string_length(json_object_get(f, "content")), pad = 0;
                /* check_body() reads integers as reals */
                double size = json_number_value(json_object_get(f, "size"));
                while (pad < 2 && pad < n && c[n - 1 - pad] == '=')
                        pad++;
                fuzz_check(c && n % 4 == 0 && size >= 0 && (size_t) size == n / 4 * 3 - pad,
                           "file %zu: size %lld for %zu base64 characters", i, (long long) size, n);
                total += (size_t) size;
        }
        fuzz_check(total <= o->output_files_limit, "%zu bytes of files", total);
}

/* Figures, checked by other means than api/figures.c's: decoded whole. */
static void check_figures(json_t *j, const ExecOutcome *o, ApiCode code, size_t raw_len)
{
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        json_t *figures = json_object_get(j, "figures"), *f;
        size_t i, text = raw_len;

        if (!figures && !json_object_get(j, "figures_truncated"))
                return;
        fuzz_check(code == API_OK, "figures in a %s answer", api_code_name(code));
        fuzz_check(!figures || (json_array_size(figures) > 0 && json_array_size(figures) <= 16),
                   "%zu figures", json_array_size(figures));
        json_array_foreach(figures, i, f)
        {
                const char *c = json_string_value(json_object_get(f, "content"));
                size_t n = json_string_length(json_object_get(f, "content")), len = 0;
                unsigned char *png;
                fuzz_check(c && base64_check(c, n, &len) == 0 && len >= 24,
                           "figure %zu: not base64 of 24 bytes or more", i);
                png = malloc(n / 4 * 3);
                fuzz_check(png != NULL, "out of memory");
                base64_decode_groups(c, n / 4, png);
                fuzz_check(memcmp(png, sig, 8) == 0 && memcmp(png + 12, "IHDR", 4) == 0,
                           "figure %zu: not a PNG", i);
                /* check_body() reads integers as reals */
                fuzz_check(json_number_value(json_object_get(f, "width")) ==
                                           (double) ((uint32_t) png[16] << 24 |
                                                     (uint32_t) png[17] << 16 | png[18] << 8 |
                                                     png[19]) &&
                                   json_number_value(json_object_get(f, "height")) ==
                                           (double) ((uint32_t) png[20] << 24 |
                                                     (uint32_t) png[21] << 16 | png[22] << 8 |
                                                     png[23]),
                           "figure %zu: size differs from its PNG's", i);
                free(png);
                text += n;
        }
        fuzz_check(!figures || text <= o->result_limit, "%zu bytes of result and figures", text);
}

static void check_outcome(const ExecOutcome *o)
{
        ApiResponse resp = {0};
        const char *raw = NULL;
        size_t raw_len = 0;
        json_t *header = frame_header(o->frame, o->frame_len, &raw, &raw_len);
        const char *status = json_string_value(json_object_get(header, "status"));
        bool ok_frame = status && strcmp(status, "ok") == 0;
        json_t *j, *v;
        int r;

        r = response_from_outcome(o, &resp);
        fuzz_check(r == 0, "response_from_outcome returned %d", r);
        j = check_body(&resp, ok_frame ? raw : NULL, raw_len);
        fuzz_check(resp.http_status == api_code_http(resp.code), "HTTP %u for %s", resp.http_status,
                   api_code_name(resp.code));

        switch (o->end) {
        case EXEC_END_TIMEOUT:
                fuzz_check(resp.code == API_TIMEOUT, "timeout gave %s", api_code_name(resp.code));
                break;
        case EXEC_END_OUTPUT_LIMIT:
        case EXEC_END_RESULT_LIMIT:
                fuzz_check(resp.code == API_OUTPUT_LIMIT, "output limit gave %s",
                           api_code_name(resp.code));
                v = json_object_get(j, "truncated");
                fuzz_check(json_is_boolean(v) &&
                                   json_is_true(v) == (o->out_truncated || o->err_truncated),
                           "\"truncated\" wrong");
                break;
        case EXEC_END_SETUP_FAILED:
        case EXEC_END_INTERNAL:
                fuzz_check(resp.code == API_INTERNAL, "set-up failure gave %s",
                           api_code_name(resp.code));
                break;
        case EXEC_END_EXPIRED:
                fuzz_check(resp.code == API_OVERLOADED, "expiry in the queue gave %s",
                           api_code_name(resp.code));
                break;
        case EXEC_END_NORMAL:
                /* What the script did is data, never INTERNAL: only a sandbox that ended
                 * before its job was acknowledged (and not by the OOM killer), or left
                 * neither a wait status nor a frame (a byte of one, or a complete one of
                 * length 0), is the service's failure. */
                fuzz_check((resp.code == API_INTERNAL) ==
                                   ((!o->script_started && !o->oom_killed && !o->input_no_space) ||
                                    (!o->have_status && o->frame_len == 0 && !o->frame_complete)),
                           "%s with%s status, %zu frame bytes, script %sstarted",
                           api_code_name(resp.code), o->have_status ? "" : "out", o->frame_len,
                           o->script_started ? "" : "not ");
                /* After a complete frame the executor kills the sandbox: not a crash. */
                if (o->frame_complete)
                        fuzz_check(resp.code != API_CRASHED, "CRASHED after a complete frame");
                if (!header && o->oom_killed && resp.code != API_INTERNAL)
                        fuzz_check(resp.code == API_MEMORY_LIMIT, "OOM kill gave %s",
                                   api_code_name(resp.code));
                break;
        default:
                /* An ExecEnd newer than this target: only the checks that hold for all. */
                break;
        }
        if (resp.code == API_INTERNAL) {
                v = json_object_get(j, "request_id");
                fuzz_check(o->request_id ? json_is_string(v) &&
                                                   strcmp(json_string_value(v), REQUEST_ID) == 0
                                         : !v,
                           "request_id wrong");
        }
        if (resp.code == API_OK) {
                json_t *want = load(raw, raw_len, 0);
                fuzz_check(o->end == EXEC_END_NORMAL && ok_frame, "OK without an ok frame");
                fuzz_check(json_equal(json_object_get(j, "result"), want),
                           "result not spliced unchanged");
                json_decref(want);
        }
        check_stream(j, "stdout", o->out, o->out_len, o->out_truncated);
        check_stream(j, "stderr", o->err, o->err_len, o->err_truncated);
        check_files(j, o, resp.code);
        check_figures(j, o, resp.code, ok_frame ? raw_len : 0);

        json_decref(j);
        json_decref(header);
        response_done(&resp);
        fuzz_check(resp.body == NULL, "response_done left the body");
}

/* response_error() with any code (in range or not) and the stderr bytes as the message. */
static void check_error(uint8_t code_byte, const char *msg, const char *request_id)
{
        ApiCode code = (ApiCode) (code_byte % (_API_CODE_MAX + 2));
        ApiResponse resp = {0};
        json_t *j;
        int r;

        r = response_error(code, msg, request_id, &resp);
        fuzz_check(r == 0, "response_error returned %d", r);
        fuzz_check(resp.http_status == api_code_http(code), "HTTP %u for code %d", resp.http_status,
                   (int) code);
        if ((unsigned) code < _API_CODE_MAX && code != API_OK) {
                j = check_body(&resp, NULL, 0);
                json_decref(j);
        } else {
                /* Out of range: whatever it is called, it is still one JSON object. */
                j = load(resp.body, resp.len, 0);
                fuzz_check(json_is_object(j) && strlen(resp.body) == resp.len, "bad body");
                json_decref(j);
        }
        response_done(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        FuzzInput in = {data, size};
        ExecOutcome o = {0};
        uint8_t flags, code_byte;
        const uint8_t *out, *err;
        size_t out_len, err_len, frame_len;
        char *out_copy, *err_copy, *frame_copy, *msg;

        flags = fuzz_u8(&in);
        o.end = (ExecEnd) (flags % 8);
        o.script_started = !(flags & 128);
        bool no_space = flags & 32;
        o.return_files = flags & 64;
        o.max_output_files = 3;
        o.output_files_limit = 64;
        o.result_limit = 4096;
        if (o.end > EXEC_END_EXPIRED)
                o.end = EXEC_END_NORMAL;
        flags = fuzz_u8(&in);
        o.have_status = flags & F_HAVE_STATUS;
        o.out_truncated = flags & F_OUT_TRUNCATED;
        o.err_truncated = flags & F_ERR_TRUNCATED;
        o.oom_killed = flags & F_OOM_KILLED;
        o.request_id = flags & F_REQUEST_ID ? REQUEST_ID : NULL;
        o.internal_what = flags & F_INTERNAL_WHAT ? "spawn" : NULL;
        o.frame_complete = flags & F_FRAME_COMPLETE;
        /* As the executor sets it: from the exit status of an unacknowledged sandbox. */
        o.input_no_space = no_space && !o.script_started && o.have_status;
        o.wait_status = (int) fuzz_u32(&in);
        o.setup_stage = sandbox_stage_name((int8_t) fuzz_u8(&in)); /* as the executor does */
        o.setup_errno = fuzz_u8(&in);
        code_byte = fuzz_u8(&in);
        o.internal_errno = code_byte;
        o.timeout_ms = fuzz_u32(&in);
        o.duration_ms = fuzz_u32(&in) / 1000.0;
        out_len = fuzz_u16(&in);
        err_len = fuzz_u16(&in);
        out = fuzz_bytes(&in, out_len, &out_len);
        err = fuzz_bytes(&in, err_len, &err_len);
        frame_len = in.n;

        /* Each range in its own allocation, so an overread is caught at its end. */
        out_copy = fuzz_dup(out, out_len, false);
        err_copy = fuzz_dup(err, err_len, false);
        frame_copy = fuzz_dup(in.p, frame_len, false);
        bool null_empty = flags & F_NULL_WHEN_EMPTY;
        o.out = out_len == 0 && null_empty ? NULL : out_copy, o.out_len = out_len;
        o.err = err_len == 0 && null_empty ? NULL : err_copy, o.err_len = err_len;
        o.frame = frame_len == 0 && null_empty ? NULL : frame_copy, o.frame_len = frame_len;

        check_outcome(&o);

        msg = fuzz_dup(err, err_len, true); /* up to its first NUL, as a C string */
        check_error(code_byte, msg, o.request_id);
        free(msg);

        free(out_copy);
        free(err_copy);
        free(frame_copy);
        return 0;
}
