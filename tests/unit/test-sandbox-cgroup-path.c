/* Unit tests for sandbox/cgroup-path.c: finding this process's cgroup directory from
 * /proc/self/cgroup and /proc/self/mountinfo on every layout a host or container shows:
 * a cgroup v2 host (systemd), a v2 container with and without its own cgroup namespace,
 * a hybrid v1 + v2 host (this project's development VM), a v1 container, and hostile or
 * odd lines. The v2 line "0::/" was once not recognised at all, so that pyexecd could not
 * start in any Docker container on a cgroup v2 host. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sandbox/sandbox.h"

#define V2_MOUNT "/sys/fs/cgroup"

/* The directory for `controller` (NULL: v2), or "" with the error in *ret_r. */
static const char *dir_of(const char *proc_cgroup, const char *mountinfo, const char *controller,
                          int *ret_r)
{
        static char own[256], dir[256];

        dir[0] = '\0';
        *ret_r = cgroup_parse_own_path(proc_cgroup, controller, own, sizeof(own));
        if (*ret_r == 0)
                *ret_r = cgroup_parse_mount_dir(mountinfo, controller, own, V2_MOUNT, dir,
                                                sizeof(dir));
        return dir;
}

static void test_v2_host(void **state)
{
        const char *cg = "0::/system.slice/pyexecd.service\n";
        const char *mi = "22 1 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - "
                         "cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        int r;

        assert_string_equal(dir_of(cg, mi, NULL, &r),
                            "/sys/fs/cgroup/system.slice/pyexecd.service");
        assert_int_equal(r, 0);
        /* No v1 hierarchy here. */
        (void) dir_of(cg, mi, "memory", &r);
        assert_int_equal(r, -ENOENT);
}

static void test_v2_container_own_namespace(void **state)
{
        /* Docker's default on v2 (cgroupns=private): we are at the namespace's root. The
         * line before the v2 one is from an overlay root with a long option list. */
        const char *cg = "0::/\n";
        const char *mi = "545 480 0:52 / / rw,relatime master:259 - overlay overlay "
                         "rw,lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B\n"
                         "552 545 0:56 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - "
                         "cgroup2 cgroup rw,nsdelegate,memory_recursiveprot\n";
        char own[64];
        int r;

        assert_int_equal(cgroup_parse_own_path(cg, NULL, own, sizeof(own)), 0);
        assert_string_equal(own, "");
        assert_string_equal(dir_of(cg, mi, NULL, &r), "/sys/fs/cgroup");
        assert_int_equal(r, 0);
}

static void test_v2_container_host_namespace(void **state)
{
        /* --cgroupns=host: /proc/self/cgroup names the host's path, and /sys/fs/cgroup is a
         * mount of exactly that directory. */
        const char *cg = "0::/system.slice/docker-0123abcd.scope\n";
        const char *mi = "600 545 0:27 /system.slice/docker-0123abcd.scope /sys/fs/cgroup "
                         "rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n";
        int r;

        assert_string_equal(dir_of(cg, mi, NULL, &r), "/sys/fs/cgroup");
        assert_int_equal(r, 0);
        /* Already moved into a child of the mounted directory. */
        assert_string_equal(
                dir_of("0::/system.slice/docker-0123abcd.scope/supervisor\n", mi, NULL, &r),
                "/sys/fs/cgroup/supervisor");
        assert_int_equal(r, 0);
        /* A mount of another cgroup (not an ancestor of ours) does not show ours. */
        (void) dir_of("0::/system.slice/docker-0123abcdef.scope\n", mi, NULL, &r);
        assert_int_equal(r, -ENOENT);
}

static void test_hybrid_host(void **state)
{
        /* This project's development VM: v1 controllers plus an empty v2 at .../unified. */
        const char *cg = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n4:memory:/process_api/9ad7\n"
                         "2:cpuacct:/\n1:cpu:/\n0::/\n";
        const char *mi =
                "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
                "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
                "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
                "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
                "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
                "rw,name=systemd\n"
                "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        int r;

        assert_string_equal(dir_of(cg, mi, "memory", &r), "/sys/fs/cgroup/memory/process_api/9ad7");
        assert_int_equal(r, 0);
        assert_string_equal(dir_of(cg, mi, "pids", &r), "/sys/fs/cgroup/pids");
        assert_int_equal(r, 0);
        assert_string_equal(dir_of(cg, mi, "cpu", &r), "/sys/fs/cgroup/cpu");
        assert_int_equal(r, 0);
        /* The v2 line exists, but no cgroup2 is mounted on /sys/fs/cgroup itself. */
        (void) dir_of(cg, mi, NULL, &r);
        assert_int_equal(r, -ENOENT);
        /* "name=systemd" is not a controller called "systemd". */
        (void) dir_of(cg, mi, "systemd", &r);
        assert_int_equal(r, -ENOENT);
}

