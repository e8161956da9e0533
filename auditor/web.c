#include "auditor/web.h"
#include "auditor/ctl.h"
#include "auditor/metrics.h"
#include "common/cli.h"
#include "common/db.h"
#include "common/email.h"
#include "common/sd.h"
#include "common/zmq.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECTIONS 32          /* at once; a window has few viewers */
#define HISTORY_MAX 1000        /* events a history answer holds at most */

typedef struct {
    const cs_config_t *cfg;
    cs_log_t *log;
    pthread_mutex_t ctl_lock;   /* one question to the differ at a time */
    char audit_path [4200];
} server_t;

/* --- the Host check ------------------------------------------------------------------------ */

int
cs_web_host_allowed (const cs_web_config_t *web, const char *host)
{
    if (!host)
        return 0;
    char name [256];
    size_t len = strlen (host);
    const char *end = host + len;
    if (host [0] == '[') {
        const char *close = strchr (host, ']');
        if (!close)
            return 0;
        end = close + 1;        /* "[::1]" and then perhaps ":port" */
    }
    else if (strchr (host, ':'))
        end = strchr (host, ':');
    if (*end == ':') {
        for (const char *p = end + 1; *p; p++)
            if (!isdigit ((unsigned char) *p))
                return 0;
    }
    else if (*end)
        return 0;
    len = (size_t) (end - host);
    if (len == 0 || len >= sizeof name)
        return 0;
    for (size_t i = 0; i < len; i++)
        name [i] = (char) tolower ((unsigned char) host [i]);
    name [len] = 0;
    if (len > 1 && name [len - 1] == '.')
        name [len - 1] = 0;     /* "club.example." is "club.example" */
    for (size_t i = 0; i < web->allowed_count; i++)
        if (!strcmp (name, web->allowed_hosts [i]))
            return 1;
    return 0;
}

/* --- answers ------------------------------------------------------------------------------- */

/* Queues body (taken) with the headers every answer carries: nothing cached,
 * nothing sniffed, never framed, no referrer; and no CORS allowance. */
