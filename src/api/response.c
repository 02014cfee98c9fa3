/* See api.h: building response bodies.
 *
 * The result frame comes from the sandbox (runtime/harness.py writes it, but the script
 * can write to the same channel): `<header JSON object>\n<result JSON>`. Every part is
 * validated here. The result itself is spliced into the response verbatim once jansson
 * has accepted it as one complete JSON value, so numbers keep the exact text Python gave
 * them (0.1 stays 0.1, big integers stay exact). Text the script produced (stdout,
 * stderr, messages) is repaired to valid UTF-8 before it becomes a JSON string. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "api/api.h"
#include "api/files.h"
#include "util/macro.h"
#include "util/utf8.h"

/* A JSON string of arbitrary bytes (invalid UTF-8 repaired). NULL on ENOMEM. */
static json_t *text(const char *s, size_t n)
{
        size_t len;
        char *fixed = utf8_sanitize(s ? s : "", s ? n : 0, &len);
        json_t *j;

        if (!fixed)
                return NULL;
        j = json_stringn_nocheck(fixed, len);
        free(fixed);
        return j;
}

static int set(json_t *obj, const char *key, json_t *value)
{
        /* json_object_set_new steals the reference, even on failure. */
        if (!value || json_object_set_new(obj, key, value) < 0)
                return -ENOMEM;
        return 0;
}

/* Serialises obj; when `raw` is given, it becomes the first member "result". */
static int finish(json_t *obj, ApiCode code, const char *raw, size_t raw_len, ApiResponse *ret)
{
        char *env = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));
        char *body;
        size_t env_len, len;

        if (!env)
                return -ENOMEM;
        env_len = strlen(env);
        if (!raw) {
                body = env;
                len = env_len;
        } else {
                /* {"result":RAW,<members of env>} ; env is "{...}" with >= 1 member. */
                static const char head[] = "{\"result\":";
                len = sizeof(head) - 1 + raw_len + 1 + (env_len - 1);
                body = malloc(len + 1);
                if (!body) {
                        free(env);
                        return -ENOMEM;
                }
                memcpy(body, head, sizeof(head) - 1);
                memcpy(body + sizeof(head) - 1, raw, raw_len);
                body[sizeof(head) - 1 + raw_len] = ',';
                memcpy(body + sizeof(head) + raw_len, env + 1, env_len - 1);
                body[len] = '\0';
                free(env);
        }
        *ret = (ApiResponse){
                .body = body,
                .len = len,
                .code = code,
                .http_status = api_code_http(code),
        };
        return 0;
}

/* finish(), for an answer that returns `files_bytes` bytes of files. */
static int finish_files(json_t *obj, ApiCode code, const char *raw, size_t raw_len,
                        size_t files_bytes, ApiResponse *ret)
{
        int r = finish(obj, code, raw, raw_len, ret);
        if (r == 0)
                ret->files_bytes = files_bytes;
        return r;
}

static int add_error(json_t *obj, ApiCode code, const char *message)
{
        int r = set(obj, "error", text(message, strlen(message)));
        if (r == 0)
                r = set(obj, "code", json_string(api_code_name(code)));
        return r;
}

int response_error(ApiCode code, const char *message, const char *request_id, ApiResponse *ret)
{
        json_t *obj = json_object();
        int r;

        if (!obj)
                return -ENOMEM;
        r = add_error(obj, code, message);
        if (r == 0 && code == API_INTERNAL && request_id)
                r = set(obj, "request_id", text(request_id, strlen(request_id)));
        if (r == 0)
                r = finish(obj, code, NULL, 0, ret);
        json_decref(obj);
        return r;
}

int response_simple(unsigned http_status, const char *key, const char *value, ApiResponse *ret)
{
        json_t *obj = json_object();
        int r;

        if (!obj)
                return -ENOMEM;
        r = set(obj, key, json_string(value));
        if (r == 0)
                r = finish(obj, API_OK, NULL, 0, ret);
        json_decref(obj);
        if (r == 0)
                ret->http_status = http_status;
        return r;
}

