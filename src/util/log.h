/* Structured logging: one event per line, written with a single write(2) so lines from the
 * supervisor, the zygote and concurrent threads never interleave. JSON lines with
 * `severity`, `message`, `time` and `request_id` (Cloud Logging's fields) when stderr is
 * not a terminal, plain text on a terminal. Never pass script source or output here. */
#pragma once

#include <stdarg.h>

#include "util/macro.h"

typedef enum LogLevel {
        LOG_LEVEL_DEBUG,
        LOG_LEVEL_INFO,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_ERROR,
} LogLevel;

typedef enum LogFormat {
        LOG_FORMAT_AUTO,
        LOG_FORMAT_JSON,
        LOG_FORMAT_TEXT,
} LogFormat;

/* Chooses the format (AUTO: JSON unless stderr is a terminal), the minimum level and the
 * name put in each line's `component` field. Call once per process before logging. */
void log_setup(LogFormat format, LogLevel min_level, const char *component);

/* Logs one event. `request_id` may be NULL. `fields` may be NULL or a string of extra JSON
 * members already encoded, e.g. "\"port\":8080" (written verbatim in JSON mode,
 * as `key=value` text in text mode). */
void log_event(LogLevel level, const char *request_id, const char *fields, const char *fmt, ...)
        _printf_(4, 5);

/* Logs with ": <strerror(-err)>" appended and returns -abs(err), for `return log_errno(...)`. */
int log_errno(LogLevel level, int err, const char *request_id, const char *fmt, ...) _printf_(4, 5);

#define log_debug(...) log_event(LOG_LEVEL_DEBUG, NULL, NULL, __VA_ARGS__)
#define log_info(...)  log_event(LOG_LEVEL_INFO, NULL, NULL, __VA_ARGS__)
#define log_warn(...)  log_event(LOG_LEVEL_WARNING, NULL, NULL, __VA_ARGS__)
#define log_error(...) log_event(LOG_LEVEL_ERROR, NULL, NULL, __VA_ARGS__)
