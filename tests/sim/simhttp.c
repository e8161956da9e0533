#include "simhttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The server and request this thread's handler is serving (one thread per
 * connection): sim_reply ends the request's work as it queues the answer. */
static __thread sim_server_t *s_srv;
static __thread sim_req_t *s_req;

static void
end_request (sim_server_t *srv, sim_req_t *req)
{
    if (srv && req && !req->ended && srv->done)
        srv->done (srv->cls, req);
    if (req)
        req->ended = 1;
}

static enum MHD_Result
dispatch (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    sim_server_t *srv = cls;
    sim_req_t *req = *con_cls;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        s_srv = srv;
        s_req = req;
        sim_step_t step = srv->handler (srv->cls, conn, method, url, req, 0);
        if (step == SIM_DONE)
            req->answered = 1;
        return step == SIM_FAIL ? MHD_NO : MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->answered && !req->too_big) {
            size_t n = *upload_data_size;
            if (req->len + n > SIM_BODY_MAX)
                req->too_big = 1;
            else {
                if (req->len + n + 1 > req->cap) {
                    size_t cap = (req->len + n + 1) * 2;
                    char *grown = realloc (req->body, cap);
                    if (!grown)
                        return MHD_NO;
                    req->body = grown;
                    req->cap = cap;
                }
                memcpy (req->body + req->len, upload_data, n);
                req->len += n;
                req->body [req->len] = 0;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->answered)
        return MHD_YES;
    req->answered = 1;
    if (!req->body) {
        req->body = calloc (1, 1);
        if (!req->body)
            return MHD_NO;
    }
    s_srv = srv;
    s_req = req;
    return srv->handler (srv->cls, conn, method, url, req, 1) == SIM_FAIL ? MHD_NO : MHD_YES;
}

static void
completed (void *cls, struct MHD_Connection *conn, void **con_cls,
           enum MHD_RequestTerminationCode code)
{
    (void) conn;
    (void) code;
    sim_server_t *srv = cls;
    sim_req_t *req = *con_cls;
    if (!req)
        return;
    end_request (srv, req);
    if (s_req == req)
        s_req = NULL;
    free (req->body);
    free (req);
    *con_cls = NULL;
}

int
sim_listen (sim_server_t *srv, uint16_t port, uint64_t seed)
{
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons (port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    static char random [32];
    sim_rng_t rng;
    sim_rng_seed (&rng, seed ^ 0x5eed);
    for (size_t i = 0; i < sizeof random; i++)
        random [i] = (char) sim_rng_next (&rng);
    srv->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                    0, NULL, NULL, dispatch, srv,
                                    MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                                    MHD_OPTION_NOTIFY_COMPLETED, completed, srv,
                                    MHD_OPTION_DIGEST_AUTH_RANDOM, sizeof random, random,
                                    MHD_OPTION_NONCE_NC_SIZE, 4096,
                                    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
                                    MHD_OPTION_CONNECTION_TIMEOUT, 120,
                                    MHD_OPTION_END);
    if (!srv->daemon)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (srv->daemon,
                                                            MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : port;
    return 0;
}

void
sim_stop (sim_server_t *srv)
{
    if (srv->daemon)
        MHD_stop_daemon (srv->daemon);
    srv->daemon = NULL;
}

/* The reply of the request this thread serves leaves no earlier than this
 * (microseconds, CLOCK_MONOTONIC; 0: at once). One thread per connection. */
static __thread int64_t s_reply_due_us;

int64_t
sim_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
sleep_us (int64_t us)
{
    if (us <= 0)
        return;
    struct timespec ts = { us / 1000000, (long) (us % 1000000) * 1000L };
    while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
        ;
}

void
sim_reply_after_ms (int64_t ms)
{
    s_reply_due_us = ms > 0 ? sim_now_us () + ms * 1000 : 0;
}

sim_step_t
sim_reply (struct MHD_Connection *conn, unsigned status, const char *content_type,
           const char *body, size_t len, ...)
{
    if (s_reply_due_us) {
        int64_t wait = s_reply_due_us - sim_now_us ();
        s_reply_due_us = 0;
        sleep_us (wait);
    }
    end_request (s_srv, s_req);
    struct MHD_Response *resp = MHD_create_response_from_buffer (len, (void *) body,
                                                                 MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return SIM_FAIL;
    if (content_type)
        MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    va_list ap;
    va_start (ap, len);
    const char *name;
    while ((name = va_arg (ap, const char *)) != NULL) {
        const char *value = va_arg (ap, const char *);
        MHD_add_response_header (resp, name, value);
    }
    va_end (ap);
    enum MHD_Result r = MHD_queue_response (conn, status, resp);
    MHD_destroy_response (resp);
    return r == MHD_YES ? SIM_DONE : SIM_FAIL;
}

sim_step_t
sim_reply_text (struct MHD_Connection *conn, unsigned status, const char *text)
{
    return sim_reply (conn, status, "text/plain; charset=utf-8", text, strlen (text), NULL);
}

sim_step_t
sim_reply_json (struct MHD_Connection *conn, unsigned status, json_t *j, int close)
{
    char *text = json_dumps (j, JSON_COMPACT);
    json_decref (j);
    if (!text)
        return SIM_FAIL;
    const char *type = "application/json; charset=\"UTF-8\"";
    sim_step_t step = close
        ? sim_reply (conn, status, type, text, strlen (text), "Connection", "close", NULL)
        : sim_reply (conn, status, type, text, strlen (text), NULL);
    free (text);
    return step;
}

sim_step_t
sim_control_error (struct MHD_Connection *conn, unsigned status, const char *why)
{
    return sim_reply_json (conn, status, json_pack ("{s:s}", "error", why), 0);
}

void
sim_client_ip (struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out [0] = 0;
    if (info && info->client_addr && info->client_addr->sa_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *) info->client_addr)->sin_addr, out,
                   (socklen_t) size);
}

