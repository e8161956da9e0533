#include "auditor/web.h"
#include "auditor/ctl.h"
#include "auditor/metrics.h"
#include "auditor/pages.h"
#include "common/cli.h"
#include "common/db.h"
#include "common/email.h"
#include "common/sd.h"
#include "common/zmq.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <gnutls/crypto.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define CONNECTIONS 32          /* at once; a window has few viewers */
#define HISTORY_MAX 1000        /* events a history answer holds at most */

typedef struct {
    const cs_config_t *cfg;
    cs_log_t *log;
    pthread_mutex_t ctl_lock;   /* one question to the differ at a time */
    char audit_path [4200];
    cs_zmq_t *zmq;              /* for the live stream's subscriptions */
    unsigned char key [32];     /* the forms' tokens are made with it */
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
 * nothing sniffed, never framed, no referrer, no CORS allowance; a page may
 * load only this server's stylesheet and script, and post only here. cookie:
 * a new session's Set-Cookie value, or NULL. */
static enum MHD_Result
reply_with (struct MHD_Connection *conn, unsigned status, const char *type, char *body, const char *cookie)
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
    MHD_add_response_header (r, "Content-Security-Policy", !strncmp (type, "text/html", 9)
                             ? "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
                             : "default-src 'none'; frame-ancestors 'none'");
    if (cookie)
        MHD_add_response_header (r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    enum MHD_Result ok = MHD_queue_response (conn, status, r);
    MHD_destroy_response (r);
    return ok;
}

static enum MHD_Result
reply (struct MHD_Connection *conn, unsigned status, const char *type, char *body)
{
    return reply_with (conn, status, type, body, NULL);
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
/* The last `limit` events audit.db holds (about email, or all when NULL),
 * oldest first, as {"rows": [...]}; NULL with why. Read-only, never state.db. */
static json_t *
read_events (server_t *s, const char *email, int limit, char *why, size_t why_size)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2 (s->audit_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf (why, why_size, "no audit yet (%s): %s", s->audit_path, db ? sqlite3_errmsg (db) : "");
        sqlite3_close (db);
        return NULL;
    }
    sqlite3_busy_timeout (db, CS_DB_BUSY_TIMEOUT_MS);
    sqlite3_stmt *st = NULL;
    json_t *rows = json_array ();
    int rc = sqlite3_prepare_v2 (db, "SELECT body FROM (SELECT seq, body FROM event WHERE ?1 IS NULL OR email = ?1 "
                                     "ORDER BY seq DESC LIMIT ?2) ORDER BY seq", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        if (email)
            sqlite3_bind_text (st, 1, email, -1, SQLITE_STATIC);
        sqlite3_bind_int (st, 2, limit);
        while ((rc = sqlite3_step (st)) == SQLITE_ROW) {
            json_t *e = json_loads ((const char *) sqlite3_column_text (st, 0), 0, NULL);
            if (e)
                json_array_append_new (rows, e);
        }
    }
    if (rc != SQLITE_DONE)
        snprintf (why, why_size, "cannot read audit.db: %s", sqlite3_errmsg (db));
    sqlite3_finalize (st);
    sqlite3_close (db);
    if (rc != SQLITE_DONE) {
        json_decref (rows);
        return NULL;
    }
    return json_pack ("{s:o}", "rows", rows);
}

static enum MHD_Result
history (server_t *s, struct MHD_Connection *conn, const char *email)
{
    char why [4400];
    json_t *j = read_events (s, email, HISTORY_MAX, why, sizeof why);
    if (!j)
        return reply_error (conn, 503, why);
    json_object_set_new (j, "email", json_string (email));
    return reply_json (conn, 200, j);
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

/* --- sessions and forms ------------------------------------------------------------------- *
 * A browser gets a session cookie (random, HttpOnly, SameSite=Strict); each
 * form carries a token, HMAC-SHA256 of the session under a key made at start,
 * and a POST whose token does not match its cookie is refused: another site
 * cannot post here in the operator's name. */

#define SESSION_LEN 32          /* hex characters */
#define TOKEN_LEN 64

typedef struct {
    struct MHD_PostProcessor *pp;
    char csrf [TOKEN_LEN + 1];
    long long id;               /* replay: one failed target */
    int all;                    /* replay: all of them */
    long long count;            /* approve: the revocations the page showed */
    int bad;                    /* a field that is no field of ours, or too long */
} req_t;

static void
hex (const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf (out + 2 * i, 3, "%02x", in [i]);
}

/* The request's session (from its cookie), or "" when it has none. */
static void
session_of (struct MHD_Connection *conn, char out [SESSION_LEN + 1])
{
    const char *c = MHD_lookup_connection_value (conn, MHD_COOKIE_KIND, "cs_session");
    out [0] = 0;
    if (!c || strlen (c) != SESSION_LEN)
        return;
    for (int i = 0; i < SESSION_LEN; i++)
        if (!isxdigit ((unsigned char) c [i]))
            return;
    memcpy (out, c, SESSION_LEN + 1);
}

static void
token_of (const server_t *s, const char *session, char out [TOKEN_LEN + 1])
{
    unsigned char mac [32];
    out [0] = 0;
    if (gnutls_hmac_fast (GNUTLS_MAC_SHA256, s->key, sizeof s->key, session, strlen (session), mac) == 0)
        hex (mac, sizeof mac, out);
}

static enum MHD_Result
on_field (void *cls, enum MHD_ValueKind kind, const char *key, const char *filename, const char *type,
          const char *encoding, const char *data, uint64_t off, size_t size)
{
    (void) kind; (void) filename; (void) type; (void) encoding;
    req_t *r = cls;
    char value [TOKEN_LEN + 1];
    if (off != 0 || size > TOKEN_LEN) {
        r->bad = 1;
        return MHD_YES;
    }
    memcpy (value, data, size);
    value [size] = 0;
    char *endp = NULL;
    long long n = strtoll (value, &endp, 10);
    int number = size > 0 && !*endp && n > 0;
    if (!strcmp (key, "csrf"))
        memcpy (r->csrf, value, size + 1);
    else if (!strcmp (key, "id") && number)
        r->id = n;
    else if (!strcmp (key, "count") && number)
        r->count = n;
    else if (!strcmp (key, "all") && !strcmp (value, "1"))
        r->all = 1;
    else if (strcmp (key, "replay"))
        r->bad = 1;
    return MHD_YES;
}

static enum MHD_Result
redirect (struct MHD_Connection *conn, const char *to)
{
    struct MHD_Response *r = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header (r, MHD_HTTP_HEADER_LOCATION, to);
    MHD_add_response_header (r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response (conn, 303, r);
    MHD_destroy_response (r);
    return ok;
}

/* A form's POST: the token must match the session; then the differ is asked
 * and the browser sent back to the page, which says what happened. */
static enum MHD_Result
post (server_t *s, struct MHD_Connection *conn, const char *url, req_t *r)
{
    char session [SESSION_LEN + 1], want [TOKEN_LEN + 1], ip [INET6_ADDRSTRLEN];
    session_of (conn, session);
    token_of (s, session, want);
    client_ip (conn, ip, sizeof ip);
    if (!session [0] || !want [0] || !same (r->csrf, want)) {
        cs_log (s->log, CS_LOG_WARN, "form_refused", "client", ip, "path", url, "msg",
                "no session, or the form's token does not match it", NULL);
        return reply_with (conn, 403, "text/html; charset=utf-8", cs_page_message ("Refused",
                           "This form's token does not match your session (an old page, or a post from "
                           "another site). Reload the page and try again."), NULL);
    }
    if (r->bad)
        return reply_error (conn, 400, "a field this form does not have");
    json_t *body = NULL;
    char err [600], to [700];
    if (!strcmp (url, "/replay") && (r->all || r->id)) {
        cs_msg_t *req = cs_ctl_request ("replay");
        if (req && r->all)
            cs_msg_set_bool (req, CS_F_ALL, 1);
        else if (req)
            cs_msg_add_id (req, (uint64_t) r->id);
        if (ask_body (s, req, 6 * CS_CTL_TIMEOUT_MS, &body, err, sizeof err) != CS_CTL_OK)
            return reply_with (conn, 503, "text/html; charset=utf-8", cs_page_message ("Replay", err), NULL);
        size_t i, re = 0, n = json_array_size (json_object_get (body, "rows"));
        json_t *x;
        json_array_foreach (json_object_get (body, "rows"), i, x) {
            const char *state = json_string_value (json_object_get (x, "state"));
            re += state && !strcmp (state, "replayed");
        }
        cs_log (s->log, CS_LOG_INFO, "replay_asked", "client", ip, "msg", r->all ? "all" : "one", NULL);
        snprintf (to, sizeof to, "/failed?replayed=%zu&superseded=%zu", re, n - re);
        json_decref (body);
        return redirect (conn, to);
    }
    if (!strcmp (url, "/approve") && r->count) {
        cs_msg_t *req = cs_ctl_request ("approve");
        if (req)
            cs_msg_set_int (req, CS_F_COUNT, r->count);
        if (ask_body (s, req, 6 * CS_CTL_TIMEOUT_MS, &body, err, sizeof err) != CS_CTL_OK)
            return reply_with (conn, 503, "text/html; charset=utf-8", cs_page_message ("Approve", err), NULL);
        int approved = json_is_true (json_object_get (body, "approved"));
        cs_log (s->log, CS_LOG_INFO, "approve_asked", "client", ip, "approved", approved ? "true" : "false", NULL);
        json_decref (body);
        return redirect (conn, approved ? "/guard?approved=1" : "/guard?changed=1");
    }
    return reply_error (conn, 400, "this form lacks what it needs");
}

/* --- the live stream (Server-Sent Events) ------------------------------------------------- */

typedef struct {
    zsock_t *sub;
    char *out;
    size_t len, off;
} sse_t;

static ssize_t
sse_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    sse_t *e = cls;
    while (e->off >= e->len) {
        free (e->out);
        e->out = NULL;
        e->len = e->off = 0;
        /* an event, or a comment every 15 s that keeps proxies from closing */
        for (int waited = 0; waited < 15 && !e->out; waited++) {
            if (cs_zmq_interrupted ())
                return MHD_CONTENT_READER_END_OF_STREAM;
            zmq_pollitem_t item = { zsock_resolve (e->sub), 0, ZMQ_POLLIN, 0 };
            if (zmq_poll (&item, 1, 1000) != 1)
                continue;
            cs_msg_error_t err;
            cs_msg_t *m = cs_zmq_try_recv (e->sub, &err);
            char *raw = m && cs_msg_type (m) == CS_MSG_EVENT ? cs_msg_to_json (m) : NULL;
            cs_msg_destroy (&m);
            if (raw) {
                size_t n = strlen (raw) + 10;
                e->out = malloc (n);
                if (e->out)
                    snprintf (e->out, n, "data: %s\n\n", raw);
                free (raw);
            }
        }
        if (!e->out && !(e->out = strdup (": still here\n\n")))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        e->len = strlen (e->out);
    }
    size_t n = e->len - e->off < max ? e->len - e->off : max;
    memcpy (buf, e->out + e->off, n);
    e->off += n;
    return (ssize_t) n;
}

static void
sse_free (void *cls)
{
    sse_t *e = cls;
    zsock_destroy (&e->sub);
    free (e->out);
    free (e);
}

static enum MHD_Result
events (server_t *s, struct MHD_Connection *conn)
{
    char error [512];
    sse_t *e = calloc (1, sizeof *e);
    if (e)
        e->sub = cs_zmq_connect (s->zmq, ZMQ_SUB, s->cfg->pipeline.auditor_pub, 0, error, sizeof error);
    if (!e || !e->sub) {
        free (e);
        return reply_error (conn, 503, "cannot reach the auditor's stream");
    }
    zsock_set_subscribe (e->sub, "");
    struct MHD_Response *r = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 1024, sse_read, e, sse_free);
    if (!r) {
        sse_free (e);
        return MHD_NO;
    }
    MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header (r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response (conn, 200, r);
    MHD_destroy_response (r);
    return ok;
}

/* --- pages ----------------------------------------------------------------------------------- */

static json_t *
ask_op (server_t *s, const char *op, char *err, size_t size)
{
    json_t *body = NULL;
    ask_body (s, cs_ctl_request (op), CS_CTL_TIMEOUT_MS, &body, err, size);
    return body;
}

/* A page (html taken), with a session cookie for a browser that has none. */
static enum MHD_Result
page (server_t *s, struct MHD_Connection *conn, const char *session, int fresh, char *html)
{
    char cookie [200];
    snprintf (cookie, sizeof cookie, "cs_session=%s; Path=/; HttpOnly; SameSite=Strict%s", session,
              s->cfg->web.cert_file ? "; Secure" : "");
    return reply_with (conn, html ? 200 : 500, "text/html; charset=utf-8", html, fresh ? cookie : NULL);
}

static enum MHD_Result
pages (server_t *s, struct MHD_Connection *conn, const char *url)
{
    char session [SESSION_LEN + 1], token [TOKEN_LEN + 1], err [600], err2 [600], flash [160] = "";
    session_of (conn, session);
    int fresh = !session [0];
    if (fresh) {
        unsigned char raw [SESSION_LEN / 2];
        if (getrandom (raw, sizeof raw, 0) != (ssize_t) sizeof raw)
            return reply_error (conn, 500, "no randomness for a session");
        hex (raw, sizeof raw, session);
    }
    token_of (s, session, token);
    cs_page_ctx_t ctx = { token, NULL };
    json_t *a = NULL, *b = NULL;        /* the answers a page is made of */
    char *html = NULL;
    if (!strcmp (url, "/"))
        html = cs_page_overview (a = ask_op (s, "status", err, sizeof err), err);
    else if (!strcmp (url, "/devices")) {
        a = ask_op (s, "status", err, sizeof err);
        b = a ? ask_op (s, "failed", err2, sizeof err2) : NULL;
        html = cs_page_devices (a, b, err);
    }
    else if (!strcmp (url, "/failed")) {
        const char *re = query (conn, "replayed"), *sup = query (conn, "superseded");
        if (re && sup)
            snprintf (flash, sizeof flash, "Replayed: %lld re-sent, %lld superseded (the door already has, or "
                      "no longer needs, what failed). Watch them on the Live page.", atoll (re), atoll (sup));
        ctx.flash = flash [0] ? flash : NULL;
        html = cs_page_failed (a = ask_op (s, "failed", err, sizeof err), &ctx, err);
    }
    else if (!strcmp (url, "/guard")) {
        ctx.flash = query (conn, "approved") ? "Approved: the revocations are on their way."
                  : query (conn, "changed") ? "Not approved: what the guard holds changed meanwhile; "
                                              "look again." : NULL;
        html = cs_page_guard (a = ask_op (s, "held", err, sizeof err), &ctx, err);
    }
    else if (!strcmp (url, "/member")) {
        const char *given = query (conn, "email");
        char email [CS_EMAIL_MAX + 1], why [4400];
        cs_email_error_t e = given && *given ? cs_email_normalize (given, email) : CS_EMAIL_EMPTY;
        if (e != CS_EMAIL_OK) {
            snprintf (err, sizeof err, "'%.200s' is not an e-mail address: %s", given ? given : "",
                      cs_email_strerror (e));
            html = cs_page_member (given && *given ? given : NULL, NULL, NULL, err);
        }
        else {
            cs_msg_t *req = cs_ctl_request ("member");
            if (req && cs_msg_set_str (req, CS_F_EMAIL, email) != 0)
                cs_msg_destroy (&req);
            ask_body (s, req, CS_CTL_TIMEOUT_MS, &a, err, sizeof err);
            b = read_events (s, email, HISTORY_MAX, why, sizeof why);
            html = cs_page_member (email, a, b, err);
        }
    }
    else if (!strcmp (url, "/review")) {
        a = ask_op (s, "unmatched", err, sizeof err);
        b = a ? ask_op (s, "orphans", err, sizeof err) : NULL;
        html = cs_page_review (a, b, err);
    }
    else if (!strcmp (url, "/live")) {
        char why [4400];
        html = cs_page_live (a = read_events (s, NULL, 100, why, sizeof why), why);
    }
    else
        return reply_with (conn, 404, "text/html; charset=utf-8", cs_page_message ("Not found",
                           "No such page: see the links above."), NULL);
    enum MHD_Result ok = page (s, conn, session, fresh, html);
    json_decref (a);
    json_decref (b);
    return ok;
}

/* --- requests ------------------------------------------------------------------------------ */

static enum MHD_Result
handle (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
        const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void) version;
    server_t *s = cls;
    int is_post = !strcmp (method, "POST");
    req_t *r = *state;
    if (!r) {                   /* the headers are in; the body (if any) comes next */
        if (!(r = calloc (1, sizeof *r)))
            return MHD_NO;
        *state = r;
        if (is_post)
            r->pp = MHD_create_post_processor (conn, 1024, on_field, r);
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->pp)
            MHD_post_process (r->pp, upload, *upload_size);
        else
            r->bad = 1;
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
    if (is_post && (!strcmp (url, "/replay") || !strcmp (url, "/approve")))
        return post (s, conn, url, r);
    if (!get)
        return reply_error (conn, 405, "pages are read with GET; forms post to /replay and /approve");
    if (!strcmp (url, "/style.css"))
        return reply (conn, 200, "text/css; charset=utf-8", strdup (cs_pages_css));
    if (!strcmp (url, "/live.js"))
        return reply (conn, 200, "text/javascript; charset=utf-8", strdup (cs_pages_live_js));
    if (!strcmp (url, "/events"))
        return events (s, conn);
    return pages (s, conn, url);
}

static void
completed (void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode code)
{
    (void) cls; (void) conn; (void) code;
    req_t *r = *state;
    if (r && r->pp)
        MHD_destroy_post_processor (r->pp);
    free (r);
    *state = NULL;
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
        "The operator's window: an HTTP server on [web] listen (default 127.0.0.1:8480):\n"
        "pages (overview, devices, failed with replay, guard with approve, member, review,\n"
        "live events), JSON under /api/: status, failed, held, unmatched, orphans,\n"
        "member?email=E, history?email=E, and /metrics for Prometheus. It asks the differ and reads audit.db; run it as its own program\n"
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
    if (!zmq || getrandom (s.key, sizeof s.key, 0) != (ssize_t) sizeof s.key) {
        cs_log (log, CS_LOG_ERROR, "start_failed", "error", zmq ? "no randomness for the forms' key" : error, NULL);
        cs_zmq_destroy (&zmq);
        return EX_UNAVAILABLE;
    }
    s.zmq = zmq;
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
                            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                            MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
                            MHD_OPTION_END)
        : MHD_start_daemon (flags, 0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned) CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, log,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
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
