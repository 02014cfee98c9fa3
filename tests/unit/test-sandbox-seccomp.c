/* Unit tests for the seccomp allow-list (sandbox/seccomp-table.c, sandbox/seccomp.c): the
 * table is well formed for the libseccomp it is built with (a misspelt or unknown name
 * would silently refuse a call the workloads need), and the program it compiles answers
 * as docs/SECCOMP.md says, loaded in a child (no privilege needed: no_new_privs is set
 * there first). The security suite checks the same against real sandboxes. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox/sandbox.h"
#include "sandbox/seccomp-table.h"
#include "util/fd.h"

static void test_table_resolves(void **state)
{
        for (size_t i = 0; i < seccomp_table_len; i++) {
                const SeccompRule *e = &seccomp_table[i];

                if (seccomp_syscall_resolve_name(e->name) == __NR_SCMP_ERROR)
                        fail_msg("%s: not a system call libseccomp knows", e->name);
                assert_non_null(e->why);
                assert_true(strlen(e->why) > 0);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(seccomp_table[j].name, e->name) == 0)
                                fail_msg("%s: listed twice", e->name);
        }
}

static void test_table_shapes(void **state)
{
        for (size_t i = 0; i < seccomp_table_len; i++) {
                const SeccompRule *e = &seccomp_table[i];

                switch (e->match) {
                case SECCOMP_ANY:
                        assert_int_equal(e->otherwise, 0);
                        break;
                case SECCOMP_REFUSE:
                        assert_int_not_equal(e->otherwise, 0);
                        break;
                case SECCOMP_ARG_IN:
                        assert_true(e->n_values >= 1);
                        assert_true(e->arg < 6);
                        /* The complement of a set is one comparison only for one value. */
                        if (e->otherwise != 0)
                                assert_int_equal(e->n_values, 1);
                        break;
                case SECCOMP_ARG_CLEAR:
                        assert_int_equal(e->n_values, 1);
                        assert_true(e->values[0] != 0);
                        break;
                default:
                        fail_msg("%s: unknown match %d", e->name, (int) e->match);
                }
        }
}

static void test_build(void **state)
{
        SeccompProgram p = {0};

        assert_int_equal(seccomp_build(&p), 0);
        assert_non_null(p.insns);
        assert_true(p.len > 0 && p.len <= BPF_MAXINSNS);
        free(p.insns);
}

/* What the child found, one answer per probe: 0 or the errno. */
enum {
        PROBE_GETPID,
        PROBE_INOTIFY,
        PROBE_MEMFD_SECRET,
        PROBE_IO_SETUP,
        PROBE_FLOCK,
        PROBE_SOCKET_INET,
        PROBE_SOCKET_UNIX,
        PROBE_CLONE_NEWUSER,
        PROBE_CLONE3,
        PROBE_PERSONALITY_QUERY,
        PROBE_PERSONALITY_SET,
        PROBE_FCNTL_GETFL,
        PROBE_FCNTL_NOTIFY,
        PROBE_FCNTL_OFD_GETLK,
        PROBE_IOCTL_TCGETS,
        PROBE_IOCTL_TIOCSTI,
        PROBE_MADVISE_DONTNEED,
        PROBE_MADVISE_MERGEABLE,
        PROBE_PREADV2_NOWAIT,
        PROBE_X32_GETPID,
        _PROBE_MAX,
};

static int answer(long r)
{
        return r < 0 ? errno : 0;
}

