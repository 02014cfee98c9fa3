/* The figures a result frame returns ("figures", "figures_truncated"): what the harness
 * rendered from the matplotlib figures main() left open (runtime/figures.py). The script
 * shares the harness's process and can write its own frame, so every figure is checked
 * here before it reaches a client: a PNG by its signature and header, the size it claims,
 * and the whole of the figures within the result's budget. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "api/files.h"
#include "util/base64.h"

/* A PNG's first 24 bytes: the signature, then the IHDR chunk's length (13) and type, its
 * width and its height (big-endian, 1 to 2^31 - 1 each: PNG's own limits). */
#define PNG_HEAD 24
static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t be32(const unsigned char *p)
{
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* One figure of the frame: {"format": "png", "width", "height", "content"} and nothing
 * else, content strict base64 of a PNG of that width and height. Returns the length of its
 * content (base64 text, what the response carries) and of the PNG in *ret_png, or 0 when it
 * breaks the contract. */
static size_t figure_ok(json_t *f, size_t *ret_png)
{
        json_t *format = json_object_get(f, "format"), *width = json_object_get(f, "width"),
               *height = json_object_get(f, "height"), *content = json_object_get(f, "content");
        unsigned char head[PNG_HEAD];
        size_t decoded, len;
        const char *s;

        if (!json_is_object(f) || json_object_size(f) != 4 || !json_is_string(format) ||
            json_string_length(format) != 3 || memcmp(json_string_value(format), "png", 3) != 0 ||
            !json_is_integer(width) || !json_is_integer(height) || !json_is_string(content))
                return 0;
        s = json_string_value(content);
        len = json_string_length(content);
        if (base64_check(s, len, &decoded) < 0 || decoded < PNG_HEAD)
                return 0;
        /* PNG_HEAD bytes are 8 whole groups, before any padding: the content is longer. */
        base64_decode_groups(s, PNG_HEAD / 3, head);
        if (memcmp(head, png_signature, sizeof(png_signature)) != 0 || be32(head + 8) != 13 ||
            memcmp(head + 12, "IHDR", 4) != 0)
                return 0;
        if (be32(head + 16) == 0 || be32(head + 16) > INT32_MAX || be32(head + 20) == 0 ||
            be32(head + 20) > INT32_MAX ||
            json_integer_value(width) != (json_int_t) be32(head + 16) ||
            json_integer_value(height) != (json_int_t) be32(head + 20))
                return 0;
        *ret_png = decoded;
        return len;
}

int figures_to_response(json_t *header, size_t budget, json_t *obj, size_t *ret_bytes)
{
        json_t *figures = json_object_get(header, "figures"),
               *truncated = json_object_get(header, "figures_truncated");
        size_t text = 0, png = 0;

        if (figures) {
                size_t i, len, n;
                json_t *f;
                if (!json_is_array(figures) || json_array_size(figures) > FIGURES_MAX)
                        return -EBADMSG;
                json_array_foreach(figures, i, f)
                {
                        len = figure_ok(f, &n);
                        if (len == 0 || len > budget - text)
                                return -EBADMSG;
                        text += len;
                        png += n;
                }
        }
        if (truncated && !json_is_boolean(truncated))
                return -EBADMSG;

        if (json_array_size(figures) > 0 && json_object_set(obj, "figures", figures) < 0)
                return -ENOMEM;
        if (json_is_true(truncated) && json_object_set(obj, "figures_truncated", json_true()) < 0)
                return -ENOMEM;
        *ret_bytes = png;
        return 0;
}
