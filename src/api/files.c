/* See files.h. The service never opens a path inside a sandbox: input files are written,
 * and output files collected, by the harness in the sandbox. Here both are only checked:
 * a request's before it goes in, a frame's before its files reach the client (a script
 * can write its own frame, so "files" may claim anything). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/files.h"
#include "util/base64.h"
#include "util/macro.h"

#define TMPFS_BLOCK 4096 /* what a file's last partial page costs in a tmpfs */

/* What is wrong with the component p[0..n), or NULL. */
static const char *component_error(const char *p, size_t n, size_t max)
{
        if (n == 0)
                return "has an empty component";
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                return "has a \".\" or \"..\" component";
        if (n > max)
                return "has a component longer than 255 bytes";
        return NULL;
}

/* The path rules, with `max` bytes a component and `max_len` bytes in all. */
static const char *path_error(const char *p, size_t n, size_t max, size_t max_len)
{
        size_t start = 0, components = 0;

        if (n == 0)
                return "is empty";
        if (n > max_len)
                return "is longer than 1024 bytes";
        if (memchr(p, '\0', n))
                return "contains a NUL character";
        if (p[0] == '/')
                return "is absolute (it must be relative to the working directory)";
        for (size_t i = 0; i <= n; i++) {
                if (i < n && p[i] != '/')
                        continue;
                const char *e = component_error(p + start, i - start, max);
                if (e)
                        return e;
                if (++components > FILES_DEPTH_MAX)
                        return "has more than 16 components";
                start = i + 1;
        }
        return NULL;
}

const char *files_path_error(const char *p, size_t n)
{
        return path_error(p, n, FILES_COMPONENT_MAX, FILES_PATH_MAX);
}

typedef struct Entry {
        const char *path;
        size_t len;
        size_t index;
} Entry;

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
        int c = memcmp(a, b, MIN(an, bn));
        return c != 0 ? c : (an > bn) - (an < bn);
}

static int cmp_entry(const void *x, const void *y)
{
        const Entry *a = x, *b = y;
        int c = cmp_bytes(a->path, a->len, b->path, b->len);
        return c != 0 ? c : (a->index > b->index) - (a->index < b->index);
}

static const Entry *find(const Entry *sorted, size_t n, const char *p, size_t len)
{
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = cmp_bytes(sorted[mid].path, sorted[mid].len, p, len);
                if (c == 0)
                        return &sorted[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

/* Two entries with one path, or one entry's path a directory of another's. */
static int check_tree(Entry *e, size_t n, char *errbuf, size_t errlen)
{
        qsort(e, n, sizeof(*e), cmp_entry);
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && cmp_bytes(e[i - 1].path, e[i - 1].len, e[i].path, e[i].len) == 0)
                        return request_invalid(
                                errbuf, errlen,
                                "files[%zu] (\"%.*s\") has the same path as files[%zu]",
                                MAX(e[i - 1].index, e[i].index), (int) MIN(e[i].len, 200),
                                e[i].path, MIN(e[i - 1].index, e[i].index));
                for (size_t k = 0; k < e[i].len; k++) {
                        const Entry *dir;
                        if (e[i].path[k] != '/' || !(dir = find(e, n, e[i].path, k)))
                                continue;
                        return request_invalid(
                                errbuf, errlen,
                                "files[%zu] (\"%.*s\") is a file, and files[%zu] (\"%.*s\") "
                                "needs it to be a directory",
                                dir->index, (int) MIN(dir->len, 200), dir->path, e[i].index,
                                (int) MIN(e[i].len, 200), e[i].path);
                }
        }
        return 0;
}

/* One entry: its checks, and its size in *ret_size. */
static int parse_entry(json_t *f, size_t i, size_t *ret_size, char *errbuf, size_t errlen)
{
        json_t *path = NULL, *content = NULL, *encoding = NULL, *v;
        const char *key, *p, *perr, *unknown = NULL;
        size_t plen, size;
        bool b64 = false;

        if (!json_is_object(f))
                return request_invalid(
                        errbuf, errlen,
                        "files[%zu] must be an object {\"path\", \"content\", \"encoding\"}", i);
        json_object_foreach(f, key, v)
        {
                if (strcmp(key, "path") == 0)
                        path = v;
                else if (strcmp(key, "content") == 0)
                        content = v;
                else if (strcmp(key, "encoding") == 0)
                        encoding = v;
                else if (!unknown)
                        unknown = key;
        }
        if (!json_is_string(path))
                return request_invalid(errbuf, errlen, "files[%zu]: \"path\" must be a string", i);
        p = json_string_value(path);
        plen = json_string_length(path);
        if (unknown)
                return request_invalid(
                        errbuf, errlen,
                        "files[%zu] (\"%.*s\") has an unknown key \"%.64s\" (allowed: path, "
                        "content, encoding)",
                        i, (int) MIN(plen, 200), p, unknown);
        if ((perr = files_path_error(p, plen)))
                return request_invalid(errbuf, errlen, "files[%zu] (\"%.*s\"): the path %s", i,
                                       (int) MIN(plen, 200), p, perr);
        if (!json_is_string(content))
                return request_invalid(errbuf, errlen,
                                       "files[%zu] (\"%.*s\"): \"content\" must be a string", i,
                                       (int) MIN(plen, 200), p);
        if (encoding) {
                const char *e = json_is_string(encoding) ? json_string_value(encoding) : "";
                if (strcmp(e, "base64") == 0)
                        b64 = true;
                else if (strcmp(e, "utf-8") != 0)
                        return request_invalid(
                                errbuf, errlen,
                                "files[%zu] (\"%.*s\"): \"encoding\" must be \"utf-8\" or "
                                "\"base64\"",
                                i, (int) MIN(plen, 200), p);
        }
        size = json_string_length(content);
        if (b64 && base64_check(json_string_value(content), size, &size) < 0)
                return request_invalid(
                        errbuf, errlen,
                        "files[%zu] (\"%.*s\"): \"content\" is not valid base64 (RFC 4648: "
                        "the standard alphabet, padding required, no white space or line "
                        "breaks)",
                        i, (int) MIN(plen, 200), p);
        *ret_size = size;
        return 0;
}

