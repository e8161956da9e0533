#include "auditor/notify.h"
#include "common/cli.h"
#include "common/date.h"
#include "common/text.h"
#include "common/vocab.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINES 100           /* items listed in one digest; the rest are counted */
#define RETRY_MIN_MS 30000      /* after a failed delivery: 30 s, doubling ... */
#define RETRY_MAX_MS 900000     /* ... up to 15 min */

typedef enum { CH_MAIL, CH_HOOK, CH_PING, CH_COUNT } channel_id_t;

/* One way out. Its progress is kept in audit.db's meta under its keys, so a
 * restart or an endpoint that is down loses nothing: what was not delivered
 * goes again, with whatever came since. */
typedef struct {
    const char *name;           /* for the log */
    const char *seq_key;        /* the last event delivered (mail, webhook); the last cycle pinged */
    const char *ms_key;         /* when it last delivered */
    const char *alerted_key;    /* the good export a "failing exports" alert was sent for */
    CURL *easy;                 /* the delivery under way, or NULL */
    cs_text_t out;              /* what it sends */
    size_t sent;                /* of out, read by libcurl (mail) */
    struct curl_slist *list;    /* recipients (mail), headers (webhook) */
    char errbuf [CURL_ERROR_SIZE];
    int64_t next_try_ms;
    int failures;
    int64_t top, good;          /* what a success records */
    int export_alert;
    int items;
} channel_t;

struct _cs_notify_t {
    const cs_notify_config_t *cfg;
    cs_db_t *db;
    cs_log_t *log;
    int64_t started_ms;
    int64_t last_tick_ms;
    CURLM *multi;
    channel_t ch [CH_COUNT];
};

static int64_t
meta_get (cs_db_t *db, const char *key, int64_t fallback)
{
    sqlite3_stmt *st = cs_db_stmt (db, "SELECT value FROM meta WHERE key = ?1");
    int64_t v = fallback;
    if (st) {
        sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
            v = sqlite3_column_int64 (st, 0);
        sqlite3_reset (st);
    }
    return v;
}

static void
meta_set (cs_db_t *db, const char *key, int64_t value)
{
    sqlite3_stmt *st = cs_db_stmt (db, "INSERT INTO meta VALUES (?1, ?2) "
                                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    if (st) {
        sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 2, value);
        cs_db_step_done (db, st);
    }
}

