/* The zygote's root: what every sandbox's own view is made of (view.c).
 *
 * Built once, in the zygote (mount_build_root): a private mount namespace and a tmpfs root
 * holding everything of the view that is not one of the host's read-only trees: a minimal
 * /etc (generated passwd, group, hostname, hosts, plus copies of the loader cache, the
 * timezone, Debian's alternatives, which numpy's BLAS is found through, and the few other
 * entries libraries read), a /dev directory (the mount points of null, zero, random and
 * urandom, and the fd and std* links), and empty /usr, /proc and /tmp. Copies, not binds:
 * each sandbox sees this tmpfs through an overlay of its own, and an overlay shows the
 * files of its layers, not what is mounted on them. Mounted on it, for the zygote and as
 * the layers of the sandboxes' overlays: read-only binds of the host's /usr (and of /bin,
 * /lib*, /sbin where they are directories, not the symlinks into /usr of a merged-/usr
 * system: the `trees`), of the host's /dev (nodev: the zygote opens no device), and an
 * empty read-only tmpfs on /proc (an overlay without an upper layer needs two lower ones).
 * Then pivot_root into it and detach the old root. Nothing of the host's /root, /home,
 * /srv, the service's binary directory or its environment is in the view. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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

#define NEWROOT        "/tmp" /* mount point of the new root in the zygote's namespace */
#define RO_FLAGS       (MS_RDONLY | MS_NOSUID | MS_NODEV)
#define ETC_COPY_DEPTH 4 /* levels of directories copied below an /etc entry */

const char *const mount_trees[MOUNT_N_TREES] = {"usr",   "bin",   "sbin",  "lib",
                                                "lib32", "lib64", "libx32"};
const char *const mount_dev_nodes[MOUNT_N_DEV_NODES] = {"null", "zero", "random", "urandom"};

int mount_error(char *errbuf, size_t errlen, const char *what, const char *path)
{
        int r = -errno;
        (void) snprintf(errbuf, errlen, "%s %s: %s", what, path, strerror(errno));
        return r;
}

int mount_pivot(const char *newroot, char *errbuf, size_t errlen)
{
        /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it
         * leaves only the new root. */
        if (chdir(newroot) < 0)
                return mount_error(errbuf, errlen, "chdir", newroot);
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return mount_error(errbuf, errlen, "pivot_root", newroot);
        if (umount2(".", MNT_DETACH) < 0)
                return mount_error(errbuf, errlen, "detach", "the old root");
        if (chdir("/") < 0)
                return mount_error(errbuf, errlen, "chdir", "/");
        return 0;
}

/* Read-only bind of a host path into the new root (the path must exist there). */
static int bind_ro(const char *src, const char *dst, unsigned long extra, char *errbuf,
                   size_t errlen)
{
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return mount_error(errbuf, errlen, "bind", src);
        /* A bind ignores most flags: apply them with a remount of the bind. */
        if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | extra, NULL) < 0)
                return mount_error(errbuf, errlen, "remount read-only", dst);
        return 0;
}

static int write_file(const char *path, const char *content, char *errbuf, size_t errlen)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        int r;

        if (fd < 0)
                return mount_error(errbuf, errlen, "create", path);
        r = write_all(fd, content, strlen(content));
        (void) close(fd);
        if (r < 0) {
                errno = -r;
                return mount_error(errbuf, errlen, "write", path);
        }
        return 0;
}

/* Creates an empty file or directory at dst, of the same kind as src, as a mount point. */
static int mount_point(const char *dst, bool dir, char *errbuf, size_t errlen)
{
        if (dir) {
                if (mkdir(dst, 0755) < 0 && errno != EEXIST)
                        return mount_error(errbuf, errlen, "mkdir", dst);
                return 0;
        }
        return write_file(dst, "", errbuf, errlen);
}

/* Mirrors the top-level tree mount_trees[i]: a directory becomes a read-only bind (its
 * bit is set in *trees, and each sandbox mounts an overlay of it), a symlink stays a symlink
 * (/bin -> usr/bin on a merged-/usr system), and a missing one is skipped. */
