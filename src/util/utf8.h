/* UTF-8 validation and repair. Whatever a sandbox prints is arbitrary bytes; before it goes
 * into a JSON string every invalid sequence is replaced by U+FFFD, the way Python's
 * `errors="replace"` decoder does (one U+FFFD per maximal invalid subpart). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..n) is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF). */
bool utf8_valid(const char *s, size_t n);

/* The length of s[0..n) without a multi-byte character cut off at its end (a stream
 * truncated at a byte limit), so that repairing it does not add a U+FFFD and grow it. */
size_t utf8_trim_partial(const char *s, size_t n);

/* Returns a newly allocated, NUL-terminated copy of s[0..n) with invalid sequences
 * replaced by U+FFFD; its length goes to *ret_len. NULL on allocation failure. A
 * multi-byte character cut off at the end of the input (output truncated mid-character)
 * is replaced as well. */
char *utf8_sanitize(const char *s, size_t n, size_t *ret_len);
