/* See fd.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/fd.h"
#include "util/macro.h"

int write_all(int fd, const void *p, size_t n)
{
        const char *c = p;

        while (n > 0) {
                ssize_t k = write(fd, c, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c += k;
                n -= (size_t) k;
        }
        return 0;
}

int read_exact(int fd, void *p, size_t n)
{
        char *c = p;

        while (n > 0) {
                ssize_t k = read(fd, c, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EPIPE;
                c += k;
                n -= (size_t) k;
        }
        return 0;
}

#define MAX_FDS 8

int send_with_fds(int sock, const void *p, size_t n, const int *fds, size_t n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        } control;
        struct iovec iov = {.iov_base = (void *) p, .iov_len = n};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

        if (n_fds > MAX_FDS)
                return -EINVAL;
        if (n_fds > 0) {
                memset(&control, 0, sizeof(control));
                msg.msg_control = control.buf;
                msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
        }
        for (;;) {
                ssize_t k = sendmsg(sock, &msg, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if ((size_t) k != n)
                        return -EMSGSIZE;
                return 0;
        }
}

ssize_t recv_with_fds(int sock, void *p, size_t n, int *fds, size_t max_fds, size_t *ret_n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        } control;
        struct iovec iov = {.iov_base = p, .iov_len = n};
        struct msghdr msg = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        size_t got = 0;
        ssize_t k;
        bool bad = false;

        do
                k = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *in = (int *) CMSG_DATA(c);
                for (size_t i = 0; i < cnt; i++) {
                        int fd;
                        memcpy(&fd, in + i, sizeof(fd));
                        if (got < max_fds)
                                fds[got++] = fd;
                        else {
                                (void) close(fd);
                                bad = true;
                        }
                }
        }
        if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                bad = true;
        if (bad) {
                for (size_t i = 0; i < got; i++)
                        (void) close(fds[i]);
                return -EBADMSG;
        }
        *ret_n_fds = got;
        return k;
}

int copy_bytes(int dst, int src, uint64_t n)
{
        uint64_t done = 0;

        while (done < n) {
                ssize_t k = sendfile(dst, src, NULL, (size_t) MIN(n - done, (uint64_t) 1 << 30));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;
                done += (uint64_t) k;
        }
        return 0;
}

int fd_set_nonblock(int fd)
{
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}