static _Noreturn void probe_child(int out, const SeccompProgram *p)
{
        int got[_PROBE_MAX];
        int fd;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_install(p) < 0)
                _exit(2);
        got[PROBE_GETPID] = answer(syscall(SYS_getpid));
        got[PROBE_INOTIFY] = answer(syscall(SYS_inotify_init1, 0));
        got[PROBE_MEMFD_SECRET] = answer(syscall(447 /* memfd_secret */, 0));
        got[PROBE_IO_SETUP] = answer(syscall(SYS_io_setup, 1, NULL));
        got[PROBE_FLOCK] = answer(syscall(SYS_flock, out, 1));
        got[PROBE_SOCKET_INET] = answer(syscall(SYS_socket, AF_INET, SOCK_STREAM, 0));
        fd = (int) syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
        got[PROBE_SOCKET_UNIX] = answer(fd);
        got[PROBE_CLONE_NEWUSER] = answer(syscall(SYS_clone, CLONE_NEWUSER | CLONE_THREAD, 0));
        got[PROBE_CLONE3] = answer(syscall(SYS_clone3, NULL, 0));
        got[PROBE_PERSONALITY_QUERY] = answer(syscall(SYS_personality, 0xffffffffUL));
        got[PROBE_PERSONALITY_SET] = answer(syscall(SYS_personality, 0));
        got[PROBE_FCNTL_GETFL] = answer(syscall(SYS_fcntl, out, F_GETFL));
        got[PROBE_FCNTL_NOTIFY] = answer(syscall(SYS_fcntl, out, F_NOTIFY, 0));
        got[PROBE_FCNTL_OFD_GETLK] = answer(syscall(SYS_fcntl, out, F_OFD_GETLK, NULL));
        got[PROBE_IOCTL_TCGETS] = answer(syscall(SYS_ioctl, out, TCGETS, NULL));
        got[PROBE_IOCTL_TIOCSTI] = answer(syscall(SYS_ioctl, out, TIOCSTI, NULL));
        got[PROBE_MADVISE_DONTNEED] = answer(syscall(SYS_madvise, NULL, 0, 4));
        got[PROBE_MADVISE_MERGEABLE] = answer(syscall(SYS_madvise, NULL, 0, 12));
        got[PROBE_PREADV2_NOWAIT] = answer(syscall(SYS_preadv2, out, NULL, 0, 0, 0, 8));
        got[PROBE_X32_GETPID] = answer(syscall(0x40000000 | SYS_getpid));
        if (write_all(out, got, sizeof(got)) < 0)
                _exit(3);
        _exit(0);
}

static void test_filter_answers(void **state)
{
        SeccompProgram p = {0};
        int pipefd[2], got[_PROBE_MAX], status;
        pid_t pid;

        assert_int_equal(seccomp_build(&p), 0);
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) close(pipefd[0]);
                probe_child(pipefd[1], &p);
        }
        (void) close(pipefd[1]);
        assert_int_equal(read_exact(pipefd[0], got, sizeof(got)), 0);
        (void) close(pipefd[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        free(p.insns);

        assert_int_equal(got[PROBE_GETPID], 0);
        assert_int_equal(got[PROBE_INOTIFY], ENOSYS);
        assert_int_equal(got[PROBE_MEMFD_SECRET], ENOSYS);
        assert_int_equal(got[PROBE_IO_SETUP], ENOSYS);
        assert_int_equal(got[PROBE_FLOCK], ENOSYS);
        assert_int_equal(got[PROBE_SOCKET_INET], EPERM);
        assert_int_equal(got[PROBE_SOCKET_UNIX], 0);
        assert_int_equal(got[PROBE_CLONE_NEWUSER], EPERM);
        assert_int_equal(got[PROBE_CLONE3], ENOSYS);
        assert_int_equal(got[PROBE_PERSONALITY_QUERY], 0);
        assert_int_equal(got[PROBE_PERSONALITY_SET], EPERM);
        assert_int_equal(got[PROBE_FCNTL_GETFL], 0);
        assert_int_equal(got[PROBE_FCNTL_NOTIFY], ENOSYS);
        assert_int_equal(got[PROBE_FCNTL_OFD_GETLK], ENOSYS);
        assert_int_equal(got[PROBE_IOCTL_TCGETS], ENOTTY); /* allowed: the kernel's answer */
        assert_int_equal(got[PROBE_IOCTL_TIOCSTI], ENOSYS);
        assert_int_equal(got[PROBE_MADVISE_DONTNEED], 0);
        assert_int_equal(got[PROBE_MADVISE_MERGEABLE], ENOSYS);
        assert_int_equal(got[PROBE_PREADV2_NOWAIT], ENOSYS);
        assert_int_equal(got[PROBE_X32_GETPID], ENOSYS);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_resolves),
                cmocka_unit_test(test_table_shapes),
                cmocka_unit_test(test_build),
                cmocka_unit_test(test_filter_answers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
