/* See server.h.
 *
 * Per exchange (http/conn.c calls back on its thread), a Request is allocated when the
 * head is in and freed when the exchange ends. POST /execute hands the job to the
 * executor and suspends the exchange; the executor's completion callback hands over the
 * outcome and wakes the exchange, whose response is then built and written on the HTTP
 * thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "api/api.h"
#include "http/auth.h"
#include "http/conn.h"
#include "http/openapi.h"
#include "http/server.h"
#include "http/static.h"
#include "metrics/metrics.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/macro.h"

#define REQUEST_ID_MAX 64

struct Server {
        const Config *cfg;
        Executor *ex;
        const Auth *auth;
        Metrics *metrics;
        HttpEngine *engine;
};

typedef struct Request {
        Server *srv;
        HttpConn *conn;
        char request_id[REQUEST_ID_MAX + 1];
        char method[8];
        uint64_t start_usec;
        bool in_executor;  /* suspended, waiting for the executor's callback */
        bool have_outcome; /* set by the executor thread; then only this thread */
        ExecOutcome outcome;
        ApiResponse response;
        const char *allow; /* for 405 */
        MetricsEndpoint endpoint;
        double setup_ms; /* sandbox set-up time, for the access log */
} Request;

static void request_id_new(char out[33])
{
        unsigned char raw[16];
        static const char hex[] = "0123456789abcdef";

        if (getrandom(raw, sizeof(raw), 0) != (ssize_t) sizeof(raw)) {
                /* Only uniqueness matters here, not secrecy. */
                uint64_t t = now_usec();
                memcpy(raw, &t, sizeof(t));
                memcpy(raw + 8, &raw, sizeof(void *));
        }
        for (size_t i = 0; i < sizeof(raw); i++) {
                out[2 * i] = hex[raw[i] >> 4];
                out[2 * i + 1] = hex[raw[i] & 15];
        }
        out[32] = '\0';
}

/* The client's X-Request-Id when it is a sane token (it goes into logs and headers),
 * otherwise a new one. */
static void request_id_take(const HttpHead *h, char out[REQUEST_ID_MAX + 1])
{
        const char *given = h ? http_field(h, "X-Request-Id") : NULL;
        size_t n = given ? strlen(given) : 0;
        bool ok = n > 0 && n <= REQUEST_ID_MAX;

        for (size_t i = 0; ok && i < n; i++) {
                char c = given[i];
                ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == ':';
        }
        if (ok)
                memcpy(out, given, n + 1);
        else
                request_id_new(out);
}

static void send_response(Request *rq)
{
        ApiResponse *ar = &rq->response;
        char extra[256], fields[192];
        int n;

        n = snprintf(extra, sizeof(extra), "X-Request-Id: %s\r\n%s%s%s%s", rq->request_id,
                     ar->code == API_METHOD_NOT_ALLOWED && rq->allow ? "Allow: " : "",
                     ar->code == API_METHOD_NOT_ALLOWED && rq->allow ? rq->allow : "",
                     ar->code == API_METHOD_NOT_ALLOWED && rq->allow ? "\r\n" : "",
                     ar->code == API_UNAUTHORIZED ? "WWW-Authenticate: Bearer\r\n"
                     : ar->code == API_OVERLOADED ? "Retry-After: 1\r\n"
                                                  : "");
        if (n < 0 || (size_t) n >= sizeof(extra))
                extra[0] = '\0';
        http_respond(rq->conn, ar->http_status, "application/json", extra, ar->body, ar->len);
        metrics_observe(rq->srv->metrics, rq->endpoint, ar->code,
                        (double) (now_usec() - rq->start_usec) / 1e6);
        metrics_add_bytes(rq->srv->metrics, METRICS_BYTES_FILES_OUT, ar->files_bytes);
        metrics_add_bytes(rq->srv->metrics, METRICS_BYTES_FIGURES, ar->figures_bytes);

        (void) snprintf(fields, sizeof(fields),
                        "\"http_status\":%u,\"code\":\"%s\",\"latency_ms\":%.3f,"
                        "\"setup_ms\":%.3f",
                        ar->http_status, api_code_name(ar->code),
                        (double) (now_usec() - rq->start_usec) / 1000.0, rq->setup_ms);
        log_event(ar->http_status >= 500 ? LOG_LEVEL_WARNING : LOG_LEVEL_INFO, rq->request_id,
                  fields, "%s request answered", rq->method);
        response_done(ar);
}

