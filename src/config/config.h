/* The service's configuration: defaults, then the environment (PORT, PYEXECD_*), then
 * command-line flags, validated into one Config that is read-only afterwards. This module
 * is the only reader of the environment. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/log.h"

#define CONFIG_PRELOAD_MAX 512
#define CONFIG_LISTEN_MAX  64
#define CONFIG_PATH_MAX    4096
#define CONFIG_ZYGOTES_MAX 16

/* The isolation layers of a sandbox (docs/design/DESIGN.md section 3). All are on by default; an
 * operator may switch one off by name (--disable-layers), which is logged at every start
 * and shown by /ready and --print-config. */
typedef enum Layer {
        LAYER_PIDNS = 1u << 0,
        LAYER_NETNS = 1u << 1,
        LAYER_MOUNTNS = 1u << 2,
        LAYER_IPCNS = 1u << 3,
        LAYER_UTSNS = 1u << 4,
        LAYER_CGROUPNS = 1u << 5,
        LAYER_CGROUPS = 1u << 6,
        LAYER_RLIMITS = 1u << 7,
        LAYER_CREDENTIALS = 1u << 8, /* unprivileged uid, no capabilities, no_new_privs */
        LAYER_SECCOMP = 1u << 9,
        _LAYER_ALL = (1u << 10) - 1,
} Layer;

/* The name of one layer bit ("seccomp"), or NULL. */
const char *layer_name(Layer l);

/* Writes the comma-separated names of the layers in `mask` into buf. */
void layers_format(uint32_t mask, char *buf, size_t len);

/* Reads a comma-separated list of layer names into a mask. Returns 0 or -EINVAL. */
int layers_parse(const char *s, uint32_t *ret);

typedef struct Config {
        char listen[CONFIG_LISTEN_MAX];      /* numeric IPv4 or IPv6 address */
        uint16_t port;                       /* 0: any free port (logged at start) */
        uint32_t timeout_ms;                 /* maximum (and default) wall-clock time per script */
        uint32_t memory_mb;                  /* maximum (and default) memory per script */
        size_t output_limit;                 /* bytes kept of stdout and of stderr, each */
        size_t result_limit;                 /* bytes of encoded main() result */
        size_t max_body;                     /* bytes of request body */
        unsigned max_files;                  /* input files per request */
        unsigned max_output_files;           /* files returned per response */
        size_t output_files_limit;           /* bytes of returned files per response */
        unsigned concurrency;                /* sandboxes running at once */
        unsigned pool_size;                  /* warm sandboxes waiting for a request; 0: none */
        unsigned queue_size;                 /* requests waiting for a sandbox */
        unsigned max_connections;            /* open HTTP connections */
        unsigned max_connections_per_client; /* ... of one peer IP address; 0: no limit */
        uint32_t header_timeout_ms;          /* a request head must be in this long after byte 1 */
        uint32_t connection_timeout_ms;      /* an idle or slow client is disconnected after this */
        char preload[CONFIG_PRELOAD_MAX];    /* comma-separated modules imported by the zygote */
        uint32_t uid_base;                   /* sandbox slot N runs as uid/gid uid_base + N */
        uint32_t disabled_layers;            /* Layer bits switched off by the operator */
        size_t tmp_size;                     /* bytes of the private /tmp tmpfs */
        unsigned pids_max;                   /* processes and threads per sandbox */
        unsigned zygotes;                    /* zygotes cloning sandboxes side by side */
        unsigned zygote_max_spawns;          /* replace a zygote after this many sandboxes */
        uint32_t zygote_max_age_ms;          /* ... or after this long (0: never) */
        char api_keys_file[CONFIG_PATH_MAX]; /* empty: no authentication */
        bool playground;                     /* serve the browser playground at / */
        bool plot_zygote;                    /* one more zygote, with matplotlib, for plots */
        LogFormat log_format;
        LogLevel log_level;
} Config;

typedef enum ConfigAction {
        CONFIG_ACTION_SERVE,
        CONFIG_ACTION_EXEC, /* `pyexecd exec FILE|-`: run one script, print the response */
        CONFIG_ACTION_HELP,
        CONFIG_ACTION_VERSION,
        CONFIG_ACTION_PRINT,
} ConfigAction;

/* What `pyexecd exec` sends besides its script, in the order given. */
typedef enum ConfigExecKind {
        CONFIG_EXEC_FILE,  /* --file PATH or --file DEST=PATH: an input file */
        CONFIG_EXEC_STDIN, /* --stdin PATH ("-": this process's stdin) */
        CONFIG_EXEC_ARG,   /* --arg JSON: one positional argument of main() */
        CONFIG_EXEC_KWARG, /* --kwarg NAME=JSON: one keyword argument */
} ConfigExecKind;

#define CONFIG_EXEC_INPUTS_MAX 1024

typedef struct ConfigExecInput {
        ConfigExecKind kind;
        const char *value; /* borrowed from argv */
} ConfigExecInput;

typedef struct ConfigInvocation {
        ConfigAction action;
        char exec_path[CONFIG_PATH_MAX]; /* with CONFIG_ACTION_EXEC; "-" is stdin */
        ConfigExecInput exec_inputs[CONFIG_EXEC_INPUTS_MAX];
        size_t n_exec_inputs;
        bool exec_return_files; /* --return-files */
} ConfigInvocation;

/* The plot zygote's module: preloaded only by that zygote, unless --preload names it. */
#define CONFIG_PLOT_MODULE "matplotlib"

/* Whether a zygote of its own preloads matplotlib for the scripts that name it
 * (--plot-zygote, and --preload does not already give it to every zygote). */
bool config_plot_lane(const Config *c);

/* The plot zygote's preload: --preload and matplotlib. Returns 0, or -ENAMETOOLONG. */
int config_plot_preload(const Config *c, char *buf, size_t len);

/* Sandbox slots (each with its own uid, cgroup and network namespace): one per running
 * sandbox and one per warm one. */
static inline unsigned config_slots(const Config *c)
{
        return c->concurrency + c->pool_size;
}

/* Fills *ret with the defaults (before environment and flags). */
void config_defaults(Config *ret);

/* Builds the configuration from `envp` (NULL-terminated "KEY=value" strings) and argv.
 * Returns 0 on success; a positive value when the input is invalid, with a human message
 * in errbuf; -errno on internal failure. *ret and *ret_inv are written only on success. */
int config_parse(int argc, char *const *argv, char *const *envp, Config *ret,
                 ConfigInvocation *ret_inv, char *errbuf, size_t errlen);

/* Writes the effective configuration as one JSON object (for --print-config). */
void config_print_json(const Config *c, FILE *f);

/* Writes the --help text. */
void config_print_help(FILE *f, const char *argv0);
