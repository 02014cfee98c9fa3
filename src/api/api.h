/* The /execute contract: request bodies in, response bodies out. The only user of
 * jansson.h. Everything here is pure (no I/O), so it is unit-tested and fuzzed directly:
 * request bodies come from the network and result frames from a hostile script. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exec/exec.h"

/* Stable machine codes of the contract (docs/design/DESIGN.md section 1). */
typedef enum ApiCode {
        API_OK,
        API_INVALID_REQUEST,
        API_PAYLOAD_TOO_LARGE,
        API_UNSUPPORTED_MEDIA_TYPE,
        API_SYNTAX_ERROR,
        API_MISSING_MAIN,
        API_RUNTIME_ERROR,
        API_NOT_JSON_SERIALIZABLE,
        API_TIMEOUT,
        API_MEMORY_LIMIT,
        API_OUTPUT_LIMIT,
        API_CRASHED,
        API_UNAUTHORIZED,
        API_OVERLOADED,
        API_INTERNAL,
        API_NOT_FOUND,
        API_METHOD_NOT_ALLOWED,
        API_CLIENT_CLOSED, /* logs and metrics only: the client hung up, nobody reads it */
        _API_CODE_MAX,
} ApiCode;

/* The code's name ("TIMEOUT") and HTTP status (422). */
const char *api_code_name(ApiCode c);
unsigned api_code_http(ApiCode c);

typedef struct RequestLimits {
        uint32_t max_timeout_ms;
        uint32_t max_memory_mb;
        unsigned max_files;        /* entries of "files" */
        size_t tmp_bytes;          /* what the sandbox's /tmp holds: input files must fit */
        unsigned max_output_files; /* with "return_files": files returned */
        size_t output_files_limit; /* ... and their bytes in all */
} RequestLimits;

/* Parses a POST /execute body. Returns 0 and fills *ret (free with request_done()), a
 * positive ApiCode (API_INVALID_REQUEST) with a human message in errbuf, or -errno. */
int request_parse(const char *body, size_t len, const RequestLimits *lim, ExecRequest *ret,
                  char *errbuf, size_t errlen);
/* The same for a bare script (`pyexecd exec`): the server's limits apply. */
int request_from_script(const char *script, size_t len, const RequestLimits *lim, ExecRequest *ret,
                        char *errbuf, size_t errlen);

void request_done(ExecRequest *r);

typedef struct ApiResponse {
        char *body; /* malloc'ed JSON, NUL-terminated */
        size_t len;
        ApiCode code;
        unsigned http_status;
        size_t files_bytes;   /* of the files it returns ("return_files") */
        size_t figures_bytes; /* of the PNG figures it returns */
} ApiResponse;

/* A plain error body {"error": message, "code": ...} (plus request_id for INTERNAL).
 * Returns 0 or -ENOMEM. */
int response_error(ApiCode code, const char *message, const char *request_id, ApiResponse *ret);

/* Turns what the executor saw into the response, validating every byte the sandbox sent.
 * Returns 0 or -ENOMEM. */
int response_from_outcome(const ExecOutcome *o, ApiResponse *ret);

/* A small JSON object from string pairs, e.g. {"status":"ok"}. Returns 0 or -ENOMEM. */
int response_simple(unsigned http_status, const char *key, const char *value, ApiResponse *ret);

/* GET /ready: {"status": "ready"|"not ready", "disabled_layers": [...]}, 200 or 503. */
int response_ready(bool ready, const char *const *disabled, size_t n_disabled, ApiResponse *ret);

void response_done(ApiResponse *r);
