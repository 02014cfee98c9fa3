/* The sandbox's seccomp policy as data: one table, seccomp-table.c, of every system call a
 * script may make (and the few refused with an answer of their own), each with the reason
 * it is there. seccomp.c compiles it; tests/unit/test-sandbox-seccomp.c and the security
 * suite check it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* What a call that no rule allows gets: "no such system call", as from a kernel built
 * without it (docs/SECCOMP.md, "The default answer"). */
#define SECCOMP_DEFAULT_ERRNO 38 /* ENOSYS */

typedef enum SeccompMatch {
        SECCOMP_ANY,       /* allowed whatever its arguments */
        SECCOMP_ARG_IN,    /* allowed if argument `arg` equals one of `values` */
        SECCOMP_ARG_CLEAR, /* allowed if argument `arg` has none of the bits of values[0] */
        SECCOMP_REFUSE,    /* refused with `otherwise`, whatever its arguments */
} SeccompMatch;

typedef struct SeccompRule {
        const char *name; /* as libseccomp names it (seccomp_syscall_resolve_name) */
        SeccompMatch match;
        unsigned arg;
        const uint64_t *values;
        size_t n_values;
        /* The errno of the calls the rule does not allow; 0 for the default. Non-zero only
         * where the complement is one comparison per rule: SECCOMP_ARG_IN with one value,
         * SECCOMP_ARG_CLEAR (one rule per bit), SECCOMP_REFUSE. */
        int otherwise;
        const char *why;
} SeccompRule;

extern const SeccompRule seccomp_table[];
extern const size_t seccomp_table_len;
