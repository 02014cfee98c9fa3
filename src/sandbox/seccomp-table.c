/* Every system call a sandbox may make, with the reason (docs/SECCOMP.md explains the
 * policy). Anything not here is refused with ENOSYS (SECCOMP_DEFAULT_ERRNO).
 *
 * Derived from what the README promises scripts may do and checked against it: the
 * workloads of tests/security/workloads.py (numpy, pandas, subprocess running python3, sh
 * and sleep, multiprocessing with every start method, threads, signals, files in /tmp,
 * sqlite3, sockets between the script's own processes, ...), the harness after the
 * filter is installed (read the job, write the result frame, kill and reap, _exit), and
 * CPython's, dash's and coreutils' start-up in the programs a script runs.
 * tests/security/test_seccomp_allowlist.py runs those workloads under strace and fails if
 * an entry is never used, unless it is listed there with the rare path that needs it.
 *
 * Refused on purpose although a script can name them (os, ctypes), among others: inotify,
 * fanotify, flock, dnotify and leases (fcntl F_NOTIFY, F_SETLEASE), open-file-description
 * locks (F_OFD_*), mincore, cachestat, readahead, preadv2/pwritev2 flags, fadvise
 * DONTNEED/WILLNEED and madvise advice that reclaims or merges pages (the cross-request
 * side channels of docs/SECCOMP.md); memfd_secret, AIO, io_uring, userfaultfd, bpf, perf,
 * keyrings, ptrace and every namespace, mount, module, clock, swap or reboot call (kernel
 * surface with a history of escapes, or the machine's own business); sync and syncfs
 * (writeback of the host's file systems); setuid and friends (the uid is final); SysV IPC,
 * POSIX message queues and timers (nothing uses them; they would be per-IPC-namespace
 * anyway). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "sandbox/seccomp-table.h"
#include "util/macro.h"

#define NS_FLAGS                                                                                   \
        (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
         CLONE_NEWCGROUP)

/* clang-format off */
#define VALUES(...) \
        .values = (const uint64_t[]){__VA_ARGS__}, \
        .n_values = sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t)

/* Allowed whatever the arguments. */
#define ALLOW(sys, reason) {.name = sys, .match = SECCOMP_ANY, .why = reason}
/* Allowed if argument `a` is one of the values; other values get `err` (0: the default). */
#define ALLOW_IF(sys, a, err, reason, ...) \
        {.name = sys, .match = SECCOMP_ARG_IN, .arg = a, VALUES(__VA_ARGS__), \
         .otherwise = err, .why = reason}
/* Allowed if argument `a` has none of `bits`; with any of them, `err`. */
#define ALLOW_CLEAR(sys, a, bits, err, reason) \
        {.name = sys, .match = SECCOMP_ARG_CLEAR, .arg = a, VALUES(bits), \
         .otherwise = err, .why = reason}
/* Refused with `err` whatever the arguments (only where that is not the default). */
#define REFUSE(sys, err, reason) \
        {.name = sys, .match = SECCOMP_REFUSE, .otherwise = err, .why = reason}
/* clang-format on */