static void test_v1_container(void **state)
{
        /* v1 without a cgroup namespace: the host path in /proc/self/cgroup, the mount's
         * root is that path; controllers share a hierarchy (cpu,cpuacct). */
        const char *cg = "6:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n";
        const char *mi = "700 690 0:33 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup "
                         "cgroup rw,memory\n"
                         "701 690 0:34 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup "
                         "cgroup rw,cpu,cpuacct\n";
        int r;

        assert_string_equal(dir_of(cg, mi, "memory", &r), "/sys/fs/cgroup/memory");
        assert_int_equal(r, 0);
        assert_string_equal(dir_of(cg, mi, "cpuacct", &r), "/sys/fs/cgroup/cpu,cpuacct");
        assert_int_equal(r, 0);
        /* A controller is a whole token of the list, not a substring. */
        (void) dir_of(cg, mi, "cpuset", &r);
        assert_int_equal(r, -ENOENT);
        (void) dir_of(cg, mi, "pu", &r);
        assert_int_equal(r, -ENOENT);
}

static void test_odd_lines(void **state)
{
        char own[16];

        /* A path may contain ':'. */
        assert_int_equal(cgroup_parse_own_path("0::/a:b:c\n", NULL, own, sizeof(own)), 0);
        assert_string_equal(own, "/a:b:c");
        /* Last line without a newline. */
        assert_int_equal(cgroup_parse_own_path("1:pids:/x\n0::/y", NULL, own, sizeof(own)), 0);
        assert_string_equal(own, "/y");
        /* Garbage, empty input, a relative path, and too long a path. */
        assert_int_equal(cgroup_parse_own_path("", NULL, own, sizeof(own)), -ENOENT);
        assert_int_equal(cgroup_parse_own_path("garbage\n0:\n::\n", NULL, own, sizeof(own)),
                         -ENOENT);
        assert_int_equal(cgroup_parse_own_path("0::relative\n", NULL, own, sizeof(own)), -ENOENT);
        assert_int_equal(cgroup_parse_own_path("0::/0123456789abcdef\n", NULL, own, sizeof(own)),
                         -ENAMETOOLONG);
        /* "10::/" is not the v2 line "0::". */
        assert_int_equal(cgroup_parse_own_path("10::/z\n", NULL, own, sizeof(own)), -ENOENT);
}

static void test_mountinfo_details(void **state)
{
        char dir[64];

        /* The last mount on the point wins: it hides the earlier ones. */
        const char *two = "1 0 0:1 / /sys/fs/cgroup ro - cgroup2 cgroup rw\n"
                          "2 0 0:2 /sub /sys/fs/cgroup rw - cgroup2 cgroup rw\n";
        assert_int_equal(cgroup_parse_mount_dir(two, NULL, "/sub/x", V2_MOUNT, dir, sizeof(dir)),
                         0);
        assert_string_equal(dir, "/sys/fs/cgroup/x");
        /* Optional tags between the options and "-", and \040 escapes in the fields. */
        const char *tags = "3 0 0:3 /a\\040b /sys/fs/cgroup rw shared:1 master:2 - cgroup2 x rw\n";
        assert_int_equal(cgroup_parse_mount_dir(tags, NULL, "/a b/c", V2_MOUNT, dir, sizeof(dir)),
                         0);
        assert_string_equal(dir, "/sys/fs/cgroup/c");
        /* A cgroup2 mount elsewhere is not the one we use; truncated lines are skipped. */
        assert_int_equal(cgroup_parse_mount_dir("4 0 0:4 / /mnt rw - cgroup2 x rw\n"
                                                "5 0 0:5 / /sys/fs/cgroup rw -\n",
                                                NULL, "", V2_MOUNT, dir, sizeof(dir)),
                         -ENOENT);
        /* The directory does not fit. */
        assert_int_equal(cgroup_parse_mount_dir("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 c rw\n",
                                                NULL, "/0123456789012345678901234567890123456789",
                                                V2_MOUNT, dir, 32),
                         -ENAMETOOLONG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_v2_host),
                cmocka_unit_test(test_v2_container_own_namespace),
                cmocka_unit_test(test_v2_container_host_namespace),
                cmocka_unit_test(test_hybrid_host),
                cmocka_unit_test(test_v1_container),
                cmocka_unit_test(test_odd_lines),
                cmocka_unit_test(test_mountinfo_details),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
