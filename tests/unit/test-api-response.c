/* Unit tests for api/response: ExecOutcome structs built by hand, the way the executor
 * fills them, turned into response bodies. Every body is parsed back with jansson and
 * checked field by field. The result frame comes from a hostile sandbox, so a large part
 * of this file feeds malformed frames and checks that each still gives one valid JSON
 * body with a sensible code, never a crash. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/api.h"
#include "sandbox/sandbox.h"
#include "util/utf8.h"

#define EXITED(code)  W_EXITCODE(code, 0)
#define SIGNALED(sig) W_EXITCODE(0, sig)
#define FRAME_OK      "{\"status\":\"ok\"}\n"

/* A sandbox that exited 0 after sending `frame`, having printed "out" and "err". */
static ExecOutcome normal(const char *frame)
{
        return (ExecOutcome){
                .end = EXEC_END_NORMAL,
                .request_id = "req-42",
                .have_status = true,
                .wait_status = EXITED(0),
                .script_started = true,
                .frame = frame,
                .frame_len = frame ? strlen(frame) : 0,
                .out = "out",
                .out_len = 3,
                .err = "err",
                .err_len = 3,
                .duration_ms = 12.5,
                .timeout_ms = 10000,
        };
}

/* Strict JSON parsing of any value (NUL allowed inside strings, where JSON allows it).
 * Integers beyond 64 bits are valid JSON that jansson only reads as reals: the text is
 * read again that way, so small integers stay integers everywhere else. */
static json_t *load(const char *text, size_t len, json_error_t *err)
{
        size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
        json_t *j = json_loadb(text, len, flags, err);

        if (!j && json_error_code(err) == json_error_numeric_overflow)
                j = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, err);
        return j;
}

/* Parses a response body and checks what every body must satisfy. */
static json_t *parse_body(const ApiResponse *resp)
{
        json_error_t err;
        json_t *j;

        assert_non_null(resp->body);
        /* A NUL byte would be outside any string: not JSON, and it cuts C strings. */
        if (strlen(resp->body) != resp->len)
                fail_msg("response body has a NUL byte at %zu of %zu: %s...", strlen(resp->body),
                         resp->len, resp->body);
        assert_true(utf8_valid(resp->body, resp->len));
        j = load(resp->body, resp->len, &err);
        if (!j)
                fail_msg("response body is not JSON (%s): %.300s", err.text, resp->body);
        assert_true(json_is_object(j));
        assert_int_equal(resp->http_status, api_code_http(resp->code));
        if (resp->code == API_OK) {
                assert_null(json_object_get(j, "error"));
                assert_null(json_object_get(j, "code"));
        } else {
                json_t *code = json_object_get(j, "code"), *error = json_object_get(j, "error");
                assert_true(json_is_string(code));
                assert_string_equal(json_string_value(code), api_code_name(resp->code));
                assert_true(json_is_string(error));
        }
        return j;
}

/* Builds the response, requires `expected`, and returns the parsed body. */
static json_t *respond(const ExecOutcome *o, ApiCode expected)
{
        ApiResponse resp;
        json_t *j;

        assert_int_equal(response_from_outcome(o, &resp), 0);
        j = parse_body(&resp);
        if (resp.code != expected)
                fail_msg("expected code %s, got %s: %.300s", api_code_name(expected),
                         api_code_name(resp.code), resp.body);
        response_done(&resp);
        assert_null(resp.body);
        return j;
}

static const char *str(json_t *j, const char *key)
{
        json_t *v = json_object_get(j, key);

        if (!json_is_string(v))
                fail_msg("\"%s\" is not a string", key);
        return json_string_value(v);
}

static void assert_contains(const char *haystack, const char *needle)
{
        if (!strstr(haystack, needle))
                fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* stdout, stderr and duration_ms, as every response after the script ran carries. */
static void assert_run(json_t *j, const char *out, const char *err)
{
        assert_string_equal(str(j, "stdout"), out);
        assert_string_equal(str(j, "stderr"), err);
        assert_true(json_is_number(json_object_get(j, "duration_ms")));
}

static void test_ok_result_spliced_verbatim(void **state)
{
        ExecOutcome o = normal(FRAME_OK "{\"a\":0.1,\"b\":1180591620717411303424}");
        ApiResponse resp;
        json_t *j, *result;

        o.out = "hi\n", o.out_len = 3;
        o.err = "", o.err_len = 0;
        o.duration_ms = 1.7;
        assert_int_equal(response_from_outcome(&o, &resp), 0);
        assert_int_equal(resp.code, API_OK);
        assert_int_equal(resp.http_status, 200);
        /* The numbers keep Python's text: no 0.10000000000000001, no 1.1805916207174113e+21. */
        assert_contains(resp.body, "\"result\":{\"a\":0.1,\"b\":1180591620717411303424}");
        j = parse_body(&resp);
        result = json_object_get(j, "result");
        assert_true(json_is_object(result));
        assert_true(json_real_value(json_object_get(result, "a")) == 0.1);
        assert_true(json_real_value(json_object_get(result, "b")) == 1180591620717411303424.0);
        assert_run(j, "hi\n", "");
        assert_true(json_number_value(json_object_get(j, "duration_ms")) == 1.7);
        assert_int_equal(json_object_size(j), 4);
        json_decref(j);
        response_done(&resp);
}

static void test_ok_any_json_value(void **state)
{
        static const char *const results[] = {
                "null",
                "true",
                "false",
                "0",
                "-0",
                "1.5e-300",
                "\"\"",
                "\"x\"",
                "[]",
                "{}",
                "[1,[2,[3]]]",
                "{\"k\":{\"l\":[null]}}",
                "\"\xC3\xA9\xF0\x9F\x98\x80\"",
                "\"\\ud83d\\ude00\\n\\\"\"",
                "-12345678901234567890123",
        };
        char frame[256];

        for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
                ExecOutcome o;
                ApiResponse resp;
                json_error_t err;
                json_t *j, *expected;

                (void) snprintf(frame, sizeof(frame), FRAME_OK "%s", results[i]);
                o = normal(frame);
                assert_int_equal(response_from_outcome(&o, &resp), 0);
                if (resp.code != API_OK)
                        fail_msg("result %s gave %s", results[i], resp.body);
                assert_contains(resp.body, results[i]);
                j = parse_body(&resp);
                expected = load(results[i], strlen(results[i]), &err);
                assert_non_null(expected);
                assert_true(json_equal(json_object_get(j, "result"), expected));
                json_decref(expected);
                json_decref(j);
                response_done(&resp);
        }
}

