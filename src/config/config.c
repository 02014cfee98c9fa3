/* See config.h. Every setting is one row of `options`: its flag, its environment variable,
 * its type and its bounds, so flags, environment, validation, --help and --print-config
 * cannot drift apart. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/values.h"
#include "util/jsonesc.h"
#include "util/macro.h"

typedef enum OptType {
        OPT_ADDRESS,
        OPT_PORT,
        OPT_DURATION, /* stored as uint32_t milliseconds */
        OPT_SIZE,     /* stored as size_t bytes */
        OPT_U32,
        OPT_UNSIGNED,
        OPT_PRELOAD,
        OPT_LOG_FORMAT,
        OPT_LOG_LEVEL,
        OPT_LAYERS,
        OPT_PATH,
        OPT_BOOL,
} OptType;

typedef struct Option {
        const char *flag; /* without the leading "--" */
        const char *env;
        OptType type;
        size_t offset;
        uint64_t min, max; /* for numbers; durations in ms, sizes in bytes */
        const char *help;
} Option;

static const Option options[] = {
        {"listen", "PYEXECD_LISTEN", OPT_ADDRESS, offsetof(Config, listen), 0, 0,
         "address to listen on (numeric IPv4 or IPv6)"},
        {"port", "PORT", OPT_PORT, offsetof(Config, port), 0, 65535,
         "TCP port; 0 picks a free one"},
        {"timeout", "PYEXECD_TIMEOUT", OPT_DURATION, offsetof(Config, timeout_ms), 1, 3600000,
         "maximum wall-clock time per script (e.g. 10, 2.5s, 500ms)"},
        {"memory-mb", "PYEXECD_MEMORY_MB", OPT_U32, offsetof(Config, memory_mb), 16, 1048576,
         "maximum memory per script, MiB"},
        {"output-limit", "PYEXECD_OUTPUT_LIMIT", OPT_SIZE, offsetof(Config, output_limit), 1,
         1 * GiB, "bytes kept of stdout and of stderr, each (e.g. 1M)"},
        {"result-limit", "PYEXECD_RESULT_LIMIT", OPT_SIZE, offsetof(Config, result_limit), 64,
         1 * GiB, "maximum size of the encoded main() result"},
        {"max-body", "PYEXECD_MAX_BODY", OPT_SIZE, offsetof(Config, max_body), 64, 1 * GiB,
         "maximum request body size"},
        {"max-files", "PYEXECD_MAX_FILES", OPT_UNSIGNED, offsetof(Config, max_files), 0, 100000,
         "input files a request may send (\"files\")"},
        {"max-output-files", "PYEXECD_MAX_OUTPUT_FILES", OPT_UNSIGNED,
         offsetof(Config, max_output_files), 0, 100000,
         "files a response returns at most (\"return_files\")"},
        {"output-files-limit", "PYEXECD_OUTPUT_FILES_LIMIT", OPT_SIZE,
         offsetof(Config, output_files_limit), 0, 1 * GiB,
         "bytes of returned files in all (apart from the result limit)"},
        {"concurrency", "PYEXECD_CONCURRENCY", OPT_UNSIGNED, offsetof(Config, concurrency), 1, 1024,
         "sandboxes running at once (default: number of CPUs)"},
        {"pool-size", "PYEXECD_POOL_SIZE", OPT_UNSIGNED, offsetof(Config, pool_size), 0, 1024,
         "warm sandboxes kept ready (default: number of CPUs); 0 disables"},
        {"queue-size", "PYEXECD_QUEUE_SIZE", OPT_UNSIGNED, offsetof(Config, queue_size), 0, 100000,
         "requests that may wait for a free sandbox"},
        {"max-connections", "PYEXECD_MAX_CONNECTIONS", OPT_UNSIGNED,
         offsetof(Config, max_connections), 1, 100000, "open HTTP connections at most"},
        {"max-connections-per-client", "PYEXECD_MAX_CONNECTIONS_PER_CLIENT", OPT_UNSIGNED,
         offsetof(Config, max_connections_per_client), 0, 100000,
         "open HTTP connections of one client IP address at most (0: no limit)"},
        {"header-timeout", "PYEXECD_HEADER_TIMEOUT", OPT_DURATION,
         offsetof(Config, header_timeout_ms), 100, 3600000,
         "close a connection that has not sent a whole request head this long after its first "
         "byte"},
        {"connection-timeout", "PYEXECD_CONNECTION_TIMEOUT", OPT_DURATION,
         offsetof(Config, connection_timeout_ms), 1000, 3600000,
         "close a connection idle, or sending its body, this long"},
        {"preload", "PYEXECD_PRELOAD", OPT_PRELOAD, offsetof(Config, preload), 0, 0,
         "comma-separated modules the zygote imports once"},
        {"uid-base", "PYEXECD_UID_BASE", OPT_U32, offsetof(Config, uid_base), 1, UINT32_MAX - 65536,
         "sandbox slot N runs as uid and gid UID_BASE+N"},
        {"tmp-size", "PYEXECD_TMP_SIZE", OPT_SIZE, offsetof(Config, tmp_size), 1 * MiB, 64 * GiB,
         "size of each sandbox's private /tmp"},
        {"pids-max", "PYEXECD_PIDS_MAX", OPT_UNSIGNED, offsetof(Config, pids_max), 8, 65536,
         "processes and threads per sandbox"},
        {"zygotes", "PYEXECD_ZYGOTES", OPT_UNSIGNED, offsetof(Config, zygotes), 1,
         CONFIG_ZYGOTES_MAX, "zygotes cloning sandboxes side by side (default: one per 4 CPUs)"},
        {"zygote-max-spawns", "PYEXECD_ZYGOTE_MAX_SPAWNS", OPT_UNSIGNED,
         offsetof(Config, zygote_max_spawns), 0, 100000000,
         "replace the zygote after this many sandboxes (fresh ASLR); 0: never"},
        {"zygote-max-age", "PYEXECD_ZYGOTE_MAX_AGE", OPT_DURATION,
         offsetof(Config, zygote_max_age_ms), 0,
         7 * 86400000ULL > UINT32_MAX ? UINT32_MAX : 7 * 86400000ULL,
         "replace the zygote after this long (e.g. 3600s); 0: never"},
        {"disable-layers", "PYEXECD_DISABLE_LAYERS", OPT_LAYERS, offsetof(Config, disabled_layers),
         0, 0, "isolation layers to switch off (comma-separated; for diagnosis only)"},
        {"playground", "PYEXECD_PLAYGROUND", OPT_BOOL, offsetof(Config, playground), 0, 0,
         "serve the browser playground at / (true or false)"},
        {"plot-zygote", "PYEXECD_PLOT_ZYGOTE", OPT_BOOL, offsetof(Config, plot_zygote), 0, 0,
         "scripts that name matplotlib run in sandboxes of a zygote that preloaded it, "
         "started at the first such script (true or false)"},
        {"api-keys-file", "PYEXECD_API_KEYS_FILE", OPT_PATH, offsetof(Config, api_keys_file), 0, 0,
         "file of API keys, one per line; POST /execute then needs one"},
        {"log-format", "PYEXECD_LOG_FORMAT", OPT_LOG_FORMAT, offsetof(Config, log_format), 0, 0,
         "auto, json or text"},
        {"log-level", "PYEXECD_LOG_LEVEL", OPT_LOG_LEVEL, offsetof(Config, log_level), 0, 0,
         "debug, info, warning or error"},
};

