/* A strict HTTP/1.1 request parser (RFC 9112): pure functions over bytes, no I/O.
 *
 * Strict because the service may sit behind a proxy (Cloud Run's front end, an ingress)
 * that frames requests its own way: wherever two readings of a message are possible
 * (Content-Length with Transfer-Encoding, two Content-Lengths, obs-fold, a space before a
 * colon, a bare LF, a malformed chunk), the request is refused with 400 and the
 * connection closed, so that no second request can hide inside the first. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define HTTP_HEAD_MAX   (32 * 1024) /* request line and fields */
#define HTTP_FIELDS_MAX 100

typedef struct HttpError {
        unsigned status; /* 400, 431, 505, 413 */
        const char *message;
} HttpError;

typedef struct HttpField {
        const char *name; /* NUL-terminated, in the caller's buffer */
        const char *value;
} HttpField;

typedef enum HttpBody {
        HTTP_BODY_NONE,
        HTTP_BODY_LENGTH,
        HTTP_BODY_CHUNKED,
} HttpBody;

typedef struct HttpHead {
        const char *method; /* NUL-terminated, in the caller's buffer */
        const char *path;   /* the target's path, without the query */
        unsigned minor;     /* HTTP/1.<minor>: 0 or 1 */
        HttpField fields[HTTP_FIELDS_MAX];
        size_t n_fields;
        HttpBody body;
        uint64_t content_length; /* with HTTP_BODY_LENGTH */
        bool close;              /* the connection ends after this exchange */
        bool expect_continue;
} HttpHead;

/* Where the search for the end of a head stands; zero it for each new head. */
typedef struct HttpScan {
        size_t pos;        /* bytes examined */
        size_t line_start; /* of the line being examined */
        size_t head_start; /* after the empty lines allowed before a request line */
} HttpScan;

/* Looks for the end of a request head in buf[0, len) (more of the same bytes each call).
 * Returns the head's length (its empty line included) once complete, 0 if more bytes are
 * needed, -1 with *err when the bytes can never form a head (a bare LF, too long). */
long http_scan_head(HttpScan *s, const char *buf, size_t len, HttpError *err);

/* Parses a complete head, buf[s->head_start, end), in place: names, values, method and
 * path are NUL-terminated inside buf. Returns 0, or -1 with *err. */
int http_parse_head(const HttpScan *s, char *buf, size_t end, HttpHead *h, HttpError *err);

/* The value of the field `name` (case-insensitive), or NULL. */
const char *http_field(const HttpHead *h, const char *name);

/* A chunked body being decoded; zero it for each body. */
typedef struct HttpChunked {
        int state;
        uint64_t left;   /* of the current chunk's data */
        unsigned digits; /* of the chunk size so far */
        size_t line;     /* bytes of the current size or trailer line */
        size_t trailers; /* bytes of trailer fields so far */
} HttpChunked;

/* Decodes in[0, len) into `out` (bounded: over its limit, out->truncated is set and decoding
 * goes on to the end). Returns the bytes consumed (at most len) and sets *done after the
 * final CRLF, or returns -1 with *err. */
long http_chunked_feed(HttpChunked *c, const char *in, size_t len, Buf *out, bool *done,
                       HttpError *err);
