/* Unit tests for sandbox/prefault.c: which pages the page-map comparison learns, and how
 * they merge into ranges (one madvise each), plus applying a set to this process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox/prefault.h"

#define PS      4096u
#define BASE    ((uintptr_t) 0x7f0000000000ULL)
#define PRESENT (1ULL << 63)
#define EXCL    (1ULL << 56)
#define PFN(n)  ((uint64_t) (n))

static void test_add_merges_contiguous(void **state)
{
        PrefaultSet s = {0};

        (void) state;
        assert_int_equal(prefault_add_page(&s, BASE, PS), 0);
        assert_int_equal(prefault_add_page(&s, BASE + PS, PS), 0);
        assert_int_equal(prefault_add_page(&s, BASE + 2 * PS, PS), 0);
        assert_int_equal(prefault_add_page(&s, BASE + 4 * PS, PS), 0); /* a gap */
        assert_int_equal(s.n, 2);
        assert_int_equal(s.pages, 4);
        assert_true(s.ranges[0].start == BASE && s.ranges[0].len == 3 * PS);
        assert_true(s.ranges[1].start == BASE + 4 * PS && s.ranges[1].len == PS);
        prefault_free(&s);
        assert_null(s.ranges);
        assert_int_equal(s.n, 0);
}

static void test_add_grows(void **state)
{
        PrefaultSet s = {0};

        (void) state;
        for (size_t i = 0; i < 1000; i++) /* every other page: 1000 ranges, past the first cap */
                assert_int_equal(prefault_add_page(&s, BASE + 2 * i * PS, PS), 0);
        assert_int_equal(s.n, 1000);
        assert_int_equal(s.pages, 1000);
        assert_true(s.ranges[999].start == BASE + 1998 * PS);
        prefault_free(&s);
}

static void test_diff_kinds(void **state)
{
        /* page: 0 shared (same frame), 1 copied (new frame), 2 first touch (absent in the
         * zygote), 3 absent in the child, 4 frames hidden and exclusive, 5 frames hidden and
         * shared, 6 copied, 7 shared */
        const uint64_t before[8] = {PRESENT | PFN(10), PRESENT | PFN(11), 0,
                                    PRESENT | PFN(13), PRESENT,           PRESENT,
                                    PRESENT | PFN(16), PRESENT | PFN(17)};
        const uint64_t after[8] = {
                PRESENT | PFN(10), PRESENT | PFN(99), PRESENT | PFN(98),        0,
                PRESENT | EXCL,    PRESENT,           PRESENT | EXCL | PFN(97), PRESENT | PFN(17)};
        PrefaultSet s = {0};

        (void) state;
        assert_int_equal(prefault_diff(before, after, 8, BASE, PS, &s), 0);
        assert_int_equal(s.pages, 4);
        assert_int_equal(s.n, 3);
        assert_true(s.ranges[0].start == BASE + PS && s.ranges[0].len == 2 * PS); /* 1, 2 */
        assert_true(s.ranges[1].start == BASE + 4 * PS && s.ranges[1].len == PS); /* 4 */
        assert_true(s.ranges[2].start == BASE + 6 * PS && s.ranges[2].len == PS); /* 6 */
        prefault_free(&s);
}

static void test_diff_nothing(void **state)
{
        const uint64_t same[3] = {PRESENT | PFN(1), PRESENT | PFN(2), 0};
        PrefaultSet s = {0};

        (void) state;
        assert_int_equal(prefault_diff(same, same, 3, BASE, PS, &s), 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(s.pages, 0);
}

/* Applying a set populates its pages (mincore sees them resident) and leaves the others. */
static void test_apply(void **state)
{
        size_t ps = (size_t) sysconf(_SC_PAGESIZE);
        unsigned char vec[4];
        char *p = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        PrefaultSet s = {0};

        (void) state;
        assert_true(p != MAP_FAILED);
        if (!prefault_supported()) {
                (void) munmap(p, 4 * ps);
                skip();
        }
        assert_int_equal(prefault_add_page(&s, (uintptr_t) p + ps, ps), 0);
        assert_int_equal(prefault_add_page(&s, (uintptr_t) p + 2 * ps, ps), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(prefault_apply(&s), 0);
        assert_int_equal(mincore(p, 4 * ps, vec), 0);
        assert_int_equal(vec[0] & 1, 0);
        assert_int_equal(vec[1] & 1, 1);
        assert_int_equal(vec[2] & 1, 1);
        assert_int_equal(vec[3] & 1, 0);
        prefault_free(&s);
        (void) munmap(p, 4 * ps);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_merges_contiguous),
                cmocka_unit_test(test_add_grows),
                cmocka_unit_test(test_diff_kinds),
                cmocka_unit_test(test_diff_nothing),
                cmocka_unit_test(test_apply),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
