/* Optional API keys for POST /execute: `Authorization: Bearer <key>`, one key per line in
 * a file. Loaded by the supervisor after the zygote was started, so no sandbox's memory
 * ever held them. Comparisons take the same time whatever the key and wherever it differs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Auth Auth;

/* Reads the keys (blank lines and lines starting with '#' are skipped; surrounding white
 * space is trimmed). Returns 0, or -errno / -ENODATA (no key) with a message in errbuf. */
int auth_load(const char *path, Auth **ret, char *errbuf, size_t errlen);

/* True if the Authorization header value carries one of the keys. */
bool auth_check(const Auth *a, const char *authorization);

void auth_free(Auth *a);

static inline void auth_freep(Auth **a)
{
        auth_free(*a);
}
