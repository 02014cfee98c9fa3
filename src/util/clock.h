/* Monotonic time in the units the service reasons in. */
#pragma once

#include <stdint.h>
#include <time.h>

static inline uint64_t now_usec(void)
{
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}
