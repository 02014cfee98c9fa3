/* Namespaces that are costly to create and tear down are made once per slot and
 * re-entered: a network namespace costs ~0.4 ms to create plus ~0.4 ms of kernel worker
 * time to destroy, with a p99 of several ms (notes/kernel-costs.md section 3). One per slot
 * (not one shared by all) because abstract unix sockets are scoped by network namespace:
 * two concurrent sandboxes must not be able to reach each other through one. A slot is
 * reused only once its previous sandbox is entirely dead, and with it every socket it
 * had. A fresh network namespace has a single interface, `lo`, and it is down. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/macro.h"

int netns_create(int *ret_fd)
{
        int fd;

        /* The caller (the zygote) moves into each new namespace in turn; it needs no
         * network itself. */
        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

int netns_enter(int fd)
{
        return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}