static int mirror_tree(unsigned i, uint32_t *trees, char *errbuf, size_t errlen)
{
        char src[64], dst[64], target[256];
        struct stat st;
        ssize_t n;
        int r;

        (void) snprintf(src, sizeof(src), "/%s", mount_trees[i]);
        (void) snprintf(dst, sizeof(dst), NEWROOT "/%s", mount_trees[i]);
        if (lstat(src, &st) < 0)
                return 0;
        if (S_ISLNK(st.st_mode)) {
                n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return mount_error(errbuf, errlen, "readlink", src);
                target[n] = '\0';
                if (symlink(target, dst) < 0)
                        return mount_error(errbuf, errlen, "symlink", dst);
                return 0;
        }
        if (!S_ISDIR(st.st_mode))
                return 0;
        if ((r = mount_point(dst, true, errbuf, errlen)) < 0 ||
            (r = bind_ro(src, dst, MS_NOSUID | MS_NODEV, errbuf, errlen)) < 0)
                return r;
        *trees |= 1u << i;
        return 0;
}

static int copy_file(const char *src, const char *dst, mode_t mode, char *errbuf, size_t errlen)
{
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        struct stat st;
        int r;

        in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0 || fstat(in, &st) < 0)
                return mount_error(errbuf, errlen, "open", src);
        out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return mount_error(errbuf, errlen, "create", dst);
        r = copy_bytes(out, in, (uint64_t) st.st_size);
        if (r < 0) {
                errno = -r;
                return mount_error(errbuf, errlen, "copy", src);
        }
        if (fchmod(out, mode) < 0)
                return mount_error(errbuf, errlen, "chmod", dst);
        return 0;
}

/* Copies the host's entry src (a file, a symlink or a directory tree) to dst in the new
 * root: files with their content and permission bits (never set-id), symlinks as they are
 * (they resolve in the sandbox's view), directories down to `depth` levels; other kinds
 * are skipped. */
static int copy_entry(const char *src, const char *dst, int depth, char *errbuf, size_t errlen)
{
        DIR *d;
        struct dirent *de;
        struct stat st;
        int r = 0;

        if (lstat(src, &st) < 0)
                return mount_error(errbuf, errlen, "stat", src);
        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return mount_error(errbuf, errlen, "readlink", src);
                target[n] = '\0';
                return symlink(target, dst) < 0 ? mount_error(errbuf, errlen, "symlink", dst) : 0;
        }
        if (S_ISREG(st.st_mode))
                return copy_file(src, dst, st.st_mode & 0777, errbuf, errlen);
        if (!S_ISDIR(st.st_mode) || depth == 0)
                return 0;
        /* Writable by us until it is filled: without CAP_DAC_OVERRIDE (a container's root)
         * even root may not add to a directory of mode 0555. */
        if (mkdir(dst, 0700) < 0)
                return mount_error(errbuf, errlen, "mkdir", dst);
        d = opendir(src);
        if (!d)
                return mount_error(errbuf, errlen, "open directory", src);
        while (r == 0 && (errno = 0, de = readdir(d))) {
                char csrc[PATH_MAX], cdst[PATH_MAX];

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if ((size_t) snprintf(csrc, sizeof(csrc), "%s/%s", src, de->d_name) >=
                            sizeof(csrc) ||
                    (size_t) snprintf(cdst, sizeof(cdst), "%s/%s", dst, de->d_name) >=
                            sizeof(cdst)) {
                        errno = ENAMETOOLONG;
                        r = mount_error(errbuf, errlen, "copy", src);
                        break;
                }
                r = copy_entry(csrc, cdst, depth - 1, errbuf, errlen);
        }
        if (r == 0 && errno != 0)
                r = mount_error(errbuf, errlen, "read directory", src);
        (void) closedir(d);
        if (r == 0 && chmod(dst, st.st_mode & 0777) < 0)
                r = mount_error(errbuf, errlen, "chmod", dst);
        return r;
}

