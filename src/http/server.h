/* The HTTP front: routing, authentication and the /execute exchange, on the connection
 * engine of http/conn.c. A POST /execute exchange is suspended while its script runs and
 * woken by the executor's completion callback, so no thread waits per request. */
#pragma once

#include <stdint.h>

#include "api/api.h"
#include "config/config.h"
#include "pool/executor.h"

typedef struct Server Server;

typedef struct Auth Auth;

/* The limits a request body is checked against, from the configuration. */
RequestLimits server_request_limits(const Config *cfg);

/* Starts listening (port 0: any free port). With `auth` (borrowed, may be NULL), POST
 * /execute requires one of its API keys. Returns 0 or -errno. */
int server_start(const Config *cfg, Executor *ex, const Auth *auth, Server **ret);

/* The port actually bound. */
uint16_t server_port(const Server *s);

/* Stops accepting new connections (in-flight requests continue). */
void server_quiesce(Server *s);

/* After executor_shutdown() (which answers every job, the last ones from the calling
 * thread): waits, at most timeout_ms, until the HTTP thread has delivered every
 * answer, so that server_stop() does not close a connection whose answer was just
 * resumed. NULL is fine. */
void server_finish(Server *s, uint32_t timeout_ms);

/* Stops the HTTP thread. Every suspended connection must have been resumed (executor shut
 * down) first. NULL is fine. */
void server_stop(Server *s);
