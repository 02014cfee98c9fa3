/* Per-slot cgroups, set up by the supervisor at start (single-threaded, before the zygote)
 * and reused for every sandbox of the slot: creating and removing a memory cgroup per
 * request leaves "dying" cgroups behind on v1 (docs/design/kernel-costs.md section 6).
 *
 *   v2: <own cgroup>/pyexecd-<pid>/slot-N with memory.max, memory.swap.max=0,
 *       memory.oom.group=1 (an OOM kills the whole sandbox), pids.max, cpu.weight.
 *       In a container whose cgroup holds our processes, the controllers cannot be
 *       enabled for children ("no internal processes"): every process of our cgroup is
 *       first moved into a child cgroup `supervisor` (delegation set-up, as snekbox and
 *       Piston do).
 *   v1: the same tree in the memory and pids hierarchies (and cpu, when mounted), with
 *       memory.limit_in_bytes (+memsw when swap accounting exists) and pids.max.
 *
 * Sandboxes join by writing "0" to the slot's cgroup.procs descriptors, which the zygote
 * holds (opened here, passed over the socket). OOM kills are counted from memory.events
 * (v2) or memory.oom_control (v1), read through descriptors opened here: the supervisor
 * never resolves a path a sandbox could influence. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/fd.h"
#include "util/macro.h"

#define CG_ROOT "/sys/fs/cgroup"

typedef enum HierarchyKind {
        HIER_UNIFIED, /* v2 */
        HIER_MEMORY,
        HIER_PIDS,
        HIER_CPU,
} HierarchyKind;

typedef struct Hierarchy {
        HierarchyKind kind;
        char base[PATH_MAX]; /* .../pyexecd-<pid> */
        int base_fd;         /* directory of base */
        int *slot_fd;        /* directory of each slot */
} Hierarchy;

struct Cgroups {
        int version;
        bool own_mount; /* v2_writable() made the read-only mount writable for us */
        bool can_kill;  /* v2 with cgroup.kill (Linux 5.14) */
        unsigned n_slots;
        unsigned n_hier;
        Hierarchy hier[3];
        int mem_hier;
};