static const char *const log_format_names[] = {"auto", "json", "text"};
static const char *const log_level_names[] = {"debug", "info", "warning", "error"};

bool config_plot_lane(const Config *c)
{
        const size_t n = strlen(CONFIG_PLOT_MODULE);

        if (!c->plot_zygote)
                return false;
        for (const char *p = c->preload; *p;) {
                size_t len = strcspn(p, ",");
                /* matplotlib, or one of its modules: every zygote imports it then. */
                if (len >= n && memcmp(p, CONFIG_PLOT_MODULE, n) == 0 && (len == n || p[n] == '.'))
                        return false;
                p += len + (p[len] == ',');
        }
        return true;
}

int config_plot_preload(const Config *c, char *buf, size_t len)
{
        size_t have = strlen(c->preload);
        int n;

        /* What the zygote's protocol carries, terminated. */
        if (have + 1 + strlen(CONFIG_PLOT_MODULE) >= CONFIG_PRELOAD_MAX)
                return -ENAMETOOLONG;
        if (!buf)
                return 0;
        n = snprintf(buf, len, "%s%s" CONFIG_PLOT_MODULE, c->preload, have ? "," : "");
        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

/* One zygote clones a sandbox in ~1.5 ms of its own CPU, about a quarter of what the
 * whole service spends per hello-world request (docs/PERFORMANCE.md, "More zygotes"): one
 * zygote keeps up with about four CPUs' worth of requests. */
static unsigned config_default_zygotes(long ncpu)
{
        if (ncpu <= 4)
                return 1;
        return (unsigned) MIN((ncpu + 3) / 4, CONFIG_ZYGOTES_MAX);
}

void config_defaults(Config *ret)
{
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

        *ret = (Config){
                .listen = "0.0.0.0",
                .port = 8080,
                .timeout_ms = 10000,
                .memory_mb = 256,
                .output_limit = 1 * MiB,
                .result_limit = 8 * MiB,
                .max_body = 1 * MiB,
                .max_files = 100,
                .max_output_files = 100,
                .output_files_limit = 8 * MiB,
                .concurrency = ncpu > 0 ? (unsigned) MIN(ncpu, 1024) : 1,
                .pool_size = ncpu > 0 ? (unsigned) MIN(ncpu, 1024) : 1,
                .queue_size = 100,
                .max_connections = 1024,
                .max_connections_per_client = 128,
                .header_timeout_ms = 10000,
                .connection_timeout_ms = 30000,
                .preload = "numpy,pandas",
                .uid_base = 100000,
                .disabled_layers = 0,
                .tmp_size = 64 * MiB,
                .pids_max = 128,
                .zygotes = config_default_zygotes(ncpu),
                .zygote_max_spawns = 10000,
                .zygote_max_age_ms = 3600 * 1000,
                .playground = true,
                .plot_zygote = true,
                .log_format = LOG_FORMAT_AUTO,
                .log_level = LOG_LEVEL_INFO,
        };
}

static int apply(Config *c, const Option *o, const char *value, const char *source, char *errbuf,
                 size_t errlen)
{
        char *field = (char *) c + o->offset;
        uint64_t v = 0;
        int r = 0, idx;

        switch (o->type) {
        case OPT_ADDRESS: {
                unsigned char tmp[sizeof(struct in6_addr)];
                if (strlen(value) >= CONFIG_LISTEN_MAX ||
                    (inet_pton(AF_INET, value, tmp) != 1 && inet_pton(AF_INET6, value, tmp) != 1))
                        goto invalid;
                memcpy(field, value, strlen(value) + 1);
                return 0;
        }
        case OPT_PATH:
                if (strlen(value) >= CONFIG_PATH_MAX)
                        goto invalid;
                memcpy(field, value, strlen(value) + 1);
                return 0;
        case OPT_PRELOAD:
                if (strlen(value) >= CONFIG_PRELOAD_MAX || (*value && !config_preload_valid(value)))
                        goto invalid;
                memcpy(field, value, strlen(value) + 1);
                return 0;
        case OPT_LOG_FORMAT:
                r = config_parse_name(value, log_format_names, ELEMENTSOF(log_format_names), &idx);
                if (r < 0)
                        goto invalid;
                *(LogFormat *) (void *) field = (LogFormat) idx;
                return 0;
        case OPT_LOG_LEVEL:
                r = config_parse_name(value, log_level_names, ELEMENTSOF(log_level_names), &idx);
                if (r < 0)
                        goto invalid;
                *(LogLevel *) (void *) field = (LogLevel) idx;
                return 0;
        case OPT_LAYERS:
                if (layers_parse(value, (uint32_t *) (void *) field) < 0)
                        goto invalid;
                return 0;
        case OPT_BOOL:
                if (config_parse_bool(value, (bool *) (void *) field) < 0)
                        goto invalid;
                return 0;
        case OPT_DURATION:
                r = config_parse_duration_ms(value, &v);
                break;
        case OPT_SIZE:
                r = config_parse_size(value, &v);
                break;
        case OPT_PORT:
        case OPT_U32:
        case OPT_UNSIGNED:
                r = config_parse_u64(value, &v);
                break;
        }
        if (r < 0)
                goto invalid;
        if (v < o->min || v > o->max) {
                (void) snprintf(errbuf, errlen,
                                "%s: %s=\"%.64s\" is out of range (%" PRIu64 "..%" PRIu64 ")",
                                source, o->flag, value, o->min, o->max);
                return 1;
        }
        switch (o->type) {
        case OPT_PORT:
                *(uint16_t *) (void *) field = (uint16_t) v;
                break;
        case OPT_DURATION:
        case OPT_U32:
                *(uint32_t *) (void *) field = (uint32_t) v;
                break;
        case OPT_UNSIGNED:
                *(unsigned *) (void *) field = (unsigned) v;
                break;
        case OPT_SIZE:
                *(size_t *) (void *) field = (size_t) v;
                break;
        default:
                break;
        }
        return 0;

invalid:
        (void) snprintf(errbuf, errlen, "%s: invalid value \"%.64s\" for %s (%s)", source, value,
                        o->flag, o->help);
        return 1;
}

static const Option *option_by_flag(const char *name, size_t len)
{
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                if (strlen(options[i].flag) == len && strncmp(options[i].flag, name, len) == 0)
                        return &options[i];
        return NULL;
}

static const char *env_lookup(char *const *envp, const char *name)
{
        size_t n = strlen(name);

        for (char *const *e = envp; e && *e; e++)
                if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
                        return *e + n + 1;
        return NULL;
}

/* The options of `exec` alone: 1 if argv[*i] was one (its value consumed), 0 if not, -1
 * on an error (in errbuf). */
static int exec_option(ConfigInvocation *inv, int argc, char *const *argv, int *i, char *errbuf,
                       size_t errlen)
{
        static const struct {
                const char *flag;
                ConfigExecKind kind;
        } flags[] = {
                {"--file", CONFIG_EXEC_FILE},
                {"--stdin", CONFIG_EXEC_STDIN},
                {"--arg", CONFIG_EXEC_ARG},
                {"--kwarg", CONFIG_EXEC_KWARG},
        };
        const char *a = argv[*i];

        if (strcmp(a, "--return-files") == 0) {
                inv->exec_return_files = true;
                return 1;
        }
        for (size_t k = 0; k < ELEMENTSOF(flags); k++) {
                size_t n = strlen(flags[k].flag);
                const char *value;

                if (strncmp(a, flags[k].flag, n) != 0 || (a[n] != '\0' && a[n] != '='))
                        continue;
                if (a[n] == '=')
                        value = a + n + 1;
                else if (*i + 1 < argc)
                        value = argv[++*i];
                else {
                        (void) snprintf(errbuf, errlen, "option %s needs a value", flags[k].flag);
                        return -1;
                }
                if (inv->n_exec_inputs == CONFIG_EXEC_INPUTS_MAX) {
                        (void) snprintf(errbuf, errlen,
                                        "more than %d --file, --stdin, --arg and "
                                        "--kwarg options",
                                        CONFIG_EXEC_INPUTS_MAX);
                        return -1;
                }
                if (flags[k].kind == CONFIG_EXEC_STDIN)
                        for (size_t j = 0; j < inv->n_exec_inputs; j++)
                                if (inv->exec_inputs[j].kind == CONFIG_EXEC_STDIN) {
                                        (void) snprintf(errbuf, errlen, "--stdin given twice");
                                        return -1;
                                }
                inv->exec_inputs[inv->n_exec_inputs++] =
                        (ConfigExecInput){.kind = flags[k].kind, .value = value};
                return 1;
        }
        return 0;
}

int config_parse(int argc, char *const *argv, char *const *envp, Config *ret,
                 ConfigInvocation *ret_inv, char *errbuf, size_t errlen)
{
        Config c;
        ConfigInvocation inv = {.action = CONFIG_ACTION_SERVE};
        bool print = false;
        int r;

        config_defaults(&c);

        for (size_t i = 0; i < ELEMENTSOF(options); i++) {
                const char *v = env_lookup(envp, options[i].env);
                if (!v)
                        continue;
                r = apply(&c, &options[i], v, options[i].env, errbuf, errlen);
                if (r != 0)
                        return r;
        }

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        inv.action = CONFIG_ACTION_HELP;
                        *ret = c, *ret_inv = inv;
                        return 0;
                }
                if (strcmp(a, "--version") == 0) {
                        inv.action = CONFIG_ACTION_VERSION;
                        *ret = c, *ret_inv = inv;
                        return 0;
                }
                if (strcmp(a, "--print-config") == 0) {
                        print = true;
                        continue;
                }
                if (inv.action == CONFIG_ACTION_EXEC) {
                        r = exec_option(&inv, argc, argv, &i, errbuf, errlen);
                        if (r < 0)
                                return 1;
                        if (r > 0)
                                continue;
                }
                if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
                        const char *name = a + 2, *eq = strchr(name, '='), *value;
                        const Option *o =
                                option_by_flag(name, eq ? (size_t) (eq - name) : strlen(name));
                        if (!o) {
                                (void) snprintf(errbuf, errlen, "unknown option \"%.64s\"", a);
                                return 1;
                        }
                        if (eq)
                                value = eq + 1;
                        else if (i + 1 < argc)
                                value = argv[++i];
                        else {
                                (void) snprintf(errbuf, errlen, "option --%s needs a value",
                                                o->flag);
                                return 1;
                        }
                        r = apply(&c, o, value, "command line", errbuf, errlen);
                        if (r != 0)
                                return r;
                        continue;
                }
                /* Positional: only `exec FILE`. "-" is a file name here (stdin). */
                if (inv.action == CONFIG_ACTION_SERVE && strcmp(a, "exec") == 0) {
                        inv.action = CONFIG_ACTION_EXEC;
                        continue;
                }
                if (inv.action == CONFIG_ACTION_EXEC && inv.exec_path[0] == '\0') {
                        if (strlen(a) >= sizeof(inv.exec_path)) {
                                (void) snprintf(errbuf, errlen, "file name too long");
                                return 1;
                        }
                        memcpy(inv.exec_path, a, strlen(a) + 1);
                        continue;
                }
                (void) snprintf(errbuf, errlen, "unexpected argument \"%.64s\"", a);
                return 1;
        }

        if (inv.action == CONFIG_ACTION_EXEC && inv.exec_path[0] == '\0') {
                (void) snprintf(errbuf, errlen, "exec needs a script file (or - for stdin)");
                return 1;
        }
        for (size_t j = 0; j < inv.n_exec_inputs; j++)
                if (inv.exec_inputs[j].kind == CONFIG_EXEC_STDIN &&
                    strcmp(inv.exec_inputs[j].value, "-") == 0 && strcmp(inv.exec_path, "-") == 0) {
                        (void) snprintf(errbuf, errlen,
                                        "the script and --stdin cannot both be read from stdin");
                        return 1;
                }
        if (config_plot_lane(&c) && config_plot_preload(&c, NULL, 0) < 0) {
                (void) snprintf(errbuf, errlen,
                                "preload is too long to add " CONFIG_PLOT_MODULE
                                " for the plot zygote (or use --plot-zygote false)");
                return 1;
        }
        if ((uint64_t) c.uid_base + config_slots(&c) > UINT32_MAX - 1) {
                (void) snprintf(errbuf, errlen,
                                "uid-base + concurrency + pool-size overflows the uid range");
                return 1;
        }
        if (print)
                inv.action = CONFIG_ACTION_PRINT;

        *ret = c;
        *ret_inv = inv;
        return 0;
}