/* When even the error body cannot be built (out of memory). */
static void reply_bare(Request *rq, unsigned status)
{
        char extra[REQUEST_ID_MAX + 32];

        (void) snprintf(extra, sizeof(extra), "X-Request-Id: %s\r\n", rq->request_id);
        http_respond(rq->conn, status, "application/json", extra, "{}", 2);
}

static void reply_error(Request *rq, ApiCode code, const char *message)
{
        if (response_error(code, message, rq->request_id, &rq->response) < 0) {
                reply_bare(rq, 500);
                return;
        }
        send_response(rq);
}

static void reply_simple(Request *rq, unsigned status, const char *key, const char *value)
{
        if (response_simple(status, key, value, &rq->response) < 0) {
                reply_bare(rq, 500);
                return;
        }
        send_response(rq);
}

/* An answer whose body is not an ApiResponse (metrics text, the OpenAPI document, the
 * playground's files), with `more` header lines ("Name: value\r\n" each, or NULL). */
static void reply_body(Request *rq, unsigned status, const char *type, const char *more,
                       const char *body, size_t len)
{
        char extra[1024];
        int n = snprintf(extra, sizeof(extra), "X-Request-Id: %s\r\n%s", rq->request_id,
                         more ? more : "");

        if (n < 0 || (size_t) n >= sizeof(extra)) {
                reply_bare(rq, 500);
                return;
        }
        http_respond(rq->conn, status, type, extra, body, len);
        metrics_observe(rq->srv->metrics, rq->endpoint, API_OK, 0);
}

/* A file of the playground: 200, or 304 when the client's copy is current. */
static void reply_static(Request *rq, const HttpHead *h, const StaticAsset *a)
{
        char more[768];

        if (static_headers(a, more, sizeof(more)) < 0) {
                reply_bare(rq, 500);
                return;
        }
        reply_body(rq, static_not_modified(a, http_field(h, "If-None-Match")) ? 304 : 200, a->type,
                   more, a->data, a->len);
}

static void reply_metrics(Request *rq, const HttpHead *h)
{
        ExecutorStats st;
        char *text;
        size_t len;

        executor_stats(rq->srv->ex, &st);
        if (metrics_render(rq->srv->metrics, &st, &text, &len) < 0) {
                reply_bare(rq, 500);
                return;
        }
        reply_body(rq, 200, "text/plain; version=0.0.4", NULL, text, len);
        free(text);
}

static void reply_ready(Request *rq, const HttpHead *h)
{
        const char *disabled[32];
        size_t n = 0;

        for (uint32_t bit = 1; bit & _LAYER_ALL && n < ELEMENTSOF(disabled); bit <<= 1)
                if (rq->srv->cfg->disabled_layers & bit)
                        disabled[n++] = layer_name((Layer) bit);
        if (response_ready(executor_ready(rq->srv->ex), disabled, n, &rq->response) < 0) {
                reply_bare(rq, 500);
                return;
        }
        send_response(rq);
}

/* Called on the executor thread once no process of the job can run again: keeps the
 * outcome, and the HTTP thread turns it into the response (on_wake), so the executor's
 * thread does no API work. */
static void on_done(ExecOutcome *o, void *userdata)
{
        Request *rq = userdata;

        rq->outcome = *o;
        rq->outcome.request_id = NULL; /* the job's copy goes; rq has its own */
        rq->have_outcome = true;
        http_wake(rq->conn);
}

static bool is_json(const char *content_type)
{
        static const char want[] = "application/json";
        size_t n = sizeof(want) - 1;

        if (!content_type)
                return false;
        while (*content_type == ' ' || *content_type == '\t')
                content_type++;
        if (strncasecmp(content_type, want, n) != 0)
                return false;
        content_type += n;
        while (*content_type == ' ' || *content_type == '\t')
                content_type++;
        return *content_type == '\0' || *content_type == ';';
}

static void reply_too_large(Request *rq)
{
        char msg[128];

        (void) snprintf(msg, sizeof(msg), "Request body is larger than the limit of %zu bytes",
                        rq->srv->cfg->max_body);
        reply_error(rq, API_PAYLOAD_TOO_LARGE, msg);
}

RequestLimits server_request_limits(const Config *cfg)
{
        return (RequestLimits){
                .max_timeout_ms = cfg->timeout_ms,
                .max_memory_mb = cfg->memory_mb,
                .max_files = cfg->max_files,
                .tmp_bytes = cfg->tmp_size,
                .max_output_files = cfg->max_output_files,
                .output_files_limit = cfg->output_files_limit,
        };
}