static void test_ok_result_with_nul_character(void **state)
{
        /* `return "a\x00b"`: json.dumps writes "a\u0000b", a valid JSON string. The
         * contract is json.dumps semantics, so this is a success, not tampering. */
        ExecOutcome o = normal(FRAME_OK "\"a\\u0000b\"");
        json_t *j = respond(&o, API_OK), *result = json_object_get(j, "result");

        assert_true(json_is_string(result));
        assert_int_equal(json_string_length(result), 3);
        assert_memory_equal(json_string_value(result), "a\0b", 3);
        json_decref(j);
}

static void test_error_message_with_nul_character(void **state)
{
        /* `raise ValueError("a\x00b")`: the harness's header carries "ValueError: a\u0000b"
         * and the traceback; the response must be that runtime error, not "tampering". */
        ExecOutcome o = normal("{\"status\":\"runtime_error\",\"error\":\"ValueError: a\\u0000b\","
                               "\"traceback\":\"Traceback: line 2\"}\n");
        json_t *j = respond(&o, API_RUNTIME_ERROR);

        assert_contains(str(j, "error"), "ValueError: a");
        assert_string_equal(str(j, "traceback"), "Traceback: line 2");
        json_decref(j);
}

/* A frame whose result is `depth` nested arrays. */
static char *nested_frame(size_t depth)
{
        size_t n = sizeof(FRAME_OK) - 1;
        char *frame = malloc(n + 2 * depth + 1);

        assert_non_null(frame);
        memcpy(frame, FRAME_OK, n);
        for (size_t i = 0; i < depth; i++)
                frame[n++] = '[';
        for (size_t i = 0; i < depth; i++)
                frame[n++] = ']';
        frame[n] = '\0';
        return frame;
}

static void test_ok_result_whitespace_and_depth(void **state)
{
        ExecOutcome o = normal(FRAME_OK " [ 1 , 2 ]\n");
        json_t *j = respond(&o, API_OK);
        char *frame;

        assert_int_equal(json_array_size(json_object_get(j, "result")), 2);
        json_decref(j);

        /* Nesting up to 512 levels is spliced as it is; one more is a tampered channel (the
         * harness stops at 64, and the body must stay readable by any JSON parser). */
        frame = nested_frame(512);
        o = normal(frame);
        j = respond(&o, API_OK);
        assert_true(json_is_array(json_object_get(j, "result")));
        json_decref(j);
        free(frame);

        frame = nested_frame(513);
        o = normal(frame);
        j = respond(&o, API_RUNTIME_ERROR);
        assert_contains(str(j, "error"), "private result channel");
        json_decref(j);
        free(frame);
}

static void test_syntax_error(void **state)
{
        ExecOutcome o = normal("{\"status\":\"syntax_error\",\"error\":\"SyntaxError: invalid "
                               "syntax (line 2, column 5)\",\"line\":2,\"column\":5}\n");
        json_t *j = respond(&o, API_SYNTAX_ERROR);

        assert_int_equal(api_code_http(API_SYNTAX_ERROR), 400);
        assert_string_equal(str(j, "error"), "SyntaxError: invalid syntax (line 2, column 5)");
        assert_int_equal(json_integer_value(json_object_get(j, "line")), 2);
        assert_int_equal(json_integer_value(json_object_get(j, "column")), 5);
        assert_true(json_is_integer(json_object_get(j, "line")));
        assert_true(json_is_integer(json_object_get(j, "column")));
        json_decref(j);

        /* Missing or mistyped line and column: still integers. */
        o = normal("{\"status\":\"syntax_error\",\"line\":\"2\"}\n");
        j = respond(&o, API_SYNTAX_ERROR);
        assert_true(json_is_integer(json_object_get(j, "line")));
        assert_true(json_is_integer(json_object_get(j, "column")));
        json_decref(j);
}

