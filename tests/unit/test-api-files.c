/* Unit tests for the data a request sends besides its script (stdin, args, kwargs, input
 * files, return_files: api/request.c and api/files.c), the strict base64 of util/base64.c,
 * and the files a result frame returns (checked in api/files.c before they reach a client:
 * a script can write its own frame). */
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

static const RequestLimits LIMITS = {
        .max_timeout_ms = 10000,
        .max_memory_mb = 256,
        .max_files = 4,
        .tmp_bytes = 64 * 1024,
        .max_output_files = 3,
        .output_files_limit = 100,
};
static char errbuf[512];

static int parse(const char *body, ExecRequest *req)
{
        errbuf[0] = '\0';
        return request_parse(body, strlen(body), &LIMITS, req, errbuf, sizeof(errbuf));
}

/* The body is refused with `code`, and the message contains `needle`. */
static void refused(const char *body, int code, const char *needle)
{
        ExecRequest req;
        int r = parse(body, &req);

        if (r != code)
                fail_msg("%s: returned %d (%s), expected %d", body, r, errbuf, code);
        if (!strstr(errbuf, needle))
                fail_msg("%s: message \"%s\" lacks \"%s\"", body, errbuf, needle);
}

/* The control object of an accepted body's job input, which must be that object, a
 * newline and the body itself (NULL: no input). */
static json_t *input_of(const char *body, ExecRequest *req)
{
        int r = parse(body, req);
        const char *nl;

        if (r != 0)
                fail_msg("%s: returned %d: %s", body, r, errbuf);
        if (!req->input)
                return NULL;
        nl = memchr(req->input, '\n', req->input_len);
        assert_non_null(nl);
        assert_int_equal(req->input_len - (size_t) (nl + 1 - req->input), strlen(body));
        assert_memory_equal(nl + 1, body, strlen(body));
        return json_loadb(req->input, (size_t) (nl - req->input), 0, NULL);
}

static void test_base64_strict(void **state)
{
        static const struct {
                const char *s;
                long len; /* -1: refused */
        } cases[] = {
                {"", 0},       {"aGk=", 2},    {"aGVsbG8=", 5},    {"aGVsbG8h", 6},
                {"+/+/", 3},   {"AA==", 1},    {"aGk", -1},        {"aGk==", -1},
                {"aG k=", -1}, {"aGk=\n", -1}, {"aGVs\nbG8=", -1}, {"aGk-", -1},
                {"a_k=", -1},  {"====", -1},   {"a===", -1},       {"aGl=", -1},
                {"aR==", -1},  {"=aGk", -1},   {"aG=k", -1},
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t len = 12345;
                int r = base64_check(cases[i].s, strlen(cases[i].s), &len);
                if (cases[i].len < 0 && r != -EINVAL)
                        fail_msg("\"%s\" accepted", cases[i].s);
                if (cases[i].len >= 0 && (r != 0 || len != (size_t) cases[i].len))
                        fail_msg("\"%s\": %d, length %zu", cases[i].s, r, len);
        }
        /* The encoder's output is what the checker accepts, for every length mod 3. */
        for (size_t n = 0; n < 40; n++) {
                unsigned char raw[40];
                char enc[64];
                size_t len = 0;
                for (size_t i = 0; i < n; i++)
                        raw[i] = (unsigned char) (i * 37 + n);
                base64_encode(raw, n, enc);
                assert_int_equal(strlen(enc), base64_encoded_len(n));
                assert_int_equal(base64_check(enc, strlen(enc), &len), 0);
                assert_int_equal(len, n);
        }
        {
                char enc[16];
                base64_encode("hello", 5, enc);
                assert_string_equal(enc, "aGVsbG8=");
                base64_encode("\xff\xfe", 2, enc);
                assert_string_equal(enc, "//4=");
        }
        assert_int_equal(base64_encoded_len(0), 0);
        assert_int_equal(base64_encoded_len(1), 4);
        assert_int_equal(base64_encoded_len(3), 4);
        assert_int_equal(base64_encoded_len(4), 8);
}

static void test_path_rules(void **state)
{
        char name[300], longpath[1100], deep[64];
        (void) state;

        assert_null(files_path_error("a", 1));
        assert_null(files_path_error("in/data.csv", 11));
        assert_null(files_path_error("..a/b..", 7));
        assert_non_null(files_path_error("", 0));
        assert_non_null(files_path_error("/etc/x", 6));
        assert_non_null(files_path_error("../x", 4));
        assert_non_null(files_path_error("a/../../x", 9));
        assert_non_null(files_path_error("a/./b", 5));
        assert_non_null(files_path_error(".", 1));
        assert_non_null(files_path_error("a//b", 4));
        assert_non_null(files_path_error("a/", 2));
        assert_non_null(files_path_error("a\0b", 3));

        memset(name, 'n', 256);
        assert_non_null(files_path_error(name, 256));
        assert_null(files_path_error(name, 255));
        memset(longpath, 'p', sizeof(longpath));
        for (size_t i = 200; i < sizeof(longpath); i += 200)
                longpath[i] = '/';
        assert_null(files_path_error(longpath, 1024));
        assert_non_null(files_path_error(longpath, 1025));
        /* 16 components pass, 17 do not. */
        for (size_t i = 0; i < 17; i++) {
                deep[2 * i] = 'd';
                deep[2 * i + 1] = '/';
        }
        assert_null(files_path_error(deep, 31));
        assert_non_null(files_path_error(deep, 33));
}

