/* The HTTP engine (see conn.h): its epoll thread, accepting connections within the total
 * and per-client limits (a new one displaces the oldest connection not being served, never
 * one whose request runs or is being answered), the wake-ups from other threads, the
 * deadlines, and start, quiesce and stop. A connection's own life is conn.c's. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "http/conn-internal.h"
#include "util/clock.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"

static void client_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
        memset(key, 0, 16);
        if (ss->ss_family == AF_INET6)
                memcpy(key, &((const struct sockaddr_in6 *) ss)->sin6_addr, 16);
        else if (ss->ss_family == AF_INET) {
                key[10] = key[11] = 0xff;
                memcpy(key + 12, &((const struct sockaddr_in *) ss)->sin_addr, 4);
        }
}

static Client **client_bucket(HttpEngine *e, const unsigned char key[16])
{
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < 16; i++)
                h = (h ^ key[i]) * 16777619u;
        return &e->clients[h % CLIENT_BUCKETS];
}

static Client *client_get(HttpEngine *e, const unsigned char key[16])
{
        Client **b = client_bucket(e, key), *c;

        for (c = *b; c; c = c->next)
                if (memcmp(c->addr, key, 16) == 0)
                        return c;
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        memcpy(c->addr, key, 16);
        c->next = *b;
        *b = c;
        return c;
}

void http_client_put(HttpEngine *e, Client *c)
{
        if (--c->count > 0)
                return;
        for (Client **p = client_bucket(e, c->addr); *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        free(c);
                        return;
                }
}

static bool evictable(const HttpConn *c)
{
        return c->state == C_HEAD || c->state == C_BODY || c->state == C_LINGER;
}

/* Closes the oldest connection (of `client`, or of all when NULL) that is not being
 * served. Returns false if there is none. */
static bool evict(HttpEngine *e, const Client *client)
{
        for (HttpConn *c = e->oldest; c; c = c->next)
                if ((!client || c->client == client) && evictable(c)) {
                        http_conn_close(c);
                        return true;
                }
        return false;
}

void http_engine_poke(HttpEngine *e)
{
        uint64_t one = 1;
        if (write(e->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_errno(LOG_LEVEL_ERROR, errno, NULL, "Failed to wake the HTTP thread");
}

static void accept_some(HttpEngine *e)
{
        for (int i = 0; i < ACCEPT_BATCH; i++) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                unsigned char key[16];
                Client *client;
                int fd = accept4(e->listen_fd, (struct sockaddr *) &ss, &len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if ((errno == EMFILE || errno == ENFILE) && evict(e, NULL))
                                continue;
                        if (errno == EMFILE || errno == ENFILE) {
                                struct epoll_event ev = {0};
                                log_errno(LOG_LEVEL_WARNING, errno, NULL,
                                          "Cannot accept HTTP connections for now");
                                (void) epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->listen_fd, &ev);
                                e->accept_paused_until = now_usec() + ACCEPT_PAUSE;
                        } else if (errno != EAGAIN)
                                log_errno(LOG_LEVEL_ERROR, errno, NULL, "accept4");
                        return;
                }
                client_key(&ss, key);
                client = client_get(e, key);
                if (!client) {
                        (void) close(fd);
                        continue;
                }
                if ((e->lim.max_per_client && client->count >= e->lim.max_per_client &&
                     !evict(e, client)) ||
                    (e->n_conns >= e->lim.max_connections && !evict(e, NULL))) {
                        /* Every open connection is being served: refuse this one. */
                        client->count++; /* http_client_put() frees it if it was new */
                        http_client_put(e, client);
                        (void) close(fd);
                        continue;
                }
                http_conn_new(e, fd, client);
        }
}

static void take_wakes(HttpEngine *e)
{
        uint64_t v;
        HttpConn *list;
        bool quiesce;

        (void) !read(e->wakefd, &v, sizeof(v));
        (void) pthread_mutex_lock(&e->lock);
        list = e->wake_head;
        e->wake_head = NULL;
        quiesce = e->quiesce_req && !e->quiesced;
        (void) pthread_mutex_unlock(&e->lock);

        while (list) {
                HttpConn *c = list;
                list = c->wake_next;
                if (c->closed)
                        continue;
                c->suspended = false;
                e->cb.on_wake(e->ud, c);
                http_conn_after_callback(c);
                http_conn_drive(c);
        }
        if (quiesce) {
                if (e->listen_fd >= 0) /* (ENOENT while accepting is paused) */
                        (void) epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->listen_fd, NULL);
                e->listen_fd = safe_close(e->listen_fd); /* (see http_conn_close) */
                e->draining = true;
                for (HttpConn *c = e->oldest, *next; c; c = next) {
                        next = c->next;
                        if ((c->state == C_HEAD && c->in_len == 0) || c->state == C_LINGER)
                                http_conn_close(c);
                }
                (void) pthread_mutex_lock(&e->lock);
                e->quiesced = true;
                (void) pthread_cond_broadcast(&e->cond);
                (void) pthread_mutex_unlock(&e->lock);
        }
}

/* Closes the connections past their deadline; returns the next deadline. */
static uint64_t sweep(HttpEngine *e, uint64_t now)
{
        uint64_t next = now + SWEEP_MAX_USEC;

        for (HttpConn *c = e->oldest, *n; c; c = n) {
                n = c->next;
                if (!c->deadline_usec)
                        continue;
                if (c->deadline_usec <= now)
                        http_conn_close(c);
                else if (c->deadline_usec < next)
                        next = c->deadline_usec;
        }
        if (e->accept_paused_until && e->listen_fd >= 0) {
                if (e->accept_paused_until <= now) {
                        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &e->listen_fd};
                        e->accept_paused_until = 0;
                        (void) epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->listen_fd, &ev);
                } else if (e->accept_paused_until < next)
                        next = e->accept_paused_until;
        }
        return next;
}

