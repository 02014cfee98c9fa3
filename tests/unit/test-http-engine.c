/* Unit tests for the HTTP engine's connection teardown. An epoll watch lasts as long as
 * the socket it watches, not the descriptor: when the engine closes a connection while
 * another descriptor still holds the socket (a child the supervisor forks holds a copy of
 * every descriptor until its exec), the watch must already be gone, or its events name
 * the freed connection (a use-after-free the sanitizer build found in the integration
 * suite, while a zygote started). */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/conn.h"

typedef struct Held {
        int fd; /* a second descriptor of the engine's side of the connection */
} Held;

static void on_head(void *ud, HttpConn *c, const HttpHead *h)
{
        (void) ud;
        (void) c;
        (void) h;
}

static void on_request(void *ud, HttpConn *c, const HttpHead *h, const Buf *body)
{
        (void) ud;
        (void) h;
        (void) body;
        http_respond(c, 200, "text/plain", NULL, "ok", 2);
}

static void on_wake(void *ud, HttpConn *c)
{
        (void) ud;
        (void) c;
}

/* The bad request: keep a copy of the socket, as a forked child would, and answer. The
 * engine closes the connection after this answer. */
static void on_error(void *ud, HttpConn *c, const HttpHead *h, const HttpError *err)
{
        Held *held = ud;

        (void) h;
        (void) err;
        held->fd = dup(http_conn_fd(c));
        http_respond(c, 400, "text/plain", NULL, "bad", 3);
}

static void on_end(void *ud, HttpConn *c)
{
        (void) ud;
        (void) c;
}

/* True if some epoll set of this process watches the file with inode `ino`
 * (/proc/self/fdinfo of an epoll descriptor lists each watch's "ino:<hex> sdev:"). */
static bool epoll_watches(unsigned long ino)
{
        char needle[64], path[300], link[64], text[8192];
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        bool found = false;

        assert_non_null(d);
        (void) snprintf(needle, sizeof(needle), " ino:%lx sdev:", ino);
        while (!found && (de = readdir(d))) {
                ssize_t n;
                FILE *f;
                size_t got;

                (void) snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
                n = readlink(path, link, sizeof(link) - 1);
                if (n < 0)
                        continue;
                link[n] = '\0';
                if (strcmp(link, "anon_inode:[eventpoll]") != 0)
                        continue;
                (void) snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                got = fread(text, 1, sizeof(text) - 1, f);
                (void) fclose(f);
                text[got] = '\0';
                found = strstr(text, needle) != NULL;
        }
        (void) closedir(d);
        return found;
}

static void sleep_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        (void) nanosleep(&ts, NULL);
}

static void test_a_closed_connection_leaves_epoll_while_its_socket_lives_on(void **state)
{
        static const char bad[] = "NOT HTTP\r\n\r\n";
        const HttpCallbacks cb = {on_head, on_request, on_wake, on_error, on_end};
        const HttpLimits lim = {.max_connections = 8,
                                .header_timeout_ms = 5000,
                                .idle_timeout_ms = 5000,
                                .max_body = 1024};
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        Held held = {.fd = -1};
        HttpEngine *e = NULL;
        struct stat st;
        char buf[4096];
        int client, waited;

        (void) state;
        assert_int_equal(
                http_engine_start((struct sockaddr *) &addr, sizeof(addr), &lim, &cb, &held, &e),
                0);
        addr.sin_port = htons(http_engine_port(e));
        client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(client >= 0);
        assert_int_equal(connect(client, (struct sockaddr *) &addr, sizeof(addr)), 0);
        assert_int_equal(write(client, bad, strlen(bad)), (ssize_t) strlen(bad));

        /* The 400, then EOF: the engine shut its side down (the copy keeps it open). */
        while (read(client, buf, sizeof(buf)) > 0)
                ;
        assert_true(held.fd >= 0);
        assert_int_equal(fstat(held.fd, &st), 0);
        assert_int_equal(close(client), 0); /* the engine sees EOF and closes its descriptor */

        /* The socket lives on in held.fd, and is readable (EOF) for ever: a watch left in
         * place would report it on every turn of the loop. */
        for (waited = 0; epoll_watches((unsigned long) st.st_ino) && waited < 5000; waited += 10)
                sleep_ms(10);
        assert_false(epoll_watches((unsigned long) st.st_ino));
        sleep_ms(50); /* turns of the loop that would name the freed connection */

        http_engine_stop(e);
        assert_int_equal(close(held.fd), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_closed_connection_leaves_epoll_while_its_socket_lives_on),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
