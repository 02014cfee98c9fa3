/* See config.h: the names of the isolation layers, and lists of them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "util/macro.h"

static const char *const layer_names[] = {
        "pidns",    "netns",   "mountns", "ipcns",       "utsns",
        "cgroupns", "cgroups", "rlimits", "credentials", "seccomp",
};

const char *layer_name(Layer l)
{
        for (size_t i = 0; i < ELEMENTSOF(layer_names); i++)
                if (l == (1u << i))
                        return layer_names[i];
        return NULL;
}

void layers_format(uint32_t mask, char *buf, size_t len)
{
        size_t o = 0;

        if (len == 0)
                return;
        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(layer_names); i++) {
                if (!(mask & (1u << i)))
                        continue;
                int n = snprintf(buf + o, len - o, "%s%s", o ? "," : "", layer_names[i]);
                if (n < 0 || (size_t) n >= len - o)
                        return;
                o += (size_t) n;
        }
}

int layers_parse(const char *s, uint32_t *ret)
{
        uint32_t mask = 0;

        while (*s) {
                const char *end = strchr(s, ',');
                size_t n = end ? (size_t) (end - s) : strlen(s);
                size_t i;

                for (i = 0; i < ELEMENTSOF(layer_names); i++)
                        if (strlen(layer_names[i]) == n && strncmp(layer_names[i], s, n) == 0)
                                break;
                if (i == ELEMENTSOF(layer_names))
                        return -EINVAL;
                mask |= 1u << i;
                s += n;
                if (*s == ',')
                        s++;
        }
        *ret = mask;
        return 0;
}
