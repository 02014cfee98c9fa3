/* The sandbox's file-system view.
 *
 * Built once, in the zygote (mount_build_root): a private mount namespace, a tmpfs root
 * holding read-only binds of /usr (and /bin, /lib*, /sbin: symlinks on merged-/usr systems,
 * binds otherwise), a minimal /etc (generated passwd, group, hostname, hosts, plus read-only
 * binds of the loader cache, timezone and Debian's alternatives, which numpy's BLAS is
 * found through), a minimal /dev (null, zero, random, urandom), and empty /proc and /tmp
 * mount points; then pivot_root into it and detach the old root. Every sandbox inherits
 * that view and only adds its own size-capped tmpfs on /tmp and a proc for its pid
 * namespace (mount_sandbox). Nothing of the host's /root, /home, /srv, the service's
 * binary directory or its environment is in the view. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/fd.h"
#include "util/macro.h"

#ifndef PYEXECD_PYTHON_ETC
#error "PYEXECD_PYTHON_ETC (\"python3.X\") is set by the build: src/sandbox/meson.build"
#endif

#define NEWROOT  "/tmp" /* mount point of the new root in the zygote's namespace */
#define RO_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV)

static int err(char *errbuf, size_t errlen, const char *what, const char *path)
{
        int r = -errno;
        (void) snprintf(errbuf, errlen, "%s %s: %s", what, path, strerror(errno));
        return r;
}

/* Read-only bind of a host path into the new root (the path must exist there). */
static int bind_ro(const char *src, const char *dst, unsigned long extra, char *errbuf,
                   size_t errlen)
{
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return err(errbuf, errlen, "bind", src);
        /* A bind ignores most flags: apply them with a remount of the bind. */
        if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | extra, NULL) < 0)
                return err(errbuf, errlen, "remount read-only", dst);
        return 0;
}

static int write_file(const char *path, const char *content, char *errbuf, size_t errlen)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        int r;

        if (fd < 0)
                return err(errbuf, errlen, "create", path);
        r = write_all(fd, content, strlen(content));
        (void) close(fd);
        if (r < 0) {
                errno = -r;
                return err(errbuf, errlen, "write", path);
        }
        return 0;
}

/* Creates an empty file or directory at dst, of the same kind as src, as a mount point. */
static int mount_point(const char *dst, bool dir, char *errbuf, size_t errlen)
{
        if (dir) {
                if (mkdir(dst, 0755) < 0 && errno != EEXIST)
                        return err(errbuf, errlen, "mkdir", dst);
                return 0;
        }
        return write_file(dst, "", errbuf, errlen);
}

/* Mirrors a top-level entry such as /bin or /lib64: a symlink stays a symlink (merged
 * /usr), a directory becomes a read-only bind, and a missing one is skipped. */
static int mirror_top(const char *name, char *errbuf, size_t errlen)
{
        char src[64], dst[64], target[256];
        struct stat st;
        ssize_t n;

        (void) snprintf(src, sizeof(src), "/%s", name);
        (void) snprintf(dst, sizeof(dst), NEWROOT "/%s", name);
        if (lstat(src, &st) < 0)
                return 0;
        if (S_ISLNK(st.st_mode)) {
                n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return err(errbuf, errlen, "readlink", src);
                target[n] = '\0';
                if (symlink(target, dst) < 0)
                        return err(errbuf, errlen, "symlink", dst);
                return 0;
        }
        if (!S_ISDIR(st.st_mode))
                return 0;
        int r = mount_point(dst, true, errbuf, errlen);
        return r < 0 ? r : bind_ro(src, dst, MS_NOSUID | MS_NODEV, errbuf, errlen);
}

