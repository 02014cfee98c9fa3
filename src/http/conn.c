/* See conn.h.
 *
 * A connection is in one state at a time:
 *
 *   HEAD -> [BODY] -> RUN (the callbacks have the request) -> WRITE -> HEAD (keep-alive)
 *                                                                  \-> LINGER -> closed
 *
 * Nothing is read while a request runs or its answer is written (pipelined requests wait
 * in the kernel's buffer), so requests on one connection are answered in order. A closing
 * connection is shut down for writing and drained for a moment (LINGER) before close(2),
 * so that unread request bytes do not turn into a reset that destroys the answer. */
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

#include "http/conn.h"
#include "util/clock.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"

#define READ_CHUNK     16384
#define IN_MAX         (HTTP_HEAD_MAX + READ_CHUNK)
#define LINGER_USEC    (2ULL * 1000000)
#define ACCEPT_BATCH   64
#define ACCEPT_PAUSE   (100ULL * 1000) /* out of descriptors: retry after this */
#define SWEEP_MAX_USEC (1000ULL * 1000)
#define CLIENT_BUCKETS 1024
#define MAX_EVENTS     64

typedef enum ConnState {
        C_HEAD,
        C_BODY,
        C_RUN,
        C_WRITE,
        C_LINGER,
} ConnState;

typedef struct Client {
        struct Client *next;
        unsigned char addr[16]; /* IPv6, or IPv4-mapped */
        unsigned count;
} Client;

struct HttpConn {
        HttpEngine *e;
        HttpConn *prev, *next; /* every connection, oldest first */
        HttpConn *wake_next;   /* under e->lock */
        int fd;
        Client *client;
        ConnState state;
        bool closed;     /* freed at the end of the event batch (e->dead) */
        uint32_t events; /* watched in epoll; 0: not registered */
        uint64_t deadline_usec;
        bool head_clock; /* the head deadline runs (from accept, or the first byte) */
        bool in_exchange;
        bool answered;
        bool suspended;
        bool close_after;
        bool head_method;

        char *in;
        size_t in_len, in_cap;
        HttpScan scan;
        char *head_buf;
        HttpHead head;
        bool have_head;
        uint64_t body_left;
        HttpChunked chunked;
        Buf body;

        char *out;
        size_t out_len, out_sent;
        void *data;
};

struct HttpEngine {
        HttpLimits lim;
        HttpCallbacks cb;
        void *ud;
        int listen_fd, epfd, wakefd;
        uint16_t port;
        pthread_t thread;
        bool thread_started;
        HttpConn *oldest, *newest;
        HttpConn *dead; /* closed in this event batch, through `next` */
        unsigned n_conns;
        Client *clients[CLIENT_BUCKETS];
        uint64_t accept_paused_until;
        bool draining;
        atomic_ulong inflight;

        pthread_mutex_t lock; /* the fields below, shared with other threads */
        pthread_cond_t cond;
        HttpConn *wake_head;
        bool quiesce_req, quiesced, stop_req;
};

/* ---- clients ------------------------------------------------------------------------ */

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

static void client_put(HttpEngine *e, Client *c)
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

/* ---- connections -------------------------------------------------------------------- */

static uint64_t deadline_after(uint32_t ms)
{
        return now_usec() + (uint64_t) ms * 1000;
}

static void watch(HttpConn *c, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.ptr = c};
        int op = !events ? EPOLL_CTL_DEL : c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

        if (events == c->events)
                return;
        if (epoll_ctl(c->e->epfd, op, c->fd, events ? &ev : NULL) < 0)
                log_errno(LOG_LEVEL_ERROR, errno, NULL, "epoll_ctl on an HTTP connection");
        c->events = events;
}

static void exchange_reset(HttpConn *c)
{
        free(c->head_buf);
        c->head_buf = NULL;
        c->have_head = false;
        buf_free(&c->body);
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_sent = 0;
        c->scan = (HttpScan){0};
        c->answered = c->suspended = false;
}

static void exchange_begin(HttpConn *c)
{
        c->in_exchange = true;
        c->data = NULL;
        atomic_fetch_add(&c->e->inflight, 1);
}

static void exchange_end(HttpConn *c)
{
        if (!c->in_exchange)
                return;
        c->in_exchange = false;
        if (c->e->cb.on_end)
                c->e->cb.on_end(c->e->ud, c);
        c->data = NULL;
        atomic_fetch_sub(&c->e->inflight, 1);
}