static void *loop(void *arg)
{
        HttpEngine *e = arg;
        struct epoll_event evs[MAX_EVENTS];
        uint64_t next_sweep = now_usec() + SWEEP_MAX_USEC;

        for (;;) {
                uint64_t now = now_usec();
                int timeout = next_sweep > now ? (int) ((next_sweep - now + 999) / 1000) : 0;
                int n = epoll_wait(e->epfd, evs, MAX_EVENTS, timeout);
                bool stop;

                if (n < 0 && errno != EINTR) {
                        log_errno(LOG_LEVEL_ERROR, errno, NULL, "epoll_wait (HTTP)");
                        break;
                }
                /* A connection closed here stays allocated (marked closed) until the end of
                 * the batch, so a later event naming it is harmless. */
                for (int i = 0; i < n; i++) {
                        void *p = evs[i].data.ptr;
                        if (p == &e->listen_fd || p == &e->wakefd)
                                continue;
                        if (!((HttpConn *) p)->closed)
                                http_conn_on_event(p, evs[i].events);
                }
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.ptr == &e->wakefd)
                                take_wakes(e);
                        else if (evs[i].data.ptr == &e->listen_fd && e->listen_fd >= 0)
                                accept_some(e);
                }
                now = now_usec();
                if (now >= next_sweep || n == 0)
                        next_sweep = sweep(e, now);
                http_conn_reap_dead(e);
                (void) pthread_mutex_lock(&e->lock);
                stop = e->stop_req;
                (void) pthread_mutex_unlock(&e->lock);
                if (stop)
                        break;
        }
        return NULL;
}

/* Every connection holds a descriptor, and every sandbox a few more: raise the soft limit
 * to what max_connections needs (at most the hard limit) instead of failing at 1024. */
static void raise_nofile(unsigned max_connections)
{
        struct rlimit rl;
        rlim_t want = (rlim_t) max_connections + 1024;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
                return;
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_errno(LOG_LEVEL_WARNING, errno, NULL, "Cannot raise RLIMIT_NOFILE");
}

int http_engine_start(const struct sockaddr *addr, socklen_t addrlen, const HttpLimits *lim,
                      const HttpCallbacks *cb, void *ud, HttpEngine **ret)
{
        HttpEngine *e = calloc(1, sizeof(*e));
        struct sockaddr_storage bound;
        socklen_t len = sizeof(bound);
        int one = 1, r;

        if (!e)
                return -ENOMEM;
        e->lim = *lim;
        e->cb = *cb;
        e->ud = ud;
        e->epfd = e->wakefd = -EBADF;
        (void) pthread_mutex_init(&e->lock, NULL);
        (void) pthread_cond_init(&e->cond, NULL);
        raise_nofile(lim->max_connections);

        e->listen_fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (e->listen_fd < 0)
                goto fail_errno;
        (void) setsockopt(e->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (addr->sa_family == AF_INET6)
                (void) setsockopt(e->listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(e->listen_fd, addr, addrlen) < 0 || listen(e->listen_fd, 4096) < 0 ||
            getsockname(e->listen_fd, (struct sockaddr *) &bound, &len) < 0)
                goto fail_errno;
        e->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                    : ((struct sockaddr_in *) &bound)->sin_port);
        e->epfd = epoll_create1(EPOLL_CLOEXEC);
        e->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (e->epfd < 0 || e->wakefd < 0)
                goto fail_errno;
        struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &e->listen_fd};
        struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &e->wakefd};
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->listen_fd, &lev) < 0 ||
            epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &wev) < 0)
                goto fail_errno;
        r = -pthread_create(&e->thread, NULL, loop, e);
        if (r < 0)
                goto fail;
        e->thread_started = true;
        *ret = e;
        return 0;

fail_errno:
        r = -errno;
fail:
        http_engine_stop(e);
        return r;
}

uint16_t http_engine_port(const HttpEngine *e)
{
        return e->port;
}

void http_engine_quiesce(HttpEngine *e)
{
        struct timespec until;

        if (!e || !e->thread_started)
                return;
        (void) clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        (void) pthread_mutex_lock(&e->lock);
        e->quiesce_req = true;
        http_engine_poke(e);
        while (!e->quiesced)
                if (pthread_cond_timedwait(&e->cond, &e->lock, &until) != 0)
                        break;
        (void) pthread_mutex_unlock(&e->lock);
}

unsigned long http_engine_inflight(HttpEngine *e)
{
        return atomic_load(&e->inflight);
}

void http_engine_stop(HttpEngine *e)
{
        if (!e)
                return;
        if (e->thread_started) {
                (void) pthread_mutex_lock(&e->lock);
                e->stop_req = true;
                (void) pthread_mutex_unlock(&e->lock);
                http_engine_poke(e);
                (void) pthread_join(e->thread, NULL);
        }
        while (e->oldest)
                http_conn_close(e->oldest);
        http_conn_reap_dead(e);
        for (size_t i = 0; i < CLIENT_BUCKETS; i++)
                while (e->clients[i]) {
                        Client *c = e->clients[i];
                        e->clients[i] = c->next;
                        free(c);
                }
        (void) safe_close(e->listen_fd);
        (void) safe_close(e->epfd);
        (void) safe_close(e->wakefd);
        (void) pthread_mutex_destroy(&e->lock);
        (void) pthread_cond_destroy(&e->cond);
        free(e);
}
