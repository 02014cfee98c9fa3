/* See parse.h. Grammar references are to RFC 9112 (HTTP/1.1) and RFC 9110 (semantics). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "http/parse.h"

#define CHUNK_LINE_MAX   1024 /* a chunk-size line, extensions included */
#define TRAILERS_MAX     (8 * 1024)
#define LEADING_CRLF_MAX 64 /* empty lines tolerated before a request line (§2.2) */

static int fail(HttpError *err, unsigned status, const char *message)
{
        *err = (HttpError){status, message};
        return -1;
}

/* tchar (RFC 9110 §5.6.2) */
static bool is_tchar(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* field-vchar, SP or HTAB (RFC 9110 §5.5): everything but the controls and DEL. */
static bool is_value_char(unsigned char c)
{
        return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
        return c == ' ' || c == '\t';
}

long http_scan_head(HttpScan *s, const char *buf, size_t len, HttpError *err)
{
        for (size_t i = s->pos; i < len; i++) {
                if (buf[i] != '\n')
                        continue;
                if (i == s->line_start || buf[i - 1] != '\r')
                        return fail(err, 400, "A line of the request head ends in a bare LF");
                if (i - 1 == s->line_start) { /* an empty line */
                        if (s->line_start != s->head_start) {
                                s->pos = i + 1;
                                if (i + 1 - s->head_start > HTTP_HEAD_MAX)
                                        break;
                                return (long) (i + 1);
                        }
                        s->head_start = i + 1; /* before the request line: ignored */
                        if (s->head_start > 2 * LEADING_CRLF_MAX)
                                return fail(err, 400, "Too many empty lines before the request");
                }
                s->line_start = i + 1;
        }
        if (s->pos < len)
                s->pos = len;
        if (s->pos - s->head_start > HTTP_HEAD_MAX)
                return fail(err, 431, "The request head is larger than 32 KiB");
        return 0;
}

/* The target's path (origin-form or absolute-form, §3.2), NUL-terminated at its query. */
static const char *target_path(char *target)
{
        char *path = target;

        if (target[0] != '/') {
                size_t scheme = strncasecmp(target, "http://", 7) == 0    ? 7
                                : strncasecmp(target, "https://", 8) == 0 ? 8
                                                                          : 0;
                if (!scheme || !target[scheme] || target[scheme] == '/')
                        return NULL;
                path = strchr(target + scheme, '/');
                if (!path)
                        return "/";
        }
        path[strcspn(path, "?")] = '\0';
        return path;
}

static int parse_request_line(char *line, HttpHead *h, HttpError *err)
{
        char *p = line, *target;

        h->method = p;
        while (is_tchar((unsigned char) *p))
                p++;
        if (p == line || *p != ' ')
                return fail(err, 400, "Malformed request line (method)");
        *p++ = '\0';
        target = p;
        while ((unsigned char) *p > 0x20 && (unsigned char) *p < 0x7f)
                p++;
        if (p == target || *p != ' ')
                return fail(err, 400, "Malformed request line (target)");
        *p++ = '\0';
        /* HTTP-version = "HTTP/" DIGIT "." DIGIT; a later 1.x is processed as 1.1 (§2.3). */
        if (strncmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' ||
            p[7] > '9' || p[8] != '\0')
                return fail(err, 400, "Malformed request line (version)");
        if (p[5] != '1')
                return fail(err, 505, "Only HTTP/1.x is supported");
        h->minor = p[7] == '0' ? 0 : 1;
        h->path = target_path(target);
        if (!h->path)
                return fail(err, 400, "The request target is neither a path nor an absolute URI");
        return 0;
}

/* One field line, [line, end): NUL-terminates its name and value in place. */
static int parse_field(char *line, char *end, HttpField *f, HttpError *err)
{
        char *p = line, *v;

        if (is_ows(*p))
                return fail(err, 400, "Folded field line (obs-fold) in the request head");
        while (p < end && is_tchar((unsigned char) *p))
                p++;
        if (p == line)
                return fail(err, 400, "Empty or invalid field name in the request head");
        if (p < end && is_ows(*p))
                return fail(err, 400, "Whitespace between a field name and its colon");
        if (p == end || *p != ':')
                return fail(err, 400, "Invalid character in a field name, or no colon");
        *p++ = '\0';
        while (p < end && is_ows(*p))
                p++;
        v = p;
        for (; p < end; p++)
                if (!is_value_char((unsigned char) *p))
                        return fail(err, 400, "Control character in a field value");
        while (p > v && is_ows(p[-1]))
                p--;
        *p = '\0';
        *f = (HttpField){line, v};
        return 0;
}

/* Content-Length = 1*DIGIT (§6.3), within 63 bits. */
static bool parse_length(const char *s, uint64_t *ret)
{
        uint64_t n = 0;

        if (!*s)
                return false;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || n > (INT64_MAX - (uint64_t) (*s - '0')) / 10)
                        return false;
                n = n * 10 + (uint64_t) (*s - '0');
        }
        *ret = n;
        return true;
}