static int64_t
query_int (cs_db_t *db, const char *sql, int64_t fallback)
{
    sqlite3_stmt *st = cs_db_stmt (db, sql);
    int64_t v = fallback;
    if (st && sqlite3_step (st) == SQLITE_ROW && sqlite3_column_type (st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64 (st, 0);
    if (st)
        sqlite3_reset (st);
    return v;
}

static const char *
col (sqlite3_stmt *st, int i)
{
    const char *v = (const char *) sqlite3_column_text (st, i);
    return v ? v : "";
}

/* A device's words on one line: no control characters, clipped. */
static void
one_line (const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; *in && n + 1 < size; in++)
        out [n++] = (unsigned char) *in < 0x20 ? ' ' : *in;
    out [n] = 0;
}

/* An alert URL for the log: its scheme and host, never its path (the token). */
static void
redacted (const char *url, char *out, size_t size)
{
    const char *host = strstr (url, "://");
    host = host ? host + 3 : url;
    size_t n = strcspn (host, "/?#");
    snprintf (out, size, "%.*s%.*s/...", (int) (host - url), url, (int) n, host);
}

cs_notify_t *
cs_notify_new (const cs_notify_config_t *cfg, cs_db_t *audit, cs_log_t *log)
{
    if (!cfg->smtp_url && !cfg->webhook_url && !cfg->healthcheck_url)
        return NULL;
    cs_notify_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    /* only now: TLS libraries cost memory the auditor needs only for alerts */
    curl_global_init (CURL_GLOBAL_DEFAULT);
    self->multi = curl_multi_init ();
    if (!self->multi) {
        free (self);
        curl_global_cleanup ();
        return NULL;
    }
    self->cfg = cfg;
    self->db = audit;
    self->log = log;
    self->started_ms = (int64_t) time (NULL) * 1000;
    self->ch [CH_MAIL] = (channel_t) { .name = "mail", .seq_key = "mailed_seq", .ms_key = "mailed_ms",
                                       .alerted_key = "export_alerted" };
    self->ch [CH_HOOK] = (channel_t) { .name = "webhook", .seq_key = "hooked_seq", .ms_key = "hooked_ms",
                                       .alerted_key = "export_hooked" };
    self->ch [CH_PING] = (channel_t) { .name = "healthcheck", .seq_key = "pinged_seq", .ms_key = "pinged_ms",
                                       .alerted_key = "export_pinged" };
    /* the first time: what happened before a channel was set up is not news */
    int64_t top = query_int (audit, "SELECT max (seq) FROM event", 0);
    for (int i = 0; i < CH_COUNT; i++)
        if (meta_get (audit, self->ch [i].seq_key, -1) < 0)
            meta_set (audit, self->ch [i].seq_key, top);
    return self;
}

static void
channel_reset (cs_notify_t *self, channel_t *ch)
{
    if (ch->easy) {
        curl_multi_remove_handle (self->multi, ch->easy);
        curl_easy_cleanup (ch->easy);
        ch->easy = NULL;
    }
    curl_slist_free_all (ch->list);
    ch->list = NULL;
    cs_text_free (&ch->out);
    ch->sent = 0;
}

void
cs_notify_destroy (cs_notify_t **self_p)
{
    if (self_p && *self_p) {
        cs_notify_t *self = *self_p;
        for (int i = 0; i < CH_COUNT; i++)
            channel_reset (self, &self->ch [i]);
        curl_multi_cleanup (self->multi);
        free (self);
        *self_p = NULL;
        curl_global_cleanup ();
    }
}

int
cs_notify_busy (const cs_notify_t *self)
{
    for (int i = 0; self && i < CH_COUNT; i++)
        if (self->ch [i].easy)
            return 1;
    return 0;
}

/* --- the digest -------------------------------------------------------------------------- */

typedef struct {
    int64_t top;                /* the events up to here are in it */
    int64_t good;               /* the last good export (or the start) */
    int export_alert;           /* no good export for export_alert_after */
    int64_t failed, paused, guards;
    int items;
    char subject [160];
    char since [32];
    cs_text_t body;             /* lines ending in "\n" */
} digest_t;

static const char *ITEMS =
    "FROM event WHERE seq > ?1 AND seq <= ?2 AND (kind = 'failed' OR (kind = 'guard' AND state = 'tripped') "
    "OR (kind = 'health' AND state IN ('auth', 'locked')))";

/* The good export's time and whether exports have failed for too long (and
 * not been alerted on this channel yet). */
static int
exports_failing (cs_notify_t *self, const channel_t *ch, int64_t now_ms, int64_t *good)
{
    *good = query_int (self->db, "SELECT max (ts) FROM event WHERE kind = 'cycle' AND state != 'ignored'",
                       self->started_ms);
    return now_ms - *good > (int64_t) self->cfg->export_alert_after * 1000
           && meta_get (self->db, ch->alerted_key, 0) != *good;
}

/* 1 when ch has a digest to deliver now (d filled in; its body freed by the
 * caller); 0 when not (nothing new, or within batch_interval, or a burst
 * still gathering). */
static int
compose (cs_notify_t *self, channel_t *ch, int64_t now_ms, digest_t *d)
{
    memset (d, 0, sizeof *d);
    int64_t interval = (int64_t) self->cfg->batch_interval * 1000;
    int64_t last = meta_get (self->db, ch->ms_key, 0);
    if (now_ms < last + interval)
        return 0;
    int64_t from = meta_get (self->db, ch->seq_key, 0);
    d->top = query_int (self->db, "SELECT max (seq) FROM event", 0);
    d->export_alert = exports_failing (self, ch, now_ms, &d->good);
    char sql [400];
    snprintf (sql, sizeof sql, "SELECT count (*), min (ts) %s", ITEMS);
    sqlite3_stmt *st = cs_db_stmt (self->db, sql);
    int64_t items = 0, oldest = now_ms;
    if (st) {
        sqlite3_bind_int64 (st, 1, from);
        sqlite3_bind_int64 (st, 2, d->top);
        if (sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int64 (st, 0) > 0) {
            items = sqlite3_column_int64 (st, 0);
            oldest = sqlite3_column_int64 (st, 1);
        }
        sqlite3_reset (st);
    }
    /* a burst (a device going down fails many writes) goes in one digest */
    int64_t gather = interval < 30000 ? interval : 30000;
    if (!d->export_alert && (items == 0 || now_ms - oldest < gather)) {
        if (items == 0 && d->top > from)
            meta_set (self->db, ch->seq_key, d->top);     /* nothing worth an alert */
        return 0;
    }
    snprintf (sql, sizeof sql, "SELECT seq, ts, kind, email, device, class, msg, tries, state, count %s "
                               "ORDER BY seq", ITEMS);
    st = cs_db_stmt (self->db, sql);
    int listed = 0;
    if (st) {
        sqlite3_bind_int64 (st, 1, from);
        sqlite3_bind_int64 (st, 2, d->top);
        while (sqlite3_step (st) == SQLITE_ROW) {
            int kind = cs_event_kind_parse (col (st, 2));
            char w [32], words [400];
            cs_time_text (sqlite3_column_int64 (st, 1), w);
            one_line (col (st, 6), words, sizeof words);
            d->failed += kind == CS_EV_FAILED;
            d->paused += kind == CS_EV_HEALTH;
            d->guards += kind == CS_EV_GUARD;
            if (++listed > MAX_LINES)
                continue;
            if (kind == CS_EV_FAILED)
                cs_text_put (&d->body, "%s  failed    %s on %s: %s: %s (%lld tries)\n", w, col (st, 3),
                             col (st, 4), col (st, 5), words, (long long) sqlite3_column_int64 (st, 7));
            else if (kind == CS_EV_HEALTH)
                cs_text_put (&d->body, "%s  paused    device %s (%s): %s\n", w, col (st, 4), col (st, 8), words);
            else
                cs_text_put (&d->body, "%s  guard     %s\n", w, words);
        }
        sqlite3_reset (st);
    }
    if (listed > MAX_LINES)
        cs_text_put (&d->body, "... and %d more: cardsync-auditor tail --since %lld\n", listed - MAX_LINES,
                     (long long) from + 1);
    if (d->export_alert) {
        char w [32], words [400] = "no export has arrived";
        cs_time_text (d->good, w);
        st = cs_db_stmt (self->db, "SELECT msg FROM event WHERE kind = 'cycle' AND state = 'ignored' "
                                   "AND ts > ?1 ORDER BY seq DESC LIMIT 1");
        if (st) {
            sqlite3_bind_int64 (st, 1, d->good);
            if (sqlite3_step (st) == SQLITE_ROW)
                one_line (col (st, 0), words, sizeof words);
            sqlite3_reset (st);
        }
        cs_text_put (&d->body, "exports   no good export from Cardskipper since %s; the last word: %s\n", w, words);
    }
    char host [256] = "localhost", failures [40] = "";   /* the host name clipped: a short subject */
    gethostname (host, sizeof host - 1);
    if (d->failed)
        snprintf (failures, sizeof failures, " %lld failed,", (long long) d->failed);
    size_t n = (size_t) snprintf (d->subject, sizeof d->subject, "cardsync on %.60s:%s%s%s%s", host,
                                  failures, d->paused ? " device paused," : "",
                                  d->guards ? " guard tripped," : "", d->export_alert ? " exports failing," : "");
    d->subject [n - 1] = 0;     /* the last comma; n is 148 at most, never cut */
    cs_time_text (last ? last : self->started_ms, d->since);
    d->items = (int) (d->failed + d->paused + d->guards + d->export_alert);
    return 1;
}

static const char *FOOTER =
    "To look closer:  cardsync-auditor status\n"
    "                 cardsync-auditor failed       (then: cardsync-auditor replay --all)\n"
    "                 cardsync-auditor approve      (when the guard holds revocations)\n";

/* text with its "\n" as "\r\n" (a mail's lines). */
static void
put_crlf (cs_text_t *out, const char *text)
{
    for (const char *p = text; p && *p; ) {
        size_t n = strcspn (p, "\n");
        cs_text_put (out, "%.*s%s", (int) n, p, p [n] ? "\r\n" : "");
        p += n + (p [n] != 0);
    }
}

/* --- deliveries ---------------------------------------------------------------------------- */

static size_t
on_read (char *out, size_t size, size_t count, void *arg)
{
    channel_t *ch = arg;
    size_t n = ch->out.len - ch->sent;
    if (n > size * count)
        n = size * count;
    memcpy (out, ch->out.data + ch->sent, n);
    ch->sent += n;
    return n;
}

static size_t
discard (char *data, size_t size, size_t count, void *arg)
{
    (void) data;
    (void) arg;
    return size * count;
}

static CURL *
new_easy (channel_t *ch, const char *url)
{
    CURL *c = curl_easy_init ();
    if (!c)
        return NULL;
    ch->errbuf [0] = 0;
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt (c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_ERRORBUFFER, ch->errbuf);
    curl_easy_setopt (c, CURLOPT_PRIVATE, ch);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt (c, CURLOPT_USERAGENT, "cardsync/" CARDSYNC_VERSION);
    return c;
}

static void
start (cs_notify_t *self, channel_t *ch, CURL *c, const digest_t *d)
{
    ch->easy = c;
    ch->top = d ? d->top : ch->top;
    ch->good = d ? d->good : ch->good;
    ch->export_alert = d ? d->export_alert : ch->export_alert;
    ch->items = d ? d->items : ch->items;
    if (!c || ch->out.failed || curl_multi_add_handle (self->multi, c) != CURLM_OK) {
        cs_log (self->log, CS_LOG_ERROR, "alert_failed", "to", ch->name, "error", "out of memory", NULL);
        channel_reset (self, ch);
        ch->next_try_ms = self->last_tick_ms + RETRY_MIN_MS;
    }
}

static void
send_mail (cs_notify_t *self, channel_t *ch, digest_t *d, int64_t now_ms)
{
    const cs_notify_config_t *c = self->cfg;
    char host [256] = "localhost", date [64];
    gethostname (host, sizeof host - 1);
    time_t t = (time_t) (now_ms / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    strftime (date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    cs_text_put (&ch->out, "Date: %s\r\nFrom: cardsync <%s>\r\nTo: ", date, c->from);
    for (size_t i = 0; i < c->to_count; i++)
        cs_text_put (&ch->out, "%s%s", i ? ", " : "", c->to [i]);
    cs_text_put (&ch->out, "\r\nSubject: %s\r\nMessage-ID: <%lld.%d@%s>\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
                 d->subject, (long long) now_ms, (int) getpid (), host);
    cs_text_put (&ch->out, "What needs attention since %s:\r\n\r\n", d->since);
    put_crlf (&ch->out, d->body.data);
    cs_text_put (&ch->out, "\r\n");
    put_crlf (&ch->out, FOOTER);
    for (size_t i = 0; i < c->to_count; i++) {
        char addr [400];
        snprintf (addr, sizeof addr, "<%s>", c->to [i]);
        ch->list = curl_slist_append (ch->list, addr);
    }
    char from [400];
    snprintf (from, sizeof from, "<%s>", c->from);
    CURL *e = new_easy (ch, c->smtp_url);
    if (e) {
        curl_easy_setopt (e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        if (!strncmp (c->smtp_url, "smtp://", 7) && c->starttls)
            curl_easy_setopt (e, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
        if (c->ca_file)
            curl_easy_setopt (e, CURLOPT_CAINFO, c->ca_file);
        if (c->username) {
            curl_easy_setopt (e, CURLOPT_USERNAME, c->username);
            curl_easy_setopt (e, CURLOPT_PASSWORD, c->password ? c->password : "");
        }
        curl_easy_setopt (e, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt (e, CURLOPT_MAIL_RCPT, ch->list);
        curl_easy_setopt (e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt (e, CURLOPT_READDATA, ch);
        curl_easy_setopt (e, CURLOPT_UPLOAD, 1L);
    }
    start (self, ch, e, d);
}

/* The digest as JSON: "text" is what ntfy, Slack- and Teams-compatible
 * endpoints show; the rest is for whoever reads it as data. */
static void
send_hook (cs_notify_t *self, channel_t *ch, digest_t *d)
{
    cs_text_t text = { 0 };
    cs_text_put (&text, "%s\n\nWhat needs attention since %s:\n\n%s\n%s", d->subject, d->since,
                 d->body.data ? d->body.data : "", FOOTER);
    char *t = cs_text_take (&text);
    json_t *lines = json_array ();
    for (const char *p = d->body.data; p && *p; ) {
        size_t n = strcspn (p, "\n");
        json_array_append_new (lines, json_stringn (p, n));
        p += n + (p [n] != 0);
    }
    json_t *j = json_pack ("{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:b}, s:o}", "text", t ? t : d->subject,
                           "title", d->subject, "since", d->since,
                           "counts", "failed", (json_int_t) d->failed, "paused", (json_int_t) d->paused,
                           "guard", (json_int_t) d->guards, "exports_failing", d->export_alert,
                           "lines", lines);
    free (t);
    char *body = j ? json_dumps (j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref (j);
    if (body)
        cs_text_put (&ch->out, "%s", body);
    else
        ch->out.failed = 1;
    free (body);
    ch->list = curl_slist_append (NULL, "Content-Type: application/json");
    CURL *e = new_easy (ch, self->cfg->webhook_url);
    if (e) {
        curl_easy_setopt (e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt (e, CURLOPT_HTTPHEADER, ch->list);
        curl_easy_setopt (e, CURLOPT_POSTFIELDS, ch->out.data ? ch->out.data : "");
    }
    start (self, ch, e, d);
}

/* The dead-man ping: a GET after each good full cycle, URL/fail once
 * exports have failed for export_alert_after. */
static void
consider_ping (cs_notify_t *self, channel_t *ch, int64_t now_ms)
{
    int64_t full = query_int (self->db, "SELECT max (seq) FROM event WHERE kind = 'cycle' AND state = 'full'", 0);
    digest_t d = { 0 };
    const char *url = self->cfg->healthcheck_url;
    if (full > meta_get (self->db, ch->seq_key, 0))
        d.top = full;
    else if (exports_failing (self, ch, now_ms, &d.good)) {
        d.export_alert = 1;
        size_t n = strlen (url);
        cs_text_put (&ch->out, "%.*s/fail", (int) (n && url [n - 1] == '/' ? n - 1 : n), url);
        url = ch->out.data ? ch->out.data : "";
    }
    else
        return;
    CURL *e = new_easy (ch, url);
    if (e)
        curl_easy_setopt (e, CURLOPT_PROTOCOLS_STR, "http,https");
    start (self, ch, e, &d);
}

/* A delivery ended: recorded when it worked, tried again later when not. */
static void
finished (cs_notify_t *self, channel_t *ch, CURLcode rc, int64_t now_ms)
{
    long status = 0;
    curl_easy_getinfo (ch->easy, CURLINFO_RESPONSE_CODE, &status);
    int http = ch != &self->ch [CH_MAIL];
    int ok = rc == CURLE_OK && (!http || (status >= 200 && status < 300));
    char error [CURL_ERROR_SIZE + 64], count [32], to [300];
    snprintf (count, sizeof count, "%d", ch->items);
    redacted (ch == &self->ch [CH_MAIL] ? self->cfg->smtp_url : ch == &self->ch [CH_HOOK]
              ? self->cfg->webhook_url : self->cfg->healthcheck_url, to, sizeof to);
    if (ok) {
        if (ch->top)
            meta_set (self->db, ch->seq_key, ch->top);
        if (ch != &self->ch [CH_PING] || ch->top)
            meta_set (self->db, ch->ms_key, now_ms);
        if (ch->export_alert)
            meta_set (self->db, ch->alerted_key, ch->good);
        ch->failures = 0;
        if (ch == &self->ch [CH_PING])
            cs_log (self->log, CS_LOG_INFO, "pinged", "to", to, "what",
                    ch->export_alert ? "fail (exports failing)" : "a good full cycle", NULL);
        else
            cs_log (self->log, CS_LOG_INFO, ch == &self->ch [CH_MAIL] ? "mailed" : "webhook_sent",
                    "items", count, "to", to, NULL);
    }
    else {
        if (rc != CURLE_OK)
            snprintf (error, sizeof error, "%s", ch->errbuf [0] ? ch->errbuf : curl_easy_strerror (rc));
        else
            snprintf (error, sizeof error, "the endpoint answered HTTP %ld", status);
        int64_t first = (int64_t) self->cfg->batch_interval * 1000;
        int64_t wait = (first < RETRY_MIN_MS ? first : RETRY_MIN_MS) << (ch->failures < 5 ? ch->failures : 5);
        if (wait > RETRY_MAX_MS)
            wait = RETRY_MAX_MS;
        ch->failures++;
        ch->next_try_ms = now_ms + wait;
        char in [32];
        snprintf (in, sizeof in, "%lld", (long long) (wait / 1000));
        /* kept: the same items, and any new ones, go in the next try */
        cs_log (self->log, CS_LOG_ERROR, ch == &self->ch [CH_MAIL] ? "mail_failed" : "alert_failed",
                "items", count, "error", error, "retry_in_s", in, "channel", ch->name, "to", to, NULL);
    }
    channel_reset (self, ch);
}

void
cs_notify_tick (cs_notify_t *self, int64_t now_ms)
{
    if (!self)
        return;
    int running;
    curl_multi_perform (self->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE) {
            channel_t *ch = NULL;
            curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &ch);
            if (ch)
                finished (self, ch, msg->data.result, now_ms);
        }
    if (now_ms - self->last_tick_ms < 1000)
        return;
    self->last_tick_ms = now_ms;
    const cs_notify_config_t *c = self->cfg;
    const char *urls [CH_COUNT] = { c->smtp_url, c->webhook_url, c->healthcheck_url };
    for (int i = 0; i < CH_COUNT; i++) {
        channel_t *ch = &self->ch [i];
        if (!urls [i] || ch->easy || now_ms < ch->next_try_ms)
            continue;
        if (i == CH_PING) {
            consider_ping (self, ch, now_ms);
            continue;
        }
        digest_t d;
        if (!compose (self, ch, now_ms, &d)) {
            cs_text_free (&d.body);
            continue;
        }
        if (i == CH_MAIL)
            send_mail (self, ch, &d, now_ms);
        else
            send_hook (self, ch, &d);
        cs_text_free (&d.body);
    }
    curl_multi_perform (self->multi, &running);
}
