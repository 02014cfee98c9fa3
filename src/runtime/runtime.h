/* The embedded CPython, and the only module that includes Python.h. The zygote calls
 * runtime_init() once; every sandbox forked from it calls runtime_after_fork_child(),
 * runtime_reseed() and then runtime_run() for its one script. */
#pragma once

#include <stddef.h>

/* Initialises an isolated interpreter (no PYTHON* environment, no user site), imports the
 * harness and the comma-separated `preload` list, and freezes the garbage collector's
 * view of the result so children do not touch (and copy) those pages. Returns 0, or -errno
 * with a human message in errbuf. */
int runtime_init(const char *preload, char *errbuf, size_t errlen);

/* Wrappers of PyOS_BeforeFork / PyOS_AfterFork_Parent / PyOS_AfterFork_Child. */
void runtime_before_fork(void);
void runtime_after_fork_parent(void);
void runtime_after_fork_child(void);

/* Re-seeds `random` and numpy's global generator from the kernel. Returns 0 or -EIO. */
int runtime_reseed(void);

/* Runs a throw-away script through the harness (output discarded), so that a warm sandbox
 * takes the page faults of the request path before the request arrives. Returns 0 or
 * -EIO. */
int runtime_warmup(void);

/* Hands the harness the job's input (JSON: stdin, args, kwargs, input files,
 * return_files) before the script runs: it writes the files into the working directory and
 * makes stdin readable. Nothing with len 0. Returns 0, -ENOSPC (or -EDQUOT, -EFBIG) when
 * the files do not fit, or another -errno. */
int runtime_prepare(const char *input, size_t len);

/* Runs one script and returns its result frame (see harness.py) in a malloc'ed buffer.
 * Returns 0, or -errno when the harness itself failed (which the supervisor reports as a
 * sandbox without result). */
int runtime_run(const char *script, size_t len, size_t result_limit, char **ret_frame,
                size_t *ret_len);

/* In a child forked for learning the prefault set (sandbox/prefault.h): the after-fork
 * work, the warm-up and the representative requests a sandbox would run (the README's
 * examples whose modules are preloaded), output discarded.
 * Returns 0 or -errno. */
int runtime_probe(void);