int response_ready(bool ready, const char *const *disabled, size_t n_disabled, ApiResponse *ret)
{
        json_t *obj = json_object(), *layers = json_array();
        int r = obj && layers ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < n_disabled; i++)
                if (json_array_append_new(layers, json_string(disabled[i])) < 0)
                        r = -ENOMEM;
        if (r == 0)
                r = set(obj, "status", json_string(ready ? "ready" : "not ready"));
        if (r == 0) {
                r = set(obj, "disabled_layers", layers);
                layers = NULL;
        }
        if (r == 0)
                r = finish(obj, API_OK, NULL, 0, ret);
        json_decref(layers);
        json_decref(obj);
        if (r == 0)
                ret->http_status = ready ? 200 : 503;
        return r;
}

/* What the sandbox printed, and how long the script ran. A stream cut at the limit may end
 * inside a character: that partial character is dropped, not replaced, so the repaired
 * text stays within the limit. */
static int add_run(json_t *obj, const ExecOutcome *o)
{
        size_t out_len = o->out_truncated ? utf8_trim_partial(o->out, o->out_len) : o->out_len;
        size_t err_len = o->err_truncated ? utf8_trim_partial(o->err, o->err_len) : o->err_len;
        int r = set(obj, "stdout", text(o->out, out_len));
        if (r == 0)
                r = set(obj, "stderr", text(o->err, err_len));
        if (r == 0)
                r = set(obj, "duration_ms", json_real(round(o->duration_ms * 1000.0) / 1000.0));
        return r;
}

typedef struct Frame {
        json_t *header; /* owned */
        const char *status;
        const char *raw; /* result text, validated, for status "ok" */
        size_t raw_len;
        bool nul_key; /* status "ok": the result is valid JSON with a NUL in an object key */
} Frame;

/* Deeper results are refused: the harness never nests beyond 64 levels, and a body one
 * level deeper than what the result had must stay readable by every JSON parser (jansson
 * stops at 2048, Python at about 1000). */
#define RESULT_DEPTH_MAX 512

/* True if the JSON text nests arrays/objects deeper than `max` (strings are skipped). */
static bool nests_deeper_than(const char *s, size_t n, unsigned max)
{
        unsigned depth = 0;
        bool in_string = false, escaped = false;

        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (in_string) {
                        if (escaped)
                                escaped = false;
                        else if (c == '\\')
                                escaped = true;
                        else if (c == '"')
                                in_string = false;
                } else if (c == '"')
                        in_string = true;
                else if (c == '[' || c == '{') {
                        if (++depth > max)
                                return true;
                } else if ((c == ']' || c == '}') && depth > 0)
                        depth--;
        }
        return false;
}

static json_t *load_result(const char *s, size_t n, json_error_t *err)
{
        /* Integers are read as reals so that values beyond 64 bits validate; the text
         * itself is what we send. */
        return json_loadb(s, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, err);
}

/* Turns every \u0000 escape inside a string of the JSON text into \u0001. */
static void mask_nul_escapes(char *s, size_t n)
{
        bool in_string = false;

        for (size_t i = 0; i < n; i++) {
                if (!in_string)
                        in_string = s[i] == '"';
                else if (s[i] == '"')
                        in_string = false;
                else if (s[i] == '\\' && i + 1 < n) {
                        if (n - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0)
                                s[i + 5] = '1';
                        i++; /* the escaped character */
                }
        }
}

/* Checks the result text of an "ok" frame: 0 if it is one complete JSON value and nothing
 * else; -EILSEQ if it is one, but with a NUL character in an object key (valid JSON, which
 * jansson, like most consumers, cannot hold: the contract refuses it as a result);
 * -EBADMSG if it is not; -ENOMEM. */
