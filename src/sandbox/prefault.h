/* A learned prefault set: the pages of the zygote that a representative request writes
 * (and so copies, one fault each), learned once at start by a probe child, and taken by
 * every warm sandbox before its request arrives with one madvise(MADV_POPULATE_WRITE) per
 * contiguous range. Measured in docs/PERFORMANCE.md. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct PrefaultRange {
        uintptr_t start;
        size_t len; /* bytes, a multiple of the page size */
} PrefaultRange;

/* One owner (the zygote); read-only once learned. */
typedef struct PrefaultSet {
        PrefaultRange *ranges;
        size_t n, cap;
        size_t pages;
} PrefaultSet;

/* Adds the page at `addr` (page-aligned, at or above every page added before), merged with
 * the last range where contiguous. Returns 0 or -ENOMEM. */
int prefault_add_page(PrefaultSet *s, uintptr_t addr, size_t page_size);

/* Compares the /proc/PID/pagemap entries of n pages from `base`, as they were in the
 * zygote (`before`) and as they are in a child after its work (`after`), and adds each page
 * the child has and did not share: present in the child, and absent in the zygote or on
 * another frame (or, where frame numbers are hidden, mapped exclusively). Returns 0 or
 * -ENOMEM. */
int prefault_diff(const uint64_t *before, const uint64_t *after, size_t n, uintptr_t base,
                  size_t page_size, PrefaultSet *s);

/* Learns the set: snapshots the page map of this process's writable private mappings,
 * forks a child that runs probe() (representative requests) and reports what it wrote, and
 * fills *s. Needs /proc. Returns 0 or -errno. */
int prefault_learn(int (*probe)(void), size_t max_pages, PrefaultSet *s);

/* True if this kernel accepts MADV_POPULATE_WRITE (Linux 5.14). */
int prefault_supported(void);

/* Takes the set's pages in the calling process. Returns 0 or the first -errno (the rest
 * is still tried: a range the zygote has since unmapped is only a missed prefault). */
int prefault_apply(const PrefaultSet *s);

void prefault_free(PrefaultSet *s);