static void execute_submit(Request *rq, const Buf *body)
{
        Server *s = rq->srv;
        RequestLimits lim = server_request_limits(s->cfg);
        ExecRequest req;
        char errbuf[256];
        int r;

        if (body->truncated) {
                reply_too_large(rq);
                return;
        }
        r = request_parse(body->data ? body->data : "", body->len, &lim, &req, errbuf,
                          sizeof(errbuf));
        if (r > 0) {
                reply_error(rq, (ApiCode) r, errbuf);
                return;
        }
        if (r < 0) {
                reply_error(rq, API_INTERNAL, "Internal error: out of memory");
                return;
        }

        metrics_add_bytes(s->metrics, METRICS_BYTES_FILES_IN, req.files_bytes);
        metrics_add_bytes(s->metrics, METRICS_BYTES_STDIN, req.stdin_bytes);
        req.request_id = rq->request_id;
        req.client_fd = http_conn_fd(rq->conn);
        rq->in_executor = true;
        r = executor_submit(s->ex, &req, on_done, rq);
        if (r == 0) {
                /* on_done may already have run: its wake is handled after we return. */
                http_suspend(rq->conn);
                return;
        }
        rq->in_executor = false;
        if (r == EXECUTOR_E_OVERLOADED)
                reply_error(rq, API_OVERLOADED, "The service is at capacity; retry later");
        else if (r == EXECUTOR_E_STOPPING)
                reply_error(rq, API_OVERLOADED, "The service is shutting down");
        else
                reply_error(rq, API_INTERNAL, "Internal error: cannot queue the job");
}

static void reply_health(Request *rq, const HttpHead *h)
{
        (void) h;
        reply_simple(rq, 200, "status", "ok");
}

static void reply_openapi(Request *rq, const HttpHead *h)
{
        (void) h;
        reply_body(rq, 200, "application/json", NULL, openapi_json, sizeof(openapi_json) - 1);
}

/* POST /execute, head in: refuse now what the body cannot change, or read the body. */
static void execute_head(Request *rq, const HttpHead *h)
{
        const Auth *auth = rq->srv->auth;

        if (auth && !auth_check(auth, http_field(h, "Authorization")))
                reply_error(rq, API_UNAUTHORIZED,
                            "A valid API key is required (Authorization: Bearer <key>)");
        else if (!is_json(http_field(h, "Content-Type")))
                reply_error(rq, API_UNSUPPORTED_MEDIA_TYPE,
                            "Content-Type must be application/json");
        else if (h->body == HTTP_BODY_LENGTH && h->content_length > rq->srv->cfg->max_body)
                reply_too_large(rq);
}

static void reply_wrong_method(Request *rq, bool post)
{
        rq->allow = post ? "POST" : "GET, HEAD";
        reply_error(rq, API_METHOD_NOT_ALLOWED,
                    post ? "Use POST for this endpoint" : "Use GET for this endpoint");
}

/* Every endpoint, its method and its handler. */
static void route(Request *rq, const HttpHead *h)
{
        static const struct {
                const char *path;
                MetricsEndpoint endpoint;
                bool post; /* else GET/HEAD */
                void (*handler)(Request *rq, const HttpHead *h);
        } routes[] = {
                {"/execute", ENDPOINT_EXECUTE, true, execute_head},
                {"/health", ENDPOINT_HEALTH, false, reply_health},
                {"/ready", ENDPOINT_READY, false, reply_ready},
                {"/metrics", ENDPOINT_METRICS, false, reply_metrics},
                {"/openapi.json", ENDPOINT_OTHER, false, reply_openapi},
        };
        bool post = strcmp(h->method, "POST") == 0;
        bool get = strcmp(h->method, "GET") == 0 || strcmp(h->method, "HEAD") == 0;
        const StaticAsset *asset;

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                if (strcmp(h->path, routes[i].path) != 0)
                        continue;
                rq->endpoint = routes[i].endpoint;
                if (routes[i].post ? !post : !get) {
                        reply_wrong_method(rq, routes[i].post);
                        return;
                }
                routes[i].handler(rq, h);
                return;
        }
        /* The playground's files come after every API route, so they cost the API nothing
         * (POST /execute is the table's first row). */
        rq->endpoint = ENDPOINT_OTHER;
        if (rq->srv->cfg->playground && (asset = static_find(h->path))) {
                if (get)
                        reply_static(rq, h, asset);
                else
                        reply_wrong_method(rq, false);
                return;
        }
        reply_error(rq, API_NOT_FOUND, "No such endpoint");
}