static enum MHD_Result
reply (struct MHD_Connection *conn, unsigned status, const char *type, char *body)
{
    if (!body)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free (body);
        return MHD_NO;
    }
    MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header (r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (r, "X-Frame-Options", "DENY");
    MHD_add_response_header (r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (r, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    enum MHD_Result ok = MHD_queue_response (conn, status, r);
    MHD_destroy_response (r);
    return ok;
}

/* j is taken. */
static enum MHD_Result
reply_json (struct MHD_Connection *conn, unsigned status, json_t *j)
{
    char *text = j ? json_dumps (j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref (j);
    if (text) {
        size_t n = strlen (text);
        char *line = realloc (text, n + 2);
        if (line) {
            line [n] = '\n';
            line [n + 1] = 0;
            text = line;
        }
    }
    return reply (conn, status, "application/json; charset=utf-8", text);
}

static enum MHD_Result
reply_error (struct MHD_Connection *conn, unsigned status, const char *why)
{
    return reply_json (conn, status, json_pack ("{s:s}", "error", why));
}

/* --- the differ's answers ------------------------------------------------------------------ */

/* Asks the differ (req is taken) and answers with its body, or 503 saying why
 * not; a refusal (a bad request) is 400. */
static cs_ctl_rc_t
ask_body (server_t *s, cs_msg_t *req, int timeout_ms, json_t **body, char *err, size_t err_size)
{
    *body = NULL;
    snprintf (err, err_size, "out of memory");
    if (!req)
        return CS_CTL_BROKEN;
    pthread_mutex_lock (&s->ctl_lock);
    cs_ctl_rc_t r = cs_ctl_ask (s->cfg, req, timeout_ms, body, err, err_size);
    pthread_mutex_unlock (&s->ctl_lock);
    cs_msg_destroy (&req);
    return r;
}

static enum MHD_Result
ask (server_t *s, struct MHD_Connection *conn, cs_msg_t *req, int timeout_ms)
{
    json_t *body = NULL;
    char err [600];
    cs_ctl_rc_t r = ask_body (s, req, timeout_ms, &body, err, sizeof err);
    if (r == CS_CTL_OK)
        return reply_json (conn, 200, body);
    if (r == CS_CTL_REFUSED)
        return reply_error (conn, 400, err);
    /* as `status --json` says it: the verdict is "needs attention" */
    return reply_json (conn, 503, json_pack ("{s:s, s:[s]}", "error", err, "attention", err));
}

/* The events audit.db holds about one member, oldest first (the last
 * HISTORY_MAX); read-only, never state.db. */
static enum MHD_Result
history (server_t *s, struct MHD_Connection *conn, const char *email)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2 (s->audit_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        char why [4400];
        snprintf (why, sizeof why, "no audit yet (%s): %s", s->audit_path, db ? sqlite3_errmsg (db) : "");
        sqlite3_close (db);
        return reply_error (conn, 503, why);
    }
    sqlite3_busy_timeout (db, CS_DB_BUSY_TIMEOUT_MS);
    sqlite3_stmt *st = NULL;
    json_t *rows = json_array ();
    int rc = sqlite3_prepare_v2 (db, "SELECT body FROM (SELECT seq, body FROM event WHERE email = ?1 "
                                     "ORDER BY seq DESC LIMIT ?2) ORDER BY seq", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text (st, 1, email, -1, SQLITE_STATIC);
        sqlite3_bind_int (st, 2, HISTORY_MAX);
        while ((rc = sqlite3_step (st)) == SQLITE_ROW) {
            json_t *e = json_loads ((const char *) sqlite3_column_text (st, 0), 0, NULL);
            if (e)
                json_array_append_new (rows, e);
        }
    }
    if (rc != SQLITE_DONE) {
        char why [600];
        snprintf (why, sizeof why, "cannot read audit.db: %s", sqlite3_errmsg (db));
        sqlite3_finalize (st);
        sqlite3_close (db);
        json_decref (rows);
        return reply_error (conn, 503, why);
    }
    sqlite3_finalize (st);
    sqlite3_close (db);
    return reply_json (conn, 200, json_pack ("{s:s, s:o}", "email", email, "rows", rows));
}

static const char *
query (struct MHD_Connection *conn, const char *key)
{
    return MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result
api (server_t *s, struct MHD_Connection *conn, const char *path)
{
    static const char *const lists [] = { "status", "failed", "held", "unmatched", "orphans", NULL };
    for (int i = 0; lists [i]; i++)
        if (!strcmp (path, lists [i]))
            return ask (s, conn, cs_ctl_request (lists [i]), CS_CTL_TIMEOUT_MS);
    if (!strcmp (path, "member") || !strcmp (path, "history")) {
        const char *given = query (conn, "email");
        char email [CS_EMAIL_MAX + 1];
        cs_email_error_t e = given ? cs_email_normalize (given, email) : CS_EMAIL_EMPTY;
        if (e != CS_EMAIL_OK) {
            char why [300];
            snprintf (why, sizeof why, "?email= wants an e-mail address: %s", cs_email_strerror (e));
            return reply_error (conn, 400, why);
        }
        if (!strcmp (path, "history"))
            return history (s, conn, email);
        cs_msg_t *req = cs_ctl_request ("member");
        if (req && cs_msg_set_str (req, CS_F_EMAIL, email) != 0)
            cs_msg_destroy (&req);
        return ask (s, conn, req, CS_CTL_TIMEOUT_MS);
    }
    return reply_error (conn, 404, "no such API: /api/status, failed, held, unmatched, orphans, "
                        "member?email=, history?email=");
}

/* --- the login ----------------------------------------------------------------------------- */

/* Equal, in a time that does not depend on where they differ. */
static int
same (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char) (a [i] ^ b [lb ? i % lb : 0]);
    return diff == 0;
}

static void
client_ip (struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf (out, size, "?");
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, out, (socklen_t) size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr, out, (socklen_t) size);
}

/* 1 when the request may go on; else a 401 is queued (*queued says how that went). */
static int
logged_in (server_t *s, struct MHD_Connection *conn, enum MHD_Result *queued)
{
    const cs_web_config_t *w = &s->cfg->web;
    if (!w->username)
        return 1;
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password (conn, &password);
    int ok = user && password && w->password && same (user, w->username) && same (password, w->password);
    if (!ok && user) {
        char ip [INET6_ADDRSTRLEN];
        client_ip (conn, ip, sizeof ip);
        cs_log (s->log, CS_LOG_WARN, "login_failed", "client", ip, "user", user, NULL);
    }
    if (user)
        MHD_free (user);
    if (password) {
        explicit_bzero (password, strlen (password));
        MHD_free (password);
    }
    if (ok)
        return 1;
    char *text = strdup ("{\"error\":\"login required\"}\n");
    struct MHD_Response *r = text ? MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r) {
        free (text);
        *queued = MHD_NO;
        return 0;
    }
    MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    MHD_add_response_header (r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    *queued = MHD_queue_basic_auth_fail_response (conn, "cardsync", r);
    MHD_destroy_response (r);
    return 0;
}

/* --- requests ------------------------------------------------------------------------------ */

static enum MHD_Result
handle (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
        const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void) version;
    (void) upload;
    server_t *s = cls;
    static int headers_seen;
    if (!*state) {              /* the headers are in; the body (if any) comes next */
        *state = &headers_seen;
        return MHD_YES;
    }
    if (*upload_size) {         /* no request here takes a body */
        *upload_size = 0;
        return MHD_YES;
    }
    const char *host = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!cs_web_host_allowed (&s->cfg->web, host)) {
        char why [400];
        snprintf (why, sizeof why, "this window answers only to the names in [web] allowed_hosts, "
                  "not to '%.200s'", host ? host : "");
        return reply_error (conn, 403, why);
    }
    enum MHD_Result queued;
    if (!logged_in (s, conn, &queued))
        return queued;
    int get = !strcmp (method, "GET") || !strcmp (method, "HEAD");
    if (!strcmp (url, "/metrics")) {
        if (!get)
            return reply_error (conn, 405, "/metrics is read with GET");
        json_t *status = NULL;
        char err [600];
        ask_body (s, cs_ctl_request ("status"), CS_CTL_TIMEOUT_MS, &status, err, sizeof err);
        char *text = cs_metrics_text (status);     /* a silent differ: cardsync_differ_up 0 */
        json_decref (status);
        return reply (conn, 200, "text/plain; version=0.0.4; charset=utf-8", text);
    }
    if (!strncmp (url, "/api/", 5)) {
        if (!get)
            return reply_error (conn, 405, "the API is read with GET");
        return api (s, conn, url + 5);
    }
    return reply_error (conn, 404, "not found: the API is under /api/");
}