static void test_missing_main(void **state)
{
        ExecOutcome o = normal("{\"status\":\"missing_main\",\"error\":\"The script does not "
                               "define a callable main()\"}\n");
        json_t *j = respond(&o, API_MISSING_MAIN);

        assert_int_equal(api_code_http(API_MISSING_MAIN), 400);
        assert_contains(str(j, "error"), "main()");
        assert_run(j, "out", "err"); /* the module body ran */
        json_decref(j);
}

static void test_runtime_error(void **state)
{
        ExecOutcome o = normal("{\"status\":\"runtime_error\",\"error\":\"ZeroDivisionError: "
                               "division by zero\",\"traceback\":\"Traceback (most recent call "
                               "last):\\n  File \\\"<script>\\\", line 2, in main\\n\"}\n");
        json_t *j = respond(&o, API_RUNTIME_ERROR);

        assert_int_equal(api_code_http(API_RUNTIME_ERROR), 422);
        assert_string_equal(str(j, "error"), "ZeroDivisionError: division by zero");
        assert_string_equal(str(j, "traceback"), "Traceback (most recent call last):\n  File "
                                                 "\"<script>\", line 2, in main\n");
        assert_run(j, "out", "err");
        json_decref(j);

        /* Fields missing or of the wrong type: defaults, never a crash. */
        o = normal("{\"status\":\"runtime_error\",\"error\":5,\"traceback\":[1]}\n");
        j = respond(&o, API_RUNTIME_ERROR);
        assert_true(json_is_string(json_object_get(j, "traceback")));
        json_decref(j);
}

static void test_not_json_serializable(void **state)
{
        ExecOutcome o = normal("{\"status\":\"not_json_serializable\",\"error\":\"main() returned "
                               "a value JSON cannot carry: set at result\"}\n");
        json_t *j = respond(&o, API_NOT_JSON_SERIALIZABLE);

        assert_int_equal(api_code_http(API_NOT_JSON_SERIALIZABLE), 422);
        assert_contains(str(j, "error"), "set at result");
        assert_run(j, "out", "err");
        json_decref(j);
}

static void test_memory_error(void **state)
{
        ExecOutcome o = normal("{\"status\":\"memory_error\",\"error\":\"whatever the script "
                               "says\",\"detail\":\"MemoryError\"}\n");
        json_t *j = respond(&o, API_MEMORY_LIMIT);

        assert_int_equal(api_code_http(API_MEMORY_LIMIT), 422);
        assert_string_equal(str(j, "error"), "Memory limit exceeded");
        assert_run(j, "out", "err");
        json_decref(j);
}

static void test_result_too_large(void **state)
{
        ExecOutcome o = normal("{\"status\":\"result_too_large\",\"error\":\"The result of main() "
                               "is 9000000 bytes encoded, over the limit of 8388608\"}\n");
        json_t *j = respond(&o, API_OUTPUT_LIMIT);

        assert_int_equal(api_code_http(API_OUTPUT_LIMIT), 422);
        assert_contains(str(j, "error"), "9000000");
        assert_true(json_is_boolean(json_object_get(j, "truncated")));
        assert_run(j, "out", "err");
        json_decref(j);
}

/* A frame that is not what the harness writes: whatever the script did, the body is valid
 * JSON and says the run failed. */
static void check_hostile(const char *frame, size_t len, int wait_status, ApiCode expected)
{
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.frame = frame, o.frame_len = len;
        o.wait_status = wait_status;
        j = respond(&o, expected);
        assert_null(json_object_get(j, "result"));
        assert_run(j, "out", "err");
        json_decref(j);
}

/* sizeof, not strlen: some frames hold NUL bytes. */
#define HOSTILE_AS(lit, wait_status, code) check_hostile(lit, sizeof(lit) - 1, wait_status, code)
#define HOSTILE(lit)                       HOSTILE_AS(lit, EXITED(0), API_RUNTIME_ERROR)