/* True if the comma-separated list `value` has the token `want` (case-insensitive). */
static bool list_has(const char *value, const char *want)
{
        size_t n = strlen(want);

        for (const char *p = value; *p;) {
                p += strspn(p, " \t,");
                size_t len = strcspn(p, ",");
                size_t tok = len;
                while (tok > 0 && is_ows(p[tok - 1]))
                        tok--;
                if (tok == n && strncasecmp(p, want, n) == 0)
                        return true;
                p += len;
        }
        return false;
}

static int framing(HttpHead *h, HttpError *err)
{
        unsigned n_length = 0, n_te = 0, n_host = 0;

        for (size_t i = 0; i < h->n_fields; i++) {
                const HttpField *f = &h->fields[i];
                if (strcasecmp(f->name, "Content-Length") == 0) {
                        if (++n_length > 1)
                                return fail(err, 400, "More than one Content-Length field");
                        if (!parse_length(f->value, &h->content_length))
                                return fail(err, 400, "Content-Length is not a decimal number");
                } else if (strcasecmp(f->name, "Transfer-Encoding") == 0) {
                        if (++n_te > 1)
                                return fail(err, 400, "More than one Transfer-Encoding field");
                        if (strcasecmp(f->value, "chunked") != 0)
                                return fail(err, 400,
                                            "Transfer-Encoding other than \"chunked\" is not "
                                            "supported");
                } else if (strcasecmp(f->name, "Host") == 0)
                        n_host++;
                else if (strcasecmp(f->name, "Connection") == 0 && list_has(f->value, "close"))
                        h->close = true;
                else if (strcasecmp(f->name, "Expect") == 0 &&
                         strcasecmp(f->value, "100-continue") == 0)
                        h->expect_continue = true;
        }
        if (n_te && n_length)
                return fail(err, 400, "Both Content-Length and Transfer-Encoding");
        if (n_te && h->minor == 0)
                return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (h->minor == 1 ? n_host != 1 : n_host > 1)
                return fail(err, 400, "An HTTP/1.1 request needs exactly one Host field");
        if (h->minor == 0)
                h->close = true; /* no keep-alive for HTTP/1.0 */
        h->body = n_te ? HTTP_BODY_CHUNKED : n_length ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
        return 0;
}

int http_parse_head(const HttpScan *s, char *buf, size_t end, HttpHead *h, HttpError *err)
{
        char *p = buf + s->head_start, *stop = buf + end - 2; /* the final empty line */
        char *cr = memchr(p, '\r', (size_t) (stop - p));

        *h = (HttpHead){0};
        if (!cr || cr[1] != '\n')
                return fail(err, 400, "A CR without LF in the request line");
        *cr = '\0';
        if (memchr(p, '\0', (size_t) (cr - p)))
                return fail(err, 400, "NUL in the request line");
        if (parse_request_line(p, h, err) < 0)
                return -1;
        for (p = cr + 2; p < stop; p = cr + 2) {
                cr = memchr(p, '\r', (size_t) (stop + 1 - p));
                if (!cr || cr[1] != '\n')
                        return fail(err, 400, "A CR without LF in the request head");
                if (h->n_fields == HTTP_FIELDS_MAX)
                        return fail(err, 431, "More than 100 fields in the request head");
                if (parse_field(p, cr, &h->fields[h->n_fields++], err) < 0)
                        return -1;
        }
        return framing(h, err);
}

const char *http_field(const HttpHead *h, const char *name)
{
        for (size_t i = 0; i < h->n_fields; i++)
                if (strcasecmp(h->fields[i].name, name) == 0)
                        return h->fields[i].value;
        return NULL;
}

/* ---- chunked bodies (§7.1) -------------------------------------------------------- */

