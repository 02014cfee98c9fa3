/* What the fuzz targets share: the libFuzzer entry point (also called by replay.c, the
 * driver the plain test suite uses), a check that aborts with a message (a crash to
 * libFuzzer, a failed test to Meson), and a reader that takes fields off the front of an
 * input. Running out of input is not an error: missing bytes read as zero, so every byte
 * string is a valid input. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn, format(printf, 4, 5))) static inline void
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
        va_list ap;

        (void) fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
        va_start(ap, fmt);
        (void) vfprintf(stderr, fmt, ap);
        va_end(ap);
        (void) fputc('\n', stderr);
        abort();
}

/* fuzz_check(cond, fmt, ...): an invariant of the code under test. */
#define fuzz_check(cond, ...)                                              \
        do {                                                               \
                if (!(cond))                                               \
                        fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
        } while (0)

/* A heap copy of exactly n bytes, so that ASan sees a read one past the end of a byte range
 * that sits in the middle of the input. With `nul`, one NUL byte follows (not counted). */
static inline char *fuzz_dup(const void *p, size_t n, bool nul)
{
        char *c = malloc(n + (nul ? 1 : 0));

        if (!c && n + nul > 0)
                abort();
        if (n > 0)
                memcpy(c, p, n);
        if (nul)
                c[n] = '\0';
        return c;
}

typedef struct FuzzInput {
        const uint8_t *p;
        size_t n;
} FuzzInput;

static inline uint8_t fuzz_u8(FuzzInput *in)
{
        uint8_t v = 0;

        if (in->n > 0) {
                v = in->p[0];
                in->p++, in->n--;
        }
        return v;
}

/* Little-endian, so that a mutated byte changes the value a little or a lot. */
static inline uint16_t fuzz_u16(FuzzInput *in)
{
        uint16_t lo = fuzz_u8(in);
        return (uint16_t) (lo | (uint16_t) fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(FuzzInput *in)
{
        uint32_t lo = fuzz_u16(in);
        return lo | (uint32_t) fuzz_u16(in) << 16;
}

/* The next n bytes (fewer if the input ends first); *ret_len gets how many. */
static inline const uint8_t *fuzz_bytes(FuzzInput *in, size_t n, size_t *ret_len)
{
        const uint8_t *p = in->p;

        if (n > in->n)
                n = in->n;
        in->p += n, in->n -= n;
        *ret_len = n;
        return p;
}
