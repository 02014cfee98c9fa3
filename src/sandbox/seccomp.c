/* The seccomp filter, built once in the zygote with libseccomp, exported as a BPF program,
 * and loaded by each sandbox as its very last set-up step with seccomp(2): loading a
 * pre-built program costs ~0.1 ms against ~0.4 ms for building it in every child
 * (docs/design/kernel-costs.md section 5).
 *
 * Policy: a deny-list. The product promises `os`, `subprocess`, `threading` and
 * `multiprocessing`; Python's `os` module alone wraps a few hundred system calls, and an
 * allow-list that forgets one turns an ordinary script into a confusing EPERM. So the
 * filter allows by default and denies, with EPERM (never a kill: `subprocess` blocks
 * signals around vfork, and a SIGSYS there would kill the script instead of raising an
 * error it can handle), the kernel surface a script has no business with:
 *   - new namespaces and joining others: unshare, setns, clone/clone3 with CLONE_NEW*
 *     (clone3 is refused with ENOSYS: its flags live in memory seccomp cannot read, and
 *     glibc falls back to clone, whose flags we can check);
 *   - mounts and root changes: mount, umount2, pivot_root, chroot, the new mount API;
 *   - other processes' memory: ptrace, process_vm_readv/writev, process_madvise,
 *     pidfd_getfd, kcmp;
 *   - kernel attack surface with a history of escapes: bpf, perf_event_open, io_uring_*,
 *     userfaultfd, keyctl/add_key/request_key, name_to_handle_at/open_by_handle_at,
 *     fanotify_init, modify_ldt, iopl/ioperm;
 *   - the machine itself: module loading, kexec, reboot, swapon/swapoff, acct, quotactl,
 *     settimeofday/clock_settime/adjtimex, sethostname/setdomainname, syslog, vhangup;
 *   - personality() other than the read-only query;
 *   - sockets of any family but AF_UNIX (the network namespace has no usable interface
 *     anyway; this also closes netlink, packet, vsock, and the like);
 *   - every non-native architecture (i386 and x32 system-call numbers).
 * The allow-list alternative was measured in docs/design/kernel-costs.md section 5: its 78 rules
 * covered a broad numpy/pandas workload but refused fork and subprocess, which this product
 * must allow; moving to an allow-list is a follow-up that needs that workload as a test. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/macro.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const char *const denied[] = {
        "unshare",
        "setns",
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "chroot",
        "open_tree",
        "move_mount",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "process_madvise",
        "pidfd_getfd",
        "kcmp",
        "bpf",
        "perf_event_open",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "userfaultfd",
        "keyctl",
        "add_key",
        "request_key",
        "name_to_handle_at",
        "open_by_handle_at",
        "fanotify_init",
        "modify_ldt",
        "iopl",
        "ioperm",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "quotactl",
        "quotactl_fd",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "sethostname",
        "setdomainname",
        "syslog",
        "vhangup",
        "lookup_dcookie",
        "uselib",
        "nfsservctl",
};

#define NS_FLAGS                                                                                   \
        (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
         CLONE_NEWCGROUP)

static int build(scmp_filter_ctx ctx)
{
        const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
        int r;

        for (size_t i = 0; i < ELEMENTSOF(denied); i++) {
                int nr = seccomp_syscall_resolve_name(denied[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not a syscall on this architecture */
                r = seccomp_rule_add(ctx, eperm, nr, 0);
                if (r < 0)
                        return r;
        }
        /* clone(flags, ...) with any namespace flag set. Each flag is its own rule because
         * a masked comparison can only test for equality. */
        for (unsigned bit = 0; bit < 32; bit++) {
                unsigned long flag = 1UL << bit;
                if (!(NS_FLAGS & flag))
                        continue;
                r = seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
                if (r < 0)
                        return r;
        }
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0)
                return r;
        /* personality(): only the query (0xffffffff) is allowed. */
        r = seccomp_rule_add(ctx, eperm, SCMP_SYS(personality), 1,
                             SCMP_A0(SCMP_CMP_NE, 0xffffffffUL));
        if (r < 0)
                return r;
        /* socket()/socketpair(): AF_UNIX only. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_NE, AF_UNIX));
        if (r < 0)
                return r;
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socketpair), 1,
                             SCMP_A0(SCMP_CMP_NE, AF_UNIX));
        return r;
}

int seccomp_build(SeccompProgram *ret)
{
        scmp_filter_ctx ctx;
        _cleanup_close_ int fd = -EBADF;
        struct sock_filter *insns = NULL;
        off_t size;
        int r;

        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        /* Non-native architectures: refused as a whole (x32 numbers included). */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
        if (r == 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* we set it ourselves */
        if (r == 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); /* binary tree */
        if (r == 0)
                r = build(ctx);
        if (r < 0)
                goto out;

        /* libseccomp 2.5 exports only to a file descriptor. */
        fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                goto out;
        size = lseek(fd, 0, SEEK_END);
        if (size <= 0 || size % (off_t) sizeof(struct sock_filter) != 0) {
                r = -EIO;
                goto out;
        }
        insns = malloc((size_t) size);
        if (!insns) {
                r = -ENOMEM;
                goto out;
        }
        if (pread(fd, insns, (size_t) size, 0) != size) {
                r = -EIO;
                free(insns);
                goto out;
        }
        ret->insns = insns;
        ret->len = (unsigned short) ((size_t) size / sizeof(struct sock_filter));
        r = 0;
out:
        seccomp_release(ctx);
        return r;
}

int seccomp_install(const SeccompProgram *p)
{
        struct sock_fprog prog = {.len = p->len, .filter = p->insns};

        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                return -errno;
        return 0;
}
