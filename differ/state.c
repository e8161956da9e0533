#include "differ/state.h"
#include "common/date.h"
#include "common/db.h"
#include "common/email.h"

#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
};

/* The members of the export being received: a temporary table, so that a
 * quiet full cycle of 100,000 members writes nothing durable. A restart loses
 * it, and with it that cycle: the producer's next one brings it all again. */
static const char *STAGING =
    "CREATE TEMP TABLE staging ("
    "  org INTEGER NOT NULL, omid INTEGER NOT NULL, email TEXT, raw_email TEXT,"
    "  first TEXT, last TEXT, inactive INTEGER NOT NULL, roles TEXT NOT NULL,"
    "  PRIMARY KEY (org, omid));";

struct _cs_state_t {
    cs_db_t *db;
    const cs_config_t *cfg;
    cs_log_t *log;
    int dry_run;
    int64_t acked;              /* cached meta.acked */
    uint64_t cycle;             /* the cycle being received, 0 if none */
    int cycle_full;
    zhashx_t *map;              /* identity_map: email -> employeeNo */
    zhashx_t *unmatched;        /* while planning: the 'unmatched' notices ("email|device") */
    cs_day_t *plan_days;        /* each device's local day at the last plan */
    int planned;                /* a plan has run since the start */
    int64_t now_ms;             /* wall clock for this transaction */
};

/* --- events ---------------------------------------------------------------- */

/* Appends an event to the outbox (inside the caller's transaction). */
static int
emit (cs_state_t *s, cs_msg_t *ev)
{
    cs_msg_set_int (ev, CS_F_SEQ, 0);       /* the real seq is set when sent */
    if (!cs_msg_has (ev, CS_F_TS))
        cs_msg_set_int (ev, CS_F_TS, s->now_ms);
    uint8_t *data;
    size_t size;
    cs_msg_error_t err;
    int rc = cs_msg_encode (ev, &data, &size, &err);
    if (rc == 0) {
        sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO outbox (body) VALUES (?1)");
        rc = st ? 0 : -1;
        if (st) {
            sqlite3_bind_blob (st, 1, data, (int) size, SQLITE_TRANSIENT);
            rc = cs_db_step_done (s->db, st);
        }
        free (data);
    }
    else
        cs_log (s->log, CS_LOG_ERROR, "event_unencodable", "error", err.text, NULL);
    cs_msg_destroy (&ev);
    return rc;
}

static cs_msg_t *
event (const char *kind)
{
    cs_msg_t *ev = cs_msg_new (CS_MSG_EVENT);
    cs_msg_set_str (ev, CS_F_KIND, kind);
    return ev;
}

static void
set_if (cs_msg_t *ev, cs_field_t f, const char *v)
{
    if (v && *v)
        cs_msg_set_str (ev, f, v);
}

/* A notice is said once while it holds: 1 if it is new. */
static int
notice (cs_state_t *s, const char *kind, const char *key)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO notice VALUES (?1, ?2) ON CONFLICT DO NOTHING");
    if (!st)
        return 0;
    sqlite3_bind_text (st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, key, -1, SQLITE_TRANSIENT);
    if (cs_db_step_done (s->db, st) != 0)
        return 0;
    return sqlite3_changes (cs_db_handle (s->db)) == 1;
}

static void
forget_notice (cs_state_t *s, const char *kind, const char *key)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "DELETE FROM notice WHERE kind = ?1 AND key = ?2");
    if (!st)
        return;
    sqlite3_bind_text (st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, key, -1, SQLITE_TRANSIENT);
    cs_db_step_done (s->db, st);
}

/* --- open ------------------------------------------------------------------- */

static int64_t
meta_int (cs_state_t *s, const char *key)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT value FROM meta WHERE key = ?1");
    int64_t v = 0;
    if (st) {
        sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
            v = sqlite3_column_int64 (st, 0);
        sqlite3_reset (st);
    }
    return v;
}

static int
set_meta (cs_state_t *s, const char *key, int64_t value)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO meta VALUES (?1, ?2) "
                                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 2, value);
    return cs_db_step_done (s->db, st);
}

/* The operator's CSV: email,employeeNo (a header line is fine). */
static int
load_map (cs_state_t *s, const char *path, char *error, size_t error_size)
{
    FILE *f = fopen (path, "r");
    if (!f) {
        snprintf (error, error_size, "[sync] identity_map: cannot read %s", path);
        return -1;
    }
    char line [1024];
    int lineno = 0;
    while (fgets (line, sizeof line, f)) {
        lineno++;
        char *comma = strchr (line, ',');
        if (!comma)
            continue;
        *comma = 0;
        char *no = comma + 1;
        no [strcspn (no, "\r\n")] = 0;
        while (*no == ' ')
            no++;
        char email [CS_EMAIL_MAX + 1];
        if (cs_email_normalize (line, email) != CS_EMAIL_OK || !*no) {
            if (lineno > 1)
                cs_log (s->log, CS_LOG_WARN, "identity_map_line_skipped", "file", path,
                        "line", line, NULL);
            continue;
        }
        zhashx_update (s->map, email, strdup (no));
    }
    fclose (f);
    return 0;
}

static void
free_string (void **item)
{
    free (*item);
    *item = NULL;
}

cs_state_t *
cs_state_open (const char *path, const cs_config_t *cfg, cs_log_t *log, int dry_run,
               char *error, size_t error_size)
{
    cs_state_t *s = calloc (1, sizeof *s);
    if (!s) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->log = log;
    s->dry_run = dry_run;
    s->map = zhashx_new ();
    zhashx_set_destructor (s->map, free_string);
    s->plan_days = calloc (cfg->device_count ? cfg->device_count : 1, sizeof *s->plan_days);
    if (!s->plan_days || !s->map) {
        snprintf (error, error_size, "out of memory");
        cs_state_destroy (&s);
        return NULL;
    }
    s->db = cs_db_open (path, error, error_size);
    int ok = s->db != NULL;         /* cs_db_open wrote the reason */
    if (ok && (cs_db_migrate (s->db, SCHEMA, 7) != 0 || cs_db_exec (s->db, STAGING) != 0)) {
        snprintf (error, error_size, "%s", cs_db_errmsg (s->db));
        ok = 0;
    }
    if (ok && cfg->sync.identity_map && load_map (s, cfg->sync.identity_map, error, error_size) != 0)
        ok = 0;
    if (!ok) {
        cs_state_destroy (&s);
        return NULL;
    }
    s->acked = meta_int (s, "acked");
    return s;                   /* a cycle cut short by a restart is over: staging went with it */
}

void
cs_state_destroy (cs_state_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_state_t *s = *self_p;
    cs_db_destroy (&s->db);
    zhashx_destroy (&s->map);
    free (s->plan_days);
    free (s);
    *self_p = NULL;
}

const char *
cs_state_errmsg (cs_state_t *self)
{
    return cs_db_errmsg (self->db);
}

int64_t
cs_state_acked (cs_state_t *self)
{
    return self->acked;
}

int64_t
cs_state_last_seq (cs_state_t *self)
{
    sqlite3_stmt *st = cs_db_stmt (self->db, "SELECT coalesce (max (seq), 0) FROM outbox");
    int64_t v = self->acked;
    if (st && sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int64 (st, 0) > v)
        v = sqlite3_column_int64 (st, 0);
    if (st)
        sqlite3_reset (st);
    return v;
}