void config_print_json(const Config *c, FILE *f)
{
        char esc[CONFIG_PATH_MAX * 6];

        (void) fprintf(f, "{\"listen\":\"%s\",\"port\":%u", c->listen, c->port);
        (void) fprintf(f, ",\"timeout\":%.3f", c->timeout_ms / 1000.0);
        (void) fprintf(f, ",\"memory_mb\":%" PRIu32, c->memory_mb);
        (void) fprintf(f, ",\"output_limit\":%zu,\"result_limit\":%zu,\"max_body\":%zu",
                       c->output_limit, c->result_limit, c->max_body);
        (void) fprintf(f, ",\"max_files\":%u,\"max_output_files\":%u,\"output_files_limit\":%zu",
                       c->max_files, c->max_output_files, c->output_files_limit);
        (void) fprintf(f, ",\"concurrency\":%u,\"pool_size\":%u,\"queue_size\":%u", c->concurrency,
                       c->pool_size, c->queue_size);
        (void) fprintf(f, ",\"max_connections\":%u,\"max_connections_per_client\":%u",
                       c->max_connections, c->max_connections_per_client);
        (void) fprintf(f, ",\"header_timeout\":%.3f,\"connection_timeout\":%.3f",
                       c->header_timeout_ms / 1000.0, c->connection_timeout_ms / 1000.0);
        (void) json_escape(esc, sizeof(esc), c->preload);
        (void) fprintf(f, ",\"preload\":\"%s\",\"uid_base\":%" PRIu32, esc, c->uid_base);
        (void) fprintf(f, ",\"tmp_size\":%zu,\"pids_max\":%u", c->tmp_size, c->pids_max);
        (void) fprintf(f, ",\"zygotes\":%u,\"zygote_max_spawns\":%u,\"zygote_max_age\":%.3f",
                       c->zygotes, c->zygote_max_spawns, c->zygote_max_age_ms / 1000.0);
        (void) json_escape(esc, sizeof(esc), c->api_keys_file);
        (void) fprintf(f, ",\"api_keys_file\":\"%s\"", esc);
        /* Whether there is a plot zygote: none when --preload puts matplotlib in every zygote. */
        (void) fprintf(f, ",\"playground\":%s,\"plot_zygote\":%s", c->playground ? "true" : "false",
                       config_plot_lane(c) ? "true" : "false");
        layers_format(c->disabled_layers, esc, sizeof(esc));
        (void) fprintf(f, ",\"disabled_layers\":\"%s\"", esc);
        (void) fprintf(f, ",\"log_format\":\"%s\",\"log_level\":\"%s\"}\n",
                       log_format_names[c->log_format], log_level_names[c->log_level]);
}

void config_print_help(FILE *f, const char *argv0)
{
        Config d;

        config_defaults(&d);
        (void) fprintf(f,
                       "Usage: %s [OPTIONS]            serve POST /execute over HTTP\n"
                       "       %s exec [OPTIONS] FILE  run one script (FILE or - for stdin),\n"
                       "                                print the response JSON; after exec:\n"
                       "    --file PATH, --file DEST=PATH   an input file (at DEST, else PATH)\n"
                       "    --stdin PATH                    the script's stdin (- for ours)\n"
                       "    --arg JSON, --kwarg NAME=JSON   main(*args, **kwargs)\n"
                       "    --return-files                  return the files the script "
                       "leaves\n\n"
                       "Options (each also read from the environment variable shown):\n",
                       argv0, argv0);
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                (void) fprintf(f, "  --%-17s %-24s %s\n", options[i].flag, options[i].env,
                               options[i].help);
        (void) fprintf(f, "  --print-config                             print the effective "
                          "configuration as JSON and exit\n"
                          "  --help, --version\n\nDefaults:\n  ");
        config_print_json(&d, f);
}
