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
#include "util/macro.h"
#include "util/utf8.h"

static int invalid(char *errbuf, size_t errlen, const char *fmt, ...) _printf_(3, 4);

static int invalid(char *errbuf, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
        return API_INVALID_REQUEST;
}

int request_parse(const char *body, size_t len, const RequestLimits *lim, ExecRequest *ret,
                  char *errbuf, size_t errlen)
{
        json_error_t jerr;
        json_t *root, *v;
        const char *key;
        ExecRequest req = {.timeout_ms = lim->max_timeout_ms,
                           .memory_mb = lim->max_memory_mb,
                           .client_fd = -1};
        double max_s = lim->max_timeout_ms / 1000.0;
        int r = API_INVALID_REQUEST;
        bool have_script = false;

        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                (void) snprintf(errbuf, errlen,
                                "Request body is not valid JSON: %s (line %d, column %d)",
                                jerr.text, jerr.line, jerr.column);
                return API_INVALID_REQUEST;
        }
        if (!json_is_object(root)) {
                r = invalid(errbuf, errlen, "Request body must be a JSON object");
                goto out;
        }

        json_object_foreach(root, key, v)
        {
                if (strcmp(key, "script") == 0) {
                        if (!json_is_string(v)) {
                                r = invalid(errbuf, errlen, "\"script\" must be a string");
                                goto out;
                        }
                        have_script = true;
                } else if (strcmp(key, "timeout") == 0) {
                        double t = json_number_value(v);
                        if (!json_is_number(v) || !(t > 0) || t > max_s) {
                                r = invalid(errbuf, errlen,
                                            "\"timeout\" must be a number of seconds above 0 and "
                                            "at most %g (the server's maximum)",
                                            max_s);
                                goto out;
                        }
                        req.timeout_ms = (uint32_t) fmax(1.0, llround(t * 1000.0));
                } else if (strcmp(key, "memory_mb") == 0) {
                        json_int_t m = json_integer_value(v);
                        if (!json_is_integer(v) || m < 1 || m > (json_int_t) lim->max_memory_mb) {
                                r = invalid(errbuf, errlen,
                                            "\"memory_mb\" must be an integer from 1 to %u "
                                            "(the server's maximum)",
                                            (unsigned) lim->max_memory_mb);
                                goto out;
                        }
                        req.memory_mb = (uint32_t) m;
                } else {
                        r = invalid(errbuf, errlen,
                                    "Unknown field \"%.64s\" (allowed: script, timeout, "
                                    "memory_mb)",
                                    key);
                        goto out;
                }
        }
        if (!have_script) {
                r = invalid(errbuf, errlen, "Missing field \"script\"");
                goto out;
        }

        v = json_object_get(root, "script");
        {
                ExecRequest checked;
                r = request_from_script(json_string_value(v), json_string_length(v), lim, &checked,
                                        errbuf, errlen);
                if (r != 0)
                        goto out;
                checked.timeout_ms = req.timeout_ms;
                checked.memory_mb = req.memory_mb;
                req = checked;
        }
        *ret = req;
out:
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
                return invalid(errbuf, errlen, "\"script\" is empty");
        if (memchr(script, '\0', len))
                return invalid(errbuf, errlen, "\"script\" contains a NUL character");
        if (!utf8_valid(script, len))
                return invalid(errbuf, errlen, "\"script\" is not valid UTF-8");
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
}
