/* Each sandbox's view of the file system: the read-only layers of its slot's view, made
 * once per slot by the zygote at start (mount_views_create: a mount namespace per slot,
 * kept by a descriptor), and its own /tmp and /proc, which the sandbox adds in a copy of
 * that namespace (mount_view_enter, mount_view_finish) before it pivots into the view.
 *
 * Why its own: what the kernel attaches to an inode is shared by everyone who reaches that
 * inode, POSIX record locks included (fcntl F_SETLK/F_GETLK, which sqlite3 needs, so the
 * seccomp filter allows them). A read lock on a file or directory of a shared tree would be
 * visible to every other request's F_GETLK, and a write lock on a shared device node would
 * block the others' locks on it (issue 13, finding 6; docs/THREAT-MODEL.md). So no file
 * system a script can reach by path is shared with another sandbox or the host: each is an
 * overlayfs this sandbox mounts (lower layers only, so read-only), whose inodes, and so
 * whose locks, are its own, or a file system that is its own anyway:
 *   /            an overlay of the zygote's root (its /etc, the /dev directory);
 *   /usr         an overlay of the host's /usr (and /bin, /lib... where they are trees);
 *   /dev/null, zero, random, urandom: binds of the nodes of an overlay of the host's /dev,
 *                which is itself never in the view (it has every device of the host);
 *   /tmp         a tmpfs; /proc, a proc of the sandbox's pid namespace.
 * The new root is assembled on the zygote's empty /tmp, pivoted into, and the zygote's tree
 * detached: nothing of it stays reachable. What the sandbox mounted is undone by the kernel
 * when its mount namespace dies with it.
 *
 * Why per slot, not per sandbox: the sandboxes of one slot never run at once (a slot is
 * reused only after its sandbox was reaped), and a record lock dies with the process that
 * holds it, so nothing a lock could carry passes from one to the next; concurrent sandboxes
 * are in different slots. A view made per sandbox cost each one three overlay superblocks,
 * set up (~0.3 ms) and torn down at its exit, each teardown waiting for an expedited RCU
 * grace period: on cgroup v1, where the answer waits for the reap, most of a sequential
 * request's latency (docs/PERFORMANCE.md). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/fd.h"
#include "util/macro.h"

#define VIEW      "/tmp"      /* the new root is assembled here, on the zygote's empty /tmp */
#define HOST_DEV  "/dev"      /* the zygote's bind of the host's /dev */
#define DEV_LAYER MOUNT_EMPTY /* the overlay of HOST_DEV sits here, until the pivot */

/* An overlay of `lower` (a directory of the zygote's tree) on `dst`, with the empty tmpfs as
 * its second layer: without an upper layer overlayfs needs two, and mounts it read-only. */
static int overlay(const char *lower, const char *dst, unsigned long flags, char *errbuf,
                   size_t errlen)
{
        char opts[64];

        (void) snprintf(opts, sizeof(opts), "lowerdir=%s:" MOUNT_EMPTY, lower);
        if (mount("overlay", dst, "overlay", MS_RDONLY | flags, opts) < 0)
                return mount_error(errbuf, errlen, "mount an overlay (overlayfs) of", lower);
        return 0;
}

/* Binds the node `name` of the overlay of the host's /dev onto the view's /dev/name, once
 * it is sure to be the host's device. Where the host's own node is a bind mount (as a
 * user-namespaced container makes them), the overlay shows the file under that bind, and
 * /dev/null would be an empty read-only file: that is refused, not served. */
static int bind_node(const char *name, char *errbuf, size_t errlen)
{
        char host[32], layer[32], dst[32];
        struct stat hst, lst;

        (void) snprintf(host, sizeof(host), HOST_DEV "/%s", name);
        (void) snprintf(layer, sizeof(layer), DEV_LAYER "/%s", name);
        (void) snprintf(dst, sizeof(dst), VIEW "/dev/%s", name);
        if (stat(host, &hst) < 0)
                return mount_error(errbuf, errlen, "stat", host);
        if (stat(layer, &lst) < 0)
                return mount_error(errbuf, errlen, "stat the overlay's", host);
        if (!S_ISCHR(hst.st_mode) || !S_ISCHR(lst.st_mode) || hst.st_rdev != lst.st_rdev) {
                (void) snprintf(errbuf, errlen,
                                "the overlay of /dev shows no device node for %s (is the "
                                "host's node a bind mount?)",
                                host);
                return -ENODEV;
        }
        if (mount(layer, dst, NULL, MS_BIND, NULL) < 0)
                return mount_error(errbuf, errlen, "bind", host);
        return 0;
}

