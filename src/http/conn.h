/* The HTTP/1.1 connection engine: one thread, one epoll loop over the listening socket and
 * every connection. It frames requests with http/parse.c, enforces the connection limits
 * and deadlines, and writes responses; what a request means is for its callbacks
 * (http/server.c).
 *
 * Limits (a client is a peer IP address): at most max_connections open, at most
 * max_per_client per client. A connection arriving at a limit displaces the oldest
 * connection (of that client, or overall) that has not sent a complete request yet: one
 * still sending its head or body, idle between requests, or closing. A connection whose
 * request is being served (suspended) or answered is never displaced, so a new
 * connection is refused only when every open one is being served.
 *
 * Deadlines: a request head must be complete header_timeout after its first byte (for a
 * new connection, after it was accepted), however slowly it trickles in; an idle
 * keep-alive connection, a body, or a response lasts idle_timeout without progress. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/parse.h"
#include "util/buf.h"

typedef struct HttpEngine HttpEngine;
typedef struct HttpConn HttpConn;

typedef struct HttpLimits {
        unsigned max_connections;
        unsigned max_per_client; /* 0: no per-client limit */
        uint32_t header_timeout_ms;
        uint32_t idle_timeout_ms;
        size_t max_body;
} HttpLimits;

/* Called on the engine's thread. Per exchange: on_head, then (unless on_head answered)
 * on_request, then on_end; on_error instead when the bytes are not a valid request (h is
 * NULL when no head was parsed). An answer is given with http_respond(), exactly once. */
typedef struct HttpCallbacks {
        /* The head is in. Answer now (the body is then not read, and the connection closes
         * if there was one), or return to have the body read. */
        void (*on_head)(void *ud, HttpConn *c, const HttpHead *h);
        /* The body is in (bounded by max_body: a larger one was answered by on_error).
         * Answer now, or http_suspend() and answer from on_wake. */
        void (*on_request)(void *ud, HttpConn *c, const HttpHead *h, const Buf *body);
        /* After http_wake(). */
        void (*on_wake)(void *ud, HttpConn *c);
        /* A framing error (400, 431, 505) or an oversized body (413): answer it; the
         * connection is closed after the answer. */
        void (*on_error)(void *ud, HttpConn *c, const HttpHead *h, const HttpError *err);
        /* The exchange is over (answered, or the connection is gone): free what it held. */
        void (*on_end)(void *ud, HttpConn *c);
} HttpCallbacks;

/* Binds addr and starts the engine's thread. Returns 0 or -errno. */
int http_engine_start(const struct sockaddr *addr, socklen_t addrlen, const HttpLimits *lim,
                      const HttpCallbacks *cb, void *ud, HttpEngine **ret);
uint16_t http_engine_port(const HttpEngine *e);
/* Stops accepting (the listening socket is closed before this returns) and closes idle
 * connections; requests in progress go on, and their connections close after the answer. */
void http_engine_quiesce(HttpEngine *e);
/* Exchanges begun and not yet over. Any thread. */
unsigned long http_engine_inflight(HttpEngine *e);
/* Stops the thread and closes every connection (on_end for each exchange still open).
 * NULL is fine. */
void http_engine_stop(HttpEngine *e);

/* Per exchange, for the callbacks. */
void http_set_data(HttpConn *c, void *data);
void *http_get_data(const HttpConn *c);
int http_conn_fd(const HttpConn *c);
/* Queues the answer: status line, Date, Content-Type, Content-Length, the `extra` header
 * lines ("Name: value\r\n" each, may be NULL), and the body (copied; left out for HEAD). */
void http_respond(HttpConn *c, unsigned status, const char *content_type, const char *extra,
                  const char *body, size_t len);
/* The exchange waits (no reading, no deadline) until http_wake(). */
void http_suspend(HttpConn *c);
/* Any thread: on_wake will run on the engine's thread. */
void http_wake(HttpConn *c);
