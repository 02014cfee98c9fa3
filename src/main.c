/* pyexecd: start-up and nothing else. Parse the configuration, start the zygote (before any
 * thread exists), check that a sandbox can actually be built and run, then serve HTTP (or
 * run one script for `pyexecd exec`), and stop cleanly on SIGTERM/SIGINT. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "api/api.h"
#include "config/config.h"
#include "http/auth.h"
#include "http/server.h"
#include "pool/executor.h"
#include "sandbox/sandbox.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/macro.h"
#include "zygote/zygote.h"

extern char **environ;

#define SHUTDOWN_GRACE_MS 8000 /* Cloud Run sends SIGKILL 10 s after SIGTERM */
#define SHUTDOWN_FLUSH_MS 1000 /* then, to deliver the last answers */

/* The narrowest flags that run pyexecd under Docker (README, "Deploying", which
 * tests/deploy keeps in step with this; the docker lane of tests/vm runs them). */
#define DOCKER_FLAGS                                                                      \
        "--cap-drop ALL --cap-add SYS_ADMIN --cap-add SETUID --cap-add SETGID --cap-add " \
        "SETPCAP --cap-add KILL --security-opt apparmor=unconfined --security-opt "       \
        "seccomp=pyexecd-seccomp.json"
#define SECCOMP_FILE                                                         \
        "pyexecd-seccomp.json is deploy/seccomp.json, also in the image as " \
        "/usr/share/pyexecd/seccomp.json"

/* The part of the refusal that says how to start pyexecd where it failed, by where it
 * seems to run. Only a hint: the refusal itself comes from what could not be set up. */
static const char *start_hint(void)
{
        struct utsname u;

        /* gVisor reports this fixed kernel (runsc, Cloud Run's first generation). */
        if (uname(&u) == 0 && strcmp(u.release, "4.4.0") == 0 &&
            strstr(u.version, "Sun Jan 10 15:06:54 PST 2016"))
                return "This is gVisor (runsc), whose kernel has no cgroups for the sandbox: "
                       "run pyexecd under runc (Docker's default runtime; on Cloud Run, the "
                       "second-generation execution environment).";
        if (access("/.dockerenv", F_OK) == 0)
                return "Start the container with: docker run -p 8080:8080 " DOCKER_FLAGS
                       " IMAGE (" SECCOMP_FILE "; README, \"Deploying\", says what each flag "
                       "grants).";
        if (access("/run/.containerenv", F_OK) == 0)
                return "Start the container with: podman run -p 8080:8080 " DOCKER_FLAGS
                       " IMAGE (" SECCOMP_FILE "; README, \"Deploying\").";
        return "It needs root, namespaces, a writable cgroup hierarchy and seccomp (README, "
               "\"Deploying\"; docs/THREAT-MODEL.md).";
}

/* Runs one job to completion from a thread that may block (start-up, `exec`). */
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

