/* The seccomp filter, built once in the zygote with libseccomp, exported as a BPF program,
 * and loaded by each sandbox as its very last set-up step with seccomp(2): loading a
 * pre-built program costs ~0.1 ms against ~0.4 ms for building it in every child
 * (docs/design/kernel-costs.md section 5).
 *
 * Policy: an allow-list, the table of seccomp-table.c (one entry per system call, with
 * why). Every other call, and every call of another architecture (i386 and x32 numbers),
 * is refused with ENOSYS: the answer of a kernel built without that call, which glibc,
 * CPython and the programs a script runs already handle as "older kernel" (clone3 falls
 * back to clone, fchmodat2 to fchmodat, preadv2 with flags becomes EOPNOTSUPP). So does an
 * fcntl, ioctl, madvise, prctl or fadvise argument the table does not list (libseccomp has
 * no per-call default). Never a kill: a script gets an OSError it can handle, and
 * `subprocess` blocks signals around vfork, where a SIGSYS would kill the script instead.
 * The argument filters kept from the deny-list answer EPERM, as before: clone with a
 * namespace flag, personality other than the query, sockets of any family but AF_UNIX.
 * docs/SECCOMP.md has the reasons, the comparison with Docker's profile and the costs. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "sandbox/seccomp-table.h"
#include "util/macro.h"

/* What a call no rule matches gets. */
static const uint32_t default_action = SCMP_ACT_ERRNO(SECCOMP_DEFAULT_ERRNO);

/* One rule: allow (err 0) or refuse with err. A refusal the default gives anyway is left to
 * it (libseccomp refuses a rule whose action is the default's). */
static int add(scmp_filter_ctx ctx, int err, int nr, unsigned n, const struct scmp_arg_cmp *cmp)
{
        uint32_t action = err == 0 ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO((uint32_t) err);

        if (action == default_action)
                return 0;
        return seccomp_rule_add_exact_array(ctx, action, nr, n, cmp);
}

/* The rules of one table entry: what it allows, and (with `otherwise`) the complement. */
static int add_entry(scmp_filter_ctx ctx, const SeccompRule *e, int nr)
{
        int r;

        switch (e->match) {
        case SECCOMP_ANY:
                return add(ctx, 0, nr, 0, NULL);
        case SECCOMP_REFUSE:
                return add(ctx, e->otherwise, nr, 0, NULL);
        case SECCOMP_ARG_IN:
                for (size_t i = 0; i < e->n_values; i++) {
                        struct scmp_arg_cmp eq = SCMP_CMP64(e->arg, SCMP_CMP_EQ, e->values[i]);
                        if ((r = add(ctx, 0, nr, 1, &eq)) < 0)
                                return r;
                }
                if (e->otherwise == 0)
                        return 0;
                if (e->n_values != 1)
                        return -EINVAL; /* the complement of a set is not one comparison */
                {
                        struct scmp_arg_cmp ne = SCMP_CMP64(e->arg, SCMP_CMP_NE, e->values[0]);
                        return add(ctx, e->otherwise, nr, 1, &ne);
                }
        case SECCOMP_ARG_CLEAR: {
                const uint64_t bits = e->values[0];
                struct scmp_arg_cmp clear = SCMP_CMP64(e->arg, SCMP_CMP_MASKED_EQ, bits, 0);

                if (e->n_values != 1)
                        return -EINVAL;
                if ((r = add(ctx, 0, nr, 1, &clear)) < 0)
                        return r;
                /* Each bit its own rule: a masked comparison can only test for equality. */
                for (unsigned b = 0; e->otherwise != 0 && b < 64; b++) {
                        uint64_t bit = UINT64_C(1) << b;
                        struct scmp_arg_cmp set = SCMP_CMP64(e->arg, SCMP_CMP_MASKED_EQ, bit, bit);

                        if ((bits & bit) && (r = add(ctx, e->otherwise, nr, 1, &set)) < 0)
                                return r;
                }
                return 0;
        }
        }
        return -EINVAL;
}

static int build(scmp_filter_ctx ctx)
{
        for (size_t i = 0; i < seccomp_table_len; i++) {
                const SeccompRule *e = &seccomp_table[i];
                int nr = seccomp_syscall_resolve_name(e->name);
                int r;

                /* Unknown to this libseccomp: not a call of this architecture, or newer than
                 * the library; left to the default answer (tests/unit checks the table
                 * resolves with the library it is built with). */
                if (nr == __NR_SCMP_ERROR)
                        continue;
                r = add_entry(ctx, e, nr);
                if (r < 0)
                        return r;
        }
        return 0;
}

int seccomp_build(SeccompProgram *ret)
{
        scmp_filter_ctx ctx;
        _cleanup_close_ int fd = -EBADF;
        struct sock_filter *insns = NULL;
        off_t size;
        int r;

        ctx = seccomp_init(default_action);
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
        if (size <= 0 || size % (off_t) sizeof(struct sock_filter) != 0 ||
            size / (off_t) sizeof(struct sock_filter) > BPF_MAXINSNS) {
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
