/* The sandbox a script runs in (docs/design/DESIGN.md section 3), applied by the freshly cloned
 * child before any user code, plus the pieces the zygote and the supervisor prepare once.
 *
 * Each step of sandbox_enter() is one SandboxStage; a failure names its stage and errno,
 * the child reports it and exits, and the supervisor answers 500 (fail closed: a script
 * never runs with a configured layer missing). Layers are the Layer bits of config.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"

typedef enum SandboxStage {
        SANDBOX_STAGE_OK = 0,
        SANDBOX_STAGE_CLONE,
        SANDBOX_STAGE_PDEATHSIG,
        SANDBOX_STAGE_NETNS,
        SANDBOX_STAGE_CGROUPS,
        SANDBOX_STAGE_CGROUPNS,
        SANDBOX_STAGE_FDS,
        SANDBOX_STAGE_MOUNTS,
        SANDBOX_STAGE_HOSTNAME,
        SANDBOX_STAGE_SIGNALS,
        SANDBOX_STAGE_RLIMITS,
        SANDBOX_STAGE_CAPABILITIES,
        SANDBOX_STAGE_CREDENTIALS,
        SANDBOX_STAGE_NO_NEW_PRIVS,
        SANDBOX_STAGE_CWD,
        SANDBOX_STAGE_SECCOMP,
        SANDBOX_STAGE_RUNTIME,
        _SANDBOX_STAGE_MAX,
} SandboxStage;

/* A compiled seccomp program (see seccomp.c). */
typedef struct SeccompProgram {
        struct sock_filter *insns;
        unsigned short len;
} SeccompProgram;

#define SANDBOX_MAX_CGROUP_FDS 3

typedef struct SandboxParams {
        uint32_t layers; /* enabled Layer bits */
        uid_t uid;
        gid_t gid;
        uint64_t as_bytes;    /* RLIMIT_AS; 0 = unlimited (sanitizer builds) */
        uint32_t cpu_seconds; /* RLIMIT_CPU */
        unsigned nproc;       /* RLIMIT_NPROC (per uid: each slot has its own) */
        uint64_t tmp_bytes;   /* size of the private /tmp */
        uint32_t trees;       /* mount_build_root's read-only trees */
        int netns_fd;         /* the slot's network namespace */
        int view_fd;          /* the slot's view (mount_views_create), or -1: the sandbox was cloned
                               * with a mount namespace of its own and builds all of its view */
        int cgroup_fds[SANDBOX_MAX_CGROUP_FDS]; /* the slot's cgroup.procs files */
        size_t n_cgroup_fds;
        const SeccompProgram *seccomp;
        const struct PrefaultSet *prefault; /* pages to take before seccomp, or NULL */
} SandboxParams;

/* The clone(2) flags a sandbox is created with, for the enabled layers. */
uint64_t sandbox_clone_flags(uint32_t layers);

/* Applies every enabled layer to the calling (freshly cloned) process. `io` holds the
 * descriptors that become 1..3 (stdout, stderr, ctl); stdin (0) becomes /dev/null of the
 * sandbox's own view, opened once that is in place; every other descriptor is closed, and
 * `io` is updated to the numbers they have when this returns. Returns 0, or -errno with
 * the failing stage in *ret_stage. */
int sandbox_enter(const SandboxParams *p, int io[3], SandboxStage *ret_stage);

/* Lowers the address-space and CPU limits for one job (a request may only lower them). */
int sandbox_apply_job_limits(uint64_t as_bytes, uint32_t cpu_seconds);

/* The RLIMIT_AS for a script allowed `memory_mb`, given the zygote's VmSize: the image the
 * child inherits is not the script's to pay for. 0 when RLIMIT_AS cannot be used (ASan). */
uint64_t sandbox_as_limit(uint64_t zygote_vm_size, uint32_t memory_mb);

const char *sandbox_stage_name(int stage);

/* mount.c: the zygote's read-only root (private mount namespace + pivot_root), which every
 * sandbox's own view is made from (view.c). */
/* The host's read-only trees: mount_trees[i] is bind-mounted into the zygote's root, and
 * bit i set in a `trees` mask, where it is a directory (usr always; the others where /usr
 * is not merged). */
#define MOUNT_N_TREES  7
#define MOUNT_TREE_USR (1u << 0)
extern const char *const mount_trees[MOUNT_N_TREES];
/* The device nodes of the view's /dev. */
#define MOUNT_N_DEV_NODES 4
extern const char *const mount_dev_nodes[MOUNT_N_DEV_NODES];
/* An empty tmpfs of the zygote's root: the second lower layer of every overlay. */
#define MOUNT_EMPTY "/proc"
/* Builds the root and pivots into it; the trees it mounted go to *ret_trees. Returns 0 or
 * -errno with what failed in errbuf. */
int mount_build_root(uid_t uid_base, unsigned slots, uint32_t *ret_trees, char *errbuf,
                     size_t errlen);
/* Formats "what path: strerror(errno)" into errbuf and returns -errno. */
int mount_error(char *errbuf, size_t errlen, const char *what, const char *path);
/* Makes the mount on `newroot` the root, detaches the old one and everything on it, and
 * changes to "/". Returns 0 or -errno with what failed in errbuf. */
int mount_pivot(const char *newroot, char *errbuf, size_t errlen);
/* A small tmpfs on the pivoted zygote's /tmp while it preloads (a module may want a writable
 * directory: matplotlib writes its font cache on import), unmounted (MNT_DETACH, dropping
 * whatever was written) before the first sandbox is cloned. */
int mount_preload_tmp(void);