/* /etc: generated identity files, and read-only binds of what libraries need. */
static int build_etc(uid_t uid_base, unsigned slots, char *errbuf, size_t errlen)
{
        static const char *const binds[] = {
                "alternatives",     /* libblas.so.3 and friends resolve through it */
                PYEXECD_PYTHON_ETC, /* python3.X: the stdlib's sitecustomize.py links there */
                "ld.so.cache",      "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
                "nsswitch.conf",    "mime.types", "python3",      "fonts", /* fontconfig's
                                                                              configuration
                                                                              (matplotlib's font
                                                                              list) */
                "matplotlibrc", /* Debian's matplotlib reads its defaults there */
        };
        char *passwd = NULL, *group = NULL;
        size_t plen = 0, glen = 0;
        FILE *pf, *gf;
        int r;

        if (mkdir(NEWROOT "/etc", 0755) < 0)
                return err(errbuf, errlen, "mkdir", NEWROOT "/etc");
        /* One name for every slot's uid, so getpass.getuser() and `id` work in each. */
        pf = open_memstream(&passwd, &plen);
        gf = open_memstream(&group, &glen);
        if (pf && gf) {
                (void) fputs("root:x:0:0:root:/root:/usr/sbin/nologin\n", pf);
                (void) fputs("root:x:0:\n", gf);
                for (unsigned i = 0; i < slots; i++) {
                        uint32_t id = (uint32_t) uid_base + i;
                        (void) fprintf(pf,
                                       "sandbox:x:%" PRIu32 ":%" PRIu32
                                       ":sandbox:/tmp:/usr/sbin/nologin\n",
                                       id, id);
                        (void) fprintf(gf, "sandbox:x:%" PRIu32 ":\n", id);
                }
                (void) fputs("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", pf);
                (void) fputs("nogroup:x:65534:\n", gf);
        }
        r = (pf && fclose(pf) == 0) + (gf && fclose(gf) == 0) == 2 ? 0 : -ENOMEM;
        if (r == 0 && (r = write_file(NEWROOT "/etc/passwd", passwd, errbuf, errlen)) == 0)
                r = write_file(NEWROOT "/etc/group", group, errbuf, errlen);
        free(passwd);
        free(group);
        if (r == -ENOMEM) {
                errno = ENOMEM;
                return err(errbuf, errlen, "generate", "/etc/passwd and /etc/group");
        }
        if (r < 0)
                return r;
        if ((r = write_file(NEWROOT "/etc/hostname", "sandbox\n", errbuf, errlen)) < 0 ||
            (r = write_file(NEWROOT "/etc/hosts", "127.0.0.1 localhost sandbox\n", errbuf,
                            errlen)) < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(binds); i++) {
                char src[128], dst[128];
                struct stat st;

                (void) snprintf(src, sizeof(src), "/etc/%s", binds[i]);
                (void) snprintf(dst, sizeof(dst), NEWROOT "/etc/%s", binds[i]);
                if (stat(src, &st) < 0)
                        continue;
                if ((r = mount_point(dst, S_ISDIR(st.st_mode), errbuf, errlen)) < 0 ||
                    (r = bind_ro(src, dst, MS_NOSUID | MS_NODEV, errbuf, errlen)) < 0)
                        return r;
        }
        return 0;
}

static int build_dev(char *errbuf, size_t errlen)
{
        static const char *const nodes[] = {"null", "zero", "random", "urandom"};
        static const char *const links[][2] = {
                {"/proc/self/fd", "fd"},
                {"/proc/self/fd/0", "stdin"},
                {"/proc/self/fd/1", "stdout"},
                {"/proc/self/fd/2", "stderr"},
                /* POSIX semaphores (multiprocessing) live in /dev/shm: the private /tmp. */
                {"/tmp", "shm"},
        };
        int r;

        if (mkdir(NEWROOT "/dev", 0755) < 0)
                return err(errbuf, errlen, "mkdir", NEWROOT "/dev");
        if (mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") <
            0)
                return err(errbuf, errlen, "mount tmpfs on", NEWROOT "/dev");
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                char src[64], dst[64];
                (void) snprintf(src, sizeof(src), "/dev/%s", nodes[i]);
                (void) snprintf(dst, sizeof(dst), NEWROOT "/dev/%s", nodes[i]);
                if ((r = mount_point(dst, false, errbuf, errlen)) < 0)
                        return r;
                /* Device nodes: read-write, but nosuid and noexec. */
                if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                        return err(errbuf, errlen, "bind", src);
                if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC, NULL) < 0)
                        return err(errbuf, errlen, "remount", dst);
        }
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                char dst[64];
                (void) snprintf(dst, sizeof(dst), NEWROOT "/dev/%s", links[i][1]);
                if (symlink(links[i][0], dst) < 0)
                        return err(errbuf, errlen, "symlink", dst);
        }
        if (mount(NULL, NEWROOT "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
                  "size=64k,mode=0755") < 0)
                return err(errbuf, errlen, "remount read-only", NEWROOT "/dev");
        return 0;
}