const SeccompRule seccomp_table[] = {
        /* Processes and threads */
        ALLOW_CLEAR("clone", 0, NS_FLAGS, EPERM,
                    "fork, threads, vfork-style spawn; no new namespace (EPERM, as for any "
                    "unprivileged caller)"),
        REFUSE("clone3", ENOSYS,
               "its flags are in memory the filter cannot read: glibc falls back to clone on "
               "ENOSYS, whose flags are checked"),
        ALLOW("vfork", "_posixsubprocess (subprocess) and dash start programs with it"),
        ALLOW("execve", "subprocess, multiprocessing's spawn and forkserver, os.exec*"),
        ALLOW("exit", "a thread's end"),
        ALLOW("exit_group", "a process's end, the harness's _exit"),
        ALLOW("wait4", "os.waitpid, wait3, subprocess; the harness reaps the namespace"),
        ALLOW("waitid", "os.waitid"),
        ALLOW("kill", "os.kill, subprocess; the harness's kill(-1) (own pid namespace only)"),
        ALLOW("tgkill", "signal.pthread_kill, raise(), abort()"),
        ALLOW("pidfd_open", "os.pidfd_open; asyncio's child watcher (Python 3.12+) probes it"),
        ALLOW("pidfd_send_signal", "signal.pidfd_send_signal (own pid namespace only)"),
        ALLOW("set_tid_address", "glibc at every program's and thread's start"),
        ALLOW("set_robust_list", "glibc at every program's and thread's start"),
        ALLOW("rseq", "glibc 2.35+ registers each thread"),
        ALLOW("futex", "every lock, condition and semaphore (shared ones: multiprocessing)"),
        ALLOW("arch_prctl", "the TLS register at every program's start"),
        ALLOW_IF("prctl", 0, 0,
                 "PR_CAPBSET_READ: libcap's constructor (NSS via libnss_systemd); "
                 "PR_SET/GET_NAME: pthread_setname_np, pthread_getname_np",
                 PR_CAPBSET_READ, PR_SET_NAME, PR_GET_NAME),
        ALLOW_IF("personality", 0, EPERM, "the query only (glibc, Python's platform)",
                 0xffffffffUL),
        ALLOW("getpid", "os.getpid, glibc, multiprocessing"),
        ALLOW("getppid", "os.getppid, dash"),
        ALLOW("gettid", "threading.get_native_id, glibc"),
        ALLOW("getpgrp", "os.getpgrp, dash"),
        ALLOW("getpgid", "os.getpgid"),
        ALLOW("setpgid", "subprocess(process_group=), os.setpgid, dash"),
        ALLOW("getsid", "os.getsid"),
        ALLOW("setsid", "subprocess(start_new_session=True), os.setsid"),
        ALLOW("getuid", "os.getuid, CPython and dash start-up"),
        ALLOW("geteuid", "os.geteuid, CPython and dash start-up"),
        ALLOW("getgid", "os.getgid, CPython and dash start-up"),
        ALLOW("getegid", "os.getegid, CPython and dash start-up"),
        ALLOW("getgroups", "os.getgroups"),
        ALLOW("getresuid", "os.getresuid"),
        ALLOW("getresgid", "os.getresgid"),
        ALLOW("sched_yield", "os.sched_yield, OpenBLAS, glibc spin locks"),
        ALLOW("sched_getaffinity", "os.sched_getaffinity, os.cpu_count, OpenBLAS"),
        ALLOW("sched_setaffinity", "os.sched_setaffinity (own tasks, allowed CPUs only)"),
        ALLOW("getpriority", "os.getpriority, os.nice"),
        ALLOW("setpriority", "os.nice, os.setpriority (lower only); the harness's exit nice"),
        ALLOW("prlimit64", "resource.getrlimit/setrlimit (lower only); the harness's job limits"),
        ALLOW("getrusage", "resource.getrusage, wait3"),
        ALLOW("times", "os.times"),
        ALLOW("uname", "os.uname, platform, glibc"),
        ALLOW("sysinfo", "glibc's sysconf(_SC_PHYS_PAGES), os.sysconf"),
        ALLOW("umask", "os.umask, tempfile"),

        /* Memory */
        ALLOW("brk", "malloc"),
        ALLOW("mmap", "malloc, the loader, numpy, mmap, multiprocessing's shared memory"),
        ALLOW("munmap", "free, mmap.close"),
        ALLOW("mprotect", "the loader, thread stacks' guard pages, ctypes callbacks"),
        ALLOW("mremap", "realloc of large blocks, mmap.resize"),
        ALLOW("msync", "mmap.flush, numpy.memmap.flush"),
        ALLOW_IF("madvise", 2, 0,
                 "free and thread exit (DONTNEED), numpy (HUGEPAGE), mmap.madvise; not the "
                 "advice that evicts or merges pages (PAGEOUT, COLD, MERGEABLE, WILLNEED)",
                 MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE,
                 MADV_NOHUGEPAGE),
        ALLOW("memfd_create", "os.memfd_create (anonymous memory, charged to the sandbox)"),

        /* Signals */
        ALLOW("rt_sigaction", "signal.signal, CPython and glibc start-up"),
        ALLOW("rt_sigprocmask", "signal.pthread_sigmask, subprocess around vfork, threads"),
        ALLOW("rt_sigreturn", "the return from every signal handler"),
        ALLOW("rt_sigpending", "signal.sigpending"),
        ALLOW("rt_sigtimedwait", "signal.sigtimedwait, sigwaitinfo, sigwait"),
        ALLOW("sigaltstack", "faulthandler, CPython's stack overflow guard"),
        ALLOW("pause", "signal.pause"),
        ALLOW("alarm", "signal.alarm"),
        ALLOW("setitimer", "signal.setitimer"),
        ALLOW("getitimer", "signal.getitimer"),
        ALLOW("restart_syscall", "the kernel's restart of a sleep interrupted by a stop"),

        /* Time */
        ALLOW("clock_gettime", "time.*: the CPU-time clocks, and every clock without vDSO"),
        ALLOW("clock_getres", "time.clock_getres without vDSO"),
        ALLOW("gettimeofday", "time.time without vDSO (a clock source the vDSO cannot read)"),
        ALLOW("clock_nanosleep", "time.sleep, sleep(1)"),

        /* Randomness */
        ALLOW("getrandom", "os.urandom, random, secrets, uuid; the harness's reseed"),

        /* File descriptors and I/O */
        ALLOW("read", "everything"),
        ALLOW("write", "everything; the harness's result frame"),
        ALLOW("pread64", "os.pread, the loader, sqlite3, zipfile"),
        ALLOW("pwrite64", "os.pwrite, sqlite3"),
        ALLOW("readv", "os.readv, glibc stdio"),
        ALLOW("writev", "os.writev, glibc stdio"),
        ALLOW_IF("preadv2", 5, 0, "os.preadv; no RWF_NOWAIT (it tells cached pages from others)",
                 0),
        ALLOW_IF("pwritev2", 5, 0, "os.pwritev; no flags", 0),
        ALLOW("lseek", "everything"),
        ALLOW("sendfile", "os.sendfile, shutil.copyfile"),
        ALLOW("copy_file_range", "os.copy_file_range, coreutils"),
        ALLOW("splice", "os.splice"),
        ALLOW("close", "everything"),
        ALLOW("close_range", "subprocess's close_fds, the loader"),
        ALLOW("dup", "os.dup of 0, 1, 2 in subprocess"),
        ALLOW("dup2", "os.dup2, subprocess, dash"),
        ALLOW("dup3", "os.dup2(inheritable=False)"),
        ALLOW("pipe2", "os.pipe, subprocess, multiprocessing"),
        ALLOW("eventfd2", "os.eventfd"),
        ALLOW_IF("fcntl", 1, 0,
                 "descriptor flags, dup, pipe size (subprocess pipesize=), and POSIX record "
                 "locks (sqlite3, fcntl.lockf); not F_NOTIFY, leases, F_SETOWN/SIG, OFD locks",
                 F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETLK, F_SETLK,
                 F_SETLKW, F_GETPIPE_SZ, F_SETPIPE_SZ),
        ALLOW_IF("ioctl", 1, 0,
                 "isatty (TCGETS), get_terminal_size, set_blocking, set_inheritable: nothing "
                 "else (there is no terminal, no device but null, zero and random)",
                 TCGETS, TIOCGWINSZ, FIONBIO, FIOCLEX, FIONCLEX),
        ALLOW_IF("fadvise64", 3, 0,
                 "posix_fadvise, coreutils (SEQUENTIAL); not DONTNEED (evicts pages other "
                 "requests share) or WILLNEED",
                 POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL, POSIX_FADV_NOREUSE),
        ALLOW("fallocate", "os.posix_fallocate"),
        ALLOW("ftruncate", "os.ftruncate, sqlite3, multiprocessing's shared memory"),
        ALLOW("truncate", "os.truncate"),
        ALLOW("fsync", "os.fsync, sqlite3"),
        ALLOW("fdatasync", "os.fdatasync, sqlite3"),

        /* Polling */
        ALLOW("poll", "select.poll, subprocess.communicate, multiprocessing"),
        ALLOW("pselect6", "select.select"),
        ALLOW("epoll_create1", "select.epoll, selectors, asyncio"),
        ALLOW("epoll_ctl", "select.epoll, selectors, asyncio"),
        ALLOW("epoll_wait", "select.epoll, selectors, asyncio"),

        /* Paths (the read-only tree, /tmp, /proc of the sandbox) */
        ALLOW("openat", "open"),
        ALLOW("open",
              "glibc 2.41 (Debian 13): malloc reads /proc/sys/vm/overcommit_memory with it"),
        ALLOW("creat", "tar (glibc's creat() is the system call)"),
        ALLOW("newfstatat", "os.stat, fstat, lstat (glibc's stat family)"),
        ALLOW("fstat", "glibc 2.39+ (Debian 13): fstat(), so ld.so loading every library"),
        ALLOW("statx", "ls, coreutils"),
        ALLOW("statfs", "os.statvfs, shutil.disk_usage"),
        ALLOW("fstatfs", "os.fstatvfs, glibc's pathconf"),
        ALLOW("access", "os.access, shutil.which, CPython start-up"),
        ALLOW("faccessat2", "os.access(dir_fd=, effective_ids=) (glibc 2.33+; faccessat is only "
                            "its fallback on older kernels)"),
        ALLOW("getcwd", "os.getcwd, CPython start-up"),
        ALLOW("chdir", "os.chdir, subprocess(cwd=)"),
        ALLOW("fchdir", "os.fchdir, os.fwalk"),
        ALLOW("getdents64", "os.listdir, scandir, glob"),
        ALLOW("readlink", "os.readlink, CPython start-up"),
        ALLOW("readlinkat", "os.readlink(dir_fd=), os.path.realpath"),
        ALLOW("mkdir", "os.mkdir, tempfile"),
        ALLOW("mkdirat", "os.mkdir(dir_fd=)"),
        ALLOW("mknodat", "os.mkfifo, os.mknod (no devices: no CAP_MKNOD, /tmp is nodev)"),
        ALLOW("rmdir", "os.rmdir, shutil.rmtree"),
        ALLOW("unlink", "os.unlink, tempfile"),
        ALLOW("unlinkat", "os.unlink(dir_fd=), shutil.rmtree"),
        ALLOW("rename", "os.rename, os.replace, shutil.move"),
        ALLOW("renameat", "os.rename(src_dir_fd=)"),
        ALLOW("renameat2", "mv (RENAME_NOREPLACE; coreutils falls back without it, racily)"),
        ALLOW("link", "os.link"),
        ALLOW("linkat", "os.link(src_dir_fd=)"),
        ALLOW("symlink", "os.symlink"),
        ALLOW("symlinkat", "os.symlink(dir_fd=)"),
        ALLOW("chmod", "os.chmod, shutil.copymode"),
        ALLOW("fchmod", "os.fchmod, os.chmod of a descriptor"),
        ALLOW("fchmodat", "os.chmod(dir_fd=)"),
        ALLOW("chown", "os.chown (to the sandbox's own uid: nothing else is permitted)"),
        ALLOW("fchown", "os.fchown"),
        ALLOW("fchownat", "os.chown(dir_fd=)"),
        ALLOW("lchown", "os.lchown"),
        ALLOW("utimensat", "os.utime, shutil.copystat"),
        ALLOW("getxattr", "os.getxattr, shutil.copystat"),
        ALLOW("lgetxattr", "os.getxattr(follow_symlinks=False)"),
        ALLOW("fgetxattr", "os.getxattr of a descriptor"),
        ALLOW("listxattr", "shutil.copy2 and copytree (copystat lists the attributes)"),
        ALLOW("llistxattr", "shutil.copy2(follow_symlinks=False), os.listxattr"),
        ALLOW("flistxattr", "os.listxattr of a descriptor"),
        ALLOW("setxattr", "os.setxattr, shutil.copystat (user.* in /tmp)"),
        ALLOW("lsetxattr", "os.setxattr(follow_symlinks=False)"),
        ALLOW("fsetxattr", "os.setxattr of a descriptor"),
        ALLOW("removexattr", "os.removexattr"),
        ALLOW("lremovexattr", "os.removexattr(follow_symlinks=False)"),
        ALLOW("fremovexattr", "os.removexattr of a descriptor"),

        /* Sockets: the sandbox's own processes only (AF_UNIX; its netns has no network) */
        ALLOW_IF("socket", 0, EPERM,
                 "AF_UNIX: multiprocessing's Manager and forkserver, "
                 "asyncio",
                 AF_UNIX),
        ALLOW_IF("socketpair", 0, EPERM, "AF_UNIX: socket.socketpair, asyncio, multiprocessing",
                 AF_UNIX),
        ALLOW("bind", "unix sockets in /tmp"),
        ALLOW("listen", "unix sockets in /tmp"),
        ALLOW("accept4", "unix sockets in /tmp"),
        ALLOW("connect", "unix sockets; NSS and libuuid try theirs (absent)"),
        ALLOW("getsockname", "socket.getsockname, multiprocessing"),
        ALLOW("getpeername", "socket.getpeername"),
        ALLOW("getsockopt", "socket.getsockopt, SO_PEERCRED"),
        ALLOW("setsockopt", "socket.setsockopt"),
        ALLOW("sendto", "socket.send, sendto"),
        ALLOW("recvfrom", "socket.recv, recvfrom"),
        ALLOW("sendmsg", "socket.sendmsg, send_fds (multiprocessing's forkserver)"),
        ALLOW("recvmsg", "socket.recvmsg, recv_fds (multiprocessing's forkserver)"),
        ALLOW("shutdown", "socket.shutdown"),
};

const size_t seccomp_table_len = ELEMENTSOF(seccomp_table);