static void test_without_new_fields_no_input(void **state)
{
        ExecRequest req;
        (void) state;

        assert_null(input_of("{\"script\":\"x\"}", &req));
        assert_false(req.return_files);
        request_done(&req);
        /* Empty values change nothing either. */
        assert_null(input_of("{\"script\":\"x\",\"stdin\":\"\",\"args\":[],\"kwargs\":{},"
                             "\"files\":[],\"return_files\":false}",
                             &req));
        request_done(&req);
}

static void test_input_document(void **state)
{
        ExecRequest req;
        json_t *in, *f;
        (void) state;

        in = input_of("{\"script\":\"x\",\"stdin\":\"line\\n\",\"args\":[1,2.5,\"s\",null,[true]],"
                      "\"kwargs\":{\"k\":{\"a\":1}},\"files\":[{\"path\":\"in/a.csv\",\"content\":"
                      "\"a,b\"},{\"path\":\"b\",\"content\":\"aGk=\",\"encoding\":\"base64\"}],"
                      "\"return_files\":true}",
                      &req);
        assert_non_null(in);
        assert_int_equal(json_object_size(in), 1);
        f = json_object_get(in, "return_files");
        assert_int_equal(json_integer_value(json_object_get(f, "max_files")), 3);
        assert_int_equal(json_integer_value(json_object_get(f, "max_bytes")), 100);
        assert_true(req.return_files);
        assert_int_equal(req.max_output_files, 3);
        assert_int_equal(req.output_files_limit, 100);
        json_decref(in);
        request_done(&req);
        assert_null(req.input);

        /* Without return_files the control object is empty; any one field is enough. */
        in = input_of("{\"script\":\"x\",\"stdin\":\"s\"}", &req);
        assert_non_null(in);
        assert_int_equal(json_object_size(in), 0);
        assert_false(req.return_files);
        json_decref(in);
        request_done(&req);
}

/* What jansson cannot hold natively still reaches the harness exactly: the body is passed
 * on as sent. */
static void test_big_integers_and_nuls_pass(void **state)
{
        ExecRequest req;
        json_t *in;
        (void) state;

        in = input_of("{\"script\":\"x\",\"args\":[1180591620717411303424,-18446744073709551616],"
                      "\"memory_mb\":100}",
                      &req);
        assert_int_equal(req.memory_mb, 100);
        json_decref(in);
        request_done(&req);
        in = input_of("{\"script\":\"x\",\"stdin\":\"a\\u0000b\",\"args\":[\"\\u0000\"]}", &req);
        json_decref(in);
        request_done(&req);
        /* Still refused: a NUL in the script or a path, a real memory_mb, a huge one. */
        refused("{\"script\":\"x\\u0000\"}", API_INVALID_REQUEST, "NUL");
        refused("{\"script\":\"x\",\"files\":[{\"path\":\"a\\u0000b\",\"content\":\"\"}]}",
                API_INVALID_REQUEST, "files[0]");
        refused("{\"script\":\"x\",\"args\":[1180591620717411303424],\"memory_mb\":1.5}",
                API_INVALID_REQUEST, "memory_mb");
        refused("{\"script\":\"x\",\"memory_mb\":1180591620717411303424}", API_INVALID_REQUEST,
                "memory_mb");
        refused("{\"script\":\"x\",\"args\":[1e400]}", API_INVALID_REQUEST, "not valid JSON");
}

