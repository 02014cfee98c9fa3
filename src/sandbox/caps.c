/* Capabilities: the sandbox starts as root in the host's user namespace and must end with
 * nothing. The bounding set is emptied (so no exec, setuid binary or file capability can
 * bring a capability back), the ambient set cleared, securebits locked so that uid 0 would
 * never regain capabilities, and only then does the process switch to its unprivileged
 * uid, which empties the permitted and effective sets. caps_verify_none() checks the
 * result instead of trusting it. */
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/macro.h"

int caps_drop_bounding(void)
{
        /* Up to the kernel's last capability: PR_CAPBSET_DROP says EINVAL past it. */
        for (unsigned long cap = 0; cap <= 63; cap++) {
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                        if (errno == EINVAL && cap > CAP_LAST_CAP)
                                break;
                        if (errno == EINVAL)
                                continue;
                        return -errno;
                }
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                return -errno;
        /* uid 0 gets no capabilities from exec, and these rules cannot be changed back. */
        if (prctl(PR_SET_SECUREBITS,
                  SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                          SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                          SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
                  0, 0, 0) < 0)
                return -errno;
        return 0;
}

/* This process's capability sets (64 bits in two words). */
static int caps_get(struct __user_cap_data_struct d[2])
{
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};

        return syscall(SYS_capget, &h, d) < 0 ? -errno : 0;
}

int caps_verify_none(void)
{
        struct __user_cap_data_struct d[2];
        int r = caps_get(d);

        if (r < 0)
                return r;
        for (int i = 0; i < 2; i++)
                if (d[i].effective || d[i].permitted || d[i].inheritable)
                        return -EPERM;
        for (unsigned long cap = 0; cap <= CAP_LAST_CAP; cap++)
                if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0)
                        return -EPERM;
        return 0;
}

int caps_probe(uint32_t layers, char *errbuf, size_t errlen)
{
        /* What the credentials layer needs of the service's own effective set. CAP_SYS_ADMIN
         * is ns_probe()'s. A container granted less fails here, before the zygote, rather
         * than at the self-check, or (CAP_KILL) never: the service would start and then be
         * unable to stop a script at its time limit. */
        static const struct {
                unsigned cap;
                const char *name, *need;
        } need[] = {
                {CAP_SETUID, "CAP_SETUID", "each sandbox's own uid"},
                {CAP_SETGID, "CAP_SETGID", "each sandbox's own gid"},
                {CAP_SETPCAP, "CAP_SETPCAP", "emptying a sandbox's bounding set"},
                {CAP_KILL, "CAP_KILL", "stopping a script, of another uid, at its time limit"},
        };
        struct __user_cap_data_struct d[2];
        size_t off = 0;
        int r;

        if (!(layers & LAYER_CREDENTIALS))
                return 0; /* sandboxes stay root: nothing to change, and root may signal root */
        if ((r = caps_get(d)) < 0) {
                (void) snprintf(errbuf, errlen, "cannot read this process's capabilities: %s",
                                strerror(-r));
                return r;
        }
        errbuf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(need); i++) {
                unsigned cap = need[i].cap;
                int n;

                if (d[cap / 32].effective & (1u << (cap % 32)))
                        continue;
                n = snprintf(errbuf + off, errlen - off, "%s%s (%s)",
                             off ? ", " : "it lacks the capabilities ", need[i].name, need[i].need);
                if (n < 0 || (size_t) n >= errlen - off)
                        break;
                off += (size_t) n;
        }
        return errbuf[0] ? -EPERM : 0;
}
