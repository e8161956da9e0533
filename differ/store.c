#include "differ/store.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SQL that brings column col of table t to the current normal form of an
 * e-mail address where it may differ from the ASCII-only one of before. */
#define MIGRATE_EMAIL(t, col) \
    "UPDATE " t " SET " col " = coalesce (cs_email (" col "), " col ")" \
    "  WHERE " col " GLOB '*[^ -~]*' OR " col " LIKE '%xn--%';"

static const char *SCHEMA [] = {
    /* 1 */
    "CREATE TABLE record ("             /* members as the last good cycles gave them */
    "  org INTEGER NOT NULL, omid INTEGER NOT NULL, email TEXT, raw_email TEXT,"
    "  first TEXT, last TEXT, inactive INTEGER NOT NULL, roles TEXT NOT NULL,"
    "  PRIMARY KEY (org, omid));"
    "CREATE INDEX record_email ON record (email);"
    "CREATE TABLE staging ("            /* the cycle being received */
    "  org INTEGER NOT NULL, omid INTEGER NOT NULL, email TEXT, raw_email TEXT,"
    "  first TEXT, last TEXT, inactive INTEGER NOT NULL, roles TEXT NOT NULL,"
    "  PRIMARY KEY (org, omid));"
    "CREATE TABLE person ("             /* what each device holds, by scan and result */
    "  device TEXT NOT NULL, employee_no TEXT NOT NULL, name TEXT, tag TEXT,"
    "  enable INTEGER, begin_time TEXT, end_time TEXT, PRIMARY KEY (device, employee_no));"
    "CREATE TABLE person_staging ("     /* the scan being received */
    "  device TEXT NOT NULL, employee_no TEXT NOT NULL, name TEXT, tag TEXT,"
    "  enable INTEGER, begin_time TEXT, end_time TEXT, PRIMARY KEY (device, employee_no));"
    "CREATE TABLE identity ("           /* who is who: remembered matches */
    "  email TEXT NOT NULL, device TEXT NOT NULL, employee_no TEXT NOT NULL, how TEXT NOT NULL,"
    "  PRIMARY KEY (email, device));"
    "CREATE TABLE command ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, employee_no TEXT NOT NULL,"
    "  email TEXT, op TEXT NOT NULL, name TEXT, begin_time TEXT NOT NULL, end_time TEXT NOT NULL,"
    "  state TEXT NOT NULL, created_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX command_open ON command (device, employee_no) WHERE state = 'pending';"
    "CREATE TABLE failed ("             /* the failed queue */
    "  email TEXT NOT NULL, device TEXT NOT NULL, employee_no TEXT, command_id INTEGER,"
    "  class TEXT, msg TEXT, tries INTEGER, since_ms INTEGER, PRIMARY KEY (email, device));"
    "CREATE TABLE notice ("             /* things said once, not every cycle */
    "  kind TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (kind, key));"
    "CREATE TABLE health (device TEXT PRIMARY KEY, state TEXT, msg TEXT, until_ms INTEGER,"
    "  ts INTEGER);"
    "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value);"
    "INSERT INTO meta VALUES ('acked', 0), ('cycle', 0), ('guard', 0);",
    /* 2: a device is planned for only once it has been scanned */
    "CREATE TABLE scanned (device TEXT PRIMARY KEY, ts INTEGER NOT NULL);",
    /* 3: the revocations a tripped guard holds back, for the operator to see */
    "CREATE TABLE held (device TEXT NOT NULL, employee_no TEXT NOT NULL, email TEXT,"
    "  begin_time TEXT, end_time TEXT, PRIMARY KEY (device, employee_no));",
    /* 4: shared e-mails are found from the index alone */
    "DROP INDEX record_email; CREATE INDEX record_email ON record (email, omid);",
    /* 5: commands go out a window at a time per device, oldest first */
    "CREATE INDEX command_due ON command (device, sent_ms, id) WHERE state = 'pending';",
    /* 6: the cycle being received is kept in a TEMP table (see cs_state_open) */
    "DROP TABLE staging;",
    /* 7: how many persons each device can hold, from its last scan */
    "ALTER TABLE scanned ADD COLUMN capacity INTEGER;",
    /* 8: identity follows the member: ties by (device, person) to (org, omid);
     * the failed queue and the sync targets by person; commands know their
     * member and the tag to store */
    "CREATE TABLE tie (device TEXT NOT NULL, employee_no TEXT NOT NULL, org INTEGER NOT NULL,"
    "  omid INTEGER NOT NULL, rule TEXT NOT NULL, via TEXT,"
    "  PRIMARY KEY (device, employee_no, org, omid));"
    "INSERT OR IGNORE INTO tie SELECT i.device, i.employee_no, r.org, r.omid, i.how, i.email"
    "  FROM identity i JOIN record r ON r.email = i.email;"
    "DROP TABLE identity;"
    "CREATE TABLE failed_person (device TEXT NOT NULL, employee_no TEXT NOT NULL, email TEXT,"
    "  org INTEGER, omid INTEGER, command_id INTEGER, class TEXT, msg TEXT, tries INTEGER,"
    "  since_ms INTEGER, PRIMARY KEY (device, employee_no));"
    "INSERT OR REPLACE INTO failed_person SELECT device, coalesce (employee_no, ''), email, NULL,"
    "  NULL, command_id, class, msg, tries, since_ms FROM failed;"
    "DROP TABLE failed; ALTER TABLE failed_person RENAME TO failed;"
    "ALTER TABLE command ADD COLUMN org INTEGER; ALTER TABLE command ADD COLUMN omid INTEGER;"
    "ALTER TABLE command ADD COLUMN tag TEXT;"
    "CREATE TABLE target (device TEXT NOT NULL, employee_no TEXT NOT NULL, org INTEGER,"
    "  omid INTEGER, email TEXT, retag TEXT, revoke INTEGER NOT NULL, keep INTEGER NOT NULL,"
    "  begin_time TEXT NOT NULL, end_time TEXT NOT NULL, sync TEXT NOT NULL,"
    "  PRIMARY KEY (device, employee_no));"
    "DELETE FROM notice WHERE kind = 'unmatched';"
    "CREATE INDEX tie_member ON tie (org, omid);",
    /* 9: the differ knows when the last export, and the last good one, ended;
     * scanned.ts is the last complete scan */
    "CREATE TABLE export (id INTEGER PRIMARY KEY CHECK (id = 1), ts INTEGER NOT NULL,"
    "  result TEXT NOT NULL, count INTEGER NOT NULL, msg TEXT, ok_ts INTEGER NOT NULL DEFAULT 0);",
    /* 10: addresses are normalised for Unicode too (common/email.h): the
     * stored ones that can change (non-ASCII, or an xn-- domain) take the new
     * form; one that no longer normalises keeps what it had */
    MIGRATE_EMAIL ("record", "email")
    MIGRATE_EMAIL ("tie", "via")
    MIGRATE_EMAIL ("failed", "email")
    MIGRATE_EMAIL ("target", "email")
    MIGRATE_EMAIL ("command", "email")
    MIGRATE_EMAIL ("held", "email")
    "UPDATE OR REPLACE notice SET key = coalesce (cs_email (key), key)"
    "  WHERE kind = 'duplicate' AND (key GLOB '*[^ -~]*' OR key LIKE '%xn--%');",
};

