/* See base64.h. */
#include <errno.h>
#include <stdbool.h>

#include "util/base64.h"

/* The 6-bit value of an alphabet character, or -1. */
static int sextet(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

void base64_encode(const void *p, size_t n, char *out)
{
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *s = p;
        size_t i = 0;

        for (; i + 3 <= n; i += 3, out += 4) {
                unsigned v = (unsigned) s[i] << 16 | (unsigned) s[i + 1] << 8 | s[i + 2];
                out[0] = alphabet[v >> 18];
                out[1] = alphabet[(v >> 12) & 63];
                out[2] = alphabet[(v >> 6) & 63];
                out[3] = alphabet[v & 63];
        }
        if (i < n) {
                unsigned v = (unsigned) s[i] << 16 | (i + 1 < n ? (unsigned) s[i + 1] << 8 : 0);
                out[0] = alphabet[v >> 18];
                out[1] = alphabet[(v >> 12) & 63];
                out[2] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
                out[3] = '=';
                out += 4;
        }
        *out = '\0';
}

int base64_check(const char *s, size_t n, size_t *ret_len)
{
        size_t pad = 0;
        int last = 0;

        if (n % 4 != 0)
                return -EINVAL;
        if (n > 0 && s[n - 1] == '=')
                pad = n > 1 && s[n - 2] == '=' ? 2 : 1;
        for (size_t i = 0; i < n - pad; i++) {
                last = sextet((unsigned char) s[i]);
                if (last < 0)
                        return -EINVAL;
        }
        /* One '=': the last sextet's low 2 bits are unused; two: its low 4 bits. */
        if ((pad == 1 && (last & 0x3) != 0) || (pad == 2 && (last & 0xf) != 0))
                return -EINVAL;
        *ret_len = n / 4 * 3 - pad;
        return 0;
}

void base64_decode_groups(const char *s, size_t n_groups, void *out)
{
        unsigned char *o = out;

        for (size_t g = 0; g < n_groups; g++, s += 4, o += 3) {
                unsigned v = 0;
                for (int k = 0; k < 4; k++)
                        v = v << 6 | (unsigned) sextet((unsigned char) s[k]);
                o[0] = (unsigned char) (v >> 16);
                o[1] = (unsigned char) (v >> 8);
                o[2] = (unsigned char) v;
        }
}
