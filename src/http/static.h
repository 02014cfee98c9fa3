/* The browser playground's files, compiled into the binary (tools/embed-assets.py writes
 * http/assets.h from web/ and Debian's libjs-codemirror), and the headers they are served
 * with. Nothing is read from disk at run time.
 *
 * The page at "/" is answered with a strict Content-Security-Policy (scripts, styles,
 * fonts and connections from this origin only, images also from data: URLs for the
 * figures; no inline script or style, no eval, no framing), X-Content-Type-Options:
 * nosniff, and Cache-Control: no-cache with an ETag, so a browser revalidates it each
 * time. The page names each /static/ file with ?v=<its ETag>, so those are immutable
 * for a year: a new binary's page asks for new URLs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct StaticAsset {
        const char *path; /* "/" (the page) or "/static/NAME" */
        const char *type; /* Content-Type */
        const char *data;
        size_t len;
        const char *etag; /* a quoted entity tag: a hash of the bytes */
} StaticAsset;

/* The asset served at `path` (without the query), or NULL. */
const StaticAsset *static_find(const char *path);

/* Whether an If-None-Match field value (NULL: none) names the asset's current version, so
 * the answer is 304 Not Modified (RFC 9110 13.1.2: "*", or a list of entity tags compared
 * weakly). */
bool static_not_modified(const StaticAsset *a, const char *if_none_match);

/* Writes the header lines of the asset's answer ("Name: value\r\n" each) into buf.
 * Returns their length, or -ENOBUFS if buf is too small. */
int static_headers(const StaticAsset *a, char *buf, size_t len);