/* The members of the export being received: a temporary table, so that a
 * quiet full cycle of 100,000 members writes nothing durable. A restart loses
 * it, and with it that cycle: the producer's next one brings it all again. */
static const char *STAGING =
    "CREATE TEMP TABLE staging ("
    "  org INTEGER NOT NULL, omid INTEGER NOT NULL, email TEXT, raw_email TEXT,"
    "  first TEXT, last TEXT, inactive INTEGER NOT NULL, roles TEXT NOT NULL,"
    "  PRIMARY KEY (org, omid));";

#define SCHEMA_VERSION ((int) (sizeof SCHEMA / sizeof *SCHEMA))

/* A scan's persons that cannot be used, while the scan is received. */
static const char *SKIPPED =
    "CREATE TEMP TABLE skipped (device TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (device, key));";

struct _cs_store_t {
    cs_db_t *db;
    cs_log_t *log;
    int64_t acked;              /* cached meta.acked */
    int64_t now_ms;             /* wall clock of the transaction under way */
};

cs_store_t *
cs_store_open (const char *path, cs_log_t *log, char *error, size_t error_size)
{
    cs_store_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->log = log;
    self->db = cs_db_open (path, error, error_size);
    if (!self->db) {            /* cs_db_open wrote the reason */
        cs_store_destroy (&self);
        return NULL;
    }
    if (cs_db_migrate (self->db, SCHEMA, SCHEMA_VERSION) != 0 || cs_db_exec (self->db, STAGING) != 0
        || cs_db_exec (self->db, SKIPPED) != 0) {
        snprintf (error, error_size, "%s", cs_db_errmsg (self->db));
        cs_store_destroy (&self);
        return NULL;
    }
    self->acked = cs_store_meta (self, "acked");
    return self;                /* a cycle cut short by a restart is over: staging went with it */
}