static int result_check(const char *s, size_t n)
{
        json_error_t err;
        json_t *v;
        char *masked;

        /* jansson stops at a raw NUL byte after a top-level number and calls that the end:
         * such bytes would be spliced into the body. */
        if (memchr(s, '\0', n) || nests_deeper_than(s, n, RESULT_DEPTH_MAX))
                return -EBADMSG;
        v = load_result(s, n, &err);
        if (v) {
                json_decref(v);
                return 0;
        }
        if (json_error_code(&err) != json_error_null_byte_in_key)
                return -EBADMSG;
        /* Is that the only fault? The same text with \u0001 for every \u0000 tells. */
        masked = malloc(n);
        if (!masked)
                return -ENOMEM;
        memcpy(masked, s, n);
        mask_nul_escapes(masked, n);
        v = load_result(masked, n, NULL);
        free(masked);
        if (!v)
                return -EBADMSG;
        json_decref(v);
        return -EILSEQ;
}

/* Returns 0 with a valid frame, -EBADMSG, or -ENOMEM. */
static int frame_parse(const char *data, size_t len, Frame *ret)
{
        const char *nl = data ? memchr(data, '\n', len) : NULL;
        json_t *header, *status;
        Frame f = {0};

        if (!nl)
                return -EBADMSG;
        /* \u0000 is valid JSON (a script may return or raise "a\x00b"). */
        header = json_loadb(data, (size_t) (nl - data), JSON_ALLOW_NUL, NULL);
        status = json_object_get(header, "status");
        if (!json_is_object(header) || !json_is_string(status)) {
                json_decref(header);
                return -EBADMSG;
        }
        f.header = header;
        f.status = json_string_value(status);
        f.raw = nl + 1;
        f.raw_len = len - (size_t) (nl + 1 - data);
        if (strcmp(f.status, "ok") == 0) {
                int r = result_check(f.raw, f.raw_len);
                if (r < 0 && r != -EILSEQ) {
                        json_decref(header);
                        return r;
                }
                f.nul_key = r == -EILSEQ;
        } else if (f.raw_len != 0) {
                json_decref(header);
                return -EBADMSG;
        }
        *ret = f;
        return 0;
}

/* A string member of the header as a JSON string (NULs and all), or `fallback`. */
static json_t *header_text(const Frame *f, const char *key, const char *fallback)
{
        json_t *v = json_object_get(f->header, key);
        if (json_is_string(v))
                return json_stringn(json_string_value(v), json_string_length(v));
        return json_string(fallback);
}

static json_int_t header_int(const Frame *f, const char *key)
{
        json_t *v = json_object_get(f->header, key);
        return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* A valid frame from the harness. */
static int from_frame(const Frame *f, const ExecOutcome *o, json_t *obj, ApiResponse *ret)
{
        static const struct {
                const char *status;
                ApiCode code;
        } map[] = {
                {"syntax_error", API_SYNTAX_ERROR},
                {"missing_main", API_MISSING_MAIN},
                {"runtime_error", API_RUNTIME_ERROR},
                {"not_json_serializable", API_NOT_JSON_SERIALIZABLE},
                {"memory_error", API_MEMORY_LIMIT},
                {"result_too_large", API_OUTPUT_LIMIT},
        };
        ApiCode code = API_INTERNAL;
        size_t files_bytes = 0, figures_bytes = 0;
        int r;

        if (strcmp(f->status, "ok") == 0) {
                if (f->nul_key) {
                        /* The harness refuses such a result itself; whatever got one past
                         * it (or wrote it), the answer is the contract's. */
                        code = API_NOT_JSON_SERIALIZABLE;
                        r = add_error(obj, code,
                                      "main() returned a value JSON cannot carry: dict key "
                                      "containing a NUL character");
                        if (r == 0)
                                r = add_run(obj, o);
                        if (r == 0)
                                r = files_to_response(f->header, o, obj, &files_bytes);
                        return r < 0 ? r : finish_files(obj, code, NULL, 0, files_bytes, ret);
                }
                r = add_run(obj, o);
                if (r == 0)
                        r = files_to_response(f->header, o, obj, &files_bytes);
                if (r == 0)
                        r = figures_to_response(f->header,
                                                o->result_limit - MIN(o->result_limit, f->raw_len),
                                                obj, &figures_bytes);
                if (r == 0)
                        r = finish_files(obj, API_OK, f->raw, f->raw_len, files_bytes, ret);
                if (r == 0)
                        ret->figures_bytes = figures_bytes;
                return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strcmp(f->status, map[i].status) == 0)
                        code = map[i].code;
        if (code == API_INTERNAL)
                return -EBADMSG;

        if (code == API_MEMORY_LIMIT)
                r = add_error(obj, code, "Memory limit exceeded");
        else {
                r = set(obj, "error", header_text(f, "error", "The script failed"));
                if (r == 0)
                        r = set(obj, "code", json_string(api_code_name(code)));
        }
        if (r == 0 && code == API_SYNTAX_ERROR) {
                r = set(obj, "line", json_integer(header_int(f, "line")));
                if (r == 0)
                        r = set(obj, "column", json_integer(header_int(f, "column")));
        } else if (r == 0) {
                if (code == API_RUNTIME_ERROR)
                        r = set(obj, "traceback", header_text(f, "traceback", ""));
                if (r == 0 && code == API_OUTPUT_LIMIT)
                        r = set(obj, "truncated", json_false());
                if (r == 0)
                        r = add_run(obj, o);
                /* Where the harness was still in control after main(): it collected them. */
                if (r == 0 && (code == API_RUNTIME_ERROR || code == API_NOT_JSON_SERIALIZABLE))
                        r = files_to_response(f->header, o, obj, &files_bytes);
        }
        return r < 0 ? r : finish_files(obj, code, NULL, 0, files_bytes, ret);
}

static const char *signal_name(int sig, char *buf, size_t len)
{
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev)
                (void) snprintf(buf, len, "SIG%s", abbrev);
        else
                (void) snprintf(buf, len, "signal %d", sig);
        return buf;
}