/* --- the planner ------------------------------------------------------------- */

static int64_t
count_rows (cs_state_t *s, const char *sql, const char *arg)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, sql);
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



/* A person on a device, as the planner needs it: one allocation, the tag
 * stored after the employeeNo (a device may hold 100,000 of them). */
typedef struct {
    int enable;
    char begin [CS_TIME_LEN];
    char end [CS_TIME_LEN];
    const char *tag;            /* "" if none; points into no's storage */
    char no [];
} person_t;

typedef struct {
    const cs_device_config_t *dev;
    int scanned;                /* a complete scan has been seen: planning is safe */
    zhashx_t *by_no;            /* employeeNo -> person_t */
    zhashx_t *by_tag;           /* normalised tag -> person_t */
    zhashx_t *identity;         /* email -> employeeNo */
    zhashx_t *open;             /* employeeNo -> "begin|end" of the pending command */
    zhashx_t *failed;           /* email -> "begin|end" that failed: not retried until replayed */
    cs_day_t today;
    char now_local [CS_TIME_LEN];
} dev_view_t;

typedef struct {
    char device [CS_DEVICE_NAME_MAX + 1];
    char no [33];
    char email [CS_EMAIL_MAX + 1];
    char name [520];
    char op [8];
    char begin [CS_TIME_LEN];
    char end [CS_TIME_LEN];
    char pb [CS_TIME_LEN];      /* what the device has now */
    char pe [CS_TIME_LEN];
    int revoke;
} plan_t;

static void
free_item (void **item)
{
    free (*item);
    *item = NULL;
}

/* Fills hash with key -> value (copied) from a two-column query on device. */
static int
load_pairs (cs_state_t *s, const char *sql, const char *device, zhashx_t *hash)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, sql);
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, device, -1, SQLITE_STATIC);
    while (sqlite3_step (st) == SQLITE_ROW)
        zhashx_update (hash, (const char *) sqlite3_column_text (st, 0),
                       strdup ((const char *) sqlite3_column_text (st, 1)));
    sqlite3_reset (st);
    return 0;
}

static int
load_view (cs_state_t *s, dev_view_t *v, const cs_device_config_t *dev)
{
    memset (v, 0, sizeof *v);
    v->dev = dev;
    /* the keys are the persons' own strings: not copied */
    v->by_no = zhashx_new ();
    zhashx_set_destructor (v->by_no, free_item);
    zhashx_set_key_duplicator (v->by_no, NULL);
    zhashx_set_key_destructor (v->by_no, NULL);
    v->by_tag = zhashx_new ();
    zhashx_set_key_duplicator (v->by_tag, NULL);
    zhashx_set_key_destructor (v->by_tag, NULL);
    v->identity = zhashx_new ();
    zhashx_set_destructor (v->identity, free_item);
    v->open = zhashx_new ();
    zhashx_set_destructor (v->open, free_item);
    v->failed = zhashx_new ();
    zhashx_set_destructor (v->failed, free_item);
    v->scanned = count_rows (s, "SELECT count (*) FROM scanned WHERE device = ?1", dev->name) > 0;
    time_t now = (time_t) (s->now_ms / 1000);
    if (cs_day_local (now, dev->timezone, &v->today) != 0
        || cs_time_local (now, dev->timezone, v->now_local) != 0)
        return -1;
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT employee_no, tag, enable, begin_time, end_time "
                                          "FROM person WHERE device = ?1");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, dev->name, -1, SQLITE_STATIC);
    while (sqlite3_step (st) == SQLITE_ROW) {
        const char *no = (const char *) sqlite3_column_text (st, 0);
        const char *tag = (const char *) sqlite3_column_text (st, 1);
        size_t no_len = strlen (no), tag_len = tag ? strlen (tag) : 0;
        person_t *p = malloc (sizeof *p + no_len + tag_len + 2);
        if (!p)
            break;
        memcpy (p->no, no, no_len + 1);
        char *t = p->no + no_len + 1;
        memcpy (t, tag ? tag : "", tag_len + 1);
        p->tag = t;
        p->enable = sqlite3_column_int (st, 2);
        const char *b = (const char *) sqlite3_column_text (st, 3);
        const char *e = (const char *) sqlite3_column_text (st, 4);
        snprintf (p->begin, sizeof p->begin, "%s", b ? b : "");
        snprintf (p->end, sizeof p->end, "%s", e ? e : "");
        if (zhashx_lookup (v->by_no, p->no)) {      /* cannot happen: (device, employee_no) is the key */
            free (p);
            continue;
        }
        zhashx_insert (v->by_no, p->no, p);
        if (p->tag [0] && !zhashx_lookup (v->by_tag, p->tag))
            zhashx_insert (v->by_tag, p->tag, p);
    }
    sqlite3_reset (st);
    if (load_pairs (s, "SELECT email, employee_no FROM identity WHERE device = ?1",
                    dev->name, v->identity) != 0
        || load_pairs (s, "SELECT employee_no, begin_time || '|' || end_time FROM command "
                          "WHERE device = ?1 AND state = 'pending'", dev->name, v->open) != 0
        || load_pairs (s, "SELECT f.email, c.begin_time || '|' || c.end_time FROM failed f "
                          "JOIN command c ON c.id = f.command_id WHERE f.device = ?1",
                       dev->name, v->failed) != 0)
        return -1;
    return 0;
}

static void
free_view (dev_view_t *v)
{
    zhashx_destroy (&v->failed);
    zhashx_destroy (&v->by_tag);
    zhashx_destroy (&v->by_no);
    zhashx_destroy (&v->identity);
    zhashx_destroy (&v->open);
}

/* Parses "role:start:end;..." into periods. */
static size_t
parse_roles (const char *text, cs_period_t *out, size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (p && *p && n < max) {
        const char *colon = strchr (p, ':');
        if (!colon)
            break;
        char start [11], end [11];
        if (strlen (colon + 1) >= 21 && colon [11] == ':') {
            memcpy (start, colon + 1, 10);
            start [10] = 0;
            memcpy (end, colon + 12, 10);
            end [10] = 0;
            if (cs_day_parse (start, &out [n].start) == 0 && cs_day_parse (end, &out [n].end) == 0)
                n++;
        }
        p = strchr (p, ';');
        if (p)
            p++;
    }
    return n;
}

/* Who on this device is the member with this e-mail? */
static person_t *
match (cs_state_t *s, dev_view_t *v, const char *email, const char *omids, const char **how)
{
    char *known = zhashx_lookup (v->identity, email);
    if (known) {
        person_t *p = zhashx_lookup (v->by_no, known);
        if (p) {
            *how = NULL;        /* already remembered */
            return p;
        }
    }
    for (size_t i = 0; i < s->cfg->sync.match_count; i++) {
        person_t *p = NULL;
        switch (s->cfg->sync.match [i]) {
            case CS_MATCH_TAG:
                p = zhashx_lookup (v->by_tag, email);
                *how = "tag";
                break;
            case CS_MATCH_MAP: {
                const char *no = zhashx_lookup (s->map, email);
                p = no ? zhashx_lookup (v->by_no, no) : NULL;
                *how = "map";
                break;
            }
            case CS_MATCH_MEMBER_ID:
                /* any of the member's OrganisationMemberIds */
                for (const char *o = omids; o && *o && !p; ) {
                    char no [33];
                    size_t len = strcspn (o, ",");
                    snprintf (no, sizeof no, "%.*s", (int) (len < 32 ? len : 32), o);
                    p = zhashx_lookup (v->by_no, no);
                    o = o [len] ? o + len + 1 : o + len;
                }
                *how = "member_id";
                break;
        }
        if (p)
            return p;
    }
    return NULL;
}