static void test_wrong_types(void **state)
{
        (void) state;

        refused("{\"script\":\"x\",\"stdin\":1}", API_INVALID_REQUEST, "stdin");
        refused("{\"script\":\"x\",\"args\":{}}", API_INVALID_REQUEST, "args");
        refused("{\"script\":\"x\",\"kwargs\":[]}", API_INVALID_REQUEST, "kwargs");
        refused("{\"script\":\"x\",\"return_files\":1}", API_INVALID_REQUEST, "return_files");
        refused("{\"script\":\"x\",\"files\":{}}", API_INVALID_REQUEST, "files");
        refused("{\"script\":\"x\",\"files\":[1]}", API_INVALID_REQUEST, "files[0]");
        refused("{\"script\":\"x\",\"files\":[{\"path\":\"a\"}]}", API_INVALID_REQUEST, "files[0]");
        refused("{\"script\":\"x\",\"files\":[{\"path\":1,\"content\":\"\"}]}", API_INVALID_REQUEST,
                "files[0]");
        refused("{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":\"\",\"mode\":1}]}",
                API_INVALID_REQUEST, "unknown key \"mode\"");
        refused("{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":\"\",\"encoding\":"
                "\"hex\"}]}",
                API_INVALID_REQUEST, "files[0] (\"a\")");
        refused("{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":\"aGk\",\"encoding\":"
                "\"base64\"}]}",
                API_INVALID_REQUEST, "base64");
        refused("{\"script\":\"x\",\"other\":1}", API_INVALID_REQUEST, "return_files");
}

static void test_path_errors_name_the_entry(void **state)
{
        (void) state;

        refused("{\"script\":\"x\",\"files\":[{\"path\":\"ok\",\"content\":\"\"},{\"path\":\"../"
                "x\","
                "\"content\":\"\"}]}",
                API_INVALID_REQUEST, "files[1] (\"../x\")");
        refused("{\"script\":\"x\",\"files\":[{\"path\":\"/etc/x\",\"content\":\"\"}]}",
                API_INVALID_REQUEST, "files[0] (\"/etc/x\")");
        refused("{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":\"\"},{\"path\":\"a\","
                "\"content\":\"\"}]}",
                API_INVALID_REQUEST, "files[1] (\"a\") has the same path as files[0]");
        /* "a" and "a/b" are not neighbours in byte order ("a.txt" sorts between). */
        refused("{\"script\":\"x\",\"files\":[{\"path\":\"a/"
                "b\",\"content\":\"\"},{\"path\":\"a.txt\","
                "\"content\":\"\"},{\"path\":\"a\",\"content\":\"\"}]}",
                API_INVALID_REQUEST, "files[2] (\"a\") is a file, and files[0] (\"a/b\")");
}

static void test_counts_and_sizes(void **state)
{
        char body[1024];
        ExecRequest req;
        json_t *in;
        (void) state;

        refused("{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":\"\"},{\"path\":\"b\","
                "\"content\":\"\"},{\"path\":\"c\",\"content\":\"\"},{\"path\":\"d\",\"content\":"
                "\"\"},{\"path\":\"e\",\"content\":\"\"}]}",
                API_INVALID_REQUEST, "--max-files");
        /* 64 KiB of /tmp: sixteen pages. Each byte of content takes a page here. */
        in = input_of(
                "{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":\"1\"},{\"path\":\"b\","
                "\"content\":\"2\"},{\"path\":\"c\",\"content\":\"3\"},{\"path\":\"d\","
                "\"content\":\"4\"}]}",
                &req);
        json_decref(in);
        request_done(&req);
        (void) snprintf(body, sizeof(body),
                        "{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":\"%0*d\"}]}", 200,
                        0);
        in = input_of(body, &req);
        json_decref(in);
        request_done(&req);
}

static void test_too_large_for_tmp(void **state)
{
        RequestLimits small = LIMITS;
        ExecRequest req;
        int r;
        (void) state;

        static const char three[] = "{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":"
                                    "\"1\"},{\"path\":\"b\",\"content\":\"2\"},{\"path\":\"c\","
                                    "\"content\":\"3\"}]}";
        static const char two[] = "{\"script\":\"x\",\"files\":[{\"path\":\"a\",\"content\":"
                                  "\"1\"},{\"path\":\"b\",\"content\":\"2\"}]}";
        small.tmp_bytes = 8192; /* two pages: three one-byte files do not fit */
        r = request_parse(three, strlen(three), &small, &req, errbuf, sizeof(errbuf));
        assert_int_equal(r, API_PAYLOAD_TOO_LARGE);
        assert_non_null(strstr(errbuf, "--tmp-size"));
        r = request_parse(two, strlen(two), &small, &req, errbuf, sizeof(errbuf));
        assert_int_equal(r, 0);
        request_done(&req);
}

/* ---- files in a result frame ------------------------------------------------------------ */

/* The response to an "ok" frame whose header carries `files_json` (members), for a request
 * that asked for files (or not). */
static json_t *answer(const char *files_json, bool asked)
{
        char frame[4096];
        ExecOutcome o = {
                .end = EXEC_END_NORMAL,
                .script_started = true,
                .frame_complete = true,
                .have_status = true,
                .return_files = asked,
                .max_output_files = 3,
                .output_files_limit = 10,
        };
        ApiResponse resp;
        json_t *body;

        o.frame_len = (size_t) snprintf(frame, sizeof(frame), "{\"status\":\"ok\"%s%s}\n1",
                                        *files_json ? "," : "", files_json);
        o.frame = frame;
        assert_int_equal(response_from_outcome(&o, &resp), 0);
        body = json_loads(resp.body, 0, NULL);
        assert_non_null(body);
        response_done(&resp);
        return body;
}

