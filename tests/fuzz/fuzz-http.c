/* libFuzzer target: http/parse.c, the bytes of a connection -> a request head and body.
 *
 * Input: raw bytes as a client sends them. Oracles:
 *   - the head is framed the same whether the bytes come at once or one at a time (the
 *     same length, or the same refusal), and never past the input;
 *   - an accepted head is one the contract allows: a token method, a path starting with
 *     "/", HTTP/1.0 or 1.1, field names of token characters, values without controls
 *     (HTAB aside) or surrounding white space, at most one Content-Length and never with
 *     Transfer-Encoding, exactly one Host in HTTP/1.1;
 *   - a chunked body after it decodes the same in one piece and byte by byte, and never
 *     consumes past the input or keeps more than its limit. */
#include <string.h>
#include <strings.h>

#include "http/parse.h"

#include "fuzz.h"

static bool is_tchar(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static long scan(const char *buf, size_t n, size_t step, HttpScan *s, HttpError *err)
{
        long r = 0;

        *s = (HttpScan){0};
        for (size_t i = step < n ? step : n; r == 0; i = i + step < n ? i + step : n) {
                r = http_scan_head(s, buf, i, err);
                if (i == n)
                        break;
        }
        return r;
}

static void check_head(const HttpHead *h)
{
        unsigned n_length = 0, n_te = 0, n_host = 0;

        fuzz_check(h->method[0], "empty method");
        for (const char *p = h->method; *p; p++)
                fuzz_check(is_tchar((unsigned char) *p), "method byte %#x", *p);
        fuzz_check(h->path[0] == '/', "path %s", h->path);
        fuzz_check(h->minor <= 1, "minor %u", h->minor);
        for (size_t i = 0; i < h->n_fields; i++) {
                const char *name = h->fields[i].name, *v = h->fields[i].value;
                size_t len = strlen(v);
                fuzz_check(name[0], "empty field name");
                for (const char *p = name; *p; p++)
                        fuzz_check(is_tchar((unsigned char) *p), "name byte %#x", *p);
                for (const char *p = v; *p; p++)
                        fuzz_check(*p == '\t' || ((unsigned char) *p >= 0x20 && *p != 0x7f),
                                   "value byte %#x", *p);
                fuzz_check(!len || (v[0] != ' ' && v[0] != '\t' && v[len - 1] != ' ' &&
                                    v[len - 1] != '\t'),
                           "untrimmed value");
                n_length += strcasecmp(name, "Content-Length") == 0;
                n_te += strcasecmp(name, "Transfer-Encoding") == 0;
                n_host += strcasecmp(name, "Host") == 0;
        }
        fuzz_check(n_length <= 1 && n_te <= 1 && !(n_length && n_te), "framing %u %u", n_length,
                   n_te);
        fuzz_check(h->minor == 0 || n_host == 1, "%u Host fields", n_host);
        fuzz_check((h->body == HTTP_BODY_CHUNKED) == (n_te == 1), "body kind");
}

static void check_chunked(const char *p, size_t n)
{
        HttpChunked one = {0}, bytewise = {0};
        HttpError e1, e2;
        Buf b1, b2;
        bool d1 = false, d2 = false;
        long r1 = 0, r2 = 0;

        buf_init(&b1, 4096);
        buf_init(&b2, 4096);
        r1 = http_chunked_feed(&one, p, n, &b1, &d1, &e1);
        fuzz_check(r1 <= (long) n, "consumed %ld of %zu", r1, n);
        for (size_t i = 0; i < n && !d2 && r2 >= 0; i++) {
                long r = http_chunked_feed(&bytewise, p + i, 1, &b2, &d2, &e2);
                r2 = r < 0 ? -1 : r2 + r;
        }
        fuzz_check((r1 < 0) == (r2 < 0) && (r1 < 0 || (r1 == r2 && d1 == d2)),
                   "at once %ld/%d, byte by byte %ld/%d", r1, d1, r2, d2);
        if (r1 >= 0)
                fuzz_check(b1.len == b2.len && b1.truncated == b2.truncated &&
                                   (!b1.len || memcmp(b1.data, b2.data, b1.len) == 0),
                           "different bodies");
        fuzz_check(b1.len <= 4096, "over the limit");
        buf_free(&b1);
        buf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *whole = fuzz_dup(data, size, false), *bytes = fuzz_dup(data, size, false);
        HttpScan s1, s2;
        HttpError e1, e2;
        HttpHead h;
        long r1 = scan(whole, size, size ? size : 1, &s1, &e1);
        long r2 = scan(bytes, size, 1, &s2, &e2);

        fuzz_check(r1 == r2 && (r1 >= 0 || e1.status == e2.status), "scan %ld vs %ld", r1, r2);
        fuzz_check(r1 <= (long) size, "head %ld past the input (%zu)", r1, size);
        if (r1 > 0 && http_parse_head(&s1, whole, (size_t) r1, &h, &e1) == 0) {
                check_head(&h);
                if (h.body == HTTP_BODY_CHUNKED)
                        check_chunked(bytes + r1, size - (size_t) r1);
        } else if (r1 < 0)
                fuzz_check(e1.status && e1.message, "refusal without status or message");
        free(whole);
        free(bytes);
        return 0;
}
