#include "auditor/tail.h"
#include "common/vocab.h"
#include "common/cli.h"
#include "common/db.h"
#include "common/email.h"
#include "common/zmq.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int follow;
    int json;
    long lines;
    int64_t since;
    const char *email;
    const char *device;
    const char *type;
    int colour;
    int64_t last;               /* the last seq printed */
} tail_t;

static const char *USAGE =
    "usage: cardsync-auditor [--config FILE] tail [-f] [-n N] [--since SEQ|TIME] [--json]\n"
    "                        [--email E] [--device D] [--type KIND]\n"
    "The last N events (default 20), then with -f the live stream: each event once,\n"
    "in order, across the switch. --since starts at event SEQ (the first column) or\n"
    "at TIME, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (local time). --json prints one JSON\n"
    "object a line; colour only on a terminal (and never with NO_COLOR set).\n"
    "example: cardsync-auditor tail -f --device door1 --type failed\n";

static int
matches (const tail_t *t, json_t *e)
{
    const char *email = json_string_value (json_object_get (e, "email"));
    const char *dev = json_string_value (json_object_get (e, "dev"));
    const char *kind = json_string_value (json_object_get (e, "kind"));
    return (!t->email || (email && !strcasecmp (email, t->email)))
           && (!t->device || (dev && !strcmp (dev, t->device)))
           && (!t->type || (kind && !strcmp (kind, t->type)));
}

static const char *
str (json_t *e, const char *key)
{
    const char *v = json_string_value (json_object_get (e, key));
    return v ? v : "";
}

static void
print_event (tail_t *t, json_t *e, const char *raw)
{
    int64_t seq = json_integer_value (json_object_get (e, "seq"));
    if (seq <= t->last)
        return;
    t->last = seq;
    if (!matches (t, e))
        return;
    if (t->json) {
        printf ("%s\n", raw);
        return;
    }
    time_t ts = (time_t) (json_integer_value (json_object_get (e, "ts")) / 1000);
    struct tm tm;
    localtime_r (&ts, &tm);
    char when [32];
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    const char *kind = str (e, "kind");
    const char *colour = "", *reset = "";
    if (t->colour) {
        reset = "\033[0m";
        switch (cs_event_kind_parse (kind)) {
            case CS_EV_APPLIED: colour = "\033[32m"; break;
            case CS_EV_FAILED: case CS_EV_GUARD: colour = "\033[31m"; break;
            case CS_EV_UNMATCHED: case CS_EV_NO_EMAIL: case CS_EV_BAD_EMAIL: case CS_EV_DUPLICATE:
            case CS_EV_CONFLICT: case CS_EV_EMAIL_CHANGED: case CS_EV_SKIPPED: colour = "\033[33m"; break;
            default: break;
        }
    }
    char who [400];
    if (*str (e, "email"))
        snprintf (who, sizeof who, "%s", str (e, "email"));
    else if (json_object_get (e, "mid"))
        snprintf (who, sizeof who, "member %lld", (long long) json_integer_value (json_object_get (e, "mid")));
    else
        who [0] = 0;
    char what [1200];
    if (!strcmp (kind, "applied") && !strcmp (str (e, "pe"), str (e, "end")))
        snprintf (what, sizeof what, "until %s, from %s (was %s)", str (e, "end"), str (e, "begin"),
                  *str (e, "pb") ? str (e, "pb") : "unset");
    else if (!strcmp (kind, "applied"))
        snprintf (what, sizeof what, "until %s (was %s)", str (e, "end"),
                  *str (e, "pe") ? str (e, "pe") : "new");
    else if (!strcmp (kind, "failed"))
        snprintf (what, sizeof what, "%s after %lld tries: %s", str (e, "class"),
                  (long long) json_integer_value (json_object_get (e, "tries")), str (e, "msg"));
    else if (!strcmp (kind, "cycle") || !strcmp (kind, "scan") || !strcmp (kind, "guard"))
        snprintf (what, sizeof what, "%s, %lld %s%s%s", str (e, "state"),
                  (long long) json_integer_value (json_object_get (e, "n")),
                  !strcmp (kind, "scan") ? "persons" : !strcmp (kind, "guard") ? "revocations" : "members",
                  *str (e, "msg") ? ": " : "", str (e, "msg"));
    else if (!strcmp (kind, "replayed"))
        snprintf (what, sizeof what, "re-sent as command %lld",
                  (long long) json_integer_value (json_object_get (e, "id")));
    else if (!strcmp (kind, "tied"))
        snprintf (what, sizeof what, "person %s tied to member %lld:%lld by %s", str (e, "no"),
                  (long long) json_integer_value (json_object_get (e, "org")),
                  (long long) json_integer_value (json_object_get (e, "mid")), str (e, "rule"));
    else if (!strcmp (kind, "untied"))
        snprintf (what, sizeof what, "person %s no longer tied to member %lld:%lld (%s): %s", str (e, "no"),
                  (long long) json_integer_value (json_object_get (e, "org")),
                  (long long) json_integer_value (json_object_get (e, "mid")), str (e, "rule"), str (e, "msg"));
    else if (!strcmp (kind, "conflict") || !strcmp (kind, "email_changed"))
        snprintf (what, sizeof what, "person %s: %s", str (e, "no"), str (e, "msg"));
    else if (!strcmp (kind, "health"))
        snprintf (what, sizeof what, "%s%s%s", str (e, "state"), *str (e, "msg") ? ": " : "", str (e, "msg"));
    else
        snprintf (what, sizeof what, "%s", str (e, "msg"));
    printf ("%6lld  %s  %s%-9s%s  %-8s  %-30s  %s\n", (long long) seq, when, colour, kind, reset,
            str (e, "dev"), who, what);
}