static void test_hostile_frames(void **state)
{
        HOSTILE("{\"status\":\"ok\"}");  /* no newline */
        HOSTILE("{\"status\":\"ok\"}1"); /* still none */
        HOSTILE("[\"ok\"]\n1");          /* header not an object */
        HOSTILE("\"ok\"\n1");
        HOSTILE("\n1"); /* empty header */
        HOSTILE("garbage\n1");
        HOSTILE("{\"status\":\"ok\"\n1"); /* header cut */
        HOSTILE("{\"status\":1}\n1");     /* status not a string */
        HOSTILE("{\"status\":null}\n1");
        HOSTILE("{\"status\":[\"ok\"]}\n1");
        HOSTILE("{}\n1");
        HOSTILE("{\"status\":\"pwned\"}\n"); /* unknown status */
        HOSTILE("{\"status\":\"OK\"}\n1");
        HOSTILE("{\"status\":\"\"}\n");
        HOSTILE("{\"status\":\"ok\",\"status\":\"ok\"}\n1\n2"); /* and trailing data */
        HOSTILE("{\"status\":\"ok\"}\n1 2"); /* trailing garbage after the result */
        HOSTILE("{\"status\":\"ok\"}\n{}{}");
        HOSTILE("{\"status\":\"ok\"}\n1,\"code\":\"OK\""); /* an attempt to add members */
        HOSTILE("{\"status\":\"ok\"}\n1},{\"x\":1");
        HOSTILE("{\"status\":\"ok\"}\n"); /* empty result */
        HOSTILE("{\"status\":\"ok\"}\n   ");
        HOSTILE("{\"status\":\"ok\"}\n\"\xFF\""); /* invalid UTF-8 inside a string */
        HOSTILE("{\"status\":\"ok\"}\n\"\xED\xA0\x80\"");
        HOSTILE("{\"status\":\"ok\"}\n\"\\ud800\"");
        HOSTILE("{\"status\":\"ok\"}\n\"abc"); /* cut */
        HOSTILE("{\"status\":\"ok\"}\n[1,");
        HOSTILE("{\"status\":\"ok\"}\nNaN");
        HOSTILE("{\"status\":\"ok\"}\nInfinity");
        HOSTILE("{\"status\":\"ok\"}\n1e400"); /* overflows a double */
        HOSTILE("{\"status\":\"ok\"}\n'x'");
        HOSTILE("{\"status\":\"ok\"}\n\x01");
        HOSTILE("{\"status\":\"runtime_error\",\"error\":\"x\"}\nextra"); /* bytes after a non-ok
                                                                             header */
        HOSTILE("{\"status\":\"memory_error\"}\n\n");
        HOSTILE("{\"status\":\"syntax_error\"}\n1");
        HOSTILE("{\"status\":\"runtime_error\",\"error\":\"\xFF\"}\n"); /* header not UTF-8 */
        HOSTILE("\xFF\n1");
        /* NUL bytes: in the result, in the header. */
        HOSTILE("{\"status\":\"ok\"}\n\"a\0b\"");
        HOSTILE("{\"status\0\":\"ok\"}\n1");
        HOSTILE("\0\n1");
}

static void test_hostile_result_followed_by_nul(void **state)
{
        /* A bare number then a NUL byte (a script can write this on the channel itself):
         * jansson's json_loadb() ends the number at the NUL and then takes the NUL for the
         * end of input, so the validator accepts it, and splicing it verbatim would put a
         * raw NUL in the body. */
        HOSTILE("{\"status\":\"ok\"}\n1\0");
        HOSTILE("{\"status\":\"ok\"}\n-2.5\0 ");
}

static void test_hostile_frame_message(void **state)
{
        /* The message says what happened, and the code is the script's failure. */
        ExecOutcome o = normal("{\"status\":\"pwned\"}\n");
        json_t *j = respond(&o, API_RUNTIME_ERROR);

        assert_contains(str(j, "error"), "result channel");
        json_decref(j);
}

static void test_hostile_huge_nesting(void **state)
{
        enum { DEPTH = 200000 };
        size_t head = sizeof(FRAME_OK) - 1, n = head;
        char *frame = malloc(head + 2 * DEPTH + 1);

        assert_non_null(frame);
        memcpy(frame, FRAME_OK, head);
        /* Unbalanced, then balanced: both beyond any sane depth. */
        memset(frame + n, '[', DEPTH), n += DEPTH;
        check_hostile(frame, n, EXITED(0), API_RUNTIME_ERROR);
        memset(frame + n, ']', DEPTH), n += DEPTH;
        check_hostile(frame, n, EXITED(0), API_RUNTIME_ERROR);
        /* The same in the header. */
        memset(frame, '{', DEPTH), frame[DEPTH] = '\n';
        check_hostile(frame, DEPTH + 1, EXITED(0), API_RUNTIME_ERROR);
        free(frame);
}

static void test_hostile_frame_from_killed_process(void **state)
{
        HOSTILE_AS("{\"status\":\"ok\"", SIGNALED(SIGSEGV), API_CRASHED);
        HOSTILE_AS("garbage\n", SIGNALED(SIGKILL), API_CRASHED);
        HOSTILE_AS("{\"status\":\"pwned\"}\n", SIGNALED(SIGSYS), API_CRASHED);
}

static void test_complete_corrupt_frame_is_not_a_crash(void **state)
{
        /* A complete frame ends the job and the executor kills the sandbox: that SIGKILL
         * is the service's, and the frame is what the script did. */
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.frame = "garbage\n", o.frame_len = 8, o.frame_complete = true;
        o.wait_status = SIGNALED(SIGKILL);
        j = respond(&o, API_RUNTIME_ERROR);
        assert_contains(str(j, "error"), "private result channel");
        assert_null(json_object_get(j, "signal"));
        json_decref(j);

        /* A frame of length 0 (just the prefix): corrupt too, with or without a status
         * (with cgroup.kill the answer does not wait for one); never INTERNAL. */
        o.frame = NULL, o.frame_len = 0;
        json_decref(respond(&o, API_RUNTIME_ERROR));
        o.have_status = false;
        j = respond(&o, API_RUNTIME_ERROR);
        assert_contains(str(j, "error"), "private result channel");
        json_decref(j);
}

#define NUL_KEY_AS(lit, code) check_hostile(lit, sizeof(lit) - 1, EXITED(0), code)

