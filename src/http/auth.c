/* See auth.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/auth.h"
#include "util/macro.h"

#define KEY_MAX  512
#define KEYS_MAX 1024

struct Auth {
        size_t n;
        char *keys[KEYS_MAX];
};

void auth_free(Auth *a)
{
        if (!a)
                return;
        for (size_t i = 0; i < a->n; i++) {
                explicit_bzero(a->keys[i], strlen(a->keys[i]));
                free(a->keys[i]);
        }
        free(a);
}

int auth_load(const char *path, Auth **ret, char *errbuf, size_t errlen)
{
        char line[KEY_MAX + 2];
        Auth *a;
        FILE *f;
        int r = 0;

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                (void) snprintf(errbuf, errlen, "cannot read API keys file %s: %s", path,
                                strerror(errno));
                return r;
        }
        a = calloc(1, sizeof(*a));
        if (!a) {
                (void) fclose(f);
                return -ENOMEM;
        }
        while (fgets(line, sizeof(line), f)) {
                char *s = line, *e;
                if (!strchr(line, '\n') && !feof(f)) {
                        (void) snprintf(errbuf, errlen, "API key longer than %d bytes in %s",
                                        KEY_MAX, path);
                        r = -E2BIG;
                        break;
                }
                while (*s == ' ' || *s == '\t')
                        s++;
                e = s + strlen(s);
                while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                        *--e = '\0';
                if (*s == '\0' || *s == '#')
                        continue;
                if (a->n == KEYS_MAX) {
                        (void) snprintf(errbuf, errlen, "more than %d API keys in %s", KEYS_MAX,
                                        path);
                        r = -E2BIG;
                        break;
                }
                a->keys[a->n] = strdup(s);
                if (!a->keys[a->n]) {
                        r = -ENOMEM;
                        break;
                }
                a->n++;
        }
        explicit_bzero(line, sizeof(line));
        (void) fclose(f);
        if (r == 0 && a->n == 0) {
                (void) snprintf(errbuf, errlen, "no API key in %s", path);
                r = -ENODATA;
        }
        if (r < 0) {
                auth_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

/* Compares every byte of the longer string; no early exit. */
static bool equal_ct(const char *a, size_t an, const char *b, size_t bn)
{
        size_t n = MAX(an, bn);
        unsigned char diff = an != bn;

        for (size_t i = 0; i < n; i++) {
                unsigned char x = i < an ? (unsigned char) a[i] : 0;
                unsigned char y = i < bn ? (unsigned char) b[i] : 0;
                diff |= x ^ y;
        }
        return diff == 0;
}

bool auth_check(const Auth *a, const char *authorization)
{
        static const char scheme[] = "Bearer ";
        bool ok = false;

        if (!authorization || strncasecmp(authorization, scheme, sizeof(scheme) - 1) != 0)
                return false;
        authorization += sizeof(scheme) - 1;
        size_t n = strnlen(authorization, KEY_MAX + 1);
        if (n == 0 || n > KEY_MAX)
                return false;
        for (size_t i = 0; i < a->n; i++) /* all keys, always */
                ok |= equal_ct(authorization, n, a->keys[i], strlen(a->keys[i]));
        return ok;
}