static int
parse_since (const char *text, int64_t *seq, int64_t *ts_ms)
{
    char *end;
    long long n = strtoll (text, &end, 10);
    if (*text && !*end && n > 0) {
        *seq = n - 1;           /* from SEQ on: everything after SEQ - 1 */
        return 0;
    }
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *rest = strptime (text, "%Y-%m-%d", &tm);
    if (rest && *rest == 'T')
        rest = strptime (rest + 1, "%H:%M:%S", &tm);
    if (!rest || *rest)
        return -1;
    tm.tm_isdst = -1;
    *ts_ms = (int64_t) mktime (&tm) * 1000;
    return 0;
}

/* Prints stored events with seq > after (and ts >= ts_ms): all of them if
 * lines is 0, the last `lines` if it is positive, none if it is negative. */
static int
history (tail_t *t, cs_db_t *db, int64_t after, int64_t ts_ms, long lines)
{
    /* the upper end first: an event stored while this runs is left for the
     * live stream (or the next gap fill), never counted as seen unprinted */
    sqlite3_stmt *st = cs_db_stmt (db, "SELECT coalesce (max (seq), 0) FROM event");
    int64_t top = 0;
    if (!st || sqlite3_step (st) != SQLITE_ROW) {
        if (st)
            sqlite3_reset (st);
        return -1;
    }
    top = sqlite3_column_int64 (st, 0);
    sqlite3_reset (st);
    st = cs_db_stmt (db, lines != 0
        ? "SELECT body FROM (SELECT seq, body FROM event WHERE seq > ?1 AND seq <= ?7 AND ts >= ?2 "
          "AND (?3 IS NULL OR email = ?3) AND (?4 IS NULL OR device = ?4) AND (?5 IS NULL OR kind = ?5) "
          "ORDER BY seq DESC LIMIT ?6) ORDER BY seq"
        : "SELECT body FROM event WHERE seq > ?1 AND seq <= ?7 AND ts >= ?2 ORDER BY seq");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, after);
    sqlite3_bind_int64 (st, 2, ts_ms);
    sqlite3_bind_int64 (st, 7, top);
    if (lines != 0) {
        if (t->email) sqlite3_bind_text (st, 3, t->email, -1, SQLITE_STATIC);
        if (t->device) sqlite3_bind_text (st, 4, t->device, -1, SQLITE_STATIC);
        if (t->type) sqlite3_bind_text (st, 5, t->type, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 6, lines > 0 ? lines : 0);
    }
    int rc;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW) {
        const char *raw = (const char *) sqlite3_column_text (st, 0);
        json_t *e = json_loads (raw, 0, NULL);
        if (e)
            print_event (t, e, raw);
        json_decref (e);
    }
    sqlite3_reset (st);
    if (rc != SQLITE_DONE)
        return -1;
    /* what the filters left out up to top still counts as seen */
    if (lines != 0 && top > t->last)
        t->last = top;
    return 0;
}