static Request *request_new(Server *s, HttpConn *c, const HttpHead *h)
{
        Request *rq = calloc(1, sizeof(*rq));

        if (!rq)
                return NULL;
        rq->srv = s;
        rq->conn = c;
        rq->start_usec = now_usec();
        rq->endpoint = ENDPOINT_OTHER;
        (void) snprintf(rq->method, sizeof(rq->method), "%s", h ? h->method : "-");
        request_id_take(h, rq->request_id);
        http_set_data(c, rq);
        return rq;
}

static void on_head(void *ud, HttpConn *c, const HttpHead *h)
{
        Request *rq = request_new(ud, c, h);

        if (rq)
                route(rq, h);
        /* Out of memory: not answered, so the engine closes the connection. */
}

static void on_request(void *ud, HttpConn *c, const HttpHead *h, const Buf *body)
{
        Request *rq = http_get_data(c);

        (void) ud;
        (void) h;
        if (rq)
                execute_submit(rq, body);
}

static void on_wake(void *ud, HttpConn *c)
{
        Request *rq = http_get_data(c);

        (void) ud;
        if (!rq || !rq->have_outcome)
                return;
        rq->in_executor = false;
        rq->have_outcome = false;
        rq->setup_ms = rq->outcome.setup_ms;
        rq->outcome.request_id = rq->request_id;
        if (response_from_outcome(&rq->outcome, &rq->response) < 0 &&
            response_error(API_INTERNAL, "Internal error: out of memory", rq->request_id,
                           &rq->response) < 0)
                rq->response = (ApiResponse){0};
        exec_outcome_release(&rq->outcome);
        if (rq->response.body)
                send_response(rq);
        else
                reply_bare(rq, 500);
}

static void on_error(void *ud, HttpConn *c, const HttpHead *h, const HttpError *err)
{
        Request *rq = http_get_data(c);

        if (!rq && !(rq = request_new(ud, c, h)))
                return;
        if (err->status == 413) {
                reply_too_large(rq);
                return;
        }
        if (response_error(API_INVALID_REQUEST, err->message, rq->request_id, &rq->response) < 0) {
                reply_bare(rq, err->status);
                return;
        }
        rq->response.http_status = err->status;
        send_response(rq);
}

static void on_end(void *ud, HttpConn *c)
{
        Request *rq = http_get_data(c);

        (void) ud;
        if (!rq)
                return;
        if (rq->have_outcome) /* answered by the executor, never woken (engine stopping) */
                exec_outcome_release(&rq->outcome);
        response_done(&rq->response);
        free(rq);
}

int server_start(const Config *cfg, Executor *ex, const Auth *auth, Server **ret)
{
        static const HttpCallbacks cb = {
                .on_head = on_head,
                .on_request = on_request,
                .on_wake = on_wake,
                .on_error = on_error,
                .on_end = on_end,
        };
        HttpLimits lim = {
                .max_connections = cfg->max_connections,
                .max_per_client = cfg->max_connections_per_client,
                .header_timeout_ms = cfg->header_timeout_ms,
                .idle_timeout_ms = cfg->connection_timeout_ms,
                .max_body = cfg->max_body,
        };
        struct sockaddr_storage ss = {0};
        socklen_t len;
        Server *s;
        int r;

        if (inet_pton(AF_INET, cfg->listen, &((struct sockaddr_in *) &ss)->sin_addr) == 1) {
                struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
                sin->sin_family = AF_INET;
                sin->sin_port = htons(cfg->port);
                len = sizeof(*sin);
        } else if (inet_pton(AF_INET6, cfg->listen, &((struct sockaddr_in6 *) &ss)->sin6_addr) ==
                   1) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(cfg->port);
                len = sizeof(*sin6);
        } else
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cfg = cfg;
        s->ex = ex;
        s->auth = auth;
        s->metrics = metrics_new();
        if (!s->metrics) {
                free(s);
                return -ENOMEM;
        }
        r = http_engine_start((struct sockaddr *) &ss, len, &lim, &cb, s, &s->engine);
        if (r < 0) {
                metrics_free(s->metrics);
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

uint16_t server_port(const Server *s)
{
        return http_engine_port(s->engine);
}

void server_quiesce(Server *s)
{
        if (s)
                http_engine_quiesce(s->engine);
}

void server_finish(Server *s, uint32_t timeout_ms)
{
        uint64_t deadline = now_usec() + (uint64_t) timeout_ms * 1000;

        /* Shutdown only: a 1 ms poll is simpler than a condition variable and costs
         * nothing that matters here. */
        while (s && http_engine_inflight(s->engine) > 0 && now_usec() < deadline)
                (void) usleep(1000);
}

void server_stop(Server *s)
{
        if (!s)
                return;
        http_engine_stop(s->engine);
        metrics_free(s->metrics);
        free(s);
}