static int
remember (cs_state_t *s, const char *email, const char *device, const char *no, const char *how)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO identity VALUES (?1, ?2, ?3, ?4) "
                                          "ON CONFLICT (email, device) DO UPDATE SET "
                                          "employee_no = excluded.employee_no, how = excluded.how");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, email, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (st, 2, device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, no, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (st, 4, how, -1, SQLITE_STATIC);
    return cs_db_step_done (s->db, st);
}

/* The revocation target: ended yesterday, begun no later than that. */
static void
revocation (const dev_view_t *v, const person_t *p, char begin [CS_TIME_LEN], char end [CS_TIME_LEN])
{
    char day [CS_DAY_LEN];
    cs_day_format (v->today - 1, day);
    snprintf (end, CS_TIME_LEN, "%sT23:59:59", day);
    if (p->begin [0] && strcmp (p->begin, end) <= 0 && strcmp (p->begin, CS_TIME_MIN) >= 0)
        snprintf (begin, CS_TIME_LEN, "%s", p->begin);
    else
        snprintf (begin, CS_TIME_LEN, "%sT00:00:00", day);
}

typedef struct {
    plan_t *items;
    size_t count;
    size_t cap;
} plans_t;

static plan_t *
plan_add (plans_t *pl)
{
    if (pl->count == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 64;
        plan_t *grown = realloc (pl->items, cap * sizeof *grown);
        if (!grown)
            return NULL;
        pl->items = grown;
        pl->cap = cap;
    }
    plan_t *p = &pl->items [pl->count++];
    memset (p, 0, sizeof *p);
    return p;
}

/* Decides what one member needs on one device. */
static void
plan_member (cs_state_t *s, dev_view_t *v, plans_t *pl, const char *email, const char *roles,
             const char *omids, const char *name)
{
    if (!v->scanned)
        return;                 /* who is on it is not known yet: nothing to decide */
    const char *how = NULL;
    person_t *p = match (s, v, email, omids, &how);
    cs_period_t periods [CS_MSG_MAX_ROLES * 4];
    size_t n = roles ? parse_roles (roles, periods, sizeof periods / sizeof *periods) : 0;
    cs_span_t span;
    cs_date_span (periods, n, v->today, &span);
    char begin [CS_TIME_LEN], end [CS_TIME_LEN];
    int valid = span.valid && cs_date_span_times (&span, begin, end) == 0;
    char key [400];
    snprintf (key, sizeof key, "%s|%s", email, v->dev->name);
    if (!p) {
        if (!valid)
            return;             /* nobody to admit, nobody to stop */
        char target [64];
        snprintf (target, sizeof target, "%s|%s", begin, end);
        const char *failed = zhashx_lookup (v->failed, email);
        if (s->cfg->sync.create_missing && omids && *omids && !(failed && !strcmp (failed, target))) {
            plan_t *c = plan_add (pl);
            if (!c)
                return;
            snprintf (c->device, sizeof c->device, "%s", v->dev->name);
            snprintf (c->no, sizeof c->no, "%.*s", (int) strcspn (omids, ","), omids);
            snprintf (c->email, sizeof c->email, "%s", email);
            snprintf (c->name, sizeof c->name, "%s", name ? name : "");
            snprintf (c->op, sizeof c->op, "create");
            snprintf (c->begin, sizeof c->begin, "%s", begin);
            snprintf (c->end, sizeof c->end, "%s", end);
        }
        else if (!zhashx_lookup (s->unmatched, key) && notice (s, "unmatched", key)) {
            zhashx_insert (s->unmatched, key, (void *) 1);
            cs_msg_t *ev = event ("unmatched");
            cs_msg_set_str (ev, CS_F_EMAIL, email);
            cs_msg_set_str (ev, CS_F_DEV, v->dev->name);
            cs_msg_set_str (ev, CS_F_MSG, "no person on the device matches this member");
            emit (s, ev);
        }
        return;
    }
    if (zhashx_lookup (s->unmatched, key)) {
        forget_notice (s, "unmatched", key);
        zhashx_delete (s->unmatched, key);
    }
    if (how) {
        remember (s, email, v->dev->name, p->no, how);
        zhashx_update (v->identity, email, strdup (p->no));
    }
    int revoke = 0;
    if (!valid) {
        if (!s->cfg->sync.revoke)
            return;
        if (p->enable && p->end [0] && strcmp (p->end, v->now_local) < 0)
            return;             /* already ended */
        revocation (v, p, begin, end);
        revoke = 1;
    }
    else if (p->enable && !strcmp (p->begin, begin) && !strcmp (p->end, end))
        return;                 /* in sync */
    char both [64];
    snprintf (both, sizeof both, "%s|%s", begin, end);
    const char *open = zhashx_lookup (v->open, p->no);
    if (open && !strcmp (open, both))
        return;                 /* already on its way */
    const char *failed = zhashx_lookup (v->failed, email);
    if (failed && !strcmp (failed, both))
        return;                 /* refused for good: in the failed queue until replayed */
    plan_t *c = plan_add (pl);
    if (!c)
        return;
    snprintf (c->device, sizeof c->device, "%s", v->dev->name);
    snprintf (c->no, sizeof c->no, "%s", p->no);
    snprintf (c->email, sizeof c->email, "%s", email);
    snprintf (c->op, sizeof c->op, "set");
    snprintf (c->begin, sizeof c->begin, "%s", begin);
    snprintf (c->end, sizeof c->end, "%s", end);
    snprintf (c->pb, sizeof c->pb, "%s", p->begin);
    snprintf (c->pe, sizeof c->pe, "%s", p->end);
    c->revoke = revoke;
}

static int
record_command (cs_state_t *s, const plan_t *c)
{
    /* a newer target replaces an open command for the same person */
    sqlite3_stmt *st = cs_db_stmt (s->db, "UPDATE command SET state = 'superseded' "
                                          "WHERE device = ?1 AND employee_no = ?2 AND state = 'pending'");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, c->device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, c->no, -1, SQLITE_STATIC);
    if (cs_db_step_done (s->db, st) != 0)
        return -1;
    st = cs_db_stmt (s->db, "INSERT INTO command (device, employee_no, email, op, name, begin_time, "
                            "end_time, state, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                            "'pending', ?8)");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, c->device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, c->no, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, c->email, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 4, c->op, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 5, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 6, c->begin, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 7, c->end, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 8, s->now_ms);
    return cs_db_step_done (s->db, st);
}