/* No usable frame: the process ended some other way, or wrote something else on the
 * result channel (`frame_corrupt`). */
static int from_status(const ExecOutcome *o, bool frame_corrupt, json_t *obj, ApiResponse *ret)
{
        char msg[256], name[32];
        ApiCode code;
        int r;

        if (o->oom_killed) {
                code = API_MEMORY_LIMIT;
                r = add_error(obj, code, "Memory limit exceeded");
        } else if (o->have_status && WIFSIGNALED(o->wait_status) && !o->frame_complete) {
                /* Not after a complete frame: the executor killed the sandbox for it, and
                 * the frame, not the signal, says what the script did. */
                int sig = WTERMSIG(o->wait_status);
                if (sig == SIGXCPU) {
                        code = API_TIMEOUT;
                        (void) snprintf(msg, sizeof(msg),
                                        "The script used up its CPU time "
                                        "limit");
                } else {
                        code = API_CRASHED;
                        (void) snprintf(msg, sizeof(msg),
                                        "The script's process was killed by %s (%s)",
                                        signal_name(sig, name, sizeof(name)), strsignal(sig));
                }
                r = add_error(obj, code, msg);
                if (r == 0 && code == API_CRASHED)
                        r = set(obj, "signal", json_string(name));
        } else {
                code = API_RUNTIME_ERROR;
                if (frame_corrupt)
                        (void) snprintf(msg, sizeof(msg),
                                        "The script wrote to the harness's private result "
                                        "channel; its result was discarded");
                else
                        (void) snprintf(msg, sizeof(msg),
                                        "The script ended its process (exit status %d) before "
                                        "main() returned",
                                        WEXITSTATUS(o->wait_status));
                r = add_error(obj, code, msg);
        }
        if (r == 0)
                r = add_run(obj, o);
        return r < 0 ? r : finish(obj, code, NULL, 0, ret);
}

