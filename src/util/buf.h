/* A growable byte buffer with a hard limit. Appending past the limit keeps the first
 * `limit` bytes and sets `truncated`: this is how every byte stream a sandbox sends us
 * (stdout, stderr, result) is bounded, so a flood cannot exhaust the service's memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Buf {
        char *data;
        size_t len;
        size_t cap;
        size_t limit;
        bool truncated;
} Buf;

/* Prepares an empty buffer that will hold at most `limit` bytes. */
void buf_init(Buf *b, size_t limit);

/* Appends up to the limit. Returns 0 when all of it fit, 1 when some was dropped (the
 * buffer is then marked truncated), -ENOMEM on allocation failure. */
int buf_append(Buf *b, const void *p, size_t n);

/* Makes the buffer NUL-terminated (not counted in len) and returns its data. */
const char *buf_cstr(Buf *b);

/* Hands the data over (the caller frees it; NULL if nothing was ever stored) and leaves the
 * buffer empty with a limit of 0: whatever is appended afterwards is dropped. */
char *buf_steal(Buf *b);

void buf_free(Buf *b);
