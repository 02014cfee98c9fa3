/* The HTTP engine's inside, shared by conn.c (a connection and its exchanges) and engine.c
 * (the loop, accepting, the per-client table, start and stop). Engine thread only, except
 * the fields of HttpEngine under its `lock`. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/conn.h"
#include "util/buf.h"

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

/* conn.c: connections and their exchanges. */
void http_conn_close(HttpConn *c);
void http_conn_reap_dead(HttpEngine *e);
void http_conn_new(HttpEngine *e, int fd, Client *client);
void http_conn_after_callback(HttpConn *c);
void http_conn_drive(HttpConn *c);
void http_conn_on_event(HttpConn *c, uint32_t events);

/* engine.c: the loop, the clients, the engine. */
void http_client_put(HttpEngine *e, Client *c);
void http_engine_poke(HttpEngine *e);
