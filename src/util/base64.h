/* Strict base64 (RFC 4648 section 4, the standard alphabet) as the contract accepts it:
 * padding required, no white space or line breaks, no character outside the alphabet,
 * and the unused bits of the last group zero (the one canonical form, section 3.5). */
#pragma once

#include <stddef.h>

/* Checks s[0..n). Returns 0 and the decoded length in *ret_len, or -EINVAL. */
int base64_check(const char *s, size_t n, size_t *ret_len);

/* Decodes the first n_groups 4-character groups of s, which base64_check() accepted and
 * which contain no padding, into out (3 * n_groups bytes). */
void base64_decode_groups(const char *s, size_t n_groups, void *out);

/* Encodes p[0..n) into out, which holds base64_encoded_len(n) + 1 bytes (NUL-terminated). */
void base64_encode(const void *p, size_t n, char *out);

/* The length of the encoding of n bytes. */
static inline size_t base64_encoded_len(size_t n)
{
        return (n + 2) / 3 * 4;
}