/* The frame's files are refused: the answer is the tampered channel's RUNTIME_ERROR. */
static void tampered(const char *files_json)
{
        json_t *body = answer(files_json, true);
        const char *code = json_string_value(json_object_get(body, "code"));

        if (!code || strcmp(code, "RUNTIME_ERROR") != 0 || json_object_get(body, "files"))
                fail_msg("accepted: %s", files_json);
        json_decref(body);
}

#define F(path, size, content)                                                                     \
        "{\"path\":\"" path "\",\"size\":" #size ",\"encoding\":\"base64\",\"content\":\"" content \
        "\"}"

static void test_frame_files_returned(void **state)
{
        json_t *body;
        (void) state;

        body = answer("\"files\":[" F("a", 2, "aGk=") "," F(
                              "b/c", 0, "") "],\"files_omitted\":"
                                            "[\"big\"],\"files_truncated\":true",
                      true);
        assert_int_equal(json_integer_value(json_object_get(body, "result")), 1);
        assert_int_equal(json_array_size(json_object_get(body, "files")), 2);
        assert_string_equal(json_string_value(json_object_get(
                                    json_array_get(json_object_get(body, "files"), 1), "path")),
                            "b/c");
        assert_string_equal(
                json_string_value(json_array_get(json_object_get(body, "files_omitted"), 0)),
                "big");
        assert_true(json_is_true(json_object_get(body, "files_truncated")));
        json_decref(body);

        /* Empty lists and a false flag are left out. */
        body = answer("\"files\":[],\"files_omitted\":[],\"files_truncated\":false", true);
        assert_null(json_object_get(body, "files"));
        assert_null(json_object_get(body, "files_omitted"));
        assert_null(json_object_get(body, "files_truncated"));
        json_decref(body);
}

static void test_frame_files_dropped_unless_asked(void **state)
{
        json_t *body = answer("\"files\":[" F("a", 2, "aGk=") "]", false);
        (void) state;

        assert_int_equal(json_integer_value(json_object_get(body, "result")), 1);
        assert_null(json_object_get(body, "files"));
        json_decref(body);
        /* Not even checked: a malformed list is dropped too. */
        body = answer("\"files\":7", false);
        assert_int_equal(json_integer_value(json_object_get(body, "result")), 1);
        json_decref(body);
}

static void test_frame_files_checked(void **state)
{
        (void) state;

        tampered("\"files\":7");
        tampered("\"files\":[7]");
        tampered("\"files\":[" F("../x", 2, "aGk=") "]");
        tampered("\"files\":[" F("/etc/passwd", 2, "aGk=") "]");
        tampered("\"files\":[" F("a", 3, "aGk=") "]"); /* size does not match */
        tampered("\"files\":[" F("a", 2, "aGk") "]");  /* not base64 */
        tampered("\"files\":[" F("b", 2, "aGk=") "," F("a", 2, "aGk=") "]"); /* order */
        tampered("\"files\":[" F("a", 2, "aGk=") "," F("a", 2, "aGk=") "]"); /* twice */
        tampered("\"files\":[" F("a", 2, "aGk=") "," F("b", 2, "aGk=") "," F("c", 2, "aGk=") "," F(
                "d", 2, "aGk=") "]"); /* over max_output_files */
        tampered("\"files\":[" F("a", 8, "aGVsbG8gd28=") "," F("b", 8, "aGVsbG8gd28=") "]"); /* 16 >
                                                                                              10 */
        tampered("\"files\":[{\"path\":\"a\",\"size\":2,\"encoding\":\"utf-8\",\"content\":\"hi\"}"
                 "]");
        tampered("\"files\":[{\"path\":\"a\",\"size\":2,\"encoding\":\"base64\",\"content\":"
                 "\"aGk=\",\"mode\":1}]");
        tampered("\"files_omitted\":[\"../x\"]");
        tampered("\"files_omitted\":\"a\"");
        tampered("\"files_truncated\":1");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64_strict),
                cmocka_unit_test(test_path_rules),
                cmocka_unit_test(test_without_new_fields_no_input),
                cmocka_unit_test(test_input_document),
                cmocka_unit_test(test_big_integers_and_nuls_pass),
                cmocka_unit_test(test_wrong_types),
                cmocka_unit_test(test_path_errors_name_the_entry),
                cmocka_unit_test(test_counts_and_sizes),
                cmocka_unit_test(test_too_large_for_tmp),
                cmocka_unit_test(test_frame_files_returned),
                cmocka_unit_test(test_frame_files_dropped_unless_asked),
                cmocka_unit_test(test_frame_files_checked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