int mount_proc(void)
{
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return -errno;
        return 0;
}

/* Host facts that a fresh proc shows every namespace and no workload needs: the kernel's
 * whole configuration and command line, the host's disks and their I/O counters (a
 * timing channel between requests), interrupt counts, kernel symbols and debug tables.
 * /dev/null (the sandbox's own node) is bound over each, as Docker does for its masked
 * paths: reads see an empty file. A path this kernel lacks is skipped. */
static int mask_proc(char *errbuf, size_t errlen)
{
        static const char *const masked[] = {
                "/proc/config.gz",  "/proc/cmdline",     "/proc/partitions",    "/proc/diskstats",
                "/proc/interrupts", "/proc/kallsyms",    "/proc/kcore",         "/proc/keys",
                "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
        };

        for (size_t i = 0; i < ELEMENTSOF(masked); i++)
                if (mount("/dev/null", masked[i], NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
                        return mount_error(errbuf, errlen, "mask", masked[i]);
        return 0;
}

/* The part of a view that a slot's sandboxes share, one after the other (see the top of
 * this file): the read-only overlays and the device nodes, assembled at VIEW. */
static int view_layers(uint32_t trees, char *errbuf, size_t errlen)
{
        int r;

        /* The root: the zygote's /etc and /dev directory; nothing on it runs. */
        if ((r = overlay("/", VIEW, MS_NOSUID | MS_NODEV | MS_NOEXEC, errbuf, errlen)) < 0)
                return r;
        for (unsigned i = 0; i < MOUNT_N_TREES; i++) {
                char lower[32], dst[32];

                if (!(trees & (1u << i)))
                        continue;
                (void) snprintf(lower, sizeof(lower), "/%s", mount_trees[i]);
                (void) snprintf(dst, sizeof(dst), VIEW "/%s", mount_trees[i]);
                if ((r = overlay(lower, dst, MS_NOSUID | MS_NODEV, errbuf, errlen)) < 0)
                        return r;
        }
        /* Device nodes open through a mount without nodev: this one, never in the view. It
         * covers MOUNT_EMPTY, so it is the last overlay. */
        if ((r = overlay(HOST_DEV, DEV_LAYER, MS_NOSUID | MS_NOEXEC, errbuf, errlen)) < 0)
                return r;
        for (size_t i = 0; i < MOUNT_N_DEV_NODES; i++)
                if ((r = bind_node(mount_dev_nodes[i], errbuf, errlen)) < 0)
                        return r;
        return 0;
}

/* What each sandbox adds to the view it is in: its own /tmp and /proc, and the pivot. */
int mount_view_finish(uid_t uid, gid_t gid, uint64_t tmp_bytes, char *errbuf, size_t errlen)
{
        char opts[128];
        int r;

        /* Only /tmp is writable; nr_inodes caps a flood of empty files as size caps bytes. */
        (void) snprintf(opts, sizeof(opts),
                        "size=%" PRIu64 ",nr_inodes=16384,mode=0700,uid=%u,gid=%u", tmp_bytes,
                        (unsigned) uid, (unsigned) gid);
        if (mount("tmpfs", VIEW "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                return mount_error(errbuf, errlen, "mount tmpfs on", "/tmp");

        /* The zygote's tree is detached, with everything mounted on it. */
        if ((r = mount_pivot(VIEW, errbuf, errlen)) < 0)
                return r;

        /* A proc of the sandbox's own pid namespace: it shows only the script's processes. */
        if ((r = mount_proc()) < 0) {
                errno = -r;
                return mount_error(errbuf, errlen, "mount proc on", "/proc");
        }
        return mask_proc(errbuf, errlen);
}

int mount_sandbox(uid_t uid, gid_t gid, uint64_t tmp_bytes, uint32_t trees, char *errbuf,
                  size_t errlen)
{
        int r = view_layers(trees, errbuf, errlen);

        return r < 0 ? r : mount_view_finish(uid, gid, tmp_bytes, errbuf, errlen);
}

int mount_views_create(uint32_t trees, int *ret_fds, size_t n, char *errbuf, size_t errlen)
{
        int proc = -EBADF, home = -EBADF, r = 0;
        size_t i;

        for (i = 0; i < n; i++)
                ret_fds[i] = -EBADF;
        /* The zygote's pivoted root has no /proc (its /proc is MOUNT_EMPTY, a layer of every
         * overlay): a proc on the empty VIEW, kept by a descriptor and detached at once, so
         * that no view's namespace has it. */
        if (mount("proc", VIEW, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return mount_error(errbuf, errlen, "mount proc on", VIEW);
        proc = open(VIEW, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (proc < 0)
                r = mount_error(errbuf, errlen, "open", "a proc");
        if (umount2(VIEW, MNT_DETACH) < 0 && r == 0)
                r = mount_error(errbuf, errlen, "unmount proc from", VIEW);
        if (r == 0 && (home = openat(proc, "self/ns/mnt", O_RDONLY | O_CLOEXEC)) < 0)
                r = mount_error(errbuf, errlen, "open", "the zygote's mount namespace");
        /* Joining a mount namespace needs CAP_SYS_CHROOT as well, which a container may not
         * grant: asked of the namespace we are in, before leaving it. */
        if (r == 0 && setns(home, CLONE_NEWNS) < 0)
                r = errno == EPERM ? -EPERM
                                   : mount_error(errbuf, errlen, "join", "a mount namespace");
        for (i = 0; i < n && r == 0; i++) {
                /* A copy of the zygote's namespace with the view's layers, kept by its fd. */
                if (unshare(CLONE_NEWNS) < 0)
                        r = mount_error(errbuf, errlen, "unshare", "a mount namespace");
                else if ((r = view_layers(trees, errbuf, errlen)) == 0 &&
                         (ret_fds[i] = openat(proc, "self/ns/mnt", O_RDONLY | O_CLOEXEC)) < 0)
                        r = mount_error(errbuf, errlen, "open", "a view's mount namespace");
                /* Back home, even after a failure (the caller reports it and exits). */
                if (setns(home, CLONE_NEWNS) < 0 && r == 0)
                        r = mount_error(errbuf, errlen, "return to",
                                        "the zygote's mount namespace");
        }
        (void) safe_close(home);
        (void) safe_close(proc);
        if (r < 0)
                for (i = 0; i < n; i++)
                        ret_fds[i] = safe_close(ret_fds[i]);
        return r;
}

int mount_view_enter(int fd)
{
        /* A copy of the slot's view: what this sandbox mounts (its /tmp, /proc) and its
         * pivot stay in the copy, which dies with the sandbox; the slot's layers do not. */
        if (setns(fd, CLONE_NEWNS) < 0 || unshare(CLONE_NEWNS) < 0)
                return -errno;
        return 0;
}

typedef struct ProbeMsg {
        int32_t err;
        char what[200];
} ProbeMsg;

static void probe_view(const void *arg, void *ret_msg)
{
        ProbeMsg *msg = ret_msg;

        if (unshare(CLONE_NEWNS) < 0)
                msg->err = -mount_error(msg->what, sizeof(msg->what), "unshare", "mount namespace");
        else
                msg->err = -mount_sandbox(65534, 65534, 1 << 20, *(const uint32_t *) arg, msg->what,
                                          sizeof(msg->what));
}

int mount_probe_view(uint32_t trees, char *errbuf, size_t errlen)
{
        ProbeMsg msg = {0};
        int r = probe_in_child(probe_view, &trees, &msg, sizeof(msg));

        if (r < 0) {
                (void) snprintf(errbuf, errlen, "the probe of a sandbox's view failed: %s",
                                strerror(-r));
                return r;
        }
        if (msg.err == 0)
                return 0;
        msg.what[sizeof(msg.what) - 1] = '\0';
        (void) snprintf(errbuf, errlen,
                        "cannot build a sandbox's own read-only view (overlayfs: per-sandbox "
                        "inodes, so that no lock is shared; docs/THREAT-MODEL.md): %s",
                        msg.what);
        return msg.err > 0 ? -msg.err : -EIO;
}
