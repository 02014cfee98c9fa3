/* An epoll set in which every watch carries its own callback (after dbus-broker's
 * util/dispatch): a loop calls dispatch_run(), which calls the callback of each ready
 * descriptor, and knows nothing of what the descriptors are. */
#pragma once

#include <stdint.h>

typedef struct DispatchWatch DispatchWatch;

/* `ctx` is dispatch_run()'s: the loop's owner (the executor). */
typedef void (*DispatchFn)(DispatchWatch *w, uint32_t events, void *ctx);

struct DispatchWatch {
        DispatchFn fn;
        void *data; /* the watch's object (a job, a zygote), for the callback */
};

/* Watches `fd` for `events` (EPOLLIN, ...): w must live until the watch is removed and, if
 * it may be in a batch being dispatched, until that batch ends. Return 0 or -errno. */
int dispatch_add(int epfd, int fd, uint32_t events, DispatchWatch *w);
int dispatch_mod(int epfd, int fd, uint32_t events, DispatchWatch *w);

/* Waits up to timeout_ms (-1: no limit) and calls each ready watch's callback, in the
 * kernel's order. Returns the number of events, or -errno (-EINTR when interrupted). */
int dispatch_run(int epfd, int timeout_ms, void *ctx);
