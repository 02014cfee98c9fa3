/* A main() for the fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput once on
 * every file in the directories (or on the files) given as arguments, in name order. This
 * is how `meson test` replays the checked-in corpora with the ordinary compiler on every
 * run, so an input that once crashed a target stays a regression test. A check that fails
 * aborts the process; an empty or missing corpus directory is an error too, so a broken
 * path cannot make the test pass vacuously. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Reads the whole of `path` into an exact-size heap buffer (ASan sees overreads). */
static int run_file(int dirfd, const char *path)
{
        int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        uint8_t *data;
        size_t got = 0;

        if (fd < 0 || fstat(fd, &st) < 0) {
                (void) fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                if (fd >= 0)
                        (void) close(fd);
                return -1;
        }
        /* malloc(0) is a valid, unreadable allocation: an empty input stays empty. */
        data = malloc((size_t) st.st_size);
        if (!data && st.st_size > 0)
                abort();
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, data + got, (size_t) st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        (void) fprintf(stderr, "replay: %s: short read\n", path);
                        free(data);
                        (void) close(fd);
                        return -1;
                }
                got += (size_t) n;
        }
        (void) close(fd);
        (void) LLVMFuzzerTestOneInput(data, got);
        free(data);
        return 0;
}

static int only_files(const struct dirent *d)
{
        return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
        unsigned total = 0;

        if (argc < 2) {
                (void) fprintf(stderr, "Usage: %s CORPUS_DIR|FILE...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct dirent **names;
                int dirfd, n;

                dirfd = open(argv[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dirfd < 0) {
                        if (errno != ENOTDIR || run_file(AT_FDCWD, argv[i]) < 0) {
                                (void) fprintf(stderr, "replay: %s: %s\n", argv[i],
                                               strerror(errno));
                                return 1;
                        }
                        total++;
                        continue;
                }
                n = scandir(argv[i], &names, only_files, alphasort);
                if (n <= 0) {
                        (void) fprintf(stderr, "replay: %s: no inputs\n", argv[i]);
                        return 1;
                }
                for (int k = 0; k < n; k++) {
                        /* Echoed first, so that the input is named if the target aborts. */
                        (void) fprintf(stderr, "replay: %s/%s\n", argv[i], names[k]->d_name);
                        if (run_file(dirfd, names[k]->d_name) < 0)
                                return 1;
                        free(names[k]);
                        total++;
                }
                free(names);
                (void) close(dirfd);
        }
        (void) printf("replay: %u inputs, all passed\n", total);
        return 0;
}