/* Lists the revocations a tripped guard holds back, for `auditor approve`. */
static int
hold (cs_state_t *s, const plans_t *pl)
{
    if (cs_db_exec (s->db, "DELETE FROM held") != 0)
        return -1;
    for (size_t i = 0; i < pl->count; i++) {
        const plan_t *c = &pl->items [i];
        if (!c->revoke)
            continue;
        sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT OR REPLACE INTO held VALUES (?1, ?2, ?3, ?4, ?5)");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, c->device, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, c->no, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 3, c->email, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 4, c->pb, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 5, c->pe, -1, SQLITE_STATIC);
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
    }
    return 0;
}

/* Compares desired and actual for every member and device, and records a
 * command for each difference (or, with --dry-run, an event). */
static int
plan (cs_state_t *s)
{
    size_t ndev = s->cfg->device_count;
    dev_view_t *views = calloc (ndev ? ndev : 1, sizeof *views);
    if (!views)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < ndev && rc == 0; i++) {
        rc = load_view (s, &views [i], &s->cfg->devices [i]);
        s->plan_days [i] = views [i].today;
    }
    s->planned = rc == 0;
    plans_t pl = { 0 };
    size_t members = 0;
    /* the notices, read once: most members need none, and a query each is slow */
    s->unmatched = zhashx_new ();
    sqlite3_stmt *nt = rc ? NULL : cs_db_stmt (s->db, "SELECT key FROM notice WHERE kind = 'unmatched'");
    while (nt && sqlite3_step (nt) == SQLITE_ROW)
        zhashx_insert (s->unmatched, (const char *) sqlite3_column_text (nt, 0), (void *) 1);
    if (nt)
        sqlite3_reset (nt);
    /* one plan per e-mail: most have one record, read in table order; the few
     * shared by several records are merged first (the union of their periods) */
    zhashx_t *shared = zhashx_new ();
    sqlite3_stmt *st = rc ? NULL : cs_db_stmt (s->db,
        "SELECT email, group_concat (CASE WHEN inactive THEN NULL ELSE roles END, ';'),"
        " group_concat (omid, ','), max (first || ' ' || last) FROM"
        " (SELECT * FROM record WHERE email IN (SELECT email FROM record WHERE email IS NOT NULL"
        " GROUP BY email HAVING count (*) > 1) ORDER BY email, omid) GROUP BY email");
    if (!st || !shared)
        rc = -1;
    while (rc == 0 && sqlite3_step (st) == SQLITE_ROW) {
        members++;
        const char *email = (const char *) sqlite3_column_text (st, 0);
        zhashx_insert (shared, email, (void *) 1);
        for (size_t i = 0; i < ndev; i++)
            plan_member (s, &views [i], &pl, email, (const char *) sqlite3_column_text (st, 1),
                         (const char *) sqlite3_column_text (st, 2),
                         (const char *) sqlite3_column_text (st, 3));
    }
    if (st)
        sqlite3_reset (st);
    st = rc ? NULL : cs_db_stmt (s->db, "SELECT email, CASE WHEN inactive THEN NULL ELSE roles END,"
                                        " omid, first || ' ' || last FROM record WHERE email IS NOT NULL");
    if (!st)
        rc = -1;
    while (rc == 0 && sqlite3_step (st) == SQLITE_ROW) {
        const char *email = (const char *) sqlite3_column_text (st, 0);
        if (zhashx_lookup (shared, email))
            continue;
        members++;
        for (size_t i = 0; i < ndev; i++)
            plan_member (s, &views [i], &pl, email, (const char *) sqlite3_column_text (st, 1),
                         (const char *) sqlite3_column_text (st, 2),
                         (const char *) sqlite3_column_text (st, 3));
    }
    if (st)
        sqlite3_reset (st);
    zhashx_destroy (&shared);
    /* matched persons whose member has left the export */
    st = rc ? NULL : cs_db_stmt (s->db, "SELECT i.email, i.device FROM identity i WHERE NOT EXISTS"
                                        " (SELECT 1 FROM record r WHERE r.email = i.email)");
    while (st && sqlite3_step (st) == SQLITE_ROW) {
        const char *email = (const char *) sqlite3_column_text (st, 0);
        const char *dev = (const char *) sqlite3_column_text (st, 1);
        for (size_t i = 0; i < ndev; i++)
            if (!strcmp (views [i].dev->name, dev))
                plan_member (s, &views [i], &pl, email, NULL, NULL, NULL);
    }
    if (st)
        sqlite3_reset (st);

    /* the guard: never a mass revocation from one bad snapshot */
    size_t revocations = 0;
    for (size_t i = 0; i < pl.count; i++)
        revocations += pl.items [i].revoke;
    size_t limit = (size_t) s->cfg->sync.guard_max_revocations;
    size_t by_percent = members * (size_t) s->cfg->sync.guard_max_percent / 100;
    if (by_percent > limit)
        limit = by_percent;
    /* an operator's approval covers up to the count they saw, until the
     * revocations are back within the guard */
    int64_t approved = meta_int (s, "guard_approved");
    int tripped = revocations > limit && approved < (int64_t) revocations;
    if (revocations <= limit && approved)
        set_meta (s, "guard_approved", 0);
    if (tripped) {
        char key [32];
        snprintf (key, sizeof key, "%zu", revocations);
        if (meta_int (s, "guard") == 0) {
            cs_msg_t *ev = event ("guard");
            cs_msg_set_int (ev, CS_F_COUNT, (int64_t) revocations);
            char msg [256];
            snprintf (msg, sizeof msg, "%zu revocations exceed the guard (%zu); none sent until "
                      "an operator approves or a later export is back within it", revocations, limit);
            cs_msg_set_str (ev, CS_F_MSG, msg);
            cs_msg_set_str (ev, CS_F_STATE, "tripped");
            emit (s, ev);
            cs_log (s->log, CS_LOG_WARN, "guard_tripped", "revocations", key, NULL);
        }
        set_meta (s, "guard", (int64_t) revocations);
        rc = hold (s, &pl);
    }
    else if (meta_int (s, "guard") != 0) {
        set_meta (s, "guard", 0);
        rc = cs_db_exec (s->db, "DELETE FROM held");
        cs_msg_t *ev = event ("guard");
        cs_msg_set_str (ev, CS_F_STATE, "cleared");
        cs_msg_set_int (ev, CS_F_COUNT, (int64_t) revocations);
        emit (s, ev);
    }
    for (size_t i = 0; i < pl.count && rc == 0; i++) {
        plan_t *c = &pl.items [i];
        if (c->revoke && tripped)
            continue;
        if (s->dry_run) {
            char key [600];
            snprintf (key, sizeof key, "%s|%s|%s|%s", c->device, c->no, c->begin, c->end);
            if (notice (s, "dry_run", key)) {
                cs_msg_t *ev = event ("planned");
                set_if (ev, CS_F_EMAIL, c->email);
                cs_msg_set_str (ev, CS_F_DEV, c->device);
                cs_msg_set_str (ev, CS_F_EMPNO, c->no);
                cs_msg_set_str (ev, CS_F_BEGIN, c->begin);
                cs_msg_set_str (ev, CS_F_END, c->end);
                set_if (ev, CS_F_PREV_END, c->pe);
                cs_msg_set_str (ev, CS_F_MSG, c->op);
                emit (s, ev);
            }
            continue;
        }
        rc = record_command (s, c);
    }
    free (pl.items);
    zhashx_destroy (&s->unmatched);
    for (size_t i = 0; i < ndev; i++)
        free_view (&views [i]);
    free (views);
    return rc;
}