static void test_result_with_nul_in_a_key(void **state)
{
        /* Valid JSON that the contract refuses as a result (jansson cannot even hold it):
         * NOT_JSON_SERIALIZABLE, as if the harness had refused it, not the channel's
         * blame. */
        ExecOutcome o = normal(FRAME_OK "{\"k\\u0000\":1}");
        json_t *j = respond(&o, API_NOT_JSON_SERIALIZABLE);

        assert_contains(str(j, "error"), "NUL");
        json_decref(j);
        NUL_KEY_AS(FRAME_OK "[1,{\"a\":{\"\\u0000\":\"\\u0000\"}}]", API_NOT_JSON_SERIALIZABLE);
        NUL_KEY_AS(FRAME_OK "{\"\\\\\":1,\"\\u0000\":\"\\\\u0000\"}", API_NOT_JSON_SERIALIZABLE);
        /* With any other fault it is a corrupt frame. */
        NUL_KEY_AS(FRAME_OK "{\"k\\u0000\":1", API_RUNTIME_ERROR);
        NUL_KEY_AS(FRAME_OK "{\"k\\u0000\":1} 2", API_RUNTIME_ERROR);
        NUL_KEY_AS(FRAME_OK "{\"k\\u0000\":1,\"x\":\"\xFF\"}", API_RUNTIME_ERROR);
        NUL_KEY_AS(FRAME_OK "{\"k\\u0000\":NaN}", API_RUNTIME_ERROR);
        NUL_KEY_AS("{\"status\\u0000\":\"ok\"}\n1", API_RUNTIME_ERROR); /* in the header */
        /* An escaped backslash before u0000 is no NUL: an ordinary key. */
        o = normal(FRAME_OK "{\"k\\\\u0000\":1}");
        json_decref(respond(&o, API_OK));
}

static void test_random_frames(void **state)
{
        /* Mutations of real frames: any code may come out, but always a valid body whose
         * code and HTTP status agree. */
        static const char *const seeds[] = {
                FRAME_OK "{\"a\":[1,2.5,\"x\",null,true],\"b\":{\"c\":\"\xC3\xA9\"}}",
                "{\"status\":\"runtime_error\",\"error\":\"E\",\"traceback\":\"T\"}\n",
                "{\"status\":\"syntax_error\",\"error\":\"S\",\"line\":1,\"column\":2}\n",
        };
        static const char alphabet[] = "{}[]\",:\n\\0u1 \xFF\xC3\xA9\x80";
        unsigned seed = 2024;
        char frame[128];

        for (int round = 0; round < 30000; round++) {
                const char *src = seeds[round % 3];
                size_t n = strlen(src), edits = 1 + (size_t) rand_r(&seed) % 4;
                ExecOutcome o;
                ApiResponse resp;
                json_t *j;

                memcpy(frame, src, n);
                for (size_t e = 0; e < edits && n > 0; e++) {
                        size_t at = (size_t) rand_r(&seed) % n;
                        char c = alphabet[rand_r(&seed) % (int) (sizeof(alphabet) - 1)];
                        switch (rand_r(&seed) % 3) {
                        case 0: /* replace */
                                frame[at] = c;
                                break;
                        case 1: /* delete */
                                memmove(frame + at, frame + at + 1, n - at - 1), n--;
                                break;
                        default: /* insert */
                                if (n + 1 < sizeof(frame)) {
                                        memmove(frame + at + 1, frame + at, n - at), n++;
                                        frame[at] = c;
                                }
                        }
                }
                o = normal(NULL);
                o.frame = frame, o.frame_len = n;
                o.wait_status = round % 5 == 0 ? SIGNALED(SIGSEGV) : EXITED(round % 2);
                assert_int_equal(response_from_outcome(&o, &resp), 0);
                j = parse_body(&resp);
                json_decref(j);
                response_done(&resp);
        }
}

static void test_wait_statuses(void **state)
{
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.wait_status = SIGNALED(SIGSEGV);
        j = respond(&o, API_CRASHED);
        assert_string_equal(str(j, "signal"), "SIGSEGV");
        assert_contains(str(j, "error"), "SIGSEGV");
        assert_run(j, "out", "err");
        json_decref(j);

        o.wait_status = SIGNALED(SIGKILL);
        j = respond(&o, API_CRASHED);
        assert_string_equal(str(j, "signal"), "SIGKILL");
        json_decref(j);

        o.wait_status = SIGNALED(SIGSYS); /* a seccomp kill */
        j = respond(&o, API_CRASHED);
        assert_string_equal(str(j, "signal"), "SIGSYS");
        json_decref(j);

        o.wait_status = SIGNALED(SIGRTMAX); /* no short name: still a string */
        j = respond(&o, API_CRASHED);
        assert_true(json_string_length(json_object_get(j, "signal")) > 0);
        json_decref(j);

        /* RLIMIT_CPU's signal is a timeout, not a crash. */
        o.wait_status = SIGNALED(SIGXCPU);
        j = respond(&o, API_TIMEOUT);
        assert_null(json_object_get(j, "signal"));
        assert_run(j, "out", "err");
        json_decref(j);

        o.wait_status = EXITED(3);
        j = respond(&o, API_RUNTIME_ERROR);
        assert_contains(str(j, "error"), "exit status 3");
        assert_run(j, "out", "err");
        json_decref(j);

        o.wait_status = EXITED(0); /* os._exit(0) before main() returned */
        j = respond(&o, API_RUNTIME_ERROR);
        assert_contains(str(j, "error"), "exit status 0");
        json_decref(j);

        /* An empty but non-NULL frame is the same as none. */
        o.frame = "", o.frame_len = 0, o.wait_status = EXITED(3);
        j = respond(&o, API_RUNTIME_ERROR);
        assert_contains(str(j, "error"), "exit status 3");
        json_decref(j);
}

