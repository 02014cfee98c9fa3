/* See prefault.h. The set is learned by comparing page maps: after fork() the child shares
 * every page of the zygote, and each one it writes is copied to a frame of its own, so the
 * pages present in the child on a frame the zygote does not have are exactly the copies
 * (and first touches) a request pays for, one fault each. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/prefault.h"
#include "util/fd.h"
#include "util/macro.h"
#include "util/macro.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PM_PRESENT   (1ULL << 63)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN       ((1ULL << 55) - 1)

#define MAX_AREAS     4096
#define PROBE_SECONDS 60

typedef struct Area {
        uintptr_t lo, hi;
        uint64_t *before; /* the zygote's pagemap entries, one per page */
} Area;

int prefault_add_page(PrefaultSet *s, uintptr_t addr, size_t page_size)
{
        if (s->n > 0 && s->ranges[s->n - 1].start + s->ranges[s->n - 1].len == addr) {
                s->ranges[s->n - 1].len += page_size;
                s->pages++;
                return 0;
        }
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                PrefaultRange *r = realloc(s->ranges, cap * sizeof(*r));
                if (!r)
                        return -ENOMEM;
                s->ranges = r;
                s->cap = cap;
        }
        s->ranges[s->n++] = (PrefaultRange){.start = addr, .len = page_size};
        s->pages++;
        return 0;
}