/* dir + "/" + name into buf; -ENAMETOOLONG instead of a silently truncated path. */
static int join(char *buf, size_t len, const char *dir, const char *name)
{
        int n = snprintf(buf, len, "%s/%s", dir, name);
        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

static int fail(char *errbuf, size_t errlen, int r, const char *what, const char *path)
{
        (void) snprintf(errbuf, errlen, "%s %s: %s", what, path, strerror(-r));
        return r;
}

static int write_at(int dirfd, const char *file, const char *value)
{
        int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        int r;

        if (fd < 0)
                return -errno;
        r = write_all(fd, value, strlen(value));
        (void) close(fd);
        return r;
}

static int write_path(const char *path, const char *value)
{
        return write_at(AT_FDCWD, path, value);
}

/* The whole of a (proc) file as a NUL-terminated string the caller frees; its size is not
 * known in advance (stat says 0). At most 4 MiB: a mount table past that is not a host's. */
static int read_text(const char *path, char **ret)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, cap = 0;

        if (fd < 0)
                return -errno;
        for (;;) {
                if (cap - size < 4096) {
                        if (cap >= (4u << 20))
                                return -EFBIG;
                        char *p = realloc(buf, cap ? cap * 2 : 16384);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        cap = cap ? cap * 2 : 16384;
                }
                ssize_t n = read(fd, buf + size, cap - size - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* The directory of this process's cgroup, for a v1 controller or for v2 (controller NULL):
 * the hierarchy's mount point plus our path relative to the mount's root. In a container
 * without its own cgroup namespace, /proc/self/cgroup names the host's path while
 * /sys/fs/cgroup is mounted from that very directory: joining the two naively names
 * nothing (cgroup-path.c). */
static int own_dir(const char *controller, char *ret, size_t len)
{
        _cleanup_free_ char *cgroups = NULL, *mounts = NULL;
        char own[PATH_MAX];
        int r;

        if ((r = read_text("/proc/self/cgroup", &cgroups)) < 0 ||
            (r = cgroup_parse_own_path(cgroups, controller, own, sizeof(own))) < 0 ||
            (r = read_text("/proc/self/mountinfo", &mounts)) < 0)
                return r;
        return cgroup_parse_mount_dir(mounts, controller, own, CG_ROOT, ret, len);
}

static bool file_has_word(const char *path, const char *word)
{
        char buf[512];
        FILE *f = fopen(path, "re");
        bool found = false;

        if (!f)
                return false;
        while (fscanf(f, "%511s", buf) == 1)
                if (strcmp(buf, word) == 0)
                        found = true;
        (void) fclose(f);
        return found;
}

/* v2: make sure `dir` may have children with memory and pids controllers. */
static int v2_delegate(const char *dir, char *errbuf, size_t errlen)
{
        char path[PATH_MAX], sub[PATH_MAX], sub_procs[PATH_MAX], procs[PATH_MAX], pid[32];
        int r;

        if (join(path, sizeof(path), dir, "cgroup.subtree_control") < 0 ||
            join(sub, sizeof(sub), dir, "supervisor") < 0 ||
            join(procs, sizeof(procs), dir, "cgroup.procs") < 0)
                return fail(errbuf, errlen, -ENAMETOOLONG, "path too long:", dir);
        if (file_has_word(path, "memory") && file_has_word(path, "pids"))
                return 0;
        r = write_path(path, "+memory +pids");
        if (r == -EBUSY) {
                /* Processes live in `dir`: move them all (us included) into a leaf. */
                if (mkdir(sub, 0755) < 0 && errno != EEXIST)
                        return fail(errbuf, errlen, -errno, "cannot create", sub);
                if (join(sub_procs, sizeof(sub_procs), sub, "cgroup.procs") < 0)
                        return fail(errbuf, errlen, -ENAMETOOLONG, "path too long:", sub);
                for (int round = 0; round < 10 && r == -EBUSY; round++) {
                        FILE *f = fopen(procs, "re");
                        if (!f)
                                return fail(errbuf, errlen, -errno, "cannot read", procs);
                        while (fscanf(f, "%31s", pid) == 1)
                                (void) write_path(sub_procs, pid); /* may be gone: fine */
                        (void) fclose(f);
                        r = write_path(path, "+memory +pids");
                }
        }
        if (r < 0)
                return fail(errbuf, errlen, r, "cannot enable memory and pids controllers in",
                            path);
        (void) write_path(path, "+cpu"); /* CPU weight is fairness, not isolation */
        return 0;
}

/* v2: if `dir` is the leaf that v2_delegate() of an earlier pyexecd in the same cgroup
 * moved every process into, returns its parent instead (whose controllers are on already):
 * instances started one after another, or side by side, then share one parent and remove
 * each other's stale trees, rather than nesting supervisor/supervisor/... and leaving a
 * killed instance's cgroups where no later one looks. */
static void v2_undo_leaf(char *dir)
{
        char path[PATH_MAX];
        char *slash = strrchr(dir, '/');

        if (!slash || strcmp(slash + 1, "supervisor") != 0 ||
            (size_t) (slash - dir) < strlen(CG_ROOT))
                return;
        *slash = '\0';
        if (join(path, sizeof(path), dir, "cgroup.subtree_control") == 0 &&
            file_has_word(path, "memory") && file_has_word(path, "pids"))
                return;
        *slash = '/';
}

/* v2 in a container: Docker, containerd and Kubernetes mount the container's cgroup
 * namespace at /sys/fs/cgroup read-only unless the container is privileged. A process
 * granted CAP_SYS_ADMIN may make that mount writable: pyexecd does so in a mount namespace
 * of its own (nothing else in the container sees the change), and with it gets exactly
 * the delegation --privileged would give, nothing more. (Mounting cgroup2 afresh there
 * fails with EBUSY: the same superblock and root are already mounted on that point.)
 * Without CAP_SYS_ADMIN, or under an AppArmor profile that denies mount, this fails and
 * pyexecd refuses to start. *ret_done tells whether it remounted. */
static int v2_writable(bool *ret_done, char *errbuf, size_t errlen)
{
        static const struct {
                unsigned long st, ms;
        } keep[] = {
                {ST_NOSUID, MS_NOSUID},         {ST_NODEV, MS_NODEV},
                {ST_NOEXEC, MS_NOEXEC},         {ST_NOATIME, MS_NOATIME},
                {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
        };
        struct statvfs sv;
        unsigned long flags = MS_REMOUNT | MS_BIND;
        const char *what;
        int r;

        *ret_done = false;
        if (statvfs(CG_ROOT, &sv) < 0)
                return fail(errbuf, errlen, -errno, "cannot stat", CG_ROOT);
        if (!(sv.f_flag & ST_RDONLY))
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(keep); i++)
                if (sv.f_flag & keep[i].st)
                        flags |= keep[i].ms;
        /* Single-threaded here (see the top of this file), as unshare(CLONE_NEWNS) needs. */
        what = "a mount namespace of its own";
        if (unshare(CLONE_NEWNS) == 0) {
                what = "the remount";
                if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0 &&
                    mount(NULL, CG_ROOT, NULL, flags, NULL) == 0) {
                        *ret_done = true;
                        return 0;
                }
        }
        r = -errno;
        (void) snprintf(errbuf, errlen,
                        CG_ROOT " is read-only, and making it writable for pyexecd failed (%s: "
                                "%s; it needs CAP_SYS_ADMIN and an AppArmor profile that "
                                "allows mount)",
                        what, strerror(-r));
        return r;
}

static int slot_limits(const Hierarchy *h, int fd, uint64_t mem_bytes, unsigned pids_max)
{
        char v[32];
        int r = 0;

        switch (h->kind) {
        case HIER_UNIFIED:
                (void) snprintf(v, sizeof(v), "%" PRIu64, mem_bytes);
                if ((r = write_at(fd, "memory.max", v)) < 0)
                        return r;
                (void) write_at(fd, "memory.swap.max", "0"); /* absent without swap */
                if ((r = write_at(fd, "memory.oom.group", "1")) < 0)
                        return r;
                (void) snprintf(v, sizeof(v), "%u", pids_max);
                if ((r = write_at(fd, "pids.max", v)) < 0)
                        return r;
                (void) write_at(fd, "cpu.weight", "100");
                return 0;
        case HIER_MEMORY:
                (void) snprintf(v, sizeof(v), "%" PRIu64, mem_bytes);
                if ((r = write_at(fd, "memory.limit_in_bytes", v)) < 0)
                        return r;
                r = write_at(fd, "memory.memsw.limit_in_bytes", v); /* needs swap accounting */
                return r == -ENOENT ? 0 : r;
        case HIER_PIDS:
                (void) snprintf(v, sizeof(v), "%u", pids_max);
                return write_at(fd, "pids.max", v);
        case HIER_CPU:
                return 0; /* default shares: equal for all slots */
        }
        return -EINVAL;
}

/* Removes what hierarchy_setup() made: slot cgroups, then their parent. */
static void hierarchy_free(const Cgroups *cg, Hierarchy *h)
{
        for (unsigned s = 0; h->slot_fd && s < cg->n_slots; s++) {
                char name[32];
                (void) snprintf(name, sizeof(name), "slot-%u", s);
                (void) safe_close(h->slot_fd[s]);
                /* Fails (EBUSY) only if a process remains. */
                (void) unlinkat(h->base_fd, name, AT_REMOVEDIR);
        }
        (void) safe_close(h->base_fd);
        if (h->base[0])
                (void) rmdir(h->base);
        free(h->slot_fd);
        h->slot_fd = NULL;
        *h = (Hierarchy){0};
}

/* Removes the (empty) cgroups of pyexecd instances that died without cleaning up (a
 * SIGKILL, a power cut): pyexecd-<pid> whose pid no longer exists. A cgroup that still
 * holds a process cannot be removed and is left alone. */
static void remove_stale(const char *parent)
{
        DIR *d = opendir(parent);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char *end;
                long pid;
                int fd;

                if (strncmp(de->d_name, "pyexecd-", 8) != 0)
                        continue;
                pid = strtol(de->d_name + 8, &end, 10);
                if (*end != '\0' || pid <= 0 || kill((pid_t) pid, 0) == 0 || errno != ESRCH)
                        continue;
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                DIR *sub = fdopendir(fd);
                if (!sub) {
                        (void) close(fd);
                        continue;
                }
                struct dirent *se;
                while ((se = readdir(sub)))
                        if (strncmp(se->d_name, "slot-", 5) == 0)
                                (void) unlinkat(dirfd(sub), se->d_name, AT_REMOVEDIR);
                (void) closedir(sub);
                (void) unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
        }
        (void) closedir(d);
}

static int hierarchy_setup(Cgroups *cg, Hierarchy *h, const char *parent, uint64_t mem_bytes,
                           unsigned pids_max, char *errbuf, size_t errlen)
{
        int r;

        char name[32];

        h->base_fd = -EBADF;
        remove_stale(parent);
        (void) snprintf(name, sizeof(name), "pyexecd-%d", (int) getpid());
        if (join(h->base, sizeof(h->base), parent, name) < 0)
                return fail(errbuf, errlen, -ENAMETOOLONG, "path too long:", parent);
        if (mkdir(h->base, 0755) < 0 && errno != EEXIST)
                return fail(errbuf, errlen, -errno, "cannot create cgroup", h->base);
        h->base_fd = open(h->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (h->base_fd < 0)
                return fail(errbuf, errlen, -errno, "cannot open", h->base);
        if (h->kind == HIER_UNIFIED) {
                if ((r = write_at(h->base_fd, "cgroup.subtree_control", "+memory +pids")) < 0)
                        return fail(errbuf, errlen, r, "cannot enable controllers in", h->base);
                (void) write_at(h->base_fd, "cgroup.subtree_control", "+cpu");
        }
        h->slot_fd = calloc(cg->n_slots, sizeof(int));
        if (!h->slot_fd)
                return -ENOMEM;
        for (unsigned i = 0; i < cg->n_slots; i++)
                h->slot_fd[i] = -EBADF;
        for (unsigned i = 0; i < cg->n_slots; i++) {
                (void) snprintf(name, sizeof(name), "slot-%u", i);
                if (mkdirat(h->base_fd, name, 0755) < 0 && errno != EEXIST)
                        return fail(errbuf, errlen, -errno, "cannot create cgroup", name);
                h->slot_fd[i] = openat(h->base_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (h->slot_fd[i] < 0)
                        return fail(errbuf, errlen, -errno, "cannot open", name);
                r = slot_limits(h, h->slot_fd[i], mem_bytes, pids_max);
                if (r < 0)
                        return fail(errbuf, errlen, r, "cannot set limits on", name);
        }
        return 0;
}

int cgroup_setup(unsigned n_slots, uint64_t mem_bytes, unsigned pids_max, Cgroups **ret,
                 char *errbuf, size_t errlen)
{
        Cgroups *cg = calloc(1, sizeof(*cg));
        char parent[PATH_MAX];
        int r;

        if (!cg)
                return -ENOMEM;
        cg->n_slots = n_slots;
        cg->mem_hier = -1;

        if (file_has_word(CG_ROOT "/cgroup.controllers", "memory")) {
                cg->version = 2;
                if ((r = v2_writable(&cg->own_mount, errbuf, errlen)) < 0)
                        goto fail;
                if ((r = own_dir(NULL, parent, sizeof(parent))) < 0) {
                        (void) snprintf(errbuf, errlen, "cannot find this process's cgroup: %s",
                                        strerror(-r));
                        goto fail;
                }
                v2_undo_leaf(parent);
                if ((r = v2_delegate(parent, errbuf, errlen)) < 0)
                        goto fail;
                cg->n_hier = 1;
                cg->hier[0].kind = HIER_UNIFIED;
                cg->mem_hier = 0;
                if ((r = hierarchy_setup(cg, &cg->hier[0], parent, mem_bytes, pids_max, errbuf,
                                         errlen)) < 0)
                        goto fail;
                cg->can_kill = n_slots > 0 &&
                               faccessat(cg->hier[0].slot_fd[0], "cgroup.kill", F_OK, 0) == 0;
        } else {
                static const char *const ctrls[] = {"memory", "pids", "cpu"};
                static const HierarchyKind kinds[] = {HIER_MEMORY, HIER_PIDS, HIER_CPU};
                cg->version = 1;
                for (size_t i = 0; i < ELEMENTSOF(ctrls); i++) {
                        struct stat st;
                        r = own_dir(ctrls[i], parent, sizeof(parent));
                        if (r < 0 || stat(parent, &st) < 0) {
                                if (i == 2)
                                        continue; /* cpu is optional */
                                (void) snprintf(
                                        errbuf, errlen,
                                        "no cgroup v2 with the memory controller at " CG_ROOT
                                        ", and no cgroup v1 %s hierarchy",
                                        ctrls[i]);
                                r = -ENOENT;
                                goto fail;
                        }
                        Hierarchy *h = &cg->hier[cg->n_hier++];
                        h->kind = kinds[i];
                        if (h->kind == HIER_MEMORY)
                                cg->mem_hier = (int) cg->n_hier - 1;
                        r = hierarchy_setup(cg, h, parent, mem_bytes, pids_max, errbuf, errlen);
                        if (r < 0 && h->kind == HIER_CPU) {
                                hierarchy_free(cg, h); /* cpu is optional */
                                cg->n_hier--;
                                continue;
                        }
                        if (r < 0)
                                goto fail;
                }
        }
        *ret = cg;
        return 0;
fail:
        cgroup_free(cg);
        return r;
}

bool cgroup_own_mount(const Cgroups *cg)
{
        return cg->own_mount;
}

int cgroup_open_procs(const Cgroups *cg, unsigned slot, int *fds, size_t max, size_t *ret_n)
{
        size_t n = 0;

        for (unsigned i = 0; i < cg->n_hier && n < max; i++) {
                int fd = openat(cg->hier[i].slot_fd[slot], "cgroup.procs",
                                O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        int r = -errno;
                        while (n > 0)
                                (void) close(fds[--n]);
                        return r;
                }
                fds[n++] = fd;
        }
        *ret_n = n;
        return 0;
}

bool cgroup_can_kill(const Cgroups *cg)
{
        return cg->can_kill;
}

int cgroup_kill(const Cgroups *cg, unsigned slot)
{
        /* The kernel sends SIGKILL to every process of the cgroup before the write returns,
         * and kills a child whose fork was under way at that moment as it joins: unlike
         * walking cgroup.procs, nothing can be missed and no pid can be stale. */
        if (!cg->can_kill || slot >= cg->n_slots)
                return -EOPNOTSUPP;
        return write_at(cg->hier[0].slot_fd[slot], "cgroup.kill", "1");
}

/* A small cgroup file of the slot, read in one go into buf (NUL-terminated). */
static int read_slot_file(const Hierarchy *h, unsigned slot, const char *file, char *buf,
                          size_t len)
{
        ssize_t n;
        int fd = openat(h->slot_fd[slot], file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return -errno;
        n = read(fd, buf, len - 1);
        if (n < 0) {
                int r = -errno;
                (void) close(fd);
                return r;
        }
        (void) close(fd);
        buf[n] = '\0';
        return 0;
}

int cgroup_pids_current(const Cgroups *cg, unsigned slot, uint64_t *ret)
{
        char buf[32], *end;
        int r;

        if (slot >= cg->n_slots)
                return -EINVAL;
        for (unsigned i = 0; i < cg->n_hier; i++) {
                const Hierarchy *h = &cg->hier[i];
                if (h->kind != HIER_UNIFIED && h->kind != HIER_PIDS)
                        continue;
                if ((r = read_slot_file(h, slot, "pids.current", buf, sizeof(buf))) < 0)
                        return r;
                errno = 0;
                *ret = strtoull(buf, &end, 10);
                return errno == 0 && end != buf && *end == '\n' ? 0 : -EBADMSG;
        }
        return -ENOENT;
}

int cgroup_oom_kills(const Cgroups *cg, unsigned slot, uint64_t *ret)
{
        const char *file = cg->version == 2 ? "memory.events" : "memory.oom_control";
        char buf[1024], *p;
        int r;

        if (cg->mem_hier < 0)
                return -ENOENT;
        if ((r = read_slot_file(&cg->hier[cg->mem_hier], slot, file, buf, sizeof(buf))) < 0)
                return r;
        p = strstr(buf, "oom_kill ");
        if (!p)
                return -ENOENT; /* kernels before 4.13 */
        *ret = strtoull(p + strlen("oom_kill "), NULL, 10);
        return 0;
}

void cgroup_free(Cgroups *cg)
{
        if (!cg)
                return;
        for (unsigned i = 0; i < cg->n_hier; i++)
                hierarchy_free(cg, &cg->hier[i]);
        free(cg);
}