/* --- incoming messages -------------------------------------------------------- */

static void
roles_text (const cs_msg_t *m, char *out, size_t size)
{
    size_t len = 0;
    out [0] = 0;
    for (size_t i = 0; i < cs_msg_role_count (m) && len + 40 < size; i++) {
        const cs_msg_role_t *r = cs_msg_role (m, i);
        len += (size_t) snprintf (out + len, size - len, "%s%lld:%s:%s", i ? ";" : "",
                                  (long long) r->role, r->start, r->end);
    }
}

static int
on_member (cs_state_t *s, const cs_msg_t *m)
{
    if ((uint64_t) cs_msg_int (m, CS_F_CYCLE) != s->cycle)
        return 0;               /* not the cycle we are collecting */
    const char *raw = cs_msg_str (m, CS_F_EMAIL);
    char email [CS_EMAIL_MAX + 1];
    cs_email_error_t e = raw ? cs_email_normalize (raw, email) : CS_EMAIL_EMPTY;
    char roles [CS_MSG_MAX_ROLES * 32];
    roles_text (m, roles, sizeof roles);
    sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO staging VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                                          "ON CONFLICT (org, omid) DO UPDATE SET email = excluded.email, "
                                          "raw_email = excluded.raw_email, first = excluded.first, "
                                          "last = excluded.last, inactive = excluded.inactive, "
                                          "roles = excluded.roles");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, cs_msg_int (m, CS_F_ORG));
    sqlite3_bind_int64 (st, 2, cs_msg_int (m, CS_F_MID));
    if (e == CS_EMAIL_OK)
        sqlite3_bind_text (st, 3, email, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (st, 3);
    if (raw)
        sqlite3_bind_text (st, 4, raw, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null (st, 4);
    sqlite3_bind_text (st, 5, cs_msg_str (m, CS_F_FIRST) ? cs_msg_str (m, CS_F_FIRST) : "", -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 6, cs_msg_str (m, CS_F_LAST) ? cs_msg_str (m, CS_F_LAST) : "", -1, SQLITE_STATIC);
    sqlite3_bind_int (st, 7, cs_msg_bool (m, CS_F_INACTIVE));
    sqlite3_bind_text (st, 8, roles, -1, SQLITE_TRANSIENT);
    return cs_db_step_done (s->db, st);
}

/* Members without a usable e-mail are reported, once each. */
static void
report_unusable (cs_state_t *s)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT org, omid, raw_email, first, last FROM staging "
                                          "WHERE email IS NULL");
    while (st && sqlite3_step (st) == SQLITE_ROW) {
        char key [64];
        snprintf (key, sizeof key, "%lld:%lld", sqlite3_column_int64 (st, 0),
                  sqlite3_column_int64 (st, 1));
        const char *raw = (const char *) sqlite3_column_text (st, 2);
        if (!notice (s, raw ? "bad_email" : "no_email", key))
            continue;
        cs_msg_t *ev = event (raw ? "bad_email" : "no_email");
        cs_msg_set_int (ev, CS_F_MID, sqlite3_column_int64 (st, 1));
        char name [600];
        snprintf (name, sizeof name, "%s %s", sqlite3_column_text (st, 3), sqlite3_column_text (st, 4));
        cs_msg_set_str (ev, CS_F_NAME, name);
        if (raw) {
            char norm [CS_EMAIL_MAX + 1];
            cs_msg_set_str (ev, CS_F_MSG, cs_email_strerror (cs_email_normalize (raw, norm)));
            set_if (ev, CS_F_EMAIL, raw);
        }
        else
            cs_msg_set_str (ev, CS_F_MSG, "the member has no e-mail address in Cardskipper");
        emit (s, ev);
    }
    if (st)
        sqlite3_reset (st);
}

/* E-mails shared by several members: merged (union of their periods), and
 * said once. */
static void
report_duplicates (cs_state_t *s)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT email, count (*) FROM record WHERE email IS NOT NULL "
                            "GROUP BY email HAVING count (DISTINCT omid) > 1");
    while (st && sqlite3_step (st) == SQLITE_ROW) {
        const char *email = (const char *) sqlite3_column_text (st, 0);
        if (!notice (s, "duplicate", email))
            continue;
        cs_msg_t *ev = event ("duplicate");
        cs_msg_set_str (ev, CS_F_EMAIL, email);
        cs_msg_set_int (ev, CS_F_COUNT, sqlite3_column_int64 (st, 1));
        cs_msg_set_str (ev, CS_F_MSG, "several members share this e-mail; the doors admit "
                                      "for any of their memberships (the union of their periods)");
        emit (s, ev);
    }
    if (st)
        sqlite3_reset (st);
}

/* Whether a device's local day has changed since the last plan (or none ran). */
static int
days_moved (cs_state_t *s)
{
    if (!s->planned)
        return 1;
    time_t now = (time_t) (s->now_ms / 1000);
    for (size_t i = 0; i < s->cfg->device_count; i++) {
        cs_day_t today;
        if (cs_day_local (now, s->cfg->devices [i].timezone, &today) != 0 || today != s->plan_days [i])
            return 1;
    }
    return 0;
}

static int
on_cycle_end (cs_state_t *s, const cs_msg_t *m)
{
    uint64_t cycle = (uint64_t) cs_msg_int (m, CS_F_CYCLE);
    if (cycle != s->cycle)
        return 0;
    s->cycle = 0;
    int full = cs_msg_bool (m, CS_F_FULL);
    int64_t sent = cs_msg_int (m, CS_F_COUNT);
    int64_t staged = count_rows (s, "SELECT count (*) FROM staging", NULL);
    int64_t known = count_rows (s, "SELECT count (*) FROM record", NULL);
    const char *why = NULL;
    char reason [1200];
    if (!cs_msg_bool (m, CS_F_OK))
        why = cs_msg_str (m, CS_F_ERROR) ? cs_msg_str (m, CS_F_ERROR) : "the export failed";
    else if (staged != sent) {
        snprintf (reason, sizeof reason, "%lld members sent but %lld arrived", (long long) sent,
                  (long long) staged);
        why = reason;
    }
    else if (full && sent == 0 && known > 0)
        why = "an empty full export while members are known: ignored";
    cs_msg_t *ev = event ("cycle");
    cs_msg_set_int (ev, CS_F_COUNT, sent);
    cs_msg_set_str (ev, CS_F_STATE, why ? "ignored" : full ? "full" : "incremental");
    if (why)
        cs_msg_set_str (ev, CS_F_MSG, why);
    emit (s, ev);
    if (why) {
        cs_log (s->log, CS_LOG_WARN, "cycle_ignored", "reason", why, NULL);
        return cs_db_exec (s->db, "DELETE FROM staging");
    }
    report_unusable (s);
    /* only the rows that changed are written: a quiet cycle writes nothing */
    int before = sqlite3_total_changes (cs_db_handle (s->db));
    if (full && cs_db_exec (s->db, "DELETE FROM record WHERE NOT EXISTS (SELECT 1 FROM staging t "
                                   "WHERE t.org = record.org AND t.omid = record.omid)") != 0)
        return -1;
    if (cs_db_exec (s->db, "INSERT INTO record SELECT * FROM staging WHERE true ON CONFLICT (org, omid) "
                           "DO UPDATE SET email = excluded.email, raw_email = excluded.raw_email, "
                           "first = excluded.first, last = excluded.last, inactive = excluded.inactive, "
                           "roles = excluded.roles WHERE (email, raw_email, first, last, inactive, roles) "
                           "IS NOT (excluded.email, excluded.raw_email, excluded.first, excluded.last, "
                           "excluded.inactive, excluded.roles)") != 0)
        return -1;
    int changed = sqlite3_total_changes (cs_db_handle (s->db)) != before;
    if (cs_db_exec (s->db, "DELETE FROM staging") != 0)
        return -1;
    /* nothing new and the same day everywhere: the last plan still holds
     * (scans, results, replays and the timer plan on their own) */
    if (!changed && !days_moved (s))
        return 0;
    if (full)
        cs_db_exec (s->db, "DELETE FROM notice WHERE kind IN ('duplicate') AND key NOT IN "
                           "(SELECT email FROM record WHERE email IS NOT NULL GROUP BY email "
                           "HAVING count (DISTINCT omid) > 1)");
    report_duplicates (s);
    return plan (s);
}