void
cs_store_destroy (cs_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_db_destroy (&(*self_p)->db);
    free (*self_p);
    *self_p = NULL;
}

cs_db_t *
cs_store_db (cs_store_t *self)
{
    return self->db;
}

const char *const *
cs_store_schema (int *count)
{
    *count = SCHEMA_VERSION;
    return SCHEMA;
}

int64_t
cs_store_count (cs_store_t *self, const char *sql, const char *arg)
{
    sqlite3_stmt *st = cs_db_stmt (self->db, sql);
    int64_t n = -1;
    if (!st)
        return -1;
    if (arg)
        sqlite3_bind_text (st, 1, arg, -1, SQLITE_STATIC);
    if (sqlite3_step (st) == SQLITE_ROW)
        n = sqlite3_column_int64 (st, 0);
    sqlite3_reset (st);
    return n;
}

const char *
cs_store_errmsg (cs_store_t *self)
{
    return cs_db_errmsg (self->db);
}

cs_log_t *
cs_store_log (cs_store_t *self)
{
    return self->log;
}

void
cs_store_set_now (cs_store_t *self, int64_t now_ms)
{
    self->now_ms = now_ms;
}

int64_t
cs_store_now (cs_store_t *self)
{
    return self->now_ms;
}

/* --- events and notices ------------------------------------------------------- */

cs_msg_t *
cs_event_new (cs_event_kind_t kind)
{
    cs_msg_t *ev = cs_msg_new (CS_MSG_EVENT);
    if (ev)
        cs_msg_set_str (ev, CS_F_KIND, cs_event_kind_name (kind));
    return ev;
}

void
cs_event_str (cs_msg_t *ev, cs_field_t f, const char *v)
{
    if (v && *v)
        cs_msg_set_str (ev, f, v);
}

void
cs_event_member (cs_msg_t *ev, int64_t org, int64_t omid)
{
    if (omid <= 0)
        return;
    cs_msg_set_int (ev, CS_F_ORG, org);
    cs_msg_set_int (ev, CS_F_MID, omid);
}

int
cs_store_emit (cs_store_t *self, cs_msg_t *ev)
{
    if (!ev)
        return -1;
    cs_msg_set_int (ev, CS_F_SEQ, 0);       /* the real seq is set when sent */
    if (!cs_msg_has (ev, CS_F_TS))
        cs_msg_set_int (ev, CS_F_TS, self->now_ms);
    uint8_t *data;
    size_t size;
    cs_msg_error_t err;
    int rc = cs_msg_encode (ev, &data, &size, &err);
    if (rc == 0) {
        sqlite3_stmt *st = cs_db_stmt (self->db, "INSERT INTO outbox (body) VALUES (?1)");
        rc = st ? 0 : -1;
        if (st) {
            sqlite3_bind_blob (st, 1, data, (int) size, SQLITE_TRANSIENT);
            rc = cs_db_step_done (self->db, st);
        }
        free (data);
    }
    else
        cs_log (self->log, CS_LOG_ERROR, "event_unencodable", "error", err.text, NULL);
    cs_msg_destroy (&ev);
    return rc;
}

int
cs_store_notice (cs_store_t *self, const char *kind, const char *key)
{
    sqlite3_stmt *st = cs_db_stmt (self->db, "INSERT INTO notice VALUES (?1, ?2) ON CONFLICT DO NOTHING");
    if (!st)
        return 0;
    sqlite3_bind_text (st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, key, -1, SQLITE_TRANSIENT);
    if (cs_db_step_done (self->db, st) != 0)
        return 0;
    return sqlite3_changes (cs_db_handle (self->db)) == 1;
}

void
cs_store_forget (cs_store_t *self, const char *kind, const char *key)
{
    sqlite3_stmt *st = cs_db_stmt (self->db, "DELETE FROM notice WHERE kind = ?1 AND key = ?2");
    if (!st)
        return;
    sqlite3_bind_text (st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, key, -1, SQLITE_TRANSIENT);
    cs_db_step_done (self->db, st);
}

/* --- meta and the outbox -------------------------------------------------------- */

int64_t
cs_store_meta (cs_store_t *self, const char *key)
{
    sqlite3_stmt *st = cs_db_stmt (self->db, "SELECT value FROM meta WHERE key = ?1");
    int64_t v = 0;
    if (st) {
        sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
            v = sqlite3_column_int64 (st, 0);
        sqlite3_reset (st);
    }
    return v;
}

