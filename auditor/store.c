#include "auditor/store.h"
#include "common/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *SCHEMA [] = {
    /* 1: the events, and the seed design's tables as views */
    "CREATE TABLE event ("
    "  seq INTEGER PRIMARY KEY,"           /* the differ's outbox number: one row each */
    "  ts INTEGER NOT NULL,"               /* ms since 1970 */
    "  kind TEXT NOT NULL,"
    "  email TEXT, device TEXT, employee_no TEXT, command_id INTEGER, member_id INTEGER,"
    "  class TEXT, http INTEGER, code INTEGER, sub TEXT, msg TEXT, tries INTEGER,"
    "  begin_time TEXT, end_time TEXT, prev_begin TEXT, prev_end TEXT, count INTEGER,"
    "  state TEXT, name TEXT, req INTEGER,"
    "  body TEXT NOT NULL);"               /* the whole event as JSON */
    "CREATE INDEX event_email ON event (email, seq);"
    "CREATE INDEX event_device ON event (device, seq);"
    "CREATE INDEX event_kind ON event (kind, seq);"
    "CREATE INDEX event_ts ON event (ts);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta VALUES ('contiguous', 0);"
    "CREATE VIEW sync_history AS"
    "  SELECT seq AS id, email, member_id AS cardskipper_id, employee_no AS ivms_id, device,"
    "         prev_end AS previous_end_date, end_time AS new_end_date, kind AS sync_status,"
    "         datetime (ts / 1000, 'unixepoch') AS sync_time"
    "  FROM event WHERE kind IN ('applied', 'failed');"
    "CREATE VIEW sync_errors AS"
    "  SELECT e.seq AS id, e.email, e.device, e.class, e.msg AS error_message,"
    "         datetime (e.ts / 1000, 'unixepoch') AS error_time,"
    "         EXISTS (SELECT 1 FROM event a WHERE a.kind = 'applied' AND a.email IS e.email"
    "                 AND a.device IS e.device AND a.seq > e.seq) AS resolved"
    "  FROM event e WHERE e.kind = 'failed';",
    /* 2: events name the member by organisation too, and how a person is tied */
    "ALTER TABLE event ADD COLUMN org INTEGER; ALTER TABLE event ADD COLUMN rule TEXT;"
    "CREATE INDEX event_member ON event (member_id, seq);",
    /* 3: events the differ says are lost (audit_gap): the contiguous mark passes them */
    "CREATE TABLE gap (first INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (first, last));",
    /* 4: addresses are normalised for Unicode too (common/email.h): events
     * that name one that can change (non-ASCII, or an xn-- domain) take the
     * new form, so that history and tail --email keep finding them */
    "UPDATE event SET email = coalesce (cs_email (email), email)"
    "  WHERE email GLOB '*[^ -~]*' OR email LIKE '%xn--%';"
    "UPDATE event SET body = json_set (body, '$.email', email)"
    "  WHERE (email GLOB '*[^ -~]*' OR email LIKE '%xn--%') AND json_valid (body)"
    "  AND json_extract (body, '$.email') IS NOT email;",
};

struct _cs_audit_t {
    cs_db_t *db;
    int64_t contiguous;         /* cached meta.contiguous */
};

cs_audit_t *
cs_audit_open (const char *path, char *error, size_t error_size)
{
    cs_audit_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->db = cs_db_open (path, error, error_size);
    if (!self->db || cs_db_migrate (self->db, SCHEMA, (int) (sizeof SCHEMA / sizeof *SCHEMA)) != 0) {
        if (self->db)
            snprintf (error, error_size, "%s", cs_db_errmsg (self->db));
        cs_audit_destroy (&self);
        return NULL;
    }
    /* a page cache of 256 KB, not SQLite's 2 MB: the auditor appends, and
     * its indexes' hot pages are few */
    cs_db_exec (self->db, "PRAGMA cache_size = -256");
    sqlite3_stmt *st = cs_db_stmt (self->db, "SELECT value FROM meta WHERE key = 'contiguous'");
    if (st && sqlite3_step (st) == SQLITE_ROW)
        self->contiguous = sqlite3_column_int64 (st, 0);
    if (st)
        sqlite3_reset (st);
    return self;
}

void
cs_audit_destroy (cs_audit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_db_destroy (&(*self_p)->db);
    free (*self_p);
    *self_p = NULL;
}

const char *
cs_audit_errmsg (cs_audit_t *self)
{
    return cs_db_errmsg (self->db);
}

cs_db_t *
cs_audit_db (cs_audit_t *self)
{
    return self->db;
}

int64_t
cs_audit_contiguous (cs_audit_t *self)
{
    return self->contiguous;
}

typedef struct {
    cs_audit_t *self;
    cs_msg_t **events;
    size_t count;
    int *inserted;
    int64_t contiguous;
} batch_t;