/* /etc: generated identity files, and copies of what libraries need. */
static int build_etc(uid_t uid_base, unsigned slots, char *errbuf, size_t errlen)
{
        static const char *const copies[] = {
                "alternatives",     /* libblas.so.3 and friends resolve through it */
                PYEXECD_PYTHON_ETC, /* python3.X: the stdlib's sitecustomize.py links there */
                "fonts",            /* fontconfig's configuration (matplotlib's font list) */
                "matplotlibrc",     /* Debian's matplotlib reads its defaults there */
                "ld.so.cache",
                "ld.so.conf",
                "ld.so.conf.d",
                "localtime",
                "timezone",
                "nsswitch.conf",
                "mime.types",
                "python3",
        };
        char *passwd = NULL, *group = NULL;
        size_t plen = 0, glen = 0;
        FILE *pf, *gf;
        int r;

        if (mkdir(NEWROOT "/etc", 0755) < 0)
                return mount_error(errbuf, errlen, "mkdir", NEWROOT "/etc");
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
                return mount_error(errbuf, errlen, "generate", "/etc/passwd and /etc/group");
        }
        if (r < 0)
                return r;
        if ((r = write_file(NEWROOT "/etc/hostname", "sandbox\n", errbuf, errlen)) < 0 ||
            (r = write_file(NEWROOT "/etc/hosts", "127.0.0.1 localhost sandbox\n", errbuf,
                            errlen)) < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(copies); i++) {
                char src[128], dst[128];
                struct stat st;

                (void) snprintf(src, sizeof(src), "/etc/%s", copies[i]);
                (void) snprintf(dst, sizeof(dst), NEWROOT "/etc/%s", copies[i]);
                if (lstat(src, &st) < 0)
                        continue;
                if ((r = copy_entry(src, dst, ETC_COPY_DEPTH, errbuf, errlen)) < 0)
                        return r;
        }
        return 0;
}

/* /dev: the mount points of the device nodes each sandbox binds from its overlay of the
 * host's /dev, and the usual links. The host's /dev itself is bound over it for the
 * overlays' sake, nodev: nobody opens a device through it. */
static int build_dev(char *errbuf, size_t errlen)
{
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
                return mount_error(errbuf, errlen, "mkdir", NEWROOT "/dev");
        for (size_t i = 0; i < MOUNT_N_DEV_NODES; i++) {
                char dst[64];
                (void) snprintf(dst, sizeof(dst), NEWROOT "/dev/%s", mount_dev_nodes[i]);
                if ((r = mount_point(dst, false, errbuf, errlen)) < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                char dst[64];
                (void) snprintf(dst, sizeof(dst), NEWROOT "/dev/%s", links[i][1]);
                if (symlink(links[i][0], dst) < 0)
                        return mount_error(errbuf, errlen, "symlink", dst);
        }
        if (mount("/dev", NEWROOT "/dev", NULL, MS_BIND, NULL) < 0)
                return mount_error(errbuf, errlen, "bind", "/dev");
        if (mount(NULL, NEWROOT "/dev", NULL, MS_BIND | MS_REMOUNT | RO_FLAGS | MS_NOEXEC, NULL) <
            0)
                return mount_error(errbuf, errlen, "remount read-only", NEWROOT "/dev");
        return 0;
}

int mount_build_root(uid_t uid_base, unsigned slots, uint32_t *ret_trees, char *errbuf,
                     size_t errlen)
{
        uint32_t trees = 0;
        int r;

        if (unshare(CLONE_NEWNS) < 0)
                return mount_error(errbuf, errlen, "unshare", "mount namespace");
        /* Nothing we mount may propagate back to the host, and nothing of the host's later
         * mounts into us. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return mount_error(errbuf, errlen, "make private", "/");
        if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755") < 0)
                return mount_error(errbuf, errlen, "mount tmpfs on", NEWROOT);

        for (unsigned i = 0; i < MOUNT_N_TREES; i++)
                if ((r = mirror_tree(i, &trees, errbuf, errlen)) < 0)
                        return r;
        if (!(trees & MOUNT_TREE_USR)) {
                errno = ENOTDIR;
                return mount_error(errbuf, errlen, "bind", "/usr");
        }
        if ((r = build_etc(uid_base, slots, errbuf, errlen)) < 0 ||
            (r = build_dev(errbuf, errlen)) < 0 ||
            (r = mount_point(NEWROOT MOUNT_EMPTY, true, errbuf, errlen)) < 0 ||
            (r = mount_point(NEWROOT "/tmp", true, errbuf, errlen)) < 0)
                return r;
        /* The second lower layer of every overlay: empty, and on a file system of its own
         * (a layer may not lie inside another, and the root's overlay has the whole root). */
        if (mount("tmpfs", NEWROOT MOUNT_EMPTY, "tmpfs",
                  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") < 0)
                return mount_error(errbuf, errlen, "mount an empty tmpfs on", NEWROOT MOUNT_EMPTY);

        /* No directory of the host is reachable any more. */
        if ((r = mount_pivot(NEWROOT, errbuf, errlen)) < 0)
                return r;
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | RO_FLAGS, NULL) < 0)
                return mount_error(errbuf, errlen, "remount read-only", "/");
        *ret_trees = trees;
        return 0;
}

int mount_preload_tmp(void)
{
        if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=16m,mode=0700") < 0)
                return -errno;
        return 0;
}