int
cs_store_set_meta (cs_store_t *self, const char *key, int64_t value)
{
    sqlite3_stmt *st = cs_db_stmt (self->db, "INSERT INTO meta VALUES (?1, ?2) "
                                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 2, value);
    return cs_db_step_done (self->db, st);
}

/* The auditor holds less than it acknowledged: its file was removed or
 * replaced. What it acknowledged has left the outbox, so those events exist
 * nowhere now: an audit_gap event names them (once), which also lets the
 * auditor's contiguous mark pass them; the rest of the outbox goes again. */
static int
audit_gap (cs_store_t *self, int64_t holds)
{
    int64_t first = holds + 1, last = self->acked;
    if (cs_store_meta (self, "gap_first") == first && cs_store_meta (self, "gap_last") == last)
        return 0;               /* said already */
    char msg [300], a [32], b [32];
    snprintf (a, sizeof a, "%lld", (long long) first);
    snprintf (b, sizeof b, "%lld", (long long) last);
    snprintf (msg, sizeof msg, "events %s..%s were stored in an audit file that is gone (removed or "
              "replaced while the auditor ran); they exist nowhere now", a, b);
    cs_log (self->log, CS_LOG_ERROR, "audit_gap", "first", a, "last", b, "msg", msg, NULL);
    cs_msg_t *ev = cs_event_new (CS_EV_AUDIT_GAP);
    cs_msg_add_id (ev, (uint64_t) first);
    cs_msg_add_id (ev, (uint64_t) last);
    cs_msg_set_int (ev, CS_F_COUNT, last - first + 1);
    cs_msg_set_str (ev, CS_F_MSG, msg);
    if (cs_store_emit (self, ev) != 0 || cs_store_set_meta (self, "gap_first", first) != 0
        || cs_store_set_meta (self, "gap_last", last) != 0
        || cs_store_set_meta (self, "audit_gap_ms", self->now_ms) != 0)
        return -1;
    return 0;
}

int
cs_store_ack (cs_store_t *self, int64_t seq)
{
    if (seq < self->acked)
        return audit_gap (self, seq);
    if (seq == self->acked)
        return 0;
    int64_t last = cs_store_last_seq (self);
    if (seq > last) {
        /* never sent: believing it would keep every later event from the audit */
        char got [32], sent [32];
        snprintf (got, sizeof got, "%lld", (long long) seq);
        snprintf (sent, sizeof sent, "%lld", (long long) last);
        cs_log (self->log, CS_LOG_WARN, "ack_ignored", "seq", got, "last_sent", sent,
                "msg", "an acknowledgement of events never sent", NULL);
        return 0;
    }
    sqlite3_stmt *st = cs_db_stmt (self->db, "DELETE FROM outbox WHERE seq <= ?1");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, seq);
    if (cs_db_step_done (self->db, st) != 0 || cs_store_set_meta (self, "acked", seq) != 0)
        return -1;
    self->acked = seq;
    return 0;
}

int64_t
cs_store_acked (cs_store_t *self)
{
    return self->acked;
}

void
cs_store_restore_acked (cs_store_t *self, int64_t acked)
{
    self->acked = acked;
}

int64_t
cs_store_last_seq (cs_store_t *self)
{
    sqlite3_stmt *st = cs_db_stmt (self->db, "SELECT coalesce (max (seq), 0) FROM outbox");
    int64_t v = self->acked;
    if (st && sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int64 (st, 0) > v)
        v = sqlite3_column_int64 (st, 0);
    if (st)
        sqlite3_reset (st);
    return v;
}

static int
list_to_array (zlistx_t *list, cs_msg_t ***out, size_t *count)
{
    *count = zlistx_size (list);
    *out = calloc (*count ? *count : 1, sizeof **out);
    if (!*out)
        return -1;
    size_t i = 0;
    for (cs_msg_t *m = zlistx_first (list); m; m = zlistx_next (list))
        (*out) [i++] = m;
    return 0;
}

int
cs_store_events_after (cs_store_t *self, int64_t seq, size_t max, cs_msg_t ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st = cs_db_stmt (self->db, "SELECT seq, body FROM outbox WHERE seq > ?1 "
                                             "ORDER BY seq LIMIT ?2");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, seq);
    sqlite3_bind_int64 (st, 2, (int64_t) max);
    zlistx_t *list = zlistx_new ();
    while (sqlite3_step (st) == SQLITE_ROW) {
        cs_msg_error_t err;
        cs_msg_t *m = cs_msg_decode (sqlite3_column_blob (st, 1),
                                     (size_t) sqlite3_column_bytes (st, 1), &err);
        if (!m)
            continue;
        cs_msg_set_int (m, CS_F_SEQ, sqlite3_column_int64 (st, 0));
        zlistx_add_end (list, m);
    }
    sqlite3_reset (st);
    int rc = list_to_array (list, out, count);
    zlistx_destroy (&list);
    return rc;
}

