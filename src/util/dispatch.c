/* See dispatch.h. */
#include <errno.h>
#include <sys/epoll.h>

#include "util/dispatch.h"
#include "util/macro.h"

static int ctl(int epfd, int op, int fd, uint32_t events, DispatchWatch *w)
{
        struct epoll_event ev = {.events = events, .data.ptr = w};
        return epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int dispatch_add(int epfd, int fd, uint32_t events, DispatchWatch *w)
{
        return ctl(epfd, EPOLL_CTL_ADD, fd, events, w);
}

int dispatch_mod(int epfd, int fd, uint32_t events, DispatchWatch *w)
{
        return ctl(epfd, EPOLL_CTL_MOD, fd, events, w);
}

int dispatch_run(int epfd, int timeout_ms, void *ctx)
{
        struct epoll_event evs[64];
        int n = epoll_wait(epfd, evs, ELEMENTSOF(evs), timeout_ms);

        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                DispatchWatch *w = evs[i].data.ptr;
                w->fn(w, evs[i].events, ctx);
        }
        return n;
}