/* view.c: each sandbox's own view (overlays of the zygote's root and trees, device nodes,
 * /tmp, /proc), built by the sandbox in its own mount namespace. */
int mount_proc(void);
/* Builds the view of a sandbox running as uid/gid, with a /tmp of tmp_bytes, and pivots
 * into it. Returns 0 or -errno with what failed in errbuf. */
int mount_sandbox(uid_t uid, gid_t gid, uint64_t tmp_bytes, uint32_t trees, char *errbuf,
                  size_t errlen);
/* The read-only layers of a view for each of n slots, each in a mount namespace of its
 * own, a copy of the caller's (the zygote's, pivoted), whose descriptor is returned in
 * ret_fds[i]. The caller stays in its own namespace. Returns 0, -EPERM (without a word)
 * where joining a mount namespace is not allowed (no CAP_SYS_CHROOT), or -errno with what
 * failed in errbuf. */
int mount_views_create(uint32_t trees, int *ret_fds, size_t n, char *errbuf, size_t errlen);
/* In a sandbox: enters a copy of its slot's view (setns, then unshare). */
int mount_view_enter(int fd);
/* In a sandbox, in that copy: its /tmp (tmp_bytes, owned by uid/gid), the pivot, its
 * /proc. Returns 0 or -errno with what failed in errbuf. */
int mount_view_finish(uid_t uid, gid_t gid, uint64_t tmp_bytes, char *errbuf, size_t errlen);
/* Start-up check, in the zygote: builds a sandbox's view in a throw-away child, so that a
 * host where overlayfs or the device nodes do not work is refused at start, with what
 * failed in errbuf, rather than failing every request. Returns 0 or -errno. */
int mount_probe_view(uint32_t trees, char *errbuf, size_t errlen);

/* ns.c: one network namespace per slot. */
int netns_create(int *ret_fd);
int netns_enter(int fd);
/* Runs fn(arg, msg) in a forked child, which fills the `len` bytes at msg; they come back
 * to the caller's msg. For start-up probes, which must not change the caller (namespaces,
 * mounts). Returns 0, -errno if no child could be started, -EIO if it died unanswered. */
int probe_in_child(void (*fn)(const void *arg, void *msg), const void *arg, void *msg, size_t len);
/* Start-up probe, in a child: creates the namespaces of `layers` and changes a mount's
 * propagation, as every sandbox will. Fails in about a millisecond where a container
 * forbids it (no CAP_SYS_ADMIN, Docker's default seccomp or AppArmor profile), instead of
 * after the zygote has imported pandas. Returns 0 or -errno, with what failed in errbuf. */
int ns_probe(uint32_t layers, char *errbuf, size_t errlen);

/* caps.c */
/* Start-up check: the service holds the capabilities the layers need besides
 * CAP_SYS_ADMIN. Returns 0 or -EPERM with the missing ones (and what for) in errbuf. */
int caps_probe(uint32_t layers, char *errbuf, size_t errlen);
int caps_drop_bounding(void);
int caps_verify_none(void);

/* seccomp.c */
int seccomp_build(SeccompProgram *ret);
int seccomp_install(const SeccompProgram *p);

/* cgroup.c: per-slot cgroups, owned by the supervisor. */
typedef struct Cgroups Cgroups;
int cgroup_setup(unsigned n_slots, uint64_t mem_bytes, unsigned pids_max, Cgroups **ret,
                 char *errbuf, size_t errlen);
/* True if cgroup_setup() found /sys/fs/cgroup read-only (a container's default) and
 * mounted the container's cgroup2 writable in a mount namespace of pyexecd's own. */
bool cgroup_own_mount(const Cgroups *cg);
/* Opens the slot's cgroup.procs file(s) (one per hierarchy) for the zygote. */
int cgroup_open_procs(const Cgroups *cg, unsigned slot, int *fds, size_t max, size_t *ret_n);
/* True if cgroup_kill() works here: cgroup v2 on Linux 5.14 or later. */
bool cgroup_can_kill(const Cgroups *cg);
/* SIGKILLs every process in the slot's cgroup at once (cgroup.kill). Returns 0, or -errno
 * (-EOPNOTSUPP where cgroup_can_kill() is false). */
int cgroup_kill(const Cgroups *cg, unsigned slot);
/* The slot's pids.current: its tasks (threads) not yet released, zombies and forks under
 * way included (the pids controller charges a fork before the child exists). */
int cgroup_pids_current(const Cgroups *cg, unsigned slot, uint64_t *ret);
/* The slot's count of OOM kills so far. */
int cgroup_oom_kills(const Cgroups *cg, unsigned slot, uint64_t *ret);
/* Removes the cgroups (they must be empty) and frees. NULL is fine. */
void cgroup_free(Cgroups *cg);

/* cgroup-path.c: pure parsers of /proc/self/cgroup and /proc/self/mountinfo text. */
/* This process's cgroup path for a v1 `controller`, or for v2 (controller NULL), "" for
 * the root cgroup. Returns 0, -ENOENT (no such line), -ENAMETOOLONG or -ENOMEM. */
int cgroup_parse_own_path(const char *proc_cgroup, const char *controller, char *ret, size_t len);
/* The directory where cgroup `own` (from cgroup_parse_own_path) appears: the v1
 * hierarchy mounted with `controller`, or the cgroup2 mount on `v2_mount_point`
 * (controller NULL), with the mount's root taken off `own`. The last such mount wins (it
 * hides earlier ones). Returns 0, -ENOENT, -ENAMETOOLONG or -ENOMEM. */
int cgroup_parse_mount_dir(const char *mountinfo, const char *controller, const char *own,
                           const char *v2_mount_point, char *ret, size_t len);
