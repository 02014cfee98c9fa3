/* See buf.h. Growth is geometric and never beyond limit + 1 (the spare byte is for the
 * terminating NUL that buf_cstr() adds). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/macro.h"

void buf_init(Buf *b, size_t limit)
{
        *b = (Buf){.limit = limit};
}

static int buf_reserve(Buf *b, size_t need)
{
        if (need <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        cap = MIN(cap, b->limit + 1);
        if (cap < need)
                cap = need;
        char *p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int buf_append(Buf *b, const void *p, size_t n)
{
        size_t room = b->limit - b->len;
        size_t take = MIN(n, room);
        int r;

        if (take > 0) {
                r = buf_reserve(b, b->len + take + 1);
                if (r < 0)
                        return r;
                memcpy(b->data + b->len, p, take);
                b->len += take;
        }
        if (take < n) {
                b->truncated = true;
                return 1;
        }
        return 0;
}

const char *buf_cstr(Buf *b)
{
        if (buf_reserve(b, b->len + 1) < 0)
                return NULL;
        b->data[b->len] = '\0';
        return b->data;
}

char *buf_steal(Buf *b)
{
        char *data = b->data;

        *b = (Buf){.truncated = b->truncated};
        return data;
}

void buf_free(Buf *b)
{
        free(b->data);
        *b = (Buf){0};
}