int prefault_diff(const uint64_t *before, const uint64_t *after, size_t n, uintptr_t base,
                  size_t page_size, PrefaultSet *s)
{
        for (size_t i = 0; i < n; i++) {
                uint64_t b = before[i], a = after[i];
                int own;

                if (!(a & PM_PRESENT))
                        continue;
                if (!(b & PM_PRESENT))
                        own = 1; /* a first touch */
                else if ((a & PM_PFN) && (b & PM_PFN))
                        own = (a & PM_PFN) != (b & PM_PFN); /* a copy */
                else
                        own = (a & PM_EXCLUSIVE) != 0; /* frame numbers hidden */
                if (own) {
                        int r = prefault_add_page(s, base + i * page_size, page_size);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* The writable private mappings of this process (the heap, anonymous memory, the
 * libraries' data), but not the kernel's special ones. */
static int read_areas(Area *areas, size_t *ret_n)
{
        FILE *f = fopen("/proc/self/maps", "re");
        char line[512];
        size_t n = 0;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f) && n < MAX_AREAS) {
                unsigned long long lo, hi;
                char perms[8] = "";
                int name_at = 0;

                if (sscanf(line, "%llx-%llx %7s %*x %*x:%*x %*u %n", &lo, &hi, perms, &name_at) < 3)
                        continue;
                if (strcmp(perms, "rw-p") != 0)
                        continue;
                if (name_at > 0 && line[name_at] == '[' && strncmp(line + name_at, "[heap]", 6) &&
                    strncmp(line + name_at, "[stack]", 7))
                        continue;
                areas[n++] = (Area){.lo = (uintptr_t) lo, .hi = (uintptr_t) hi};
        }
        (void) fclose(f);
        *ret_n = n;
        return 0;
}

static int read_pagemap(int fd, const Area *a, size_t page_size, uint64_t *out)
{
        size_t n = (a->hi - a->lo) / page_size;
        ssize_t got = pread(fd, out, n * sizeof(uint64_t), (off_t) (a->lo / page_size * 8));

        if (got < 0)
                return -errno;
        if ((size_t) got != n * sizeof(uint64_t))
                return -EIO;
        return 0;
}

/* In the probe child: run the probe, then write the set (count, then ranges) to `out`. */
static _Noreturn void probe_child(int (*probe)(void), const Area *areas, size_t n_areas,
                                  uint64_t *after, size_t page_size, int out)
{
        PrefaultSet s = {0};
        int fd;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(2);
        (void) alarm(PROBE_SECONDS); /* a probe that hangs must not hold up the start */
        if (probe() < 0)
                _exit(3);
        fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                _exit(4);
        for (size_t i = 0; i < n_areas; i++)
                if (read_pagemap(fd, &areas[i], page_size, after) < 0 ||
                    prefault_diff(areas[i].before, after, (areas[i].hi - areas[i].lo) / page_size,
                                  areas[i].lo, page_size, &s) < 0)
                        _exit(5);
        if (write_all(out, &s.n, sizeof(s.n)) < 0 ||
            write_all(out, s.ranges, s.n * sizeof(*s.ranges)) < 0)
                _exit(6);
        _exit(0);
}

/* Scratch memory of its own mapping, unmapped after: not the zygote's heap, which every
 * sandbox copies page tables of (measured: learning through malloc left hello requests
 * ~2 % more CPU). */
static void *scratch(size_t len)
{
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

int prefault_learn(int (*probe)(void), size_t max_pages, PrefaultSet *s)
{
        size_t page_size = (size_t) sysconf(_SC_PAGESIZE), n_areas = 0, most = 0, total = 0, n = 0,
               buf_len = 0;
        const size_t areas_len = MAX_AREAS * sizeof(Area);
        Area *areas = scratch(areas_len);
        uint64_t *buf = NULL, *after;
        int fd = -EBADF, pipefd[2] = {-EBADF, -EBADF}, status, r;
        pid_t pid;

        if (!areas)
                return -ENOMEM;
        r = read_areas(areas, &n_areas);
        if (r < 0)
                goto out;
        fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        for (size_t i = 0; i < n_areas; i++) {
                size_t pages = (areas[i].hi - areas[i].lo) / page_size;
                total += pages;
                if (pages > most)
                        most = pages;
        }
        /* Everything the child needs is allocated before the fork, so that its own
         * bookkeeping writes as few pages as possible besides the probe's. */
        buf_len = (total + most) * sizeof(uint64_t);
        buf = scratch(buf_len);
        if (!buf || pipe2(pipefd, O_CLOEXEC) < 0) {
                r = buf ? -errno : -ENOMEM;
                goto out;
        }
        after = buf + total;
        for (size_t i = 0, at = 0; i < n_areas; i++) {
                areas[i].before = buf + at;
                at += (areas[i].hi - areas[i].lo) / page_size;
                if ((r = read_pagemap(fd, &areas[i], page_size, areas[i].before)) < 0)
                        goto out;
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto out;
        }
        if (pid == 0)
                probe_child(probe, areas, n_areas, after, page_size, pipefd[1]);
        pipefd[1] = safe_close(pipefd[1]);
        r = read_exact(pipefd[0], &n, sizeof(n));
        if (r == 0 && n > 0) {
                s->ranges = calloc(n, sizeof(PrefaultRange));
                if (!s->ranges)
                        r = -ENOMEM;
                else if ((r = read_exact(pipefd[0], s->ranges, n * sizeof(PrefaultRange))) == 0)
                        s->n = s->cap = n;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        status = -1;
                        break;
                }
        if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                r = -EIO;
        for (size_t i = 0; r == 0 && i < s->n; i++)
                s->pages += s->ranges[i].len / page_size;
        if (r == 0 && s->pages > max_pages)
                r = -E2BIG;
        if (r < 0)
                prefault_free(s);
out:
        if (buf)
                (void) munmap(buf, buf_len);
        (void) munmap(areas, areas_len);
        (void) safe_close(fd);
        (void) safe_close(pipefd[0]);
        (void) safe_close(pipefd[1]);
        return r;
}

int prefault_supported(void)
{
        size_t page_size = (size_t) sysconf(_SC_PAGESIZE);
        void *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int ok;

        if (p == MAP_FAILED)
                return 0;
        ok = madvise(p, page_size, MADV_POPULATE_WRITE) == 0;
        (void) munmap(p, page_size);
        return ok;
}

int prefault_apply(const PrefaultSet *s)
{
        int r = 0;

        for (size_t i = 0; i < s->n; i++)
                if (madvise((void *) s->ranges[i].start, s->ranges[i].len, MADV_POPULATE_WRITE) <
                            0 &&
                    r == 0)
                        r = -errno;
        return r;
}

void prefault_free(PrefaultSet *s)
{
        free(s->ranges);
        *s = (PrefaultSet){0};
}
