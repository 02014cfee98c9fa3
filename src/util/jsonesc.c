/* See jsonesc.h. */
#include <stdio.h>
#include <string.h>

#include "util/jsonesc.h"
#include "util/utf8.h"

size_t json_escape(char *dst, size_t cap, const char *s)
{
        size_t o = 0;

        if (cap == 0)
                return 0;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                char tmp[8];
                size_t k;

                switch (*p) {
                case '"':
                        k = 2, memcpy(tmp, "\\\"", 2);
                        break;
                case '\\':
                        k = 2, memcpy(tmp, "\\\\", 2);
                        break;
                case '\n':
                        k = 2, memcpy(tmp, "\\n", 2);
                        break;
                case '\r':
                        k = 2, memcpy(tmp, "\\r", 2);
                        break;
                case '\t':
                        k = 2, memcpy(tmp, "\\t", 2);
                        break;
                default:
                        if (*p < 0x20 || *p >= 0x80) {
                                /* Control characters, and non-ASCII bytes unless they start
                                 * a well-formed sequence, which is copied whole. */
                                size_t len = *p < 0x80 ? 0 : (*p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2);
                                if (len > 0 && strnlen((const char *) p, len) == len &&
                                    utf8_valid((const char *) p, len)) {
                                        if (o + len >= cap)
                                                goto full;
                                        memcpy(dst + o, p, len);
                                        o += len;
                                        p += len - 1;
                                        continue;
                                }
                                k = (size_t) snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
                        } else {
                                tmp[0] = (char) *p;
                                k = 1;
                        }
                }
                if (o + k >= cap)
                        goto full;
                memcpy(dst + o, tmp, k);
                o += k;
        }
full:
        dst[o] = '\0';
        return o;
}
