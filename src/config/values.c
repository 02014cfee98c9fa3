/* See config/values.h: the values an option can take, read from text. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/values.h"
#include "util/macro.h"

int config_parse_u64(const char *s, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int config_parse_duration_ms(const char *s, uint64_t *ret)
{
        char *end;
        double v, scale = 1000.0;

        if ((*s < '0' || *s > '9') && *s != '.')
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || !isfinite(v) || v < 0)
                return -EINVAL;
        if (strcmp(end, "ms") == 0)
                scale = 1.0;
        else if (strcmp(end, "s") != 0 && *end != '\0')
                return -EINVAL;
        v *= scale;
        if (v > (double) UINT32_MAX)
                return -ERANGE;
        *ret = (uint64_t) llround(v);
        return 0;
}

int config_parse_size(const char *s, uint64_t *ret)
{
        char *end;
        unsigned long long v;
        uint64_t mult = 1;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -EINVAL;
        switch (*end) {
        case 'K':
        case 'k':
                mult = KiB, end++;
                break;
        case 'M':
        case 'm':
                mult = MiB, end++;
                break;
        case 'G':
        case 'g':
                mult = GiB, end++;
                break;
        default:
                break;
        }
        if (mult > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
                end += strlen(end);
        if (*end != '\0')
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

int config_parse_name(const char *s, const char *const *names, size_t n, int *ret)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(s, names[i]) == 0) {
                        *ret = (int) i;
                        return 0;
                }
        return -EINVAL;
}

bool config_preload_valid(const char *s)
{
        /* Comma-separated dotted module names; nothing that could be more than an import. */
        bool start = true;

        for (; *s; s++) {
                char c = *s;
                if (c == ',' || c == '.') {
                        if (start)
                                return false;
                        start = true;
                        continue;
                }
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                      (!start && c >= '0' && c <= '9')))
                        return false;
                start = false;
        }
        return !start;
}

int config_parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = {"true", "1", "yes", "on"};
        static const char *const no[] = {"false", "0", "no", "off"};
        int idx;

        if (config_parse_name(s, yes, ELEMENTSOF(yes), &idx) == 0)
                *ret = true;
        else if (config_parse_name(s, no, ELEMENTSOF(no), &idx) == 0)
                *ret = false;
        else
                return -EINVAL;
        return 0;
}
