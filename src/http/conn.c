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

#include "http/conn-internal.h"
#include "util/clock.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/macro.h"

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
void http_conn_close(HttpConn *c)
{
        HttpEngine *e = c->e;

        if (c->closed)
                return;
        exchange_end(c);
        exchange_reset(c);
        /* Out of the epoll set before the close: a watch lasts as long as the socket, not
         * the descriptor, and a child the supervisor forks holds a copy of every descriptor
         * until its exec. Events from such a watch would name this freed connection. */
        watch(c, 0);
        c->fd = safe_close(c->fd);
        if (c->client)
                http_client_put(e, c->client);
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

void http_conn_reap_dead(HttpEngine *e)
{
        while (e->dead) {
                HttpConn *c = e->dead;
                e->dead = c->next;
                free(c->in);
                free(c);
        }
}

void http_conn_new(HttpEngine *e, int fd, Client *client)
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

static const char *reason(unsigned status)
{
        switch (status) {
        case 100:
                return "Continue";
        case 200:
                return "OK";
        case 304:
                return "Not Modified";
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
        /* A HEAD or 304 answer states the length of the body it does not carry. */
        if (c->head_method || status == 304)
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

void http_wake(HttpConn *c)
{
        HttpEngine *e = c->e;

        (void) pthread_mutex_lock(&e->lock);
        c->wake_next = e->wake_head;
        e->wake_head = c;
        (void) pthread_mutex_unlock(&e->lock);
        http_engine_poke(e);
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

/* Once the answer is written: the next request (http_conn_drive() goes on), or closing. */
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
                http_conn_close(c);
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
                        http_conn_close(c);
                        return false;
                }
                c->out_sent += (size_t) k;
                c->deadline_usec = deadline_after(c->e->lim.idle_timeout_ms);
        }
        answered(c);
        return true;
}

/* After a callback that had to answer or suspend: wait for it, or close if it did
 * neither. An answer (C_WRITE) is sent by http_conn_drive(). */
void http_conn_after_callback(HttpConn *c)
{
        if (c->closed || c->state == C_WRITE)
                return;
        if (c->suspended) {
                c->state = C_RUN;
                c->deadline_usec = 0;
                watch(c, 0); /* nothing is read while it runs; its hang-up is the executor's */
                return;
        }
        http_conn_close(c);
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
        http_conn_after_callback(c);
        if (c->state == C_RUN && !c->closed) /* an error answer cannot wait */
                http_conn_close(c);
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
        http_conn_after_callback(c);
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
                http_conn_close(c);
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
                        http_conn_close(c);
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
void http_conn_drive(HttpConn *c)
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

void http_conn_on_event(HttpConn *c, uint32_t events)
{
        if (c->state == C_WRITE) {
                http_conn_drive(c); /* writable, or an error that the next send reports */
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
                                http_conn_close(c);
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
                                http_conn_close(c);
                                return;
                        }
                        c->in = p;
                        c->in_cap = cap;
                }
                k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (k <= 0) { /* EOF or error before a complete request: nobody to answer */
                        http_conn_close(c);
                        return;
                }
                c->in_len += (size_t) k;
                http_conn_drive(c);
        }
}
