/* See log.h. The configuration is process-wide state, set once by log_setup() before any
 * thread starts and read-only afterwards. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/jsonesc.h"
#include "util/log.h"

static struct {
        bool json;
        LogLevel min_level;
        const char *component;
} log_cfg = {.json = true, .min_level = LOG_LEVEL_INFO, .component = "pyexecd"};

static const char *const severity_name[] = {
        [LOG_LEVEL_DEBUG] = "DEBUG",
        [LOG_LEVEL_INFO] = "INFO",
        [LOG_LEVEL_WARNING] = "WARNING",
        [LOG_LEVEL_ERROR] = "ERROR",
};

void log_setup(LogFormat format, LogLevel min_level, const char *component)
{
        if (format == LOG_FORMAT_AUTO)
                log_cfg.json = !isatty(STDERR_FILENO);
        else
                log_cfg.json = format == LOG_FORMAT_JSON;
        log_cfg.min_level = min_level;
        log_cfg.component = component;
}

#define LINE_MAX_BYTES 4096

static void log_write(LogLevel level, const char *request_id, const char *fields,
                      const char *message)
{
        char line[LINE_MAX_BYTES], ts[80], esc[LINE_MAX_BYTES / 2];
        struct timespec now;
        struct tm tm;
        int n;

        (void) clock_gettime(CLOCK_REALTIME, &now);
        (void) gmtime_r(&now.tv_sec, &tm);
        (void) snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        now.tv_nsec / 1000000);

        if (log_cfg.json) {
                (void) json_escape(esc, sizeof(esc), message);
                n = snprintf(line, sizeof(line),
                             "{\"time\":\"%s\",\"severity\":\"%s\",\"component\":\"%s\","
                             "\"pid\":%d,\"message\":\"%s\"%s%s%s%s%s%s}\n",
                             ts, severity_name[level], log_cfg.component, (int) getpid(), esc,
                             request_id ? ",\"request_id\":\"" : "", request_id ? request_id : "",
                             request_id ? "\"" : "", fields ? "," : "", fields ? fields : "", "");
        } else {
                n = snprintf(line, sizeof(line), "%s %-7s %s[%d]: %s%s%s%s%s%s\n", ts,
                             severity_name[level], log_cfg.component, (int) getpid(), message,
                             request_id ? " request_id=" : "", request_id ? request_id : "",
                             fields ? " {" : "", fields ? fields : "", fields ? "}" : "");
        }
        if (n < 0)
                return;
        if ((size_t) n >= sizeof(line)) {
                /* Too long: keep a well-formed line by dropping the fields. */
                n = snprintf(line, sizeof(line),
                             log_cfg.json ? "{\"time\":\"%s\",\"severity\":\"%s\",\"message\":"
                                            "\"(log line too long, dropped)\"}\n"
                                          : "%s %s (log line too long, dropped)\n",
                             ts, severity_name[level]);
                if (n < 0 || (size_t) n >= sizeof(line))
                        return;
        }
        /* One write per event; a failing stderr cannot be reported anywhere. */
        (void) !write(STDERR_FILENO, line, (size_t) n);
}

_printf_(5, 0) static void log_vemit(LogLevel level, const char *request_id, const char *fields,
                                     int err, const char *fmt, va_list ap)
{
        char msg[LINE_MAX_BYTES / 4];
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);

        if (n < 0)
                return;
        if (err != 0 && (size_t) n < sizeof(msg))
                (void) snprintf(msg + n, sizeof(msg) - (size_t) n, ": %s", strerror(err));
        log_write(level, request_id, fields, msg);
}

void log_event(LogLevel level, const char *request_id, const char *fields, const char *fmt, ...)
{
        va_list ap;

        if (level < log_cfg.min_level)
                return;
        va_start(ap, fmt);
        log_vemit(level, request_id, fields, 0, fmt, ap);
        va_end(ap);
}

int log_errno(LogLevel level, int err, const char *request_id, const char *fmt, ...)
{
        va_list ap;

        err = err < 0 ? -err : err;
        if (level >= log_cfg.min_level) {
                va_start(ap, fmt);
                log_vemit(level, request_id, NULL, err, fmt, ap);
                va_end(ap);
        }
        return -err;
}