static int from_end(const ExecOutcome *o, json_t *obj, ApiResponse *ret)
{
        char msg[384];
        ApiCode code;
        int r;

        switch (o->end) {
        case EXEC_END_TIMEOUT:
                code = API_TIMEOUT;
                (void) snprintf(msg, sizeof(msg), "The script exceeded the time limit of %g s",
                                o->timeout_ms / 1000.0);
                break;
        case EXEC_END_OUTPUT_LIMIT:
                code = API_OUTPUT_LIMIT;
                (void) snprintf(msg, sizeof(msg),
                                "The script's output exceeded the limit; it was stopped and "
                                "its output truncated");
                break;
        case EXEC_END_RESULT_LIMIT:
                code = API_OUTPUT_LIMIT;
                (void) snprintf(msg, sizeof(msg),
                                "The script sent more than the result limit on the result "
                                "channel; it was stopped");
                break;
        case EXEC_END_CLIENT_GONE:
                return response_error(API_CLIENT_CLOSED,
                                      "The client went away; the script was stopped", o->request_id,
                                      ret);
        case EXEC_END_EXPIRED:
                return response_error(API_OVERLOADED,
                                      "The request waited for a sandbox longer than its time "
                                      "limit and was not run; retry later",
                                      o->request_id, ret);
        case EXEC_END_SETUP_FAILED:
                (void) snprintf(
                        msg, sizeof(msg), "Sandbox set-up failed (%s: %s); the script was not run",
                        o->setup_stage ? o->setup_stage : "unknown", strerror(o->setup_errno));
                return response_error(API_INTERNAL, msg, o->request_id, ret);
        case EXEC_END_INTERNAL:
        default:
                (void) snprintf(msg, sizeof(msg), "Internal error: %s (%s)",
                                o->internal_what ? o->internal_what : "unknown",
                                strerror(o->internal_errno));
                return response_error(API_INTERNAL, msg, o->request_id, ret);
        }
        r = add_error(obj, code, msg);
        if (r == 0 && code == API_OUTPUT_LIMIT)
                r = set(obj, "truncated", json_boolean(o->out_truncated || o->err_truncated));
        if (r == 0)
                r = add_run(obj, o);
        return r < 0 ? r : finish(obj, code, NULL, 0, ret);
}

/* The sandbox ended before it acknowledged its job: only the service's code had run in it
 * (isolate's "the box failed", apart from "the program failed"). */
static int from_unstarted(const ExecOutcome *o, ApiResponse *ret)
{
        char msg[256], how[64], name[32];

        if (o->input_no_space)
                return response_error(API_PAYLOAD_TOO_LARGE,
                                      "The request's files do not fit in the sandbox's /tmp "
                                      "(--tmp-size); the script was not run",
                                      o->request_id, ret);

        if (o->have_status && WIFEXITED(o->wait_status))
                (void) snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(o->wait_status));
        else if (o->have_status && WIFSIGNALED(o->wait_status))
                (void) snprintf(how, sizeof(how), "killed by %s",
                                signal_name(WTERMSIG(o->wait_status), name, sizeof(name)));
        else
                (void) snprintf(how, sizeof(how), "no exit status");
        (void) snprintf(msg, sizeof(msg),
                        "Internal error: the sandbox ended %s (%s); the script was not run",
                        o->internal_what ? o->internal_what : "before acknowledging its job", how);
        return response_error(API_INTERNAL, msg, o->request_id, ret);
}

int response_from_outcome(const ExecOutcome *o, ApiResponse *ret)
{
        json_t *obj = json_object();
        Frame f = {0};
        int r;

        if (!obj)
                return -ENOMEM;
        if (o->end != EXEC_END_NORMAL)
                r = from_end(o, obj, ret);
        else if (!o->script_started && !o->oom_killed)
                r = from_unstarted(o, ret);
        else {
                /* Something on the result channel (a complete frame of length 0 too). */
                bool sent = o->frame_len > 0 || o->frame_complete;

                r = frame_parse(o->frame, o->frame_len, &f);
                if (r == 0) {
                        r = from_frame(&f, o, obj, ret);
                        if (r == -EBADMSG) {
                                /* Unknown status: the channel was tampered with. */
                                json_decref(obj);
                                obj = json_object();
                                r = obj ? from_status(o, true, obj, ret) : -ENOMEM;
                        }
                } else if (r == -EBADMSG && (o->have_status || sent))
                        r = from_status(o, sent, obj, ret);
                else if (r == -EBADMSG)
                        r = response_error(API_INTERNAL,
                                           "Internal error: the sandbox ended without a status",
                                           o->request_id, ret);
        }
        json_decref(f.header);
        json_decref(obj);
        return r;
}

void response_done(ApiResponse *r)
{
        free(r->body);
        r->body = NULL;
}
