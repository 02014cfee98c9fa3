/* File-descriptor helpers: full reads and writes that survive EINTR and short transfers,
 * and passing descriptors over unix sockets (SCM_RIGHTS). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all n bytes (blocking fd). Returns 0 or -errno. */
int write_all(int fd, const void *p, size_t n);

/* Reads exactly n bytes (blocking fd). Returns 0, -EPIPE on early EOF, or -errno. */
int read_exact(int fd, void *p, size_t n);

/* Sends one datagram/packet with up to `n_fds` descriptors attached. Returns 0 or -errno. */
int send_with_fds(int sock, const void *p, size_t n, const int *fds, size_t n_fds);

/* Receives one packet of at most n bytes and up to max_fds descriptors (opened CLOEXEC).
 * Returns the payload size (0 at EOF) or -errno; the count of received fds goes to
 * *ret_n_fds. Descriptors beyond max_fds, or any with a truncated payload, are closed and
 * the call fails with -EBADMSG. */
ssize_t recv_with_fds(int sock, void *p, size_t n, int *fds, size_t max_fds, size_t *ret_n_fds);

/* Copies n bytes from src (from its file offset) to dst, with sendfile(2). Returns 0,
 * -EIO if src ends before n bytes, or -errno. */
int copy_bytes(int dst, int src, uint64_t n);

/* Switches O_NONBLOCK on. Returns 0 or -errno. */
int fd_set_nonblock(int fd);