static int
on_scan_user (cs_state_t *s, const cs_msg_t *m)
{
    const char *tag = cs_msg_str (m, CS_F_TAG);
    if (!strcmp (s->cfg->sync.tag_field, "name"))
        tag = cs_msg_str (m, CS_F_NAME);
    char norm [CS_EMAIL_MAX + 1];
    int has_tag = tag && cs_email_normalize (tag, norm) == CS_EMAIL_OK;
    sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO person_staging VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                          "ON CONFLICT DO NOTHING");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, cs_msg_str (m, CS_F_DEV), -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, cs_msg_str (m, CS_F_EMPNO), -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, cs_msg_str (m, CS_F_NAME) ? cs_msg_str (m, CS_F_NAME) : "", -1, SQLITE_STATIC);
    if (has_tag)
        sqlite3_bind_text (st, 4, norm, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null (st, 4);
    sqlite3_bind_int (st, 5, cs_msg_bool (m, CS_F_ENABLE));
    sqlite3_bind_text (st, 6, cs_msg_str (m, CS_F_BEGIN) ? cs_msg_str (m, CS_F_BEGIN) : "", -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 7, cs_msg_str (m, CS_F_END) ? cs_msg_str (m, CS_F_END) : "", -1, SQLITE_STATIC);
    return cs_db_step_done (s->db, st);
}

static int
on_scan_end (cs_state_t *s, const cs_msg_t *m)
{
    const char *dev = cs_msg_str (m, CS_F_DEV);
    if (!cs_config_device (s->cfg, dev))
        return 0;
    int64_t staged = count_rows (s, "SELECT count (*) FROM person_staging WHERE device = ?1", dev);
    cs_msg_t *ev = event ("scan");
    cs_msg_set_str (ev, CS_F_DEV, dev);
    cs_msg_set_int (ev, CS_F_COUNT, staged);
    int ok = cs_msg_bool (m, CS_F_OK) && staged == cs_msg_int (m, CS_F_COUNT);
    cs_msg_set_str (ev, CS_F_STATE, ok ? "ok" : "ignored");
    if (!ok)
        cs_msg_set_str (ev, CS_F_MSG, cs_msg_str (m, CS_F_ERROR) ? cs_msg_str (m, CS_F_ERROR)
                                                              : "the scan lost users in transit");
    emit (s, ev);
    sqlite3_stmt *st;
    if (ok) {
        const char *sql [] = {
            "INSERT INTO scanned VALUES (?1, 0, ?2) ON CONFLICT (device) DO UPDATE SET capacity = excluded.capacity",
            "DELETE FROM person WHERE device = ?1",
            "INSERT INTO person SELECT * FROM person_staging WHERE device = ?1",
            /* a remembered person who is gone from the device is matched afresh */
            "DELETE FROM identity WHERE device = ?1 AND employee_no NOT IN "
            "(SELECT employee_no FROM person WHERE device = ?1)",
        };
        for (int i = 0; i < 4; i++) {
            st = cs_db_stmt (s->db, sql [i]);
            if (!st)
                return -1;
            sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
            if (i == 0 && cs_msg_has (m, CS_F_CAP))
                sqlite3_bind_int64 (st, 2, cs_msg_int (m, CS_F_CAP));
            if (cs_db_step_done (s->db, st) != 0)
                return -1;
        }
    }
    st = cs_db_stmt (s->db, "DELETE FROM person_staging WHERE device = ?1");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
    if (cs_db_step_done (s->db, st) != 0)
        return -1;
    return ok ? plan (s) : 0;
}

