/* The zygote: a single-threaded process with CPython, numpy and pandas loaded that forks
 * one sandbox per request. The supervisor starts it by fork + exec of its own binary in
 * zygote mode (zygote_launch), before any thread exists the first time, so the zygote
 * holds none of the supervisor's memory. It never runs user code itself. */
#pragma once

#include <sys/types.h>

#include "config/config.h"
#include "sandbox/sandbox.h"
#include "zygote/proto.h"

/* The argv[1] that selects zygote mode. Not a user-facing command. */
#define ZYGOTE_ARGV1 "__zygote"

/* Entry point of zygote mode; the supervisor socket is fd ZYGOTE_FD. Never returns. */
_Noreturn void zygote_main(void);

/* Starts a zygote: fork + exec of /proc/self/exe with a clean environment, then sends it
 * its configuration. Async-signal-safe between fork and exec, so it may be called from a
 * multi-threaded supervisor (a zygote restart). Passes each slot's cgroup.procs files when
 * `cg` is given. A `plot` zygote preloads matplotlib as well (config_plot_preload). On
 * success returns 0 and the zygote's pid
 * and the supervisor's end of the socket (CLOEXEC, blocking); the ZygoteReady message
 * arrives on it later. */
int zygote_launch(const Config *cfg, const Cgroups *cg, bool plot, pid_t *ret_pid, int *ret_sock);

/* Reads and checks the ZygoteReady message. Returns 0 when the zygote is ready, -EPROTO on
 * a malformed message, the zygote's own -errno (message in ret->message) if it failed. */
int zygote_read_ready(int sock, ZygoteReady *ret);
