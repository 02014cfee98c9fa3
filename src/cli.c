/* See cli.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cli.h"
#include "cli.h"
#include "http/server.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/macro.h"

typedef struct SyncRun {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
        ApiResponse response;
        int error;
} SyncRun;

static void sync_done(ExecOutcome *o, void *userdata)
{
        SyncRun *s = userdata;
        int r = response_from_outcome(o, &s->response);

        exec_outcome_release(o);
        (void) pthread_mutex_lock(&s->lock);
        s->error = r;
        s->done = true;
        (void) pthread_cond_signal(&s->cond);
        (void) pthread_mutex_unlock(&s->lock);
}

int cli_run_sync(Executor *ex, ExecRequest *req, ApiResponse *ret)
{
        SyncRun s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        int r;

        req->client_fd = -1;
        r = executor_submit(ex, req, sync_done, &s);
        if (r != 0)
                return r > 0 ? -EBUSY : r;
        (void) pthread_mutex_lock(&s.lock);
        while (!s.done)
                (void) pthread_cond_wait(&s.cond, &s.lock);
        (void) pthread_mutex_unlock(&s.lock);
        if (s.error < 0)
                return s.error;
        *ret = s.response;
        return 0;
}

/* A whole local file (the command line's user's own), at most `limit` bytes. */
static int read_file(const char *path, Buf *ret, size_t limit)
{
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
        char chunk[65536];
        size_t n;
        int r = 0;

        buf_init(ret, limit);
        if (!f)
                return -errno;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if ((r = buf_append(ret, chunk, n)) != 0)
                        break;
        if (r == 0 && ferror(f))
                r = -EIO;
        if (f != stdin)
                (void) fclose(f);
        return r > 0 ? -EFBIG : r;
}

typedef struct ExecInputs {
        Buf script, stdin_data;
        Buf files[CONFIG_EXEC_INPUTS_MAX];
        char *paths[CONFIG_EXEC_INPUTS_MAX]; /* of the files, in the sandbox */
        CliFile file_list[CONFIG_EXEC_INPUTS_MAX];
        const char *args[CONFIG_EXEC_INPUTS_MAX], *kwargs[CONFIG_EXEC_INPUTS_MAX];
        size_t n_files;
        CliRequest cli;
} ExecInputs;

static void inputs_free(ExecInputs *in)
{
        buf_free(&in->script);
        buf_free(&in->stdin_data);
        for (size_t i = 0; i < in->n_files; i++) {
                buf_free(&in->files[i]);
                free(in->paths[i]);
        }
        free(in);
}

/* Reads what the command line names: the script, --stdin, each --file. */
static int inputs_read(const Config *cfg, const ConfigInvocation *inv, ExecInputs *in)
{
        CliRequest *cli = &in->cli;
        const char *what = inv->exec_path;
        int r;

        r = read_file(inv->exec_path, &in->script, cfg->max_body);
        for (size_t i = 0; r >= 0 && i < inv->n_exec_inputs; i++) {
                const ConfigExecInput *e = &inv->exec_inputs[i];
                const char *eq = strchr(e->value, '=');

                switch (e->kind) {
                case CONFIG_EXEC_STDIN:
                        what = e->value;
                        r = read_file(e->value, &in->stdin_data, cfg->max_body);
                        cli->stdin_data = in->stdin_data.data ? in->stdin_data.data : "";
                        cli->stdin_len = in->stdin_data.len;
                        break;
                case CONFIG_EXEC_FILE: {
                        /* --file DEST=PATH, or --file PATH (then also its place). */
                        size_t k = in->n_files++;
                        what = eq ? eq + 1 : e->value;
                        r = read_file(what, &in->files[k], cfg->max_body);
                        in->paths[k] =
                                eq ? strndup(e->value, (size_t) (eq - e->value)) : strdup(e->value);
                        if (!in->paths[k])
                                r = -ENOMEM;
                        in->file_list[k] = (CliFile){
                                .path = in->paths[k] ? in->paths[k] : "",
                                .data = in->files[k].data ? in->files[k].data : "",
                                .len = in->files[k].len,
                        };
                        break;
                }
                case CONFIG_EXEC_ARG:
                        in->args[cli->n_args++] = e->value;
                        break;
                case CONFIG_EXEC_KWARG:
                        in->kwargs[cli->n_kwargs++] = e->value;
                        break;
                }
        }
        if (r < 0)
                return log_errno(LOG_LEVEL_ERROR, r, NULL, "Cannot read %s", what);
        cli->script = in->script.data ? in->script.data : "";
        cli->script_len = in->script.len;
        cli->files = in->file_list;
        cli->n_files = in->n_files;
        cli->return_files = inv->exec_return_files;
        return 0;
}

int cli_exec(Executor *ex, const Config *cfg, const ConfigInvocation *inv)
{
        RequestLimits lim = server_request_limits(cfg);
        ExecInputs *in = calloc(1, sizeof(*in));
        ApiResponse resp = {0};
        ExecRequest req = {0};
        char errbuf[256], *body = NULL;
        int r;

        if (!in)
                return 2;
        in->cli.args = in->args;
        in->cli.kwargs = in->kwargs;
        r = inputs_read(cfg, inv, in);
        if (r == 0 && (r = cli_request_body(&in->cli, &body, errbuf, sizeof(errbuf))) > 0)
                r = API_INVALID_REQUEST;
        /* Exactly the checks an HTTP request gets. */
        if (r == 0)
                r = request_parse(body, strlen(body), &lim, &req, errbuf, sizeof(errbuf));
        if (r > 0)
                r = response_error((ApiCode) r, errbuf, NULL, &resp);
        else if (r == 0) {
                req.request_id = "exec";
                r = cli_run_sync(ex, &req, &resp);
        }
        free(body);
        inputs_free(in);
        if (r < 0)
                return log_errno(LOG_LEVEL_ERROR, r, NULL, "Failed to run %s", inv->exec_path), 2;
        (void) fwrite(resp.body, 1, resp.len, stdout);
        (void) fputc('\n', stdout);
        (void) fflush(stdout);
        r = resp.code == API_OK ? 0 : resp.http_status >= 500 ? 2 : 1;
        response_done(&resp);
        return r;
}
