/* See api.h: parsing of POST /execute bodies. Strict: duplicate keys, unknown fields,
 * wrong types and out-of-range limits are all INVALID_REQUEST with a message that says
 * which. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/files.h"
#include "util/macro.h"
#include "util/utf8.h"

int request_invalid(char *errbuf, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
        return API_INVALID_REQUEST;
}

static bool is_input_field(const char *key)
{
        static const char *const names[] = {"stdin", "args", "kwargs", "files", "return_files"};

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(key, names[i]) == 0)
                        return true;
        return false;
}

/* One of the fields the harness gets besides the script: checked here, read by the harness
 * from the body itself (so that numbers and strings arrive exactly as sent, integers
 * beyond 64 bits and NULs included). Sets *ret_used when it changes something (an empty
 * stdin, args or files does not); return_files goes into `control`. */
static int parse_input_field(const char *key, json_t *v, const RequestLimits *lim, json_t *control,
                             ExecRequest *req, bool *ret_used, char *errbuf, size_t errlen)
{
        json_t *rf;
        int r;

        if (strcmp(key, "stdin") == 0) {
                if (!json_is_string(v))
                        return request_invalid(errbuf, errlen, "\"stdin\" must be a string");
                *ret_used |= json_string_length(v) > 0;
                req->stdin_bytes = json_string_length(v);
        } else if (strcmp(key, "args") == 0) {
                if (!json_is_array(v))
                        return request_invalid(errbuf, errlen,
                                               "\"args\" must be an array (main(*args) is called)");
                *ret_used |= json_array_size(v) > 0;
        } else if (strcmp(key, "kwargs") == 0) {
                if (!json_is_object(v))
                        return request_invalid(
                                errbuf, errlen,
                                "\"kwargs\" must be an object (main(**kwargs) is called)");
                *ret_used |= json_object_size(v) > 0;
        } else if (strcmp(key, "files") == 0) {
                r = files_parse_request(v, lim, &req->files_bytes, errbuf, errlen);
                if (r != 0)
                        return r;
                *ret_used |= json_array_size(v) > 0;
        } else {
                if (!json_is_boolean(v))
                        return request_invalid(errbuf, errlen,
                                               "\"return_files\" must be true or false");
                req->return_files = json_is_true(v);
                req->max_output_files = lim->max_output_files;
                req->output_files_limit = lim->output_files_limit;
                if (!req->return_files)
                        return 0;
                rf = json_pack("{sIsI}", "max_files", (json_int_t) lim->max_output_files,
                               "max_bytes", (json_int_t) lim->output_files_limit);
                if (!rf || json_object_set_new(control, key, rf) < 0)
                        return -ENOMEM;
                *ret_used = true;
        }
        return 0;
}

/* The harness's input: the control object, a newline, and the request body. */
static int build_input(json_t *control, const char *body, size_t len, ExecRequest *req)
{
        char *head = json_dumps(control, JSON_COMPACT);
        size_t n;

        if (!head)
                return -ENOMEM;
        n = strlen(head);
        req->input = malloc(n + 1 + len);
        if (!req->input) {
                free(head);
                return -ENOMEM;
        }
        memcpy(req->input, head, n);
        req->input[n] = '\n';
        memcpy(req->input + n + 1, body, len);
        req->input_len = n + 1 + len;
        free(head);
        return 0;
}