/* The executor's verdict on a sandbox that never acknowledged its job: only the service's
 * code ran, so whatever the exit status, it is the service's 500, never the script's 422. */
static void test_exit_before_the_script_started(void **state)
{
        static const struct {
                int status;
                const char *stage, *how;
        } cases[] = {
                {EXITED(125), "while applying the job's limits", "exit status 125"},
                {EXITED(126), "while reading its job", "exit status 126"},
                {EXITED(3), "before acknowledging its job", "exit status 3"},
                {SIGNALED(SIGSEGV), "before acknowledging its job", "killed by SIGSEGV"},
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ExecOutcome o = normal(NULL);
                json_t *j;
                o.script_started = false;
                o.wait_status = cases[i].status;
                o.internal_what = cases[i].stage;
                j = respond(&o, API_INTERNAL);
                assert_contains(str(j, "error"), cases[i].stage);
                assert_contains(str(j, "error"), cases[i].how);
                assert_contains(str(j, "error"), "the script was not run");
                json_decref(j);
        }

        /* The same exit once the script ran is the script's own (os._exit(125)). */
        {
                ExecOutcome o = normal(NULL);
                json_t *j;
                o.wait_status = EXITED(125);
                j = respond(&o, API_RUNTIME_ERROR);
                assert_contains(str(j, "error"), "exit status 125");
                json_decref(j);
        }
}

static void test_oom_kill(void **state)
{
        /* The cgroup's OOM killer: SIGKILL, no frame, but it is the memory limit. */
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.wait_status = SIGNALED(SIGKILL);
        o.oom_killed = true;
        j = respond(&o, API_MEMORY_LIMIT);
        assert_string_equal(str(j, "error"), "Memory limit exceeded");
        assert_null(json_object_get(j, "signal"));
        assert_run(j, "out", "err");
        json_decref(j);

        /* Whatever the exit looked like, and with a tampered frame too. */
        o.wait_status = EXITED(1);
        j = respond(&o, API_MEMORY_LIMIT);
        json_decref(j);
        o = normal("{\"status\":\"pwned\"}\n");
        o.oom_killed = true;
        j = respond(&o, API_MEMORY_LIMIT);
        json_decref(j);
}

static void test_no_status_no_frame_is_internal(void **state)
{
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.have_status = false;
        j = respond(&o, API_INTERNAL);
        assert_int_equal(api_code_http(API_INTERNAL), 500);
        assert_string_equal(str(j, "request_id"), "req-42");
        json_decref(j);
}

static void test_end_timeout(void **state)
{
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.end = EXEC_END_TIMEOUT;
        o.timeout_ms = 2500;
        o.out = "partial", o.out_len = 7;
        j = respond(&o, API_TIMEOUT);
        assert_int_equal(api_code_http(API_TIMEOUT), 422);
        assert_contains(str(j, "error"), "2.5 s");
        assert_run(j, "partial", "err");
        json_decref(j);

        /* The deadline decides, whatever the frame says. */
        o = normal(FRAME_OK "1");
        o.end = EXEC_END_TIMEOUT;
        j = respond(&o, API_TIMEOUT);
        assert_null(json_object_get(j, "result"));
        json_decref(j);
}

static void test_end_output_limit(void **state)
{
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.end = EXEC_END_OUTPUT_LIMIT;
        o.out = "xxxxxxxx", o.out_len = 8, o.out_truncated = true;
        j = respond(&o, API_OUTPUT_LIMIT);
        assert_true(json_is_true(json_object_get(j, "truncated")));
        assert_run(j, "xxxxxxxx", "err");
        json_decref(j);

        o = normal(NULL);
        o.end = EXEC_END_OUTPUT_LIMIT;
        o.err_truncated = true;
        j = respond(&o, API_OUTPUT_LIMIT);
        assert_true(json_is_true(json_object_get(j, "truncated")));
        json_decref(j);
}

static void test_end_result_limit(void **state)
{
        ExecOutcome o = normal("{\"status\":\"ok\"}\n[1,2,3");
        json_t *j;

        o.end = EXEC_END_RESULT_LIMIT;
        j = respond(&o, API_OUTPUT_LIMIT);
        assert_true(json_is_boolean(json_object_get(j, "truncated")));
        assert_contains(str(j, "error"), "result");
        assert_null(json_object_get(j, "result"));
        assert_run(j, "out", "err");
        json_decref(j);
}

static void test_end_setup_failed(void **state)
{
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.end = EXEC_END_SETUP_FAILED;
        o.setup_stage = sandbox_stage_name(SANDBOX_STAGE_RLIMITS);
        o.setup_errno = EPERM;
        j = respond(&o, API_INTERNAL);
        assert_string_equal(str(j, "request_id"), "req-42");
        assert_contains(str(j, "error"), "rlimits");
        assert_contains(str(j, "error"), strerror(EPERM));
        /* The script did not run: no output to show. */
        assert_null(json_object_get(j, "stdout"));
        json_decref(j);

        /* No stage name (the executor names every stage number, out-of-range ones
         * "unknown": test-sandbox-sandbox): still a message, not a crash. */
        o.setup_stage = NULL, o.setup_errno = 0;
        j = respond(&o, API_INTERNAL);
        assert_contains(str(j, "error"), "unknown");
        json_decref(j);
        o.setup_stage = sandbox_stage_name(-1), o.setup_errno = -5;
        j = respond(&o, API_INTERNAL);
        json_decref(j);
}