static int
on_result (cs_state_t *s, const cs_msg_t *m)
{
    int64_t id = cs_msg_int (m, CS_F_ID);
    const char *dev = cs_msg_str (m, CS_F_DEV);
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT employee_no, email, state, begin_time, end_time, op "
                                          "FROM command WHERE id = ?1");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, id);
    if (sqlite3_step (st) != SQLITE_ROW) {
        sqlite3_reset (st);
        return 0;               /* not ours (a dry run, or a wiped state) */
    }
    char no [33], email [CS_EMAIL_MAX + 1], state [16], op [8];
    snprintf (no, sizeof no, "%s", sqlite3_column_text (st, 0));
    snprintf (email, sizeof email, "%s", sqlite3_column_text (st, 1) ? (const char *) sqlite3_column_text (st, 1) : "");
    snprintf (state, sizeof state, "%s", sqlite3_column_text (st, 2));
    snprintf (op, sizeof op, "%s", sqlite3_column_text (st, 5));
    sqlite3_reset (st);
    if (strcmp (state, "pending") && strcmp (state, "superseded"))
        return 0;               /* a duplicate result: already applied */
    int ok = cs_msg_bool (m, CS_F_OK);
    /* what the device holds before: for the event */
    char pb [CS_TIME_LEN] = "", pe [CS_TIME_LEN] = "";
    st = cs_db_stmt (s->db, "SELECT begin_time, end_time FROM person WHERE device = ?1 AND employee_no = ?2");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
    if (sqlite3_step (st) == SQLITE_ROW) {
        snprintf (pb, sizeof pb, "%s", sqlite3_column_text (st, 0));
        snprintf (pe, sizeof pe, "%s", sqlite3_column_text (st, 1));
    }
    sqlite3_reset (st);
    st = cs_db_stmt (s->db, "UPDATE command SET state = ?2 WHERE id = ?1");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, id);
    sqlite3_bind_text (st, 2, ok ? "done" : "failed", -1, SQLITE_STATIC);
    if (cs_db_step_done (s->db, st) != 0)
        return -1;
    cs_msg_t *ev = event (ok ? "applied" : "failed");
    set_if (ev, CS_F_EMAIL, email);
    cs_msg_set_str (ev, CS_F_DEV, dev);
    cs_msg_set_str (ev, CS_F_EMPNO, no);
    cs_msg_set_int (ev, CS_F_ID, id);
    set_if (ev, CS_F_CLASS, cs_msg_str (m, CS_F_CLASS));
    if (cs_msg_has (m, CS_F_HTTP))
        cs_msg_set_int (ev, CS_F_HTTP, cs_msg_int (m, CS_F_HTTP));
    if (cs_msg_has (m, CS_F_CODE))
        cs_msg_set_int (ev, CS_F_CODE, cs_msg_int (m, CS_F_CODE));
    set_if (ev, CS_F_SUB, cs_msg_str (m, CS_F_SUB));
    set_if (ev, CS_F_MSG, cs_msg_str (m, CS_F_MSG));
    cs_msg_set_int (ev, CS_F_TRIES, cs_msg_int (m, CS_F_TRIES));
    if (ok) {
        const char *b = cs_msg_str (m, CS_F_BEGIN), *e = cs_msg_str (m, CS_F_END);
        set_if (ev, CS_F_BEGIN, b);
        set_if (ev, CS_F_END, e);
        set_if (ev, CS_F_PREV_BEGIN, pb);
        set_if (ev, CS_F_PREV_END, pe);
        st = cs_db_stmt (s->db, "INSERT INTO person (device, employee_no, name, tag, enable, begin_time, end_time) "
                                "VALUES (?1, ?2, '', ?3, 1, ?4, ?5) ON CONFLICT (device, employee_no) DO UPDATE "
                                "SET enable = 1, begin_time = excluded.begin_time, end_time = excluded.end_time");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 3, email, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 4, b ? b : "", -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 5, e ? e : "", -1, SQLITE_STATIC);
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
        if (!strcmp (op, "create") && *email)
            remember (s, email, dev, no, "created");
        st = cs_db_stmt (s->db, "DELETE FROM failed WHERE email = ?1 AND device = ?2");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, email, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, dev, -1, SQLITE_STATIC);
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
    }
    else {
        const char *cls = cs_msg_str (m, CS_F_CLASS);
        if (cls && !strcmp (cls, "not_found")) {
            /* the person is gone from the device: forget them, match afresh */
            st = cs_db_stmt (s->db, "DELETE FROM person WHERE device = ?1 AND employee_no = ?2");
            if (st) {
                sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
                sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
                cs_db_step_done (s->db, st);
            }
            st = cs_db_stmt (s->db, "DELETE FROM identity WHERE device = ?1 AND employee_no = ?2");
            if (st) {
                sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
                sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
                cs_db_step_done (s->db, st);
            }
        }
        st = cs_db_stmt (s->db, "INSERT INTO failed VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                                "ON CONFLICT (email, device) DO UPDATE SET employee_no = excluded.employee_no, "
                                "command_id = excluded.command_id, class = excluded.class, msg = excluded.msg, "
                                "tries = excluded.tries");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, email, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, dev, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 3, no, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 4, id);
        sqlite3_bind_text (st, 5, cls ? cls : "", -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 6, cs_msg_str (m, CS_F_MSG) ? cs_msg_str (m, CS_F_MSG) : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 7, cs_msg_int (m, CS_F_TRIES));
        sqlite3_bind_int64 (st, 8, s->now_ms);
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
    }
    return emit (s, ev);
}

static int
on_health (cs_state_t *s, const cs_msg_t *m)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO health VALUES (?1, ?2, ?3, ?4, ?5) "
                                          "ON CONFLICT (device) DO UPDATE SET state = excluded.state, "
                                          "msg = excluded.msg, until_ms = excluded.until_ms, ts = excluded.ts");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, cs_msg_str (m, CS_F_DEV), -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, cs_msg_str (m, CS_F_STATE), -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, cs_msg_str (m, CS_F_MSG) ? cs_msg_str (m, CS_F_MSG) : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 4, cs_msg_int (m, CS_F_UNTIL));
    sqlite3_bind_int64 (st, 5, s->now_ms);
    if (cs_db_step_done (s->db, st) != 0)
        return -1;
    cs_msg_t *ev = event ("health");
    cs_msg_set_str (ev, CS_F_DEV, cs_msg_str (m, CS_F_DEV));
    cs_msg_set_str (ev, CS_F_STATE, cs_msg_str (m, CS_F_STATE));
    set_if (ev, CS_F_MSG, cs_msg_str (m, CS_F_MSG));
    return emit (s, ev);
}

static int
on_ack (cs_state_t *s, const cs_msg_t *m)
{
    int64_t seq = cs_msg_int (m, CS_F_SEQ);
    if (seq <= s->acked)
        return 0;
    sqlite3_stmt *st = cs_db_stmt (s->db, "DELETE FROM outbox WHERE seq <= ?1");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, seq);
    if (cs_db_step_done (s->db, st) != 0 || set_meta (s, "acked", seq) != 0)
        return -1;
    s->acked = seq;
    return 0;
}

/* Re-sends the current desired state of failed targets: their failed entries
 * go and the planner decides afresh (a target already in sync is superseded). */
static int
on_replay (cs_state_t *s, const cs_msg_t *m)
{
    const char *email = cs_msg_str (m, CS_F_EMAIL), *dev = cs_msg_str (m, CS_F_DEV);
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT email, device, employee_no, command_id FROM failed");
    if (!st)
        return -1;
    zlistx_t *gone = zlistx_new ();
    zlistx_set_destructor (gone, free_item);
    while (sqlite3_step (st) == SQLITE_ROW) {
        const char *e = (const char *) sqlite3_column_text (st, 0);
        const char *d = (const char *) sqlite3_column_text (st, 1);
        int64_t cmd = sqlite3_column_int64 (st, 3);
        int wanted = cs_msg_bool (m, CS_F_ALL) || (email && !strcmp (email, e))
                     || (dev && !strcmp (dev, d));
        for (size_t i = 0; i < cs_msg_id_count (m) && !wanted; i++)
            wanted = (int64_t) cs_msg_id (m, i) == cmd;
        if (wanted) {
            char *key = malloc (strlen (e) + strlen (d) + 2);
            if (key) {
                snprintf (key, strlen (e) + strlen (d) + 2, "%s|%s", e, d);
                zlistx_add_end (gone, key);
            }
        }
    }
    sqlite3_reset (st);
    size_t replayed = zlistx_size (gone);
    for (char *key = zlistx_first (gone); key; key = zlistx_next (gone)) {
        char *bar = strchr (key, '|');
        *bar = 0;
        st = cs_db_stmt (s->db, "DELETE FROM failed WHERE email = ?1 AND device = ?2");
        if (st) {
            sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 2, bar + 1, -1, SQLITE_STATIC);
            cs_db_step_done (s->db, st);
        }
    }
    /* the planner decides afresh from the current desired state */
    int rc = plan (s);
    for (char *key = zlistx_first (gone); key && rc == 0; key = zlistx_next (gone)) {
        const char *device = key + strlen (key) + 1;
        st = cs_db_stmt (s->db, "SELECT id FROM command WHERE email = ?1 AND device = ?2 "
                                "AND state = 'pending' ORDER BY id DESC LIMIT 1");
        int64_t id = 0;
        if (st) {
            sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 2, device, -1, SQLITE_STATIC);
            if (sqlite3_step (st) == SQLITE_ROW)
                id = sqlite3_column_int64 (st, 0);
            sqlite3_reset (st);
        }
        /* nothing to send: the desired state has moved on (or is already there) */
        cs_msg_t *ev = event (id ? "replayed" : "superseded");
        cs_msg_set_str (ev, CS_F_EMAIL, key);
        cs_msg_set_str (ev, CS_F_DEV, device);
        cs_msg_set_int (ev, CS_F_REQ, cs_msg_int (m, CS_F_REQ));
        if (id)
            cs_msg_set_int (ev, CS_F_ID, id);
        else
            cs_msg_set_str (ev, CS_F_MSG, "nothing to re-send: the device already has, or no "
                                          "longer needs, what failed");
        emit (s, ev);
    }
    zlistx_destroy (&gone);
    cs_msg_t *ev = event ("replay");
    cs_msg_set_int (ev, CS_F_REQ, cs_msg_int (m, CS_F_REQ));
    cs_msg_set_int (ev, CS_F_COUNT, (int64_t) replayed);
    emit (s, ev);
    return rc;
}

