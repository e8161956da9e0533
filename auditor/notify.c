#include "auditor/notify.h"
#include "common/date.h"
#include "common/vocab.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINES 100           /* items listed in one mail; the rest are counted */
#define RETRY_MS 60000          /* after a failed send */

struct _cs_notify_t {
    const cs_notify_config_t *cfg;
    cs_db_t *db;
    cs_log_t *log;
    int64_t started_ms;
    int64_t next_try_ms;
    int64_t last_tick_ms;
};

typedef struct {
    char *data;
    size_t len, cap, sent;
} buf_t;

static void
put (buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (NULL, 0, fmt, ap);
    va_end (ap);
    if (n < 0)
        return;
    if (b->len + (size_t) n + 1 > b->cap) {
        size_t cap = (b->len + (size_t) n + 1) * 2;
        char *grown = realloc (b->data, cap);
        if (!grown)
            return;
        b->data = grown;
        b->cap = cap;
    }
    va_start (ap, fmt);
    vsnprintf (b->data + b->len, b->cap - b->len, fmt, ap);
    va_end (ap);
    b->len += (size_t) n;
}

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

/* A device's words on one line of a mail: no control characters, clipped. */
static void
one_line (const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; *in && n + 1 < size; in++)
        out [n++] = (unsigned char) *in < 0x20 ? ' ' : *in;
    out [n] = 0;
}

cs_notify_t *
cs_notify_new (const cs_notify_config_t *cfg, cs_db_t *audit, cs_log_t *log)
{
    if (!cfg->smtp_url)
        return NULL;
    cs_notify_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    /* only now: TLS libraries cost memory the auditor needs only for mail */
    curl_global_init (CURL_GLOBAL_DEFAULT);
    self->cfg = cfg;
    self->db = audit;
    self->log = log;
    self->started_ms = (int64_t) time (NULL) * 1000;
    /* the first time: what happened before mail was set up is not news */
    if (meta_get (audit, "mailed_seq", -1) < 0)
        meta_set (audit, "mailed_seq", query_int (audit, "SELECT max (seq) FROM event", 0));
    return self;
}

void
cs_notify_destroy (cs_notify_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
        curl_global_cleanup ();
    }
}

static size_t
on_read (char *out, size_t size, size_t count, void *arg)
{
    buf_t *b = arg;
    size_t n = b->len - b->sent;
    if (n > size * count)
        n = size * count;
    memcpy (out, b->data + b->sent, n);
    b->sent += n;
    return n;
}