static void test_end_internal(void **state)
{
        ExecOutcome o = normal(NULL);
        json_t *j;

        o.end = EXEC_END_INTERNAL;
        o.internal_what = "clone";
        o.internal_errno = ENOMEM;
        j = respond(&o, API_INTERNAL);
        assert_string_equal(str(j, "request_id"), "req-42");
        assert_contains(str(j, "error"), "clone");
        json_decref(j);

        o.internal_what = NULL, o.request_id = NULL;
        j = respond(&o, API_INTERNAL);
        assert_null(json_object_get(j, "request_id"));
        json_decref(j);

        o.end = (ExecEnd) 99; /* not a known end: an internal error, not a crash */
        j = respond(&o, API_INTERNAL);
        json_decref(j);
}

static void test_output_repaired(void **state)
{
        ExecOutcome o = normal(FRAME_OK "null");
        json_t *j, *out;

        o.out = "a\xFF"
                "b",
        o.out_len = 3;
        o.err = "cut \xE2\x82", o.err_len = 6;
        j = respond(&o, API_OK);
        assert_string_equal(str(j, "stdout"), "a\xEF\xBF\xBD"
                                              "b");
        assert_string_equal(str(j, "stderr"), "cut \xEF\xBF\xBD");
        json_decref(j);

        /* A NUL byte is output like any other: kept, as \u0000. */
        o.out = "x\0y", o.out_len = 3;
        j = respond(&o, API_OK);
        out = json_object_get(j, "stdout");
        assert_int_equal(json_string_length(out), 3);
        assert_memory_equal(json_string_value(out), "x\0y", 3);
        json_decref(j);

        /* Only out_len bytes are used; a NULL buffer is empty output. */
        o.out = "abcdef", o.out_len = 2;
        o.err = NULL, o.err_len = 0;
        j = respond(&o, API_OK);
        assert_run(j, "ab", "");
        json_decref(j);

        /* The same repair on an error path. */
        o = normal(NULL);
        o.wait_status = SIGNALED(SIGSEGV);
        o.out = "\xC0\x80", o.out_len = 2;
        j = respond(&o, API_CRASHED);
        assert_string_equal(str(j, "stdout"), "\xEF\xBF\xBD\xEF\xBF\xBD");
        json_decref(j);
}

static void test_duration(void **state)
{
        ExecOutcome o = normal(FRAME_OK "1");
        json_t *j;

        o.duration_ms = 1.2344;
        j = respond(&o, API_OK);
        assert_true(json_number_value(json_object_get(j, "duration_ms")) == 1.234);
        json_decref(j);
        o.duration_ms = 0;
        j = respond(&o, API_OK);
        assert_true(json_number_value(json_object_get(j, "duration_ms")) == 0);
        json_decref(j);
        o.duration_ms = 3600000.5;
        j = respond(&o, API_OK);
        assert_true(json_number_value(json_object_get(j, "duration_ms")) == 3600000.5);
        json_decref(j);
}

static void test_response_error(void **state)
{
        ApiResponse resp;
        json_t *j;

        assert_int_equal(
                response_error(API_INVALID_REQUEST, "Missing field \"script\"", "req-1", &resp), 0);
        assert_int_equal(resp.code, API_INVALID_REQUEST);
        assert_int_equal(resp.http_status, 400);
        j = parse_body(&resp);
        assert_string_equal(str(j, "error"), "Missing field \"script\"");
        assert_null(json_object_get(j, "request_id")); /* only INTERNAL carries it */
        assert_int_equal(json_object_size(j), 2);
        json_decref(j);
        response_done(&resp);

        assert_int_equal(response_error(API_INTERNAL, "boom", "req-\xFF", &resp), 0);
        assert_int_equal(resp.http_status, 500);
        j = parse_body(&resp);
        assert_string_equal(str(j, "request_id"), "req-\xEF\xBF\xBD");
        json_decref(j);
        response_done(&resp);

        assert_int_equal(response_error(API_OVERLOADED, "bad \xFF bytes\n\"q\"", NULL, &resp), 0);
        assert_int_equal(resp.http_status, 503);
        j = parse_body(&resp);
        assert_string_equal(str(j, "error"), "bad \xEF\xBF\xBD bytes\n\"q\"");
        json_decref(j);
        response_done(&resp);
}

static void test_response_simple(void **state)
{
        ApiResponse resp;
        json_t *j;

        assert_int_equal(response_simple(200, "status", "ok", &resp), 0);
        assert_int_equal(resp.http_status, 200);
        j = parse_body(&resp);
        assert_string_equal(str(j, "status"), "ok");
        assert_int_equal(json_object_size(j), 1);
        json_decref(j);
        response_done(&resp);

        assert_int_equal(response_simple(503, "status", "starting", &resp), 0);
        assert_int_equal(resp.http_status, 503);
        assert_non_null(resp.body);
        j = json_loadb(resp.body, resp.len, 0, NULL);
        assert_non_null(j);
        assert_string_equal(str(j, "status"), "starting");
        json_decref(j);
        response_done(&resp);
}

