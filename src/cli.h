/* Running jobs from the command line's side: the start-up self-check's synchronous run, and
 * `pyexecd exec` (the request an HTTP client would send, built from the command line, then
 * exactly the checks and the sandbox of POST /execute). */
#pragma once

#include "api/api.h"
#include "config/config.h"
#include "pool/executor.h"

/* Runs one parsed request to completion (blocking) and builds its response. Takes the
 * request's script and input, as executor_submit() does. Returns 0 or -errno. */
int cli_run_sync(Executor *ex, ExecRequest *req, ApiResponse *ret);

/* `pyexecd exec`: prints the response body. Returns the exit status (0 success, 1 script
 * or request error, 2 service error). */
int cli_exec(Executor *ex, const Config *cfg, const ConfigInvocation *inv);