/* An operator approves the revocations the guard holds back: exactly the
 * count `auditor approve` showed, or nothing (the list has changed since). */
static int
on_approve (cs_state_t *s, const cs_msg_t *m)
{
    int64_t held = meta_int (s, "guard");
    int64_t seen = cs_msg_int (m, CS_F_COUNT);
    cs_msg_t *ev = event ("guard");
    cs_msg_set_int (ev, CS_F_REQ, cs_msg_int (m, CS_F_REQ));
    cs_msg_set_int (ev, CS_F_COUNT, held);
    char msg [200];
    if (held == 0 || held != seen) {
        snprintf (msg, sizeof msg, held ? "not approved: %lld revocations are held now, not the "
                  "%lld shown; look again" : "not approved: the guard is clear, nothing is held",
                  (long long) held, (long long) seen);
        cs_msg_set_str (ev, CS_F_STATE, "stale");
        cs_msg_set_str (ev, CS_F_MSG, msg);
        return emit (s, ev);
    }
    snprintf (msg, sizeof msg, "an operator approved %lld revocations", (long long) held);
    cs_msg_set_str (ev, CS_F_STATE, "approved");
    cs_msg_set_str (ev, CS_F_MSG, msg);
    char count [32];
    snprintf (count, sizeof count, "%lld", (long long) held);
    cs_log (s->log, CS_LOG_WARN, "guard_approved", "revocations", count, NULL);
    if (emit (s, ev) != 0 || set_meta (s, "guard_approved", held) != 0)
        return -1;
    return plan (s);
}

typedef struct {
    cs_state_t *s;
    cs_msg_t **msgs;
    size_t count;
} batch_t;

static int
apply_batch (cs_db_t *db, void *arg)
{
    (void) db;
    batch_t *b = arg;
    cs_state_t *s = b->s;
    for (size_t i = 0; i < b->count; i++) {
        const cs_msg_t *m = b->msgs [i];
        int rc = 0;
        switch (cs_msg_type (m)) {
            case CS_MSG_CYCLE_BEGIN:
                s->cycle = (uint64_t) cs_msg_int (m, CS_F_CYCLE);
                s->cycle_full = cs_msg_bool (m, CS_F_FULL);
                rc = cs_db_exec (s->db, "DELETE FROM staging");
                break;
            case CS_MSG_MEMBER: rc = on_member (s, m); break;
            case CS_MSG_CYCLE_END: rc = on_cycle_end (s, m); break;
            case CS_MSG_SCAN_BEGIN: {
                sqlite3_stmt *st = cs_db_stmt (s->db, "DELETE FROM person_staging WHERE device = ?1");
                rc = st ? 0 : -1;
                if (st) {
                    sqlite3_bind_text (st, 1, cs_msg_str (m, CS_F_DEV), -1, SQLITE_STATIC);
                    rc = cs_db_step_done (s->db, st);
                }
                break;
            }
            case CS_MSG_SCAN_USER: rc = on_scan_user (s, m); break;
            case CS_MSG_SCAN_END: rc = on_scan_end (s, m); break;
            case CS_MSG_RESULT: rc = on_result (s, m); break;
            case CS_MSG_HEALTH: rc = on_health (s, m); break;
            case CS_MSG_ACK: rc = on_ack (s, m); break;
            case CS_MSG_REPLAY: rc = on_replay (s, m); break;
            case CS_MSG_APPROVE: rc = on_approve (s, m); break;
            default:
                cs_log (s->log, CS_LOG_WARN, "unexpected_message", "type",
                        cs_msg_type_name (cs_msg_type (m)), NULL);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

int
cs_state_apply (cs_state_t *self, cs_msg_t **msgs, size_t count)
{
    self->now_ms = zclock_time ();
    uint64_t cycle = self->cycle;
    batch_t b = { self, msgs, count };
    if (cs_db_transaction (self->db, apply_batch, &b) != 0) {
        self->cycle = cycle;
        return -1;
    }
    return 0;
}

static int
replan_fn (cs_db_t *db, void *arg)
{
    (void) db;
    return plan (arg);
}

int
cs_state_replan (cs_state_t *self)
{
    self->now_ms = zclock_time ();
    return cs_db_transaction (self->db, replan_fn, self);
}

typedef struct {
    cs_state_t *s;
    int64_t now;
    zlistx_t *out;
} due_t;

/* Commands out at once per device: enough to keep a device busy for a second
 * or more, few enough that the pusher holds little and a slow device is not
 * sent its whole backlog again when the lease runs out. */
#define WINDOW 100

static int
due_fn (cs_db_t *db, void *arg)
{
    due_t *d = arg;
    int64_t expired = d->now - (int64_t) d->s->cfg->sync.lease * 1000;
    for (size_t i = 0; i < d->s->cfg->device_count; i++) {
        const char *dev = d->s->cfg->devices [i].name;
        /* sent and still within their lease: out there */
        sqlite3_stmt *st = cs_db_stmt (db, "SELECT count (*) FROM command WHERE state = 'pending' "
                                           "AND device = ?1 AND sent_ms > ?2");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 2, expired);
        int64_t out = sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : 0;
        sqlite3_reset (st);
        if (out >= WINDOW)
            continue;
        /* lease run out (sent again), then never sent, oldest first */
        st = cs_db_stmt (db, "SELECT id, device, employee_no, email, op, name, begin_time, end_time "
                             "FROM command WHERE state = 'pending' AND device = ?1 AND sent_ms > 0 "
                             "AND sent_ms <= ?2 UNION ALL SELECT * FROM (SELECT id, device, employee_no, "
                             "email, op, name, begin_time, end_time FROM command WHERE state = 'pending' "
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
            set_if (m, CS_F_EMAIL, (const char *) sqlite3_column_text (st, 3));
            cs_msg_set_str (m, CS_F_OP, (const char *) sqlite3_column_text (st, 4));
            set_if (m, CS_F_NAME, (const char *) sqlite3_column_text (st, 5));
            cs_msg_set_str (m, CS_F_BEGIN, (const char *) sqlite3_column_text (st, 6));
            cs_msg_set_str (m, CS_F_END, (const char *) sqlite3_column_text (st, 7));
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
cs_state_due_commands (cs_state_t *self, int64_t now_ms, cs_msg_t ***out, size_t *count)
{
    due_t d = { self, now_ms, zlistx_new () };
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

int
cs_state_events_after (cs_state_t *self, int64_t seq, size_t max, cs_msg_t ***out, size_t *count)
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