static void test_response_ready(void **state)
{
        static const char *const layers[] = {"seccomp", "netns"};
        ApiResponse resp;
        json_t *j, *list;

        assert_int_equal(response_ready(true, NULL, 0, &resp), 0);
        assert_int_equal(resp.http_status, 200);
        j = json_loadb(resp.body, resp.len, 0, NULL);
        assert_non_null(j);
        assert_string_equal(str(j, "status"), "ready");
        list = json_object_get(j, "disabled_layers");
        assert_true(json_is_array(list));
        assert_int_equal(json_array_size(list), 0);
        json_decref(j);
        response_done(&resp);

        assert_int_equal(response_ready(false, layers, 2, &resp), 0);
        assert_int_equal(resp.http_status, 503);
        j = json_loadb(resp.body, resp.len, 0, NULL);
        assert_non_null(j);
        assert_string_equal(str(j, "status"), "not ready");
        list = json_object_get(j, "disabled_layers");
        assert_int_equal(json_array_size(list), 2);
        assert_string_equal(json_string_value(json_array_get(list, 0)), "seccomp");
        assert_string_equal(json_string_value(json_array_get(list, 1)), "netns");
        json_decref(j);
        response_done(&resp);
}

static void test_code_table(void **state)
{
        /* docs/design/DESIGN.md section 1, plus the routing codes. */
        static const struct {
                ApiCode code;
                const char *name;
                unsigned http;
        } table[] = {
                {API_OK, "OK", 200},
                {API_INVALID_REQUEST, "INVALID_REQUEST", 400},
                {API_PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", 413},
                {API_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", 415},
                {API_SYNTAX_ERROR, "SYNTAX_ERROR", 400},
                {API_MISSING_MAIN, "MISSING_MAIN", 400},
                {API_RUNTIME_ERROR, "RUNTIME_ERROR", 422},
                {API_NOT_JSON_SERIALIZABLE, "NOT_JSON_SERIALIZABLE", 422},
                {API_TIMEOUT, "TIMEOUT", 422},
                {API_MEMORY_LIMIT, "MEMORY_LIMIT", 422},
                {API_OUTPUT_LIMIT, "OUTPUT_LIMIT", 422},
                {API_CRASHED, "CRASHED", 422},
                {API_UNAUTHORIZED, "UNAUTHORIZED", 401},
                {API_OVERLOADED, "OVERLOADED", 503},
                {API_INTERNAL, "INTERNAL", 500},
                {API_NOT_FOUND, "NOT_FOUND", 404},
                {API_METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", 405},
                {API_CLIENT_CLOSED, "CLIENT_CLOSED", 499},
        };

        assert_int_equal(sizeof(table) / sizeof(table[0]), _API_CODE_MAX);
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                assert_string_equal(api_code_name(table[i].code), table[i].name);
                assert_int_equal(api_code_http(table[i].code), table[i].http);
        }
        /* Out of range: INTERNAL, not a read past the table. */
        assert_string_equal(api_code_name(_API_CODE_MAX), "INTERNAL");
        assert_int_equal(api_code_http(_API_CODE_MAX), 500);
        assert_string_equal(api_code_name((ApiCode) -1), "INTERNAL");
        assert_int_equal(api_code_http((ApiCode) 12345), 500);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ok_result_spliced_verbatim),
                cmocka_unit_test(test_ok_any_json_value),
                cmocka_unit_test(test_ok_result_with_nul_character),
                cmocka_unit_test(test_error_message_with_nul_character),
                cmocka_unit_test(test_ok_result_whitespace_and_depth),
                cmocka_unit_test(test_syntax_error),
                cmocka_unit_test(test_missing_main),
                cmocka_unit_test(test_runtime_error),
                cmocka_unit_test(test_not_json_serializable),
                cmocka_unit_test(test_memory_error),
                cmocka_unit_test(test_result_too_large),
                cmocka_unit_test(test_hostile_frames),
                cmocka_unit_test(test_hostile_result_followed_by_nul),
                cmocka_unit_test(test_hostile_frame_message),
                cmocka_unit_test(test_hostile_huge_nesting),
                cmocka_unit_test(test_hostile_frame_from_killed_process),
                cmocka_unit_test(test_complete_corrupt_frame_is_not_a_crash),
                cmocka_unit_test(test_result_with_nul_in_a_key),
                cmocka_unit_test(test_random_frames),
                cmocka_unit_test(test_wait_statuses),
                cmocka_unit_test(test_exit_before_the_script_started),
                cmocka_unit_test(test_oom_kill),
                cmocka_unit_test(test_no_status_no_frame_is_internal),
                cmocka_unit_test(test_end_timeout),
                cmocka_unit_test(test_end_output_limit),
                cmocka_unit_test(test_end_result_limit),
                cmocka_unit_test(test_end_setup_failed),
                cmocka_unit_test(test_end_internal),
                cmocka_unit_test(test_output_repaired),
                cmocka_unit_test(test_duration),
                cmocka_unit_test(test_response_error),
                cmocka_unit_test(test_response_simple),
                cmocka_unit_test(test_response_ready),
                cmocka_unit_test(test_code_table),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
