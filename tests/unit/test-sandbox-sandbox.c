/* Unit tests for the pure parts of sandbox/sandbox: the RLIMIT_AS a job gets, the clone
 * flags of each layer, and the names of set-up stages (which end up in INTERNAL error
 * messages, so an out-of-range stage from a confused child must not be read out of
 * bounds). */
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sandbox/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

static void test_as_limit(void **state)
{
#ifdef TEST_ASAN
        /* Under ASan, RLIMIT_AS is off: memory is bounded by cgroups there. */
        assert_int_equal(sandbox_as_limit(100ULL << 20, 256), 0);
        skip();
#else
        /* The zygote's image is not the script's to pay for: the limit is on top of it. */
        assert_int_equal(sandbox_as_limit(100ULL << 20, 256), 356ULL << 20);
        assert_int_equal(sandbox_as_limit(0, 1), 1ULL << 20);
        assert_int_equal(sandbox_as_limit(123456789, 16), 123456789ULL + (16ULL << 20));
        /* The largest memory_mb config accepts (1 TiB) does not overflow 32 bits. */
        assert_int_equal(sandbox_as_limit(1ULL << 30, 1048576), (1ULL << 40) + (1ULL << 30));
        assert_int_equal(sandbox_as_limit(0, UINT32_MAX), (uint64_t) UINT32_MAX << 20);
#endif
}

static void test_stage_names(void **state)
{
        static const struct {
                int stage;
                const char *name;
        } named[] = {
                {SANDBOX_STAGE_CLONE, "clone"},
                {SANDBOX_STAGE_RLIMITS, "rlimits"},
                {SANDBOX_STAGE_CREDENTIALS, "credentials"},
                {SANDBOX_STAGE_NO_NEW_PRIVS, "no_new_privs"},
                {SANDBOX_STAGE_SECCOMP, "seccomp"},
                {SANDBOX_STAGE_MOUNTS, "mounts"},
        };

        for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
                assert_string_equal(sandbox_stage_name(named[i].stage), named[i].name);
        /* Every stage has its own name. */
        for (int s = 0; s < _SANDBOX_STAGE_MAX; s++) {
                const char *name = sandbox_stage_name(s);
                assert_non_null(name);
                assert_true(strlen(name) > 0);
                assert_string_not_equal(name, "unknown");
                for (int t = 0; t < s; t++)
                        assert_string_not_equal(name, sandbox_stage_name(t));
        }
        assert_string_equal(sandbox_stage_name(-1), "unknown");
        assert_string_equal(sandbox_stage_name(_SANDBOX_STAGE_MAX), "unknown");
        assert_string_equal(sandbox_stage_name(INT_MAX), "unknown");
        assert_string_equal(sandbox_stage_name(INT_MIN), "unknown");
}

static void test_clone_flags(void **state)
{
        const uint64_t ns = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;

        assert_int_equal(sandbox_clone_flags(_LAYER_ALL), ns);
        assert_int_equal(sandbox_clone_flags(0), 0);
        assert_int_equal(sandbox_clone_flags(LAYER_PIDNS), CLONE_NEWPID);
        assert_int_equal(sandbox_clone_flags(LAYER_MOUNTNS), CLONE_NEWNS);
        assert_int_equal(sandbox_clone_flags(LAYER_IPCNS), CLONE_NEWIPC);
        assert_int_equal(sandbox_clone_flags(LAYER_UTSNS), CLONE_NEWUTS);
        /* Each layer switched off removes exactly its flag. */
        assert_int_equal(sandbox_clone_flags(_LAYER_ALL & ~LAYER_PIDNS), ns & ~CLONE_NEWPID);
        assert_int_equal(sandbox_clone_flags(_LAYER_ALL & ~LAYER_MOUNTNS), ns & ~CLONE_NEWNS);
        /* The network and cgroup namespaces are not entered through clone(). */
        assert_int_equal(sandbox_clone_flags(LAYER_NETNS | LAYER_CGROUPNS | LAYER_SECCOMP), 0);
        assert_int_equal(sandbox_clone_flags(_LAYER_ALL) &
                                 (CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWUSER),
                         0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_as_limit),
                cmocka_unit_test(test_stage_names),
                cmocka_unit_test(test_clone_flags),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