int mount_build_root(uid_t uid_base, unsigned slots, char *errbuf, size_t errlen)
{
        static const char *const top[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
        int r;

        if (unshare(CLONE_NEWNS) < 0)
                return err(errbuf, errlen, "unshare", "mount namespace");
        /* Nothing we mount may propagate back to the host, and nothing of the host's later
         * mounts into us. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return err(errbuf, errlen, "make private", "/");
        if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
                return err(errbuf, errlen, "mount tmpfs on", NEWROOT);

        if ((r = mount_point(NEWROOT "/usr", true, errbuf, errlen)) < 0 ||
            (r = bind_ro("/usr", NEWROOT "/usr", MS_NOSUID | MS_NODEV, errbuf, errlen)) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(top); i++)
                if ((r = mirror_top(top[i], errbuf, errlen)) < 0)
                        return r;
        if ((r = build_etc(uid_base, slots, errbuf, errlen)) < 0 ||
            (r = build_dev(errbuf, errlen)) < 0 ||
            (r = mount_point(NEWROOT "/proc", true, errbuf, errlen)) < 0 ||
            (r = mount_point(NEWROOT "/tmp", true, errbuf, errlen)) < 0)
                return r;

        /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it
         * leaves only the new root (no directory of the host is reachable any more). */
        if (chdir(NEWROOT) < 0)
                return err(errbuf, errlen, "chdir", NEWROOT);
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return err(errbuf, errlen, "pivot_root", NEWROOT);
        if (umount2(".", MNT_DETACH) < 0)
                return err(errbuf, errlen, "detach", "old root");
        if (chdir("/") < 0)
                return err(errbuf, errlen, "chdir", "/");
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | RO_FLAGS, NULL) < 0)
                return err(errbuf, errlen, "remount read-only", "/");
        return 0;
}

int mount_preload_tmp(void)
{
        if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=16m,mode=0700") < 0)
                return -errno;
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
 * /dev/null is bound over each, as Docker does for its masked paths: reads see an empty
 * file. A path this kernel lacks is skipped. */
static int mask_proc(void)
{
        static const char *const masked[] = {
                "/proc/config.gz",  "/proc/cmdline",     "/proc/partitions",    "/proc/diskstats",
                "/proc/interrupts", "/proc/kallsyms",    "/proc/kcore",         "/proc/keys",
                "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
        };

        for (size_t i = 0; i < ELEMENTSOF(masked); i++)
                if (mount("/dev/null", masked[i], NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
                        return -errno;
        return 0;
}

int mount_sandbox(uid_t uid, gid_t gid, uint64_t tmp_bytes)
{
        char opts[128];

        /* Only /tmp is writable; nr_inodes caps a flood of empty files as size caps bytes. */
        (void) snprintf(opts, sizeof(opts),
                        "size=%" PRIu64 ",nr_inodes=16384,mode=0700,uid=%u,gid=%u", tmp_bytes,
                        (unsigned) uid, (unsigned) gid);
        if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                return -errno;
        /* A proc of the sandbox's own pid namespace: it shows only the script's processes. */
        int r = mount_proc();
        return r < 0 ? r : mask_proc();
}
