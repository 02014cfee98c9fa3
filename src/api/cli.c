/* See cli.h. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cli.h"
#include "util/base64.h"
#include "util/utf8.h"

static int text(json_t *obj, const char *key, const char *s, size_t n, char *errbuf, size_t errlen)
{
        if (!utf8_valid(s, n)) {
                (void) snprintf(errbuf, errlen, "the %s is not valid UTF-8", key);
                return 1;
        }
        return json_object_set_new(obj, key, json_stringn(s, n)) < 0 ? -ENOMEM : 0;
}

static int add_args(json_t *obj, const CliRequest *cli, char *errbuf, size_t errlen)
{
        json_t *args = json_array(), *kwargs = json_object();
        int r = args && kwargs ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < cli->n_args; i++) {
                json_t *v = json_loads(cli->args[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
                if (!v) {
                        (void) snprintf(errbuf, errlen, "--arg %.64s: not a JSON value",
                                        cli->args[i]);
                        r = 1;
                } else if (json_array_append_new(args, v) < 0)
                        r = -ENOMEM;
        }
        for (size_t i = 0; r == 0 && i < cli->n_kwargs; i++) {
                const char *eq = strchr(cli->kwargs[i], '=');
                char name[256];
                json_t *v = eq ? json_loads(eq + 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
                if (!v || eq == cli->kwargs[i] || (size_t) (eq - cli->kwargs[i]) >= sizeof(name)) {
                        (void) snprintf(errbuf, errlen, "--kwarg %.64s: not NAME=JSON",
                                        cli->kwargs[i]);
                        json_decref(v);
                        r = 1;
                        break;
                }
                memcpy(name, cli->kwargs[i], (size_t) (eq - cli->kwargs[i]));
                name[eq - cli->kwargs[i]] = '\0';
                if (json_object_set_new(kwargs, name, v) < 0)
                        r = -ENOMEM;
        }
        if (r == 0 && cli->n_args > 0 && json_object_set(obj, "args", args) < 0)
                r = -ENOMEM;
        if (r == 0 && cli->n_kwargs > 0 && json_object_set(obj, "kwargs", kwargs) < 0)
                r = -ENOMEM;
        json_decref(args);
        json_decref(kwargs);
        return r;
}

static int add_files(json_t *obj, const CliRequest *cli, char *errbuf, size_t errlen)
{
        json_t *files = json_array();
        int r = files ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < cli->n_files; i++) {
                const CliFile *f = &cli->files[i];
                char *b64;
                json_t *e;

                if (!utf8_valid(f->path, strlen(f->path))) {
                        (void) snprintf(errbuf, errlen, "--file %.64s: not a UTF-8 path", f->path);
                        r = 1;
                        break;
                }
                b64 = malloc(base64_encoded_len(f->len) + 1);
                if (!b64) {
                        r = -ENOMEM;
                        break;
                }
                base64_encode(f->data, f->len, b64);
                e = json_pack("{s:s,s:s,s:s}", "path", f->path, "content", b64, "encoding",
                              "base64");
                free(b64);
                if (!e || json_array_append_new(files, e) < 0)
                        r = -ENOMEM;
        }
        if (r == 0 && cli->n_files > 0 && json_object_set(obj, "files", files) < 0)
                r = -ENOMEM;
        json_decref(files);
        return r;
}

int cli_request_body(const CliRequest *cli, char **ret, char *errbuf, size_t errlen)
{
        json_t *obj = json_object();
        int r = obj ? 0 : -ENOMEM;

        if (r == 0)
                r = text(obj, "script", cli->script, cli->script_len, errbuf, errlen);
        if (r == 0 && cli->stdin_data)
                r = text(obj, "stdin", cli->stdin_data, cli->stdin_len, errbuf, errlen);
        if (r == 0)
                r = add_args(obj, cli, errbuf, errlen);
        if (r == 0)
                r = add_files(obj, cli, errbuf, errlen);
        if (r == 0 && cli->return_files &&
            json_object_set_new(obj, "return_files", json_true()) < 0)
                r = -ENOMEM;
        if (r == 0) {
                *ret = json_dumps(obj, JSON_COMPACT);
                if (!*ret)
                        r = -ENOMEM;
        }
        json_decref(obj);
        return r;
}