/* --- commands due ------------------------------------------------------------------ */

typedef struct {
    cs_store_t *s;
    const cs_config_t *cfg;
    int64_t now;
    zlistx_t *out;
} due_t;

/* Commands out at once per device: enough to keep a device busy for a second
 * or more, few enough that the pusher holds little and a slow device is not
 * sent its whole backlog again when the lease runs out. The window is topped
 * up once half of it is done, not after each result: one write transaction
 * per half window, and the pusher still has half a window queued. */
#define WINDOW 100
#define REFILL (WINDOW / 2)

static int
due_fn (cs_db_t *db, void *arg)
{
    due_t *d = arg;
    int64_t expired = d->now - (int64_t) d->cfg->sync.lease * 1000;
    for (size_t i = 0; i < d->cfg->device_count; i++) {
        const char *dev = d->cfg->devices [i].name;
        /* sent and still within their lease: out there */
        sqlite3_stmt *st = cs_db_stmt (db, "SELECT count (*) FROM command WHERE state = 'pending' "
                                           "AND device = ?1 AND sent_ms > ?2");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 2, expired);
        int64_t out = sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : 0;
        sqlite3_reset (st);
        if (out > REFILL)
            continue;
        /* lease run out (sent again), then never sent, oldest first */
        st = cs_db_stmt (db, "SELECT id, device, employee_no, email, op, name, begin_time, end_time, tag "
                             "FROM command WHERE state = 'pending' AND device = ?1 AND sent_ms > 0 "
                             "AND sent_ms <= ?2 UNION ALL SELECT * FROM (SELECT id, device, employee_no, "
                             "email, op, name, begin_time, end_time, tag FROM command WHERE state = 'pending' "
                             "AND device = ?1 AND sent_ms = 0 ORDER BY id) LIMIT ?3");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 2, expired);
        sqlite3_bind_int64 (st, 3, WINDOW - out);
        while (sqlite3_step (st) == SQLITE_ROW) {
            cs_msg_t *m = cs_msg_new (CS_MSG_COMMAND);
            cs_msg_set_int (m, CS_F_ID, sqlite3_column_int64 (st, 0));
            cs_msg_set_str (m, CS_F_DEV, (const char *) sqlite3_column_text (st, 1));
            cs_msg_set_str (m, CS_F_EMPNO, (const char *) sqlite3_column_text (st, 2));
            cs_event_str (m, CS_F_EMAIL, (const char *) sqlite3_column_text (st, 3));
            cs_msg_set_str (m, CS_F_OP, (const char *) sqlite3_column_text (st, 4));
            cs_event_str (m, CS_F_NAME, (const char *) sqlite3_column_text (st, 5));
            cs_msg_set_str (m, CS_F_BEGIN, (const char *) sqlite3_column_text (st, 6));
            cs_msg_set_str (m, CS_F_END, (const char *) sqlite3_column_text (st, 7));
            cs_event_str (m, CS_F_TAG, (const char *) sqlite3_column_text (st, 8));
            cs_msg_set_bool (m, CS_F_ENABLE, 1);
            zlistx_add_end (d->out, m);
        }
        sqlite3_reset (st);
    }
    sqlite3_stmt *st = cs_db_stmt (db, "UPDATE command SET sent_ms = ?1 WHERE id = ?2");
    if (!st)
        return -1;
    for (cs_msg_t *m = zlistx_first (d->out); m; m = zlistx_next (d->out)) {
        sqlite3_bind_int64 (st, 1, d->now);
        sqlite3_bind_int64 (st, 2, cs_msg_int (m, CS_F_ID));
        if (cs_db_step_done (db, st) != 0)
            return -1;
    }
    return 0;
}

int
cs_store_due_commands (cs_store_t *self, const cs_config_t *cfg, int64_t now_ms, cs_msg_t ***out,
                       size_t *count)
{
    due_t d = { self, cfg, now_ms, zlistx_new () };
    *out = NULL;
    *count = 0;
    int rc = cs_db_transaction (self->db, due_fn, &d);
    if (rc == 0)
        rc = list_to_array (d.out, out, count);
    else
        for (cs_msg_t *m = zlistx_first (d.out); m; m = zlistx_next (d.out))
            cs_msg_destroy (&m);
    zlistx_destroy (&d.out);
    return rc;
}
