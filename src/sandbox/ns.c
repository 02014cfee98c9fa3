/* Namespaces that are costly to create and tear down are made once per slot and
 * re-entered: a network namespace costs ~0.4 ms to create plus ~0.4 ms of kernel worker
 * time to destroy, with a p99 of several ms (docs/design/kernel-costs.md section 3). One per slot
 * (not one shared by all) because abstract unix sockets are scoped by network namespace:
 * two concurrent sandboxes must not be able to reach each other through one. A slot is
 * reused only once its previous sandbox is entirely dead, and with it every socket it
 * had. A fresh network namespace has a single interface, `lo`, and it is down. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* The probe child reports {step that failed, errno} over a pipe; {0, 0} is success. */
enum { PROBE_UNSHARE = 1, PROBE_MOUNT = 2, PROBE_PIVOT = 3 };

/* A path that does not exist: pivot_root(2) checks CAP_SYS_ADMIN (which the unshare just
 * proved) before it looks up its paths, so ENOENT means the call is allowed, and EPERM
 * can only come from a seccomp filter, Docker's default profile for one: it refuses
 * pivot_root even to a container granted CAP_SYS_ADMIN. */
#define PROBE_NO_PATH "/.pyexecd-probe-does-not-exist"

int probe_in_child(void (*fn)(const void *arg, void *msg), const void *arg, void *msg, size_t len)
{
        int p[2], status;
        pid_t pid;
        ssize_t n;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                (void) close(p[0]);
                (void) close(p[1]);
                return r;
        }
        if (pid == 0) {
                (void) close(p[0]);
                fn(arg, msg);
                _exit(write(p[1], msg, len) == (ssize_t) len ? 0 : 1);
        }
        (void) close(p[1]);
        do
                n = read(p[0], msg, len);
        while (n < 0 && errno == EINTR);
        (void) close(p[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (n != (ssize_t) len || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        return 0;
}

static void probe_child(const void *arg, void *ret_msg)
{
        uint32_t layers = *(const uint32_t *) arg;
        uint64_t flags = sandbox_clone_flags(layers);
        unsigned char *msg = ret_msg;

        if (layers & LAYER_NETNS)
                flags |= CLONE_NEWNET;
        if (layers & LAYER_CGROUPNS)
                flags |= CLONE_NEWCGROUP;
        if (unshare((int) flags) < 0)
                msg[0] = PROBE_UNSHARE, msg[1] = (unsigned char) errno;
        else if (layers & LAYER_MOUNTNS && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                msg[0] = PROBE_MOUNT, msg[1] = (unsigned char) errno;
        else if (layers & LAYER_MOUNTNS &&
                 syscall(SYS_pivot_root, PROBE_NO_PATH, PROBE_NO_PATH) < 0 && errno == EPERM)
                msg[0] = PROBE_PIVOT, msg[1] = (unsigned char) errno;
}

int ns_probe(uint32_t layers, char *errbuf, size_t errlen)
{
        unsigned char msg[2] = {0, 0};
        int r = probe_in_child(probe_child, &layers, msg, sizeof(msg));

        if (r == -EIO)
                (void) snprintf(errbuf, errlen, "the namespace probe died");
        if (r < 0)
                return r;
        if (msg[0] == 0)
                return 0;
        (void) snprintf(errbuf, errlen, "%s: %s",
                        msg[0] == PROBE_UNSHARE ? "cannot create the sandbox's namespaces"
                        : msg[0] == PROBE_MOUNT ? "cannot change mount propagation in a new "
                                                  "mount namespace"
                                                : "pivot_root is refused by a seccomp filter "
                                                  "(as Docker's default profile does)",
                        strerror(msg[1]));
        return -(int) msg[1];
}
