/* See server.h.
 *
 * Per connection, a Request is allocated at the first call of the access handler and freed
 * by the completion notification. Bodies are bounded by cfg->max_body (an announced
 * Content-Length beyond it is refused before a byte of body is read). POST /execute
 * suspends the connection *before* handing the job to the executor, so the completion
 * callback, which may run at once on the executor thread, always resumes a suspended
 * connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "api/api.h"
#include "http/auth.h"
#include "http/openapi.h"
#include "http/server.h"
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
        struct MHD_Daemon *daemon;
        uint16_t port;
        atomic_ulong inflight; /* requests begun and not yet completed (see server_finish) */
};

typedef struct Request {
        Server *srv;
        struct MHD_Connection *conn;
        char request_id[REQUEST_ID_MAX + 1];
        char method[8];
        uint64_t start_usec;
        Buf body;
        bool in_executor; /* suspended, waiting for the executor's callback */
        bool have_response;
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
static void request_id_take(struct MHD_Connection *conn, char out[REQUEST_ID_MAX + 1])
{
        const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
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

static enum MHD_Result send_response(Request *rq)
{
        ApiResponse *ar = &rq->response;
        struct MHD_Response *resp;
        enum MHD_Result ret;
        char fields[192];

        resp = MHD_create_response_from_buffer(ar->len, ar->body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
                return MHD_NO;
        ar->body = NULL; /* MHD owns it now */
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        (void) MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
        if (ar->code == API_METHOD_NOT_ALLOWED && rq->allow)
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rq->allow);
        if (ar->code == API_UNAUTHORIZED)
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        if (ar->code == API_OVERLOADED)
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        ret = MHD_queue_response(rq->conn, ar->http_status, resp);
        MHD_destroy_response(resp);
        metrics_observe(rq->srv->metrics, rq->endpoint, ar->code,
                        (double) (now_usec() - rq->start_usec) / 1e6);

        (void) snprintf(fields, sizeof(fields),
                        "\"http_status\":%u,\"code\":\"%s\",\"latency_ms\":%.3f,"
                        "\"setup_ms\":%.3f",
                        ar->http_status, api_code_name(ar->code),
                        (double) (now_usec() - rq->start_usec) / 1000.0, rq->setup_ms);
        log_event(ar->http_status >= 500 ? LOG_LEVEL_WARNING : LOG_LEVEL_INFO, rq->request_id,
                  fields, "%s request answered", rq->method);
        return ret;
}

static enum MHD_Result reply_error(Request *rq, ApiCode code, const char *message)
{
        if (response_error(code, message, rq->request_id, &rq->response) < 0)
                return MHD_NO;
        return send_response(rq);
}

static enum MHD_Result reply_simple(Request *rq, unsigned status, const char *key,
                                    const char *value)
{
        if (response_simple(status, key, value, &rq->response) < 0)
                return MHD_NO;
        return send_response(rq);
}

/* A 200 with a body that is not an ApiResponse (metrics text, the OpenAPI document). */
static enum MHD_Result reply_body(Request *rq, struct MHD_Response *resp, const char *type)
{
        enum MHD_Result ret;

        if (!resp)
                return MHD_NO;
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        (void) MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
        ret = MHD_queue_response(rq->conn, 200, resp);
        MHD_destroy_response(resp);
        metrics_observe(rq->srv->metrics, rq->endpoint, API_OK, 0);
        return ret;
}

static enum MHD_Result reply_static(Request *rq, const char *body, size_t len, const char *type)
{
        return reply_body(
                rq, MHD_create_response_from_buffer(len, (void *) body, MHD_RESPMEM_PERSISTENT),
                type);
}

static enum MHD_Result reply_metrics(Request *rq)
{
        ExecutorStats st;
        struct MHD_Response *resp;
        char *text;
        size_t len;

        executor_stats(rq->srv->ex, &st);
        if (metrics_render(rq->srv->metrics, &st, &text, &len) < 0)
                return MHD_NO;
        resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!resp)
                free(text);
        return reply_body(rq, resp, "text/plain; version=0.0.4");
}

static enum MHD_Result reply_ready(Request *rq)
{
        const char *disabled[32];
        size_t n = 0;

        for (uint32_t bit = 1; bit & _LAYER_ALL && n < ELEMENTSOF(disabled); bit <<= 1)
                if (rq->srv->cfg->disabled_layers & bit)
                        disabled[n++] = layer_name((Layer) bit);
        if (response_ready(executor_ready(rq->srv->ex), disabled, n, &rq->response) < 0)
                return MHD_NO;
        return send_response(rq);
}

/* Called on the executor thread once the job's sandbox is gone. */
static void on_done(const ExecOutcome *o, void *userdata)
{
        Request *rq = userdata;

        rq->setup_ms = o->setup_ms;
        if (response_from_outcome(o, &rq->response) < 0 &&
            response_error(API_INTERNAL, "Internal error: out of memory", rq->request_id,
                           &rq->response) < 0)
                rq->response = (ApiResponse){0};
        rq->have_response = true;
        MHD_resume_connection(rq->conn);
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

static enum MHD_Result execute_start(Request *rq)
{
        Server *s = rq->srv;
        const char *ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        char msg[128];

        if (!is_json(ct))
                return reply_error(rq, API_UNSUPPORTED_MEDIA_TYPE,
                                   "Content-Type must be application/json");
        if (cl) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(cl, &end, 10);
                if (errno == 0 && *end == '\0' && n > s->cfg->max_body) {
                        (void) snprintf(msg, sizeof(msg),
                                        "Request body is larger than the limit of %zu bytes",
                                        s->cfg->max_body);
                        return reply_error(rq, API_PAYLOAD_TOO_LARGE, msg);
                }
        }
        return MHD_YES;
}

static int client_socket(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        return ci ? ci->connect_fd : -1;
}

static enum MHD_Result execute_submit(Request *rq)
{
        Server *s = rq->srv;
        RequestLimits lim = {.max_timeout_ms = s->cfg->timeout_ms,
                             .max_memory_mb = s->cfg->memory_mb};
        ExecRequest req;
        char errbuf[256], msg[128];
        int r;

        if (rq->body.truncated) {
                (void) snprintf(msg, sizeof(msg),
                                "Request body is larger than the limit of %zu bytes",
                                s->cfg->max_body);
                return reply_error(rq, API_PAYLOAD_TOO_LARGE, msg);
        }
        r = request_parse(rq->body.data ? rq->body.data : "", rq->body.len, &lim, &req, errbuf,
                          sizeof(errbuf));
        if (r > 0)
                return reply_error(rq, (ApiCode) r, errbuf);
        if (r < 0)
                return reply_error(rq, API_INTERNAL, "Internal error: out of memory");
        buf_free(&rq->body);

        ExecParams p = {
                .script = req.script,
                .script_len = req.script_len,
                .timeout_ms = req.timeout_ms,
                .memory_mb = req.memory_mb,
                .request_id = rq->request_id,
                .client_fd = client_socket(rq->conn),
        };
        MHD_suspend_connection(rq->conn);
        rq->in_executor = true;
        r = executor_submit(s->ex, &p, on_done, rq);
        request_done(&req);
        if (r == 0)
                return MHD_YES;

        /* Not accepted: answer now (resumed, the handler runs again and sends it). */
        rq->in_executor = false;
        if (r == EXECUTOR_E_OVERLOADED)
                r = response_error(API_OVERLOADED, "The service is at capacity; retry later",
                                   rq->request_id, &rq->response);
        else if (r == EXECUTOR_E_STOPPING)
                r = response_error(API_OVERLOADED, "The service is shutting down", rq->request_id,
                                   &rq->response);
        else
                r = response_error(API_INTERNAL, "Internal error: cannot queue the job",
                                   rq->request_id, &rq->response);
        rq->have_response = r == 0;
        MHD_resume_connection(rq->conn);
        return MHD_YES;
}

static enum MHD_Result reply_health(Request *rq)
{
        return reply_simple(rq, 200, "status", "ok");
}

static enum MHD_Result reply_openapi(Request *rq)
{
        return reply_static(rq, openapi_json, sizeof(openapi_json) - 1, "application/json");
}

static enum MHD_Result reply_execute(Request *rq)
{
        const Auth *auth = rq->srv->auth;

        if (auth && !auth_check(auth, MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                                  MHD_HTTP_HEADER_AUTHORIZATION)))
                return reply_error(rq, API_UNAUTHORIZED,
                                   "A valid API key is required (Authorization: Bearer <key>)");
        return execute_start(rq);
}

