/* The files of the contract: input files a request sends ("files") and the files a
 * response returns ("return_files"), both under the same path rules. Internal to api/. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "util/macro.h"

#define FILES_PATH_MAX      1024 /* bytes of a whole path */
#define FILES_COMPONENT_MAX 255  /* bytes of one component */
#define FILES_DEPTH_MAX     16   /* components of a path, the file's name included */
#define FILES_OMITTED_MAX   EXEC_FILES_OMITTED_MAX /* paths listed in "files_omitted" */
#define FIGURES_MAX         16 /* figures in a response (runtime/figures.py's MAX) */

/* Formats a request's error into errbuf and returns API_INVALID_REQUEST (request.c). */
int request_invalid(char *errbuf, size_t errlen, const char *fmt, ...) _printf_(3, 4);

/* NULL if p[0..n) follows the path rules (relative, '/'-separated, no empty, "." or ".."
 * component, no NUL, within the sizes above), else what is wrong with it. */
const char *files_path_error(const char *p, size_t n);

/* Checks the request's "files" array against the rules and `lim` (the harness writes them
 * from the body), and adds their decoded bytes to *ret_bytes. Returns 0, a positive ApiCode
 * (INVALID_REQUEST, or PAYLOAD_TOO_LARGE when they cannot fit in /tmp) with the message in
 * errbuf, or -ENOMEM. */
int files_parse_request(json_t *files, const RequestLimits *lim, size_t *ret_bytes, char *errbuf,
                        size_t errlen);

/* Copies the files a result frame's header lists ("files", "files_omitted",
 * "files_truncated") into the response object `obj`, each field only when it has content,
 * and their bytes to *ret_bytes. Returns 0, -EBADMSG when any of them breaks the contract
 * (the frame is then not the harness's), or -ENOMEM. */
int files_to_response(json_t *header, const ExecOutcome *o, json_t *obj, size_t *ret_bytes);

/* figures.c: copies the figures a result frame's header lists ("figures",
 * "figures_truncated") into the response object `obj`, each field only when it has content,
 * and their PNG bytes to *ret_bytes. `budget`: the bytes of base64 text they may take (the
 * result limit, less the result's own). Returns 0, -EBADMSG when any of them
 * breaks the contract (the frame is then not the harness's), or -ENOMEM. */
int figures_to_response(json_t *header, size_t budget, json_t *obj, size_t *ret_bytes);