enum {
        CS_SIZE, /* chunk-size: HEXDIG, then BWS, ";" or CR */
        CS_SIZE_WS,
        CS_EXT,
        CS_SIZE_LF,
        CS_DATA,
        CS_DATA_CR,
        CS_DATA_LF,
        CS_TRAILER_START, /* a trailer field line, or the final CRLF */
        CS_TRAILER_NAME,
        CS_TRAILER_VALUE,
        CS_TRAILER_LF,
        CS_FINAL_LF,
};

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

long http_chunked_feed(HttpChunked *c, const char *in, size_t len, Buf *out, bool *done,
                       HttpError *err)
{
        size_t i = 0;

        *done = false;
        while (i < len) {
                unsigned char ch = (unsigned char) in[i];
                int d;

                if (c->state == CS_DATA) {
                        size_t n = len - i < c->left ? len - i : (size_t) c->left;
                        if (buf_append(out, in + i, n) < 0)
                                return fail(err, 500, "Out of memory");
                        c->left -= n;
                        i += n;
                        if (c->left == 0)
                                c->state = CS_DATA_CR;
                        continue;
                }
                i++;
                if (c->state <= CS_EXT && ++c->line > CHUNK_LINE_MAX)
                        return fail(err, 400, "Chunk size line too long");
                if (c->state >= CS_TRAILER_NAME && c->state <= CS_TRAILER_VALUE &&
                    ++c->trailers > TRAILERS_MAX)
                        return fail(err, 400, "Trailer fields too large");
                switch (c->state) {
                case CS_SIZE:
                        if ((d = hex_value((char) ch)) >= 0) {
                                if (c->left > (INT64_MAX - (uint64_t) d) / 16)
                                        return fail(err, 400, "Chunk size too large");
                                c->left = c->left * 16 + (uint64_t) d;
                                c->digits++;
                        } else if (c->digits == 0)
                                return fail(err, 400, "Invalid chunk size");
                        else if (ch == ';')
                                c->state = CS_EXT;
                        else if (is_ows((char) ch))
                                c->state = CS_SIZE_WS;
                        else if (ch == '\r')
                                c->state = CS_SIZE_LF;
                        else
                                return fail(err, 400, "Invalid chunk size");
                        break;
                case CS_SIZE_WS:
                        if (ch == ';')
                                c->state = CS_EXT;
                        else if (!is_ows((char) ch))
                                return fail(err, 400, "Invalid chunk size");
                        break;
                case CS_EXT:
                        if (ch == '\r')
                                c->state = CS_SIZE_LF;
                        else if (!is_value_char(ch))
                                return fail(err, 400, "Control character in a chunk extension");
                        break;
                case CS_SIZE_LF:
                        if (ch != '\n')
                                return fail(err, 400, "A CR without LF after a chunk size");
                        c->state = c->left ? CS_DATA : CS_TRAILER_START;
                        break;
                case CS_DATA_CR:
                        if (ch != '\r')
                                return fail(err, 400, "Chunk data longer than its size");
                        c->state = CS_DATA_LF;
                        break;
                case CS_DATA_LF:
                        if (ch != '\n')
                                return fail(err, 400, "A CR without LF after chunk data");
                        *c = (HttpChunked){.state = CS_SIZE, .trailers = c->trailers};
                        break;
                case CS_TRAILER_START:
                        if (ch == '\r')
                                c->state = CS_FINAL_LF;
                        else if (is_tchar(ch))
                                c->state = CS_TRAILER_NAME;
                        else
                                return fail(err, 400, "Malformed trailer field");
                        break;
                case CS_TRAILER_NAME:
                        if (ch == ':')
                                c->state = CS_TRAILER_VALUE;
                        else if (!is_tchar(ch))
                                return fail(err, 400, "Malformed trailer field");
                        break;
                case CS_TRAILER_VALUE:
                        if (ch == '\r')
                                c->state = CS_TRAILER_LF;
                        else if (!is_value_char(ch))
                                return fail(err, 400, "Control character in a trailer field");
                        break;
                case CS_TRAILER_LF:
                        if (ch != '\n')
                                return fail(err, 400, "A CR without LF in the trailer fields");
                        c->state = CS_TRAILER_START;
                        break;
                case CS_FINAL_LF:
                        if (ch != '\n')
                                return fail(err, 400, "A CR without LF at the end of the body");
                        *done = true;
                        return (long) i;
                default:
                        return fail(err, 500, "Chunked decoder in an unknown state");
                }
        }
        return (long) i;
}