/* Every endpoint, its method and its handler; the first call of each request lands here. */
static enum MHD_Result route(Request *rq, const char *url, bool post, bool get)
{
        static const struct {
                const char *path;
                MetricsEndpoint endpoint;
                bool post; /* else GET/HEAD */
                enum MHD_Result (*handler)(Request *rq);
        } routes[] = {
                {"/execute", ENDPOINT_EXECUTE, true, reply_execute},
                {"/health", ENDPOINT_HEALTH, false, reply_health},
                {"/ready", ENDPOINT_READY, false, reply_ready},
                {"/metrics", ENDPOINT_METRICS, false, reply_metrics},
                {"/openapi.json", ENDPOINT_OTHER, false, reply_openapi},
        };

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                if (strcmp(url, routes[i].path) != 0)
                        continue;
                rq->endpoint = routes[i].endpoint;
                if (routes[i].post ? !post : !get) {
                        rq->allow = routes[i].post ? "POST" : "GET, HEAD";
                        return reply_error(rq, API_METHOD_NOT_ALLOWED,
                                           routes[i].post ? "Use POST for this endpoint"
                                                          : "Use GET for this endpoint");
                }
                return routes[i].handler(rq);
        }
        rq->endpoint = ENDPOINT_OTHER;
        return reply_error(rq, API_NOT_FOUND, "No such endpoint");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        Server *s = cls;
        Request *rq = *con_cls;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

        if (!rq) {
                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                rq->srv = s;
                rq->conn = conn;
                rq->start_usec = now_usec();
                atomic_fetch_add(&s->inflight, 1);
                (void) snprintf(rq->method, sizeof(rq->method), "%s", method);
                request_id_take(conn, rq->request_id);
                buf_init(&rq->body, s->cfg->max_body);
                *con_cls = rq;

                return route(rq, url, post, get);
        }

        if (rq->have_response) {
                rq->have_response = false;
                if (!rq->response.body)
                        return MHD_NO;
                return send_response(rq);
        }
        if (*upload_data_size > 0) {
                /* buf_append keeps at most max_body bytes and flags the rest. */
                if (buf_append(&rq->body, upload_data, *upload_data_size) < 0)
                        return MHD_NO;
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (rq->in_executor)
                return MHD_YES; /* spurious call while suspended */
        return execute_submit(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        Request *rq = *con_cls;

        if (!rq)
                return;
        atomic_fetch_sub(&rq->srv->inflight, 1);
        buf_free(&rq->body);
        response_done(&rq->response);
        free(rq);
        *con_cls = NULL;
}

_printf_(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        size_t n;

        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
                msg[--n] = '\0';
        log_event(LOG_LEVEL_WARNING, NULL, NULL, "libmicrohttpd: %s", msg);
}

int server_start(const Config *cfg, Executor *ex, const Auth *auth, Server **ret)
{
        struct sockaddr_storage ss = {0};
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
        Server *s;
        const union MHD_DaemonInfo *info;

        if (inet_pton(AF_INET, cfg->listen, &((struct sockaddr_in *) &ss)->sin_addr) == 1) {
                struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
                sin->sin_family = AF_INET;
                sin->sin_port = htons(cfg->port);
        } else if (inet_pton(AF_INET6, cfg->listen, &((struct sockaddr_in6 *) &ss)->sin6_addr) ==
                   1) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(cfg->port);
                flags |= MHD_USE_IPv6;
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
        /* The logger first, so that MHD's own messages about later options reach it. */
        s->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, s,
                                     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                                     MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_CONNECTION_LIMIT,
                                     (unsigned) cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                                     (unsigned) ((cfg->connection_timeout_ms + 999) / 1000),
                                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
        if (!s->daemon) {
                metrics_free(s->metrics);
                free(s);
                return -EADDRNOTAVAIL;
        }
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info ? info->port : cfg->port;
        *ret = s;
        return 0;
}

uint16_t server_port(const Server *s)
{
        return s->port;
}

void server_quiesce(Server *s)
{
        /* MHD hands the listening socket back: close it, or the kernel would go on
         * completing handshakes into its backlog that nobody will ever serve. */
        if (s && s->daemon) {
                MHD_socket fd = MHD_quiesce_daemon(s->daemon);
                if (fd != MHD_INVALID_SOCKET)
                        (void) close(fd);
        }
}

void server_finish(Server *s, uint32_t timeout_ms)
{
        uint64_t deadline = now_usec() + (uint64_t) timeout_ms * 1000;

        /* Shutdown only: a 1 ms poll is simpler than a condition variable and costs
         * nothing that matters here. */
        while (s && atomic_load(&s->inflight) > 0 && now_usec() < deadline)
                (void) usleep(1000);
}

void server_stop(Server *s)
{
        if (!s)
                return;
        if (s->daemon)
                MHD_stop_daemon(s->daemon);
        metrics_free(s->metrics);
        free(s);
}