static void
mhd_log (void *cls, const char *fmt, va_list ap)
{
    char text [512];
    vsnprintf (text, sizeof text, fmt, ap);
    size_t n = strlen (text);
    while (n && text [n - 1] == '\n')
        text [--n] = 0;
    cs_log (cls, CS_LOG_WARN, "http_error", "msg", text, NULL);
}

static char *
slurp (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t len = 0, cap = 0, n;
    char chunk [4096];
    while ((n = fread (chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *grown = realloc (data, cap);
            if (!grown) {
                free (data);
                fclose (f);
                return NULL;
            }
            data = grown;
        }
        memcpy (data + len, chunk, n);
        len += n;
    }
    fclose (f);
    if (data)
        data [len] = 0;
    return data;
}

int
cs_web_serve (const cs_config_t *cfg, cs_log_t *log, int argc, const char **argv)
{
    static const char *usage = "usage: cardsync-auditor serve\n"
        "The operator's window: an HTTP server on [web] listen (default 127.0.0.1:8480) with\n"
        "JSON under /api/: status, failed, held, unmatched, orphans, member?email=E,\n"
        "history?email=E, and /metrics for Prometheus. It asks the differ and reads audit.db; run it as its own program\n"
        "(supervisord or cardsync-web.service). Off loopback it needs [web] username and\n"
        "CARDSYNC_WEB_PASSWORD, and TLS (cert_file, key_file) or allow_plain_http = true.\n"
        "example: curl http://127.0.0.1:8480/api/status\n";
    if (argc >= 1) {
        int asked = !strcmp (argv [0], "--help") || !strcmp (argv [0], "-h");
        fputs (usage, asked ? stdout : stderr);
        return asked ? 0 : EX_USAGE;
    }
    const cs_web_config_t *w = &cfg->web;
    server_t s = { .cfg = cfg, .log = log };
    pthread_mutex_init (&s.ctl_lock, NULL);
    snprintf (s.audit_path, sizeof s.audit_path, "%s/audit.db", cfg->pipeline.state_dir);
    char error [512];
    cs_zmq_t *zmq = cs_zmq_new (&cfg->pipeline, error, sizeof error);  /* signals; czmq set up once */
    if (!zmq) {
        cs_log (log, CS_LOG_ERROR, "start_failed", "error", error, NULL);
        return EX_UNAVAILABLE;
    }
    char *cert = NULL, *key = NULL;
    if (w->cert_file && (!(cert = slurp (w->cert_file)) || !(key = slurp (w->key_file)))) {
        cs_log (log, CS_LOG_ERROR, "start_failed", "error", "cannot read [web] cert_file or key_file",
                "cert_file", w->cert_file, "key_file", w->key_file, NULL);
        free (cert);
        cs_zmq_destroy (&zmq);
        return EX_CONFIG;
    }
    struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) w->port) };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons ((uint16_t) w->port) };
    struct sockaddr *addr = (struct sockaddr *) &a4;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (w->family == AF_INET6) {
        inet_pton (AF_INET6, w->address, &a6.sin6_addr);
        addr = (struct sockaddr *) &a6;
        flags |= MHD_USE_IPv6;
    }
    else
        inet_pton (AF_INET, w->address, &a4.sin_addr);
    if (cert)
        flags |= MHD_USE_TLS;
    struct MHD_Daemon *d = cert
        ? MHD_start_daemon (flags, 0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned) CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, log,
                            MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
                            MHD_OPTION_END)
        : MHD_start_daemon (flags, 0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned) CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, log, MHD_OPTION_END);
    char where [128], port [16];
    snprintf (port, sizeof port, "%d", w->port);
    snprintf (where, sizeof where, "%s://%s%s%s:%d/", cert ? "https" : "http", w->family == AF_INET6 ? "[" : "",
              w->address, w->family == AF_INET6 ? "]" : "", w->port);
    int rc = 0;
    if (!d) {
        cs_log (log, CS_LOG_ERROR, "start_failed", "error", "cannot listen (is the port in use, or "
                "the address not this machine's?)", "listen", where, NULL);
        rc = EX_UNAVAILABLE;
    }
    else {
        cs_log (log, CS_LOG_INFO, "serving", "url", where, "login", w->username ? "required" : "none (loopback)",
                NULL);
        cs_sd_ready ("serving");
        while (!cs_zmq_interrupted ()) {
            if (cs_sd_due ())
                cs_sd_alive ("serving");
            zclock_sleep (200);
        }
        cs_sd_stopping ();
        MHD_stop_daemon (d);
        cs_log (log, CS_LOG_INFO, "stopped", NULL);
    }
    if (key)
        explicit_bzero (key, strlen (key));
    free (key);
    free (cert);
    cs_zmq_destroy (&zmq);
    pthread_mutex_destroy (&s.ctl_lock);
    return rc;
}
