/* See static.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http/assets.h"
#include "http/static.h"
#include "util/macro.h"

/* What the page may load: its own files, and data: images (the figures of a response).
 * The rest is spelled out although default-src covers it, so that no later change of
 * default-src silently opens object, base, form or frame. */
#define CSP                                                                              \
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " \
        "form-action 'none'; frame-ancestors 'none'"

const StaticAsset *static_find(const char *path)
{
        for (size_t i = 0; i < ELEMENTSOF(assets); i++)
                if (strcmp(path, assets[i].path) == 0)
                        return &assets[i];
        return NULL;
}

bool static_not_modified(const StaticAsset *a, const char *if_none_match)
{
        const char *p = if_none_match;
        size_t n = strlen(a->etag);

        if (!p)
                return false;
        while (*p) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                if (*p == '*')
                        return true;
                if (strncmp(p, "W/", 2) == 0)
                        p += 2;
                if (strncmp(p, a->etag, n) == 0 &&
                    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
                        return true;
                /* Skip this entity tag: a quoted string may hold a comma. */
                if (*p == '"') {
                        const char *end = strchr(p + 1, '"');
                        p = end ? end + 1 : p + strlen(p);
                }
                while (*p && *p != ',')
                        p++;
        }
        return false;
}

int static_headers(const StaticAsset *a, char *buf, size_t len)
{
        bool page = strcmp(a->path, "/") == 0;
        int n = snprintf(buf, len,
                         "Content-Security-Policy: " CSP "\r\n"
                         "X-Content-Type-Options: nosniff\r\n"
                         "Referrer-Policy: no-referrer\r\n"
                         "Cache-Control: %s\r\n"
                         "ETag: %s\r\n",
                         page ? "no-cache" : "public, max-age=31536000, immutable", a->etag);

        if (n < 0 || (size_t) n >= len)
                return -ENOBUFS;
        return n;
}