int
cs_tail_run (const cs_config_t *cfg, int argc, const char **argv)
{
    tail_t t;
    memset (&t, 0, sizeof t);
    t.lines = 20;
    int64_t since_ts = 0;
    char email [CS_EMAIL_MAX + 1];
    for (int i = 0; i < argc; i++) {
        const char *a = argv [i];
        const char *v = i + 1 < argc ? argv [i + 1] : NULL;
        if (!strcmp (a, "-f") || !strcmp (a, "--follow")) t.follow = 1;
        else if (!strcmp (a, "--json")) t.json = 1;
        else if (!strcmp (a, "-h") || !strcmp (a, "--help")) { printf ("%s", USAGE); return 0; }
        else if (v && !strcmp (a, "-n")) {
            char *end;
            t.lines = strtol (v, &end, 10);
            if (!*v || *end || t.lines < 0) {
                fprintf (stderr, "cardsync-auditor tail: -n wants a number of events, not '%s'\n", v);
                return EX_USAGE;
            }
            if (t.lines == 0)
                t.lines = -1;   /* none from the history */
            i++;
        }
        else if (v && !strcmp (a, "--email")) {
            if (cs_email_normalize (v, email) != CS_EMAIL_OK) {
                fprintf (stderr, "cardsync-auditor tail: --email wants an e-mail address, not '%s'\n", v);
                return EX_USAGE;
            }
            t.email = email;
            i++;
        }
        else if (v && !strcmp (a, "--device")) { t.device = v; i++; }
        else if (v && !strcmp (a, "--type")) { t.type = v; i++; }
        else if (v && !strcmp (a, "--since")) {
            if (parse_since (v, &t.since, &since_ts) != 0) {
                fprintf (stderr, "cardsync-auditor tail: --since wants a sequence number or "
                         "YYYY-MM-DD[THH:MM:SS], not '%s'\n", v);
                return EX_USAGE;
            }
            t.lines = 0;
            i++;
        }
        else {
            fprintf (stderr, "cardsync-auditor tail: '%s' is not known\n%s", a, USAGE);
            return EX_USAGE;
        }
    }
    t.colour = !t.json && isatty (STDOUT_FILENO) && !getenv ("NO_COLOR");
    setvbuf (stdout, NULL, _IOLBF, 0);
    char path [4200], error [512];
    snprintf (path, sizeof path, "%s/audit.db", cfg->pipeline.state_dir);
    if (access (path, R_OK) != 0) {
        fprintf (stderr, "cardsync-auditor tail: no audit yet (%s); is the auditor running?\n", path);
        if (!t.follow)
            return EX_UNAVAILABLE;
    }
    cs_zmq_t *zmq = NULL;
    zsock_t *sub = NULL;
    if (t.follow) {
        /* subscribe before reading the history: nothing falls between */
        zmq = cs_zmq_new (&cfg->pipeline, error, sizeof error);
        sub = zmq ? cs_zmq_connect (zmq, ZMQ_SUB, cfg->pipeline.auditor_pub, 0, error, sizeof error) : NULL;
        if (!sub) {
            fprintf (stderr, "cardsync-auditor tail: %s\n", error);
            cs_zmq_destroy (&zmq);
            return EX_UNAVAILABLE;
        }
        zsock_set_subscribe (sub, "");
    }
    cs_db_t *db = access (path, R_OK) == 0 ? cs_db_open (path, error, sizeof error) : NULL;
    t.last = t.since;
    if ((access (path, R_OK) == 0 && !db) || (db && history (&t, db, t.since, since_ts, t.lines) != 0)) {
        /* an audit that cannot be read is said so, never shown as empty */
        fprintf (stderr, "cardsync-auditor tail: cannot read %s: %s\n", path, db ? cs_db_errmsg (db) : error);
        cs_db_destroy (&db);
        zsock_destroy (&sub);
        cs_zmq_destroy (&zmq);
        return EX_DATAERR;
    }
    zpoller_t *poller = t.follow ? zpoller_new (sub, NULL) : NULL;
    while (t.follow && !cs_zmq_interrupted ()) {
        zsock_t *which = zpoller_wait (poller, 1000);
        if (zpoller_terminated (poller))
            break;
        if (!which)
            continue;
        cs_msg_t *m = cs_zmq_recv (sub, NULL);
        if (!m || cs_msg_type (m) != CS_MSG_EVENT) {
            cs_msg_destroy (&m);
            continue;
        }
        int64_t seq = cs_msg_int (m, CS_F_SEQ);
        if (seq > t.last + 1) {
            /* missed while starting or slow: the database has them */
            if (!db && access (path, R_OK) == 0)
                db = cs_db_open (path, error, sizeof error);
            if (db)
                history (&t, db, t.last, 0, 0);
        }
        char *raw = cs_msg_to_json (m);
        json_t *e = raw ? json_loads (raw, 0, NULL) : NULL;
        if (e)
            print_event (&t, e, raw);
        json_decref (e);
        free (raw);
        cs_msg_destroy (&m);
    }
    zpoller_destroy (&poller);
    cs_db_destroy (&db);
    zsock_destroy (&sub);
    cs_zmq_destroy (&zmq);
    return 0;
}