/* Takes `script` (malloc'ed), as executor_submit() does. */
static int run_sync(Executor *ex, const Config *cfg, char *script, size_t len, ApiResponse *ret)
{
        SyncRun s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        RequestLimits lim = server_request_limits(cfg);
        ExecRequest p = {
                .script = script,
                .script_len = len,
                .timeout_ms = lim.max_timeout_ms,
                .memory_mb = lim.max_memory_mb,
                .request_id = "startup",
                .client_fd = -1,
        };
        int r = executor_submit(ex, &p, sync_done, &s);

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

/* Fail closed: one real sandbox, end to end, before we accept any request. */
static int self_check(Executor *ex, const Config *cfg)
{
        static const char probe[] = "def main():\n    return 42\n";
        ApiResponse resp = {0};
        char *copy = strdup(probe);
        int r = copy ? run_sync(ex, cfg, copy, sizeof(probe) - 1, &resp) : -ENOMEM;

        if (r < 0) {
                log_event(LOG_LEVEL_ERROR, NULL, NULL,
                          "Cannot start: the start-up self-check failed: %s. %s", strerror(-r),
                          start_hint());
                return r;
        }
        if (resp.code != API_OK || !strstr(resp.body, "\"result\":42")) {
                log_event(LOG_LEVEL_ERROR, NULL, NULL,
                          "Cannot start: the start-up self-check failed: a trivial script "
                          "answered %s: %.300s. %s",
                          api_code_name(resp.code), resp.body, start_hint());
                response_done(&resp);
                return -EPROTO;
        }
        response_done(&resp);
        return 0;
}

static int read_script(const char *path, Buf *ret, size_t limit)
{
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
        char chunk[65536];
        size_t n;
        int r = 0;

        if (!f)
                return -errno;
        buf_init(ret, limit);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if ((r = buf_append(ret, chunk, n)) != 0)
                        break;
        if (r == 0 && ferror(f))
                r = -EIO;
        if (f != stdin)
                (void) fclose(f);
        return r > 0 ? -EFBIG : r;
}

/* `pyexecd exec FILE`: the same request path as HTTP, minus HTTP. */
static int exec_one(Executor *ex, const Config *cfg, const char *path)
{
        RequestLimits lim = server_request_limits(cfg);
        ApiResponse resp = {0};
        ExecRequest req = {0};
        Buf script;
        char errbuf[256];
        int r;

        r = read_script(path, &script, cfg->max_body);
        if (r < 0) {
                buf_free(&script);
                return log_errno(LOG_LEVEL_ERROR, r, NULL, "Cannot read %s", path);
        }
        /* Exactly the validation an HTTP request gets (UTF-8, no NUL, not empty). */
        r = request_from_script(script.data, script.len, &lim, &req, errbuf, sizeof(errbuf));
        buf_free(&script);
        if (r > 0)
                r = response_error((ApiCode) r, errbuf, NULL, &resp);
        else if (r == 0) {
                size_t len = req.script_len;
                r = run_sync(ex, cfg, TAKE_PTR(req.script), len, &resp);
        }
        if (r < 0)
                return log_errno(LOG_LEVEL_ERROR, r, NULL, "Failed to run %s", path);
        (void) fwrite(resp.body, 1, resp.len, stdout);
        (void) fputc('\n', stdout);
        (void) fflush(stdout);
        r = resp.code == API_OK ? 0 : resp.http_status >= 500 ? 2 : 1;
        response_done(&resp);
        return r;
}

static void on_startup_signal(int sig)
{
        _exit(128 + sig);
}

static int wait_for_signal(void)
{
        sigset_t set;
        int sig = 0;

        (void) sigemptyset(&set);
        (void) sigaddset(&set, SIGTERM);
        (void) sigaddset(&set, SIGINT);
        if (sigwait(&set, &sig) != 0)
                return -EINVAL;
        return sig;
}

int main(int argc, char **argv)
{
        _cleanup_(executor_freep) Executor *ex = NULL;
        Config cfg;
        ConfigInvocation inv;
        Server *srv = NULL;
        _cleanup_(auth_freep) Auth *auth = NULL;
        char errbuf[512];
        sigset_t set;
        int r;

        if (argc >= 2 && strcmp(argv[1], ZYGOTE_ARGV1) == 0)
                zygote_main();

        r = config_parse(argc, argv, environ, &cfg, &inv, errbuf, sizeof(errbuf));
        if (r != 0) {
                (void) fprintf(stderr, "pyexecd: %s\nTry 'pyexecd --help'.\n",
                               r > 0 ? errbuf : strerror(-r));
                return 2;
        }
        switch (inv.action) {
        case CONFIG_ACTION_HELP:
                config_print_help(stdout, "pyexecd");
                return 0;
        case CONFIG_ACTION_VERSION:
                (void) printf("pyexecd %s\n", PYEXECD_VERSION);
                return 0;
        case CONFIG_ACTION_PRINT:
                config_print_json(&cfg, stdout);
                return 0;
        default:
                break;
        }
        log_setup(cfg.log_format, cfg.log_level, "pyexecd");

        if (geteuid() != 0) {
                log_error("pyexecd must run as root: it switches every sandbox to its own "
                          "unprivileged uid and creates namespaces (in a container: docker run "
                          "--privileged)");
                return 1;
        }

        /* SIGPIPE: a client that goes away must not kill us. SIGTERM/SIGINT end a slow
         * start-up at once: with a handler, because as PID 1 of a container the default
         * action would be to ignore them. (Cgroups left behind are removed by the next
         * start.) */
        (void) signal(SIGPIPE, SIG_IGN);
        {
                struct sigaction sa = {.sa_handler = on_startup_signal};
                (void) sigaction(SIGTERM, &sa, NULL);
                (void) sigaction(SIGINT, &sa, NULL);
        }

        if (cfg.disabled_layers) {
                char names[256];
                layers_format(cfg.disabled_layers, names, sizeof(names));
                log_warn("Isolation layers DISABLED by configuration: %s. Scripts run with less "
                         "isolation than pyexecd is designed for; do not expose this instance.",
                         names);
        }
        r = ns_probe(_LAYER_ALL & ~cfg.disabled_layers, errbuf, sizeof(errbuf));
        if (r >= 0)
                r = caps_probe(_LAYER_ALL & ~cfg.disabled_layers, errbuf, sizeof(errbuf));
        if (r >= 0)
                r = executor_new(&cfg, &ex, errbuf, sizeof(errbuf));
        if (r < 0) {
                log_event(LOG_LEVEL_ERROR, NULL, NULL,
                          "Cannot start: %s. pyexecd does not run scripts with an isolation "
                          "layer missing. %s",
                          errbuf[0] ? errbuf : strerror(-r), start_hint());
                return 1;
        }
        if (self_check(ex, &cfg) < 0)
                return 1;

        if (inv.action == CONFIG_ACTION_EXEC) {
                r = exec_one(ex, &cfg, inv.exec_path);
                executor_shutdown(ex, 0);
                return r < 0 ? 2 : r;
        }

        /* From now on SIGTERM/SIGINT are taken with sigwait() by this thread: block them
         * before the HTTP threads exist, so that they inherit the mask. (The executor
         * thread blocks them itself.) */
        (void) sigemptyset(&set);
        (void) sigaddset(&set, SIGTERM);
        (void) sigaddset(&set, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &set, NULL);
        /* API keys are read only now: the zygote (and so every sandbox) never held them. */
        if (cfg.api_keys_file[0]) {
                r = auth_load(cfg.api_keys_file, &auth, errbuf, sizeof(errbuf));
                if (r < 0) {
                        log_event(LOG_LEVEL_ERROR, NULL, NULL, "Cannot start: %s", errbuf);
                        return 1;
                }
        }
        r = server_start(&cfg, ex, auth, &srv);
        if (r < 0) {
                log_errno(LOG_LEVEL_ERROR, r, NULL, "Cannot listen on %s port %u", cfg.listen,
                          cfg.port);
                return 1;
        }
        {
                char fields[64];
                (void) snprintf(fields, sizeof(fields), "\"port\":%u", server_port(srv));
                log_event(LOG_LEVEL_INFO, NULL, fields, "listening on %s port %u", cfg.listen,
                          server_port(srv));
        }

        r = wait_for_signal();
        log_info("received %s, shutting down", r > 0 ? strsignal(r) : "a signal");
        server_quiesce(srv);
        executor_shutdown(ex, SHUTDOWN_GRACE_MS);
        server_finish(srv, SHUTDOWN_FLUSH_MS);
        server_stop(srv);
        log_info("stopped");
        return 0;
}
