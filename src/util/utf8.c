/* See utf8.h. Decoding follows the Unicode "maximal subpart" rule (Unicode 15, section 3.9,
 * table 3-7 gives the well-formed byte sequences). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

/* Length of the well-formed sequence at s (1..4), or 0 if it is not well-formed. When 0,
 * *ret_bad gets the length of the maximal invalid subpart to replace (>= 1). */
static size_t seq_len(const unsigned char *s, size_t n, size_t *ret_bad)
{
        unsigned char c = s[0];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF)
                need = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
                need = 3;
                if (c == 0xE0)
                        lo = 0xA0;
                else if (c == 0xED)
                        hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
                need = 4;
                if (c == 0xF0)
                        lo = 0x90;
                else if (c == 0xF4)
                        hi = 0x8F;
        } else {
                *ret_bad = 1;
                return 0;
        }

        for (size_t i = 1; i < need; i++) {
                unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
                if (i >= n || s[i] < min || s[i] > max) {
                        *ret_bad = i;
                        return 0;
                }
        }
        return need;
}

bool utf8_valid(const char *s, size_t n)
{
        const unsigned char *p = (const unsigned char *) s;
        size_t i = 0, bad;

        while (i < n) {
                size_t k = seq_len(p + i, n - i, &bad);
                if (k == 0)
                        return false;
                i += k;
        }
        return true;
}

char *utf8_sanitize(const char *s, size_t n, size_t *ret_len)
{
        const unsigned char *p = (const unsigned char *) s;
        /* Worst case every byte becomes a 3-byte U+FFFD. */
        if (n > (SIZE_MAX - 1) / 3)
                return NULL;
        char *out = malloc(n * 3 + 1);
        size_t o = 0, i = 0, bad;

        if (!out)
                return NULL;
        while (i < n) {
                size_t k = seq_len(p + i, n - i, &bad);
                if (k > 0) {
                        memcpy(out + o, p + i, k);
                        o += k;
                        i += k;
                } else {
                        memcpy(out + o, "\xEF\xBF\xBD", 3);
                        o += 3;
                        i += bad;
                }
        }
        out[o] = '\0';
        *ret_len = o;
        return out;
}

size_t utf8_trim_partial(const char *s, size_t n)
{
        const unsigned char *p = (const unsigned char *) s;

        /* Look back at most 3 bytes for the lead byte of the last sequence. */
        for (size_t back = 1; back <= 3 && back <= n; back++) {
                unsigned char c = p[n - back];
                if ((c & 0xC0) == 0x80)
                        continue; /* continuation byte: keep looking */
                size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
                return need > back ? n - back : n;
        }
        return n;
}
