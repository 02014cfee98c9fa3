/* Minimal JSON string escaping for the modules that write JSON without jansson (logging,
 * --print-config). Input is treated as bytes; invalid UTF-8 is passed through as \u00XX of
 * each byte so the output is always valid JSON. */
#pragma once

#include <stddef.h>

/* Appends the escaped form of s (without quotes) to dst[0..cap), always NUL-terminating.
 * Returns the number of bytes written; stops early (at a character boundary) when full. */
size_t json_escape(char *dst, size_t cap, const char *s);