int files_parse_request(json_t *files, const RequestLimits *lim, size_t *ret_bytes, char *errbuf,
                        size_t errlen)
{
        Entry *entries;
        size_t n, need = 0;
        int r = 0;

        if (!json_is_array(files))
                return request_invalid(errbuf, errlen,
                                       "\"files\" must be an array of {\"path\", \"content\", "
                                       "\"encoding\"} objects");
        n = json_array_size(files);
        if (n > lim->max_files)
                return request_invalid(errbuf, errlen,
                                       "\"files\" has %zu entries; this server takes at most %u "
                                       "(--max-files)",
                                       n, lim->max_files);
        if (n == 0)
                return 0;
        entries = calloc(n, sizeof(*entries));
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; r == 0 && i < n; i++) {
                json_t *f = json_array_get(files, i);
                size_t size = 0;

                r = parse_entry(f, i, &size, errbuf, errlen);
                if (r != 0)
                        break;
                entries[i] = (Entry){
                        .path = json_string_value(json_object_get(f, "path")),
                        .len = json_string_length(json_object_get(f, "path")),
                        .index = i,
                };
                *ret_bytes += size;
                /* Saturating: a sum past SIZE_MAX is too large anyway. */
                size_t blocks = size / TMPFS_BLOCK + (size % TMPFS_BLOCK != 0);
                need = blocks > (SIZE_MAX - need) / TMPFS_BLOCK ? SIZE_MAX
                                                                : need + blocks * TMPFS_BLOCK;
        }
        if (r == 0)
                r = check_tree(entries, n, errbuf, errlen);
        free(entries);
        if (r == 0 && need > lim->tmp_bytes) {
                (void) snprintf(errbuf, errlen,
                                "The files need %zu bytes of the sandbox's /tmp, which holds %zu "
                                "(--tmp-size)",
                                need, lim->tmp_bytes);
                r = API_PAYLOAD_TOO_LARGE;
        }
        return r;
}

/* ---- files a frame returns -------------------------------------------------------------- */

static bool output_file_ok(json_t *f, size_t *ret_size, const char **ret_path, size_t *ret_len)
{
        json_t *path = json_object_get(f, "path"), *size = json_object_get(f, "size"),
               *enc = json_object_get(f, "encoding"), *content = json_object_get(f, "content");
        size_t decoded;

        if (!json_is_object(f) || json_object_size(f) != 4 || !json_is_string(path) ||
            !json_is_integer(size) || json_integer_value(size) < 0 || !json_is_string(enc) ||
            strcmp(json_string_value(enc), "base64") != 0 || !json_is_string(content))
                return false;
        if (files_path_error(json_string_value(path), json_string_length(path)))
                return false;
        if (base64_check(json_string_value(content), json_string_length(content), &decoded) < 0 ||
            (json_int_t) decoded != json_integer_value(size))
                return false;
        *ret_size = decoded;
        *ret_path = json_string_value(path);
        *ret_len = json_string_length(path);
        return true;
}

/* An omitted path: relative, no NUL, no empty, "." or ".." component; its invalid bytes
 * were replaced by U+FFFD (up to 3 bytes each), so its sizes are allowed to triple. */
static bool omitted_ok(json_t *v)
{
        return json_is_string(v) && !path_error(json_string_value(v), json_string_length(v),
                                                3 * FILES_COMPONENT_MAX, 3 * 4096);
}

int files_to_response(json_t *header, const ExecOutcome *o, json_t *obj, size_t *ret_bytes)
{
        json_t *files = json_object_get(header, "files"),
               *omitted = json_object_get(header, "files_omitted"),
               *truncated = json_object_get(header, "files_truncated");
        const char *prev = NULL;
        size_t prev_len = 0, total = 0;

        if (!o->return_files)
                return 0; /* not asked for: whatever the frame says is dropped */
        if (files) {
                size_t i;
                json_t *f;
                if (!json_is_array(files) || json_array_size(files) > o->max_output_files)
                        return -EBADMSG;
                json_array_foreach(files, i, f)
                {
                        const char *p;
                        size_t size, len;
                        if (!output_file_ok(f, &size, &p, &len) || size > o->output_files_limit ||
                            total > o->output_files_limit - size ||
                            (prev && cmp_bytes(prev, prev_len, p, len) >= 0))
                                return -EBADMSG;
                        total += size;
                        prev = p;
                        prev_len = len;
                }
        }
        if (omitted) {
                size_t i;
                json_t *v;
                if (!json_is_array(omitted) || json_array_size(omitted) > FILES_OMITTED_MAX)
                        return -EBADMSG;
                json_array_foreach(omitted, i, v) if (!omitted_ok(v)) return -EBADMSG;
        }
        if (truncated && !json_is_boolean(truncated))
                return -EBADMSG;

        if (json_array_size(files) > 0 && json_object_set(obj, "files", files) < 0)
                return -ENOMEM;
        *ret_bytes = total;
        if (json_array_size(omitted) > 0 && json_object_set(obj, "files_omitted", omitted) < 0)
                return -ENOMEM;
        if (json_is_true(truncated) && json_object_set(obj, "files_truncated", json_true()) < 0)
                return -ENOMEM;
        return 0;
}