static void
bind_text (sqlite3_stmt *st, int i, const cs_msg_t *m, cs_field_t f)
{
    const char *v = cs_msg_str (m, f);
    if (v)
        sqlite3_bind_text (st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (st, i);
}

static void
bind_int (sqlite3_stmt *st, int i, const cs_msg_t *m, cs_field_t f)
{
    if (cs_msg_has (m, f))
        sqlite3_bind_int64 (st, i, cs_msg_int (m, f));
    else
        sqlite3_bind_null (st, i);
}

static int
store_batch (cs_db_t *db, void *arg)
{
    batch_t *b = arg;
    for (size_t i = 0; i < b->count; i++) {
        const cs_msg_t *m = b->events [i];
        sqlite3_stmt *st = cs_db_stmt (db,
            "INSERT INTO event (seq, ts, kind, email, device, employee_no, command_id, member_id,"
            " class, http, code, sub, msg, tries, begin_time, end_time, prev_begin, prev_end,"
            " count, state, name, req, body, org, rule)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
            " ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25) ON CONFLICT (seq) DO NOTHING");
        if (!st)
            return -1;
        bind_int (st, 1, m, CS_F_SEQ);
        bind_int (st, 2, m, CS_F_TS);
        bind_text (st, 3, m, CS_F_KIND);
        bind_text (st, 4, m, CS_F_EMAIL);
        bind_text (st, 5, m, CS_F_DEV);
        bind_text (st, 6, m, CS_F_EMPNO);
        bind_int (st, 7, m, CS_F_ID);
        bind_int (st, 8, m, CS_F_MID);
        bind_text (st, 9, m, CS_F_CLASS);
        bind_int (st, 10, m, CS_F_HTTP);
        bind_int (st, 11, m, CS_F_CODE);
        bind_text (st, 12, m, CS_F_SUB);
        bind_text (st, 13, m, CS_F_MSG);
        bind_int (st, 14, m, CS_F_TRIES);
        bind_text (st, 15, m, CS_F_BEGIN);
        bind_text (st, 16, m, CS_F_END);
        bind_text (st, 17, m, CS_F_PREV_BEGIN);
        bind_text (st, 18, m, CS_F_PREV_END);
        bind_int (st, 19, m, CS_F_COUNT);
        bind_text (st, 20, m, CS_F_STATE);
        bind_text (st, 21, m, CS_F_NAME);
        bind_int (st, 22, m, CS_F_REQ);
        char *json = cs_msg_to_json (m);
        sqlite3_bind_text (st, 23, json ? json : "{}", -1, SQLITE_TRANSIENT);
        free (json);
        bind_int (st, 24, m, CS_F_ORG);
        bind_text (st, 25, m, CS_F_RULE);
        if (cs_db_step_done (db, st) != 0)
            return -1;
        b->inserted [i] = sqlite3_changes (cs_db_handle (db)) == 1;
        const char *kind = cs_msg_str (m, CS_F_KIND);
        if (kind && cs_event_kind_parse (kind) == CS_EV_AUDIT_GAP && cs_msg_id_count (m) == 2) {
            sqlite3_stmt *gap = cs_db_stmt (db, "INSERT INTO gap VALUES (?1, ?2) ON CONFLICT DO NOTHING");
            if (!gap)
                return -1;
            sqlite3_bind_int64 (gap, 1, (int64_t) cs_msg_id (m, 0));
            sqlite3_bind_int64 (gap, 2, (int64_t) cs_msg_id (m, 1));
            if (cs_db_step_done (db, gap) != 0)
                return -1;
        }
    }
    /* move the contiguous mark over every seq now present, and every gap */
    int64_t c = b->self->contiguous, was;
    do {
        was = c;
        sqlite3_stmt *gap = cs_db_stmt (db, "SELECT max (last) FROM gap WHERE first <= ?1 + 1 AND last > ?1");
        if (!gap)
            return -1;
        sqlite3_bind_int64 (gap, 1, c);
        if (sqlite3_step (gap) == SQLITE_ROW && sqlite3_column_type (gap, 0) != SQLITE_NULL)
            c = sqlite3_column_int64 (gap, 0);
        sqlite3_reset (gap);
        sqlite3_stmt *next = cs_db_stmt (db, "SELECT seq FROM event WHERE seq > ?1 ORDER BY seq");
        if (!next)
            return -1;
        sqlite3_bind_int64 (next, 1, c);
        while (sqlite3_step (next) == SQLITE_ROW && sqlite3_column_int64 (next, 0) == c + 1)
            c++;
        sqlite3_reset (next);
    } while (c != was);
    sqlite3_stmt *set = cs_db_stmt (db, "UPDATE meta SET value = ?1 WHERE key = 'contiguous'");
    if (!set)
        return -1;
    sqlite3_bind_int64 (set, 1, c);
    if (cs_db_step_done (db, set) != 0)
        return -1;
    b->contiguous = c;
    return 0;
}

int
cs_audit_store (cs_audit_t *self, cs_msg_t **events, size_t count, int *inserted)
{
    batch_t b = { self, events, count, inserted, self->contiguous };
    if (cs_db_transaction (self->db, store_batch, &b) != 0)
        return -1;
    self->contiguous = b.contiguous;
    return 0;
}

long
cs_audit_expire (cs_audit_t *self, int days, int64_t now_ms)
{
    /* ties made and ended are kept: state.db's ties can be rebuilt from them */
    sqlite3_stmt *st = cs_db_stmt (self->db, "DELETE FROM event WHERE ts < ?1 "
                                             "AND kind NOT IN ('tied', 'untied')");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, now_ms - (int64_t) days * 86400000);
    if (cs_db_step_done (self->db, st) != 0)
        return -1;
    return (long) sqlite3_changes (cs_db_handle (self->db));
}
