/* The text forms of configuration values (numbers, durations, sizes, names, booleans),
 * for config.c's option table. Each returns 0 and writes *ret, or -EINVAL (-ERANGE for a
 * number too large for its unit); nothing is written on failure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/* A plain decimal integer. */
int config_parse_u64(const char *s, uint64_t *ret);

/* "10", "2.5", "2.5s", "500ms" -> milliseconds. */
int config_parse_duration_ms(const char *s, uint64_t *ret);

/* "1048576", "512K", "1M", "1G" (binary units, optional "iB"/"B") -> bytes. */
int config_parse_size(const char *s, uint64_t *ret);

/* The index of `s` among names[0, n). */
int config_parse_name(const char *s, const char *const *names, size_t n, int *ret);

/* "true", "1", "yes", "on" or "false", "0", "no", "off". */
int config_parse_bool(const char *s, bool *ret);

/* Comma-separated dotted module names: nothing that could be more than an import. */
bool config_preload_valid(const char *s);