static int
send_mail (cs_notify_t *self, buf_t *msg, char *error, size_t error_size)
{
    const cs_notify_config_t *c = self->cfg;
    CURL *curl = curl_easy_init ();
    if (!curl) {
        snprintf (error, error_size, "libcurl could not start");
        return -1;
    }
    struct curl_slist *rcpt = NULL;
    for (size_t i = 0; i < c->to_count; i++) {
        char addr [400];
        snprintf (addr, sizeof addr, "<%s>", c->to [i]);
        rcpt = curl_slist_append (rcpt, addr);
    }
    char from [400], errbuf [CURL_ERROR_SIZE] = "";
    snprintf (from, sizeof from, "<%s>", c->from);
    curl_easy_setopt (curl, CURLOPT_URL, c->smtp_url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (!strncmp (c->smtp_url, "smtp://", 7) && c->starttls)
        curl_easy_setopt (curl, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
    if (c->ca_file)
        curl_easy_setopt (curl, CURLOPT_CAINFO, c->ca_file);
    if (c->username) {
        curl_easy_setopt (curl, CURLOPT_USERNAME, c->username);
        curl_easy_setopt (curl, CURLOPT_PASSWORD, c->password ? c->password : "");
    }
    curl_easy_setopt (curl, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt (curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt (curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt (curl, CURLOPT_READDATA, msg);
    curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform (curl);
    if (rc != CURLE_OK)
        snprintf (error, error_size, "%s", *errbuf ? errbuf : curl_easy_strerror (rc));
    curl_slist_free_all (rcpt);
    curl_easy_cleanup (curl);
    return rc == CURLE_OK ? 0 : -1;
}

void
cs_notify_tick (cs_notify_t *self, int64_t now_ms)
{
    if (!self || now_ms < self->next_try_ms || now_ms - self->last_tick_ms < 1000)
        return;
    self->last_tick_ms = now_ms;
    const cs_notify_config_t *c = self->cfg;
    int64_t interval = (int64_t) c->batch_interval * 1000;
    if (now_ms < meta_get (self->db, "mailed_ms", 0) + interval)
        return;
    int64_t mailed = meta_get (self->db, "mailed_seq", 0);
    int64_t top = query_int (self->db, "SELECT max (seq) FROM event", 0);

    /* exports: failing (or absent) for longer than export_alert_after */
    int64_t good = query_int (self->db, "SELECT max (ts) FROM event WHERE kind = 'cycle' "
                                        "AND state != 'ignored'", self->started_ms);
    int export_alert = now_ms - good > (int64_t) c->export_alert_after * 1000
                       && meta_get (self->db, "export_alerted", 0) != good;

    sqlite3_stmt *st = cs_db_stmt (self->db,
        "SELECT count (*), min (ts) FROM event WHERE seq > ?1 AND seq <= ?2 AND (kind = 'failed' "
        "OR (kind = 'guard' AND state = 'tripped') OR (kind = 'health' AND state IN ('auth', 'locked')))");
    int64_t items = 0, oldest = now_ms;
    if (st) {
        sqlite3_bind_int64 (st, 1, mailed);
        sqlite3_bind_int64 (st, 2, top);
        if (sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int64 (st, 0) > 0) {
            items = sqlite3_column_int64 (st, 0);
            oldest = sqlite3_column_int64 (st, 1);
        }
        sqlite3_reset (st);
    }
    /* a burst (a device going down fails many writes) goes in one mail */
    int64_t gather = interval < 30000 ? interval : 30000;
    if (!export_alert && (items == 0 || now_ms - oldest < gather)) {
        if (items == 0 && top > mailed)
            meta_set (self->db, "mailed_seq", top);     /* nothing worth a mail */
        return;
    }

    char host [256] = "localhost", date [64], since [32];
    gethostname (host, sizeof host - 1);
    time_t t = (time_t) (now_ms / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    strftime (date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    buf_t body = { 0 };
    int64_t failed = 0, paused = 0, guards = 0;
    st = cs_db_stmt (self->db,
        "SELECT seq, ts, kind, email, device, class, msg, tries, state, count FROM event "
        "WHERE seq > ?1 AND seq <= ?2 AND (kind = 'failed' OR (kind = 'guard' AND state = 'tripped') "
        "OR (kind = 'health' AND state IN ('auth', 'locked'))) ORDER BY seq");
    int listed = 0;
    if (st) {
        sqlite3_bind_int64 (st, 1, mailed);
        sqlite3_bind_int64 (st, 2, top);
        while (sqlite3_step (st) == SQLITE_ROW) {
            int kind = cs_event_kind_parse (col (st, 2));
            char w [32], words [400];
            cs_time_text (sqlite3_column_int64 (st, 1), w);
            one_line (col (st, 6), words, sizeof words);
            failed += kind == CS_EV_FAILED;
            paused += kind == CS_EV_HEALTH;
            guards += kind == CS_EV_GUARD;
            if (++listed > MAX_LINES)
                continue;
            if (kind == CS_EV_FAILED)
                put (&body, "%s  failed    %s on %s: %s: %s (%lld tries)\r\n", w, col (st, 3),
                     col (st, 4), col (st, 5), words, (long long) sqlite3_column_int64 (st, 7));
            else if (kind == CS_EV_HEALTH)
                put (&body, "%s  paused    device %s (%s): %s\r\n", w, col (st, 4), col (st, 8), words);
            else
                put (&body, "%s  guard     %s\r\n", w, words);
        }
        sqlite3_reset (st);
    }
    if (listed > MAX_LINES)
        put (&body, "... and %d more: cardsync-auditor tail --since %lld\r\n", listed - MAX_LINES,
             (long long) mailed + 1);
    if (export_alert) {
        char w [32], words [400] = "no export has arrived";
        cs_time_text (good, w);
        st = cs_db_stmt (self->db, "SELECT msg FROM event WHERE kind = 'cycle' AND state = 'ignored' "
                                   "AND ts > ?1 ORDER BY seq DESC LIMIT 1");
        if (st) {
            sqlite3_bind_int64 (st, 1, good);
            if (sqlite3_step (st) == SQLITE_ROW)
                one_line (col (st, 0), words, sizeof words);
            sqlite3_reset (st);
        }
        put (&body, "exports   no good export from Cardskipper since %s; the last word: %s\r\n", w, words);
    }
    char subject [160], failures [40] = "";   /* the host name clipped: a short header */
    if (failed)
        snprintf (failures, sizeof failures, " %lld failed,", (long long) failed);
    size_t n = (size_t) snprintf (subject, sizeof subject, "cardsync on %.60s:%s%s%s%s", host,
                                  failures, paused ? " device paused," : "",
                                  guards ? " guard tripped," : "", export_alert ? " exports failing," : "");
    subject [n - 1] = 0;        /* the last comma; n is 148 at most, never cut */
    cs_time_text (meta_get (self->db, "mailed_ms", self->started_ms), since);

    buf_t msg = { 0 };
    put (&msg, "Date: %s\r\nFrom: cardsync <%s>\r\nTo: ", date, c->from);
    for (size_t i = 0; i < c->to_count; i++)
        put (&msg, "%s%s", i ? ", " : "", c->to [i]);
    put (&msg, "\r\nSubject: %s\r\nMessage-ID: <%lld.%d@%s>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
         subject, (long long) now_ms, (int) getpid (), host);
    put (&msg, "What needs attention since %s:\r\n\r\n%s\r\n", since, body.data ? body.data : "");
    put (&msg, "To look closer:  cardsync-auditor status\r\n"
               "                 cardsync-auditor failed       (then: cardsync-auditor replay --all)\r\n"
               "                 cardsync-auditor approve      (when the guard holds revocations)\r\n");
    free (body.data);
    char error [CURL_ERROR_SIZE + 64];
    char count [32];
    snprintf (count, sizeof count, "%lld", (long long) (failed + paused + guards + export_alert));
    if (msg.data && send_mail (self, &msg, error, sizeof error) == 0) {
        meta_set (self->db, "mailed_seq", top);
        meta_set (self->db, "mailed_ms", now_ms);
        if (export_alert)
            meta_set (self->db, "export_alerted", good);
        cs_log (self->log, CS_LOG_INFO, "mailed", "items", count, "subject", subject, NULL);
    }
    else {
        /* kept: the same items, and any new ones, go in the next try */
        self->next_try_ms = now_ms + (interval < RETRY_MS ? interval : RETRY_MS);
        cs_log (self->log, CS_LOG_ERROR, "mail_failed", "items", count, "error",
                msg.data ? error : "out of memory", NULL);
    }
    free (msg.data);
}