void
sim_rng_seed (sim_rng_t *rng, uint64_t seed)
{
    rng->state = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint64_t
sim_rng_next (sim_rng_t *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double
sim_rng_real (sim_rng_t *rng)
{
    return (double) (sim_rng_next (rng) >> 11) / (double) (1ull << 53);
}

unsigned
sim_rng_below (sim_rng_t *rng, unsigned n)
{
    return n ? (unsigned) (sim_rng_next (rng) % n) : 0;
}

int64_t
sim_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sim_sleep_ms (int64_t ms)
{
    sleep_us (ms * 1000);
}

int
sim_write_port_file (const char *path, const uint16_t *ports, size_t count)
{
    char tmp [4096];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen (tmp, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < count; i++)
        fprintf (f, "%u\n", (unsigned) ports [i]);
    if (fclose (f) != 0)
        return -1;
    return rename (tmp, path);
}

void
sim_buf_add (sim_buf_t *b, const char *text, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *grown = realloc (b->data, cap);
        if (!grown)
            abort ();
        b->data = grown;
        b->cap = cap;
    }
    memcpy (b->data + b->len, text, len);
    b->len += len;
    b->data [b->len] = 0;
}

void
sim_buf_printf (sim_buf_t *b, const char *fmt, ...)
{
    char small [1024];
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (small, sizeof small, fmt, ap);
    va_end (ap);
    if (n < 0)
        return;
    if ((size_t) n < sizeof small) {
        sim_buf_add (b, small, (size_t) n);
        return;
    }
    char *big = malloc ((size_t) n + 1);
    if (!big)
        abort ();
    va_start (ap, fmt);
    vsnprintf (big, (size_t) n + 1, fmt, ap);
    va_end (ap);
    sim_buf_add (b, big, (size_t) n);
    free (big);
}

void
sim_buf_xml (sim_buf_t *b, const char *text)
{
    const char *run = text;
    for (const char *p = text; ; p++) {
        const char *rep = NULL;
        switch (*p) {
            case '&': rep = "&amp;"; break;
            case '<': rep = "&lt;"; break;
            case '>': rep = "&gt;"; break;
            case '"': rep = "&quot;"; break;
            case '\'': rep = "&apos;"; break;
            case 0: break;
            default: continue;
        }
        sim_buf_add (b, run, (size_t) (p - run));
        if (!*p)
            return;
        sim_buf_add (b, rep, strlen (rep));
        run = p + 1;
    }
}

void
sim_buf_free (sim_buf_t *b)
{
    free (b->data);
    memset (b, 0, sizeof *b);
}