/* Closes at once; the memory is freed after the event batch (reap_dead), so that a caller
 * further up the stack may still look at c->closed. */
static void conn_close(HttpConn *c)
{
        HttpEngine *e = c->e;

        if (c->closed)
                return;
        exchange_end(c);
        exchange_reset(c);
        c->fd = safe_close(c->fd); /* leaves epoll with it */
        if (c->client)
                client_put(e, c->client);
        c->client = NULL;
        if (c->prev)
                c->prev->next = c->next;
        else
                e->oldest = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                e->newest = c->prev;
        e->n_conns--;
        c->closed = true;
        c->next = e->dead;
        e->dead = c;
}

static void reap_dead(HttpEngine *e)
{
        while (e->dead) {
                HttpConn *c = e->dead;
                e->dead = c->next;
                free(c->in);
                free(c);
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
                        conn_close(c);
                        return true;
                }
        return false;
}

static void conn_new(HttpEngine *e, int fd, Client *client)
{
        HttpConn *c = calloc(1, sizeof(*c));
        int one = 1;

        if (!c) {
                (void) close(fd);
                return;
        }
        c->e = e;
        c->fd = fd;
        c->client = client;
        client->count++;
        c->prev = e->newest;
        if (e->newest)
                e->newest->next = c;
        else
                e->oldest = c;
        e->newest = c;
        e->n_conns++;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->state = C_HEAD;
        c->head_clock = true;
        c->deadline_usec = deadline_after(c->e->lim.header_timeout_ms);
        watch(c, EPOLLIN | EPOLLRDHUP);
}

/* ---- answers ------------------------------------------------------------------------ */

static const char *reason(unsigned status)
{
        switch (status) {
        case 100:
                return "Continue";
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 401:
                return "Unauthorized";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 413:
                return "Content Too Large";
        case 415:
                return "Unsupported Media Type";
        case 422:
                return "Unprocessable Content";
        case 431:
                return "Request Header Fields Too Large";
        case 499:
                return "Client Closed Request";
        case 500:
                return "Internal Server Error";
        case 503:
                return "Service Unavailable";
        case 505:
                return "HTTP Version Not Supported";
        default:
                return "Unknown";
        }
}

void http_respond(HttpConn *c, unsigned status, const char *content_type, const char *extra,
                  const char *body, size_t len)
{
        char head[1024], date[64];
        struct tm tm;
        time_t t = time(NULL);
        int n;

        if (c->answered)
                return;
        c->answered = true;
        if (c->e->draining)
                c->close_after = true;
        if (!gmtime_r(&t, &tm) || !strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm))
                date[0] = '\0';
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "%s%s\r\n",
                     status, reason(status), date, content_type, len, extra ? extra : "",
                     c->close_after ? "Connection: close\r\n" : "");
        if (n < 0 || (size_t) n >= sizeof(head)) {
                c->close_after = true;
                n = snprintf(head, sizeof(head),
                             "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n");
                len = 0;
        }
        if (c->head_method)
                len = 0;
        c->out = malloc((size_t) n + len);
        if (!c->out) {
                c->close_after = true;
                c->state = C_WRITE; /* nothing to write: closes */
                return;
        }
        memcpy(c->out, head, (size_t) n);
        if (len)
                memcpy(c->out + n, body, len);
        c->out_len = (size_t) n + len;
        c->out_sent = 0;
        c->state = C_WRITE;
        c->deadline_usec = deadline_after(c->e->lim.idle_timeout_ms);
}

void http_suspend(HttpConn *c)
{
        c->suspended = true;
}

