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
#include "cli.h"
#include "config/config.h"
#include "http/auth.h"
#include "http/server.h"
#include "pool/executor.h"
#include "sandbox/sandbox.h"
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

/* Fail closed: one real sandbox, end to end, before we accept any request. */
static int self_check(Executor *ex, const Config *cfg)
{
        static const char probe[] = "def main():\n    return 42\n";
        ApiResponse resp = {0};
        ExecRequest req = {
                .script = strdup(probe),
                .script_len = sizeof(probe) - 1,
                .timeout_ms = cfg->timeout_ms,
                .memory_mb = cfg->memory_mb,
                .request_id = "startup",
        };
        int r = req.script ? cli_run_sync(ex, &req, &resp) : -ENOMEM;

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
        /* One script: one zygote; and importing matplotlib in its sandbox (~0.5 s) beats
         * starting a zygote that preloads it (seconds) and that would serve nothing else. */
        if (inv.action == CONFIG_ACTION_EXEC) {
                cfg.plot_zygote = false;
                cfg.zygotes = 1;
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
                r = cli_exec(ex, &cfg, &inv);
                executor_shutdown(ex, 0);
                return r;
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
