/* Unit tests for util/fd: the full reads and writes of the sandbox protocol, and passing
 * descriptors over the zygote's SOCK_SEQPACKET socket. What matters is that a packet with
 * more descriptors than asked for, or a payload cut short, is refused with every received
 * descriptor closed (none leaks into the supervisor), and that what is accepted is intact. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/fd.h"

/* Open descriptors of this process (the directory stream's own excluded). */
static int open_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        assert_non_null(d);
        for (struct dirent *e; (e = readdir(d));)
                if (e->d_name[0] != '.')
                        n++;
        assert_int_equal(closedir(d), 0);
        return n - 1;
}

static void seqpacket(int sv[2])
{
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void assert_same_file(int a, int b)
{
        struct stat x, y;

        assert_int_equal(fstat(a, &x), 0);
        assert_int_equal(fstat(b, &y), 0);
        assert_true(x.st_dev == y.st_dev && x.st_ino == y.st_ino);
}

static void test_write_all_read_exact(void **state)
{
        char in[100000], out[sizeof(in)];
        int p[2], status;
        pid_t child;
        (void) state;

        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (char) (i * 7);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
        child = fork(); /* more than a socket buffer: short writes and reads happen */
        assert_true(child >= 0);
        if (child == 0)
                _exit(write_all(p[1], in, sizeof(in)) == 0 ? 0 : 1);
        assert_int_equal(read_exact(p[0], out, sizeof(out)), 0);
        assert_memory_equal(in, out, sizeof(in));
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_int_equal(status, 0);
        (void) close(p[1]);
        /* Early EOF is -EPIPE, not a silent short read. */
        assert_int_equal(read_exact(p[0], out, 1), -EPIPE);
        (void) close(p[0]);
}

static void test_descriptors_round_trip(void **state)
{
        int sv[2], fds[4] = {-1, -1, -1, -1}, sent[2], before;
        char buf[16];
        size_t n_fds = 99;
        (void) state;

        seqpacket(sv);
        sent[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        sent[1] = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        assert_true(sent[0] >= 0 && sent[1] >= 0);
        before = open_fds();
        assert_int_equal(send_with_fds(sv[0], "hello", 5, sent, 2), 0);
        assert_int_equal(recv_with_fds(sv[1], buf, sizeof(buf), fds, 4, &n_fds), 5);
        assert_memory_equal(buf, "hello", 5);
        assert_int_equal(n_fds, 2);
        assert_same_file(fds[0], sent[0]);
        assert_same_file(fds[1], sent[1]);
        for (int i = 0; i < 2; i++) {
                assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
                (void) close(fds[i]);
        }
        assert_int_equal(open_fds(), before);

        /* No descriptors attached: zero of them. */
        assert_int_equal(send_with_fds(sv[0], "x", 1, NULL, 0), 0);
        assert_int_equal(recv_with_fds(sv[1], buf, sizeof(buf), fds, 4, &n_fds), 1);
        assert_int_equal(n_fds, 0);

        /* EOF. */
        (void) close(sv[0]);
        assert_int_equal(recv_with_fds(sv[1], buf, sizeof(buf), fds, 4, &n_fds), 0);
        (void) close(sv[1]);
        (void) close(sent[0]);
        (void) close(sent[1]);
}

static void test_excess_descriptors_are_closed_and_refused(void **state)
{
        int sv[2], fds[2] = {-1, -1}, sent[3], before;
        char buf[16];
        size_t n_fds = 99;
        (void) state;

        seqpacket(sv);
        for (int i = 0; i < 3; i++)
                assert_true((sent[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
        before = open_fds();
        assert_int_equal(send_with_fds(sv[0], "abc", 3, sent, 3), 0);
        assert_int_equal(recv_with_fds(sv[1], buf, sizeof(buf), fds, 2, &n_fds), -EBADMSG);
        assert_int_equal(n_fds, 99); /* untouched on failure */
        assert_int_equal(open_fds(), before);

        /* The socket is still usable: the next packet is read whole. */
        assert_int_equal(send_with_fds(sv[0], "ok", 2, sent, 1), 0);
        assert_int_equal(recv_with_fds(sv[1], buf, sizeof(buf), fds, 2, &n_fds), 2);
        assert_int_equal(n_fds, 1);
        (void) close(fds[0]);
        for (int i = 0; i < 3; i++)
                (void) close(sent[i]);
        (void) close(sv[0]);
        (void) close(sv[1]);
}

static void test_truncated_payload_is_refused(void **state)
{
        int sv[2], fds[2] = {-1, -1}, sent, before;
        char buf[4];
        size_t n_fds = 99;
        (void) state;

        seqpacket(sv);
        assert_true((sent = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
        before = open_fds();
        assert_int_equal(send_with_fds(sv[0], "longer than four", 16, &sent, 1), 0);
        assert_int_equal(recv_with_fds(sv[1], buf, sizeof(buf), fds, 2, &n_fds), -EBADMSG);
        assert_int_equal(open_fds(), before);
        (void) close(sent);
        (void) close(sv[0]);
        (void) close(sv[1]);
}

static void test_nonblock(void **state)
{
        int p[2];
        char c;
        (void) state;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(fd_set_nonblock(p[0]), 0);
        assert_true(fcntl(p[0], F_GETFL) & O_NONBLOCK);
        assert_int_equal(read(p[0], &c, 1), -1);
        assert_int_equal(errno, EAGAIN);
        assert_int_equal(fd_set_nonblock(-1), -EBADF);
        (void) close(p[0]);
        (void) close(p[1]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_write_all_read_exact),
                cmocka_unit_test(test_descriptors_round_trip),
                cmocka_unit_test(test_excess_descriptors_are_closed_and_refused),
                cmocka_unit_test(test_truncated_payload_is_refused),
                cmocka_unit_test(test_nonblock),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