static void poke(HttpEngine *e)
{
        uint64_t one = 1;
        if (write(e->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_errno(LOG_LEVEL_ERROR, errno, NULL, "Failed to wake the HTTP thread");
}

void http_wake(HttpConn *c)
{
        HttpEngine *e = c->e;

        (void) pthread_mutex_lock(&e->lock);
        c->wake_next = e->wake_head;
        e->wake_head = c;
        (void) pthread_mutex_unlock(&e->lock);
        poke(e);
}

void http_set_data(HttpConn *c, void *data)
{
        c->data = data;
}

void *http_get_data(const HttpConn *c)
{
        return c->data;
}

int http_conn_fd(const HttpConn *c)
{
        return c->fd;
}

/* ---- the request path --------------------------------------------------------------- */

static void drive(HttpConn *c);

/* Once the answer is written: the next request (drive() goes on), or closing. */
static void answered(HttpConn *c)
{
        HttpEngine *e = c->e;

        exchange_end(c);
        exchange_reset(c);
        if (c->close_after || e->draining) {
                (void) shutdown(c->fd, SHUT_WR);
                c->state = C_LINGER;
                c->deadline_usec = now_usec() + LINGER_USEC;
                watch(c, EPOLLIN | EPOLLRDHUP);
                return;
        }
        c->state = C_HEAD;
        c->head_clock = false;
        c->deadline_usec = deadline_after(c->e->lim.idle_timeout_ms);
        watch(c, EPOLLIN | EPOLLRDHUP);
}

/* Writes what it can of the answer. Returns true once all of it is written. */
static bool flush(HttpConn *c)
{
        if (!c->out) { /* no answer could be built */
                conn_close(c);
                return false;
        }
        while (c->out_sent < c->out_len) {
                ssize_t k = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        watch(c, EPOLLOUT);
                        return false;
                }
                if (k <= 0) {
                        conn_close(c);
                        return false;
                }
                c->out_sent += (size_t) k;
                c->deadline_usec = deadline_after(c->e->lim.idle_timeout_ms);
        }
        answered(c);
        return true;
}

/* After a callback that had to answer or suspend: wait for it, or close if it did
 * neither. An answer (C_WRITE) is sent by drive(). */
static void after_callback(HttpConn *c)
{
        if (c->closed || c->state == C_WRITE)
                return;
        if (c->suspended) {
                c->state = C_RUN;
                c->deadline_usec = 0;
                watch(c, 0); /* nothing is read while it runs; its hang-up is the executor's */
                return;
        }
        conn_close(c);
}

static void fail_request(HttpConn *c, const HttpError *err)
{
        HttpEngine *e = c->e;

        if (!c->in_exchange)
                exchange_begin(c);
        c->close_after = true;
        c->suspended = false;
        c->state = C_RUN;
        e->cb.on_error(e->ud, c, c->have_head ? &c->head : NULL, err);
        after_callback(c);
        if (c->state == C_RUN && !c->closed) /* an error answer cannot wait */
                conn_close(c);
}

static void consume(HttpConn *c, size_t n)
{
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
}

static void request_complete(HttpConn *c)
{
        HttpEngine *e = c->e;

        c->state = C_RUN;
        e->cb.on_request(e->ud, c, &c->head, &c->body);
        after_callback(c);
}

static void start_body(HttpConn *c)
{
        HttpEngine *e = c->e;
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

        buf_init(&c->body, e->lim.max_body);
        if (c->head.body == HTTP_BODY_NONE ||
            (c->head.body == HTTP_BODY_LENGTH && c->head.content_length == 0)) {
                request_complete(c);
                return;
        }
        if (c->head.body == HTTP_BODY_LENGTH && c->head.content_length > e->lim.max_body) {
                fail_request(c, &(HttpError){413, "The request body is too large"});
                return;
        }
        c->body_left = c->head.content_length;
        c->chunked = (HttpChunked){0};
        c->state = C_BODY;
        c->deadline_usec = deadline_after(c->e->lim.idle_timeout_ms);
        /* Best effort: a client that waits for it sends its body after a short timeout. */
        if (c->head.expect_continue && c->in_len == 0)
                (void) send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void take_head(HttpConn *c, size_t len)
{
        HttpEngine *e = c->e;
        HttpError err;

        c->head_buf = malloc(len + 1);
        if (!c->head_buf) {
                conn_close(c);
                return;
        }
        memcpy(c->head_buf, c->in, len);
        c->head_buf[len] = '\0';
        consume(c, len);
        exchange_begin(c);
        if (http_parse_head(&c->scan, c->head_buf, len, &c->head, &err) < 0) {
                fail_request(c, &err);
                return;
        }
        c->have_head = true;
        c->head_method = strcmp(c->head.method, "HEAD") == 0;
        /* Answered here, a body is not read: the connection cannot go on after it. */
        c->close_after = c->head.close || e->draining || c->head.body != HTTP_BODY_NONE;
        c->state = C_RUN;
        e->cb.on_head(e->ud, c, &c->head);
        if (c->closed || c->state == C_WRITE)
                return;
        c->close_after = c->head.close || e->draining;
        start_body(c);
}

/* Takes the body bytes in c->in. */
static void take_body(HttpConn *c)
{
        HttpError err;

        c->deadline_usec = deadline_after(c->e->lim.idle_timeout_ms);
        if (c->head.body == HTTP_BODY_LENGTH) {
                size_t n = c->in_len < c->body_left ? c->in_len : (size_t) c->body_left;
                if (buf_append(&c->body, c->in, n) < 0) {
                        conn_close(c);
                        return;
                }
                consume(c, n);
                c->body_left -= n;
                if (c->body_left == 0)
                        request_complete(c);
                return;
        }
        bool done;
        long r = http_chunked_feed(&c->chunked, c->in, c->in_len, &c->body, &done, &err);
        if (r < 0) {
                fail_request(c, &err);
                return;
        }
        consume(c, (size_t) r);
        if (c->body.truncated)
                fail_request(c, &(HttpError){413, "The request body is too large"});
        else if (done)
                request_complete(c);
}

/* Runs the connection as far as the bytes at hand and the callbacks allow: one loop, so
 * that pipelined requests do not recurse. */
static void drive(HttpConn *c)
{
        HttpError err;

        while (!c->closed) {
                switch (c->state) {
                case C_HEAD: {
                        long r;
                        if (c->in_len == 0)
                                return;
                        if (!c->head_clock) {
                                c->head_clock = true;
                                c->deadline_usec = deadline_after(c->e->lim.header_timeout_ms);
                        }
                        r = http_scan_head(&c->scan, c->in, c->in_len, &err);
                        if (r < 0)
                                fail_request(c, &err);
                        else if (r == 0)
                                return;
                        else
                                take_head(c, (size_t) r);
                        break;
                }
                case C_BODY:
                        if (c->in_len == 0)
                                return;
                        take_body(c);
                        break;
                case C_WRITE:
                        if (!flush(c))
                                return;
                        break;
                case C_RUN:
                case C_LINGER:
                        return;
                }
        }
}

static void on_event(HttpConn *c, uint32_t events)
{
        if (c->state == C_WRITE) {
                drive(c); /* writable, or an error that the next send reports */
                return;
        }
        if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                return;
        for (int rounds = 0; rounds < 4 && !c->closed; rounds++) {
                ssize_t k;
                if (c->state == C_LINGER) {
                        char sink[READ_CHUNK];
                        k = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
                        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                                return;
                        if (k <= 0)
                                conn_close(c);
                        continue;
                }
                if (c->state != C_HEAD && c->state != C_BODY)
                        return;
                if (c->in_cap - c->in_len < READ_CHUNK) {
                        size_t cap = c->in_len + READ_CHUNK;
                        char *p;
                        if (cap > IN_MAX)
                                cap = IN_MAX; /* the scan refuses a longer head first */
                        if (cap <= c->in_len)
                                return;
                        p = realloc(c->in, cap);
                        if (!p) {
                                conn_close(c);
                                return;
                        }
                        c->in = p;
                        c->in_cap = cap;
                }
                k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (k <= 0) { /* EOF or error before a complete request: nobody to answer */
                        conn_close(c);
                        return;
                }
                c->in_len += (size_t) k;
                drive(c);
        }
}

/* ---- the loop ----------------------------------------------------------------------- */

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
                        client->count++; /* client_put() frees it if it was new */
                        client_put(e, client);
                        (void) close(fd);
                        continue;
                }
                conn_new(e, fd, client);
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
                after_callback(c);
                drive(c);
        }
        if (quiesce) {
                e->listen_fd = safe_close(e->listen_fd);
                e->draining = true;
                for (HttpConn *c = e->oldest, *next; c; c = next) {
                        next = c->next;
                        if ((c->state == C_HEAD && c->in_len == 0) || c->state == C_LINGER)
                                conn_close(c);
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
                        conn_close(c);
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
                                on_event(p, evs[i].events);
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
                reap_dead(e);
                (void) pthread_mutex_lock(&e->lock);
                stop = e->stop_req;
                (void) pthread_mutex_unlock(&e->lock);
                if (stop)
                        break;
        }
        return NULL;
}

/* ---- the engine --------------------------------------------------------------------- */

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
        poke(e);
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
                poke(e);
                (void) pthread_join(e->thread, NULL);
        }
        while (e->oldest)
                conn_close(e->oldest);
        reap_dead(e);
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