int request_parse(const char *body, size_t len, const RequestLimits *lim, ExecRequest *ret,
                  char *errbuf, size_t errlen)
{
        json_error_t jerr;
        json_t *root, *v, *control = NULL;
        bool used = false, ints_as_reals = false;
        const char *key;
        ExecRequest req = {.timeout_ms = lim->max_timeout_ms,
                           .memory_mb = lim->max_memory_mb,
                           .client_fd = -1};
        double max_s = lim->max_timeout_ms / 1000.0;
        int r = API_INVALID_REQUEST;
        bool have_script = false;

        /* \u0000 is a character like any other in stdin, args or a file; the script is
         * checked for NULs below. */
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!root && json_error_code(&jerr) == json_error_numeric_overflow) {
                /* An integer beyond 64 bits (Python's are exact: args may carry one). The
                 * harness reads the body itself; here such a number is a real. */
                root = json_loadb(body, len,
                                  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                                  &jerr);
                ints_as_reals = true;
        }
        if (!root) {
                (void) snprintf(errbuf, errlen,
                                "Request body is not valid JSON: %s (line %d, column %d)",
                                jerr.text, jerr.line, jerr.column);
                return API_INVALID_REQUEST;
        }
        if (!json_is_object(root)) {
                r = request_invalid(errbuf, errlen, "Request body must be a JSON object");
                goto out;
        }
        control = json_object();
        if (!control) {
                r = -ENOMEM;
                goto out;
        }

        json_object_foreach(root, key, v)
        {
                if (strcmp(key, "script") == 0) {
                        if (!json_is_string(v)) {
                                r = request_invalid(errbuf, errlen, "\"script\" must be a string");
                                goto out;
                        }
                        have_script = true;
                } else if (strcmp(key, "timeout") == 0) {
                        double t = json_number_value(v);
                        if (!json_is_number(v) || !(t > 0) || t > max_s) {
                                r = request_invalid(
                                        errbuf, errlen,
                                        "\"timeout\" must be a number of seconds above 0 and "
                                        "at most %g (the server's maximum)",
                                        max_s);
                                goto out;
                        }
                        req.timeout_ms = (uint32_t) fmax(1.0, llround(t * 1000.0));
                } else if (strcmp(key, "memory_mb") == 0) {
                        json_int_t m = json_integer_value(v);
                        double d = json_real_value(v);
                        bool integer = json_is_integer(v);
                        if (ints_as_reals && json_is_real(v) && d >= 1 && d <= lim->max_memory_mb &&
                            d == floor(d)) {
                                integer = true; /* read as a real: see above */
                                m = (json_int_t) d;
                        }
                        if (!integer || m < 1 || m > (json_int_t) lim->max_memory_mb) {
                                r = request_invalid(errbuf, errlen,
                                                    "\"memory_mb\" must be an integer from 1 to %u "
                                                    "(the server's maximum)",
                                                    (unsigned) lim->max_memory_mb);
                                goto out;
                        }
                        req.memory_mb = (uint32_t) m;
                } else if (is_input_field(key)) {
                        r = parse_input_field(key, v, lim, control, &req, &used, errbuf, errlen);
                        if (r != 0)
                                goto out;
                } else {
                        r = request_invalid(errbuf, errlen,
                                            "Unknown field \"%.64s\" (allowed: script, timeout, "
                                            "memory_mb, stdin, args, kwargs, files, return_files)",
                                            key);
                        goto out;
                }
        }
        if (!have_script) {
                r = request_invalid(errbuf, errlen, "Missing field \"script\"");
                goto out;
        }

        v = json_object_get(root, "script");
        {
                ExecRequest checked;
                r = request_from_script(json_string_value(v), json_string_length(v), lim, &checked,
                                        errbuf, errlen);
                if (r != 0)
                        goto out;
                /* Only the script comes from there; every other field is the body's. */
                req.script = checked.script;
                req.script_len = checked.script_len;
        }
        if (used) {
                r = build_input(control, body, len, &req);
                if (r < 0) {
                        request_done(&req);
                        goto out;
                }
        }
        *ret = req;
out:
        json_decref(control);
        json_decref(root);
        return r;
}

int request_from_script(const char *script, size_t len, const RequestLimits *lim, ExecRequest *ret,
                        char *errbuf, size_t errlen)
{
        ExecRequest req = {.timeout_ms = lim->max_timeout_ms,
                           .memory_mb = lim->max_memory_mb,
                           .client_fd = -1};

        if (len == 0)
                return request_invalid(errbuf, errlen, "\"script\" is empty");
        if (memchr(script, '\0', len))
                return request_invalid(errbuf, errlen, "\"script\" contains a NUL character");
        if (!utf8_valid(script, len))
                return request_invalid(errbuf, errlen, "\"script\" is not valid UTF-8");
        req.script = malloc(len + 1);
        if (!req.script)
                return -ENOMEM;
        memcpy(req.script, script, len);
        req.script[len] = '\0';
        req.script_len = len;
        *ret = req;
        return 0;
}

void request_done(ExecRequest *r)
{
        free(r->script);
        r->script = NULL;
        free(r->input);
        r->input = NULL;
}
