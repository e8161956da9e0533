/* The differ's handlers: each incoming message changes state.db through one
 * of the on_* functions below, a batch of them in one transaction, and a
 * complete export cycle, a device scan, a replay or an approval plans again
 * (differ/replan.c). */
#include "differ/state.h"
#include "common/date.h"
#include "common/email.h"
#include "differ/identity.h"
#include "differ/replan.h"
#include "differ/store.h"

#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct _cs_state_t {
    cs_store_t *store;
    cs_db_t *db;                /* the store's */
    cs_identity_t *identity;
    const cs_config_t *cfg;
    cs_log_t *log;
    int dry_run;
    uint64_t cycle;             /* the cycle being received, 0 if none */
    cs_day_t *plan_days;        /* each device's local day at the last plan */
    int planned;                /* a plan has run since the start */
};

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
    s->plan_days = calloc (cfg->device_count ? cfg->device_count : 1, sizeof *s->plan_days);
    s->store = s->plan_days ? cs_store_open (path, log, error, error_size) : NULL;
    s->identity = s->store ? cs_identity_new (cfg->sync.identity_map, log, error, error_size) : NULL;
    if (!s->identity) {
        if (!s->plan_days)
            snprintf (error, error_size, "out of memory");
        cs_state_destroy (&s);
        return NULL;
    }
    s->db = cs_store_db (s->store);
    return s;
}

void
cs_state_destroy (cs_state_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_state_t *s = *self_p;
    cs_identity_destroy (&s->identity);
    cs_store_destroy (&s->store);
    free (s->plan_days);
    free (s);
    *self_p = NULL;
}

const char *
cs_state_errmsg (cs_state_t *self)
{
    return cs_store_errmsg (self->store);
}

int64_t
cs_state_acked (cs_state_t *self)
{
    return cs_store_acked (self->store);
}

int64_t
cs_state_last_seq (cs_state_t *self)
{
    return cs_store_last_seq (self->store);
}

int
cs_state_due_commands (cs_state_t *self, int64_t now_ms, cs_msg_t ***out, size_t *count)
{
    return cs_store_due_commands (self->store, self->cfg, now_ms, out, count);
}

int
cs_state_events_after (cs_state_t *self, int64_t seq, size_t max, cs_msg_t ***out, size_t *count)
{
    return cs_store_events_after (self->store, seq, max, out, count);
}

/* After --rebuild (meta rebuilt: 1, then 2 once a full export came) the
 * planner waits for a full export and a complete scan of every device: a
 * part of the members, or of a device's persons, would look like departures. */
static int
rebuilt_waits (cs_state_t *s)
{
    int64_t rebuilt = cs_store_meta (s->store, "rebuilt");
    if (!rebuilt)
        return 0;
    for (size_t i = 0; rebuilt == 2 && i < s->cfg->device_count; i++)
        if (cs_store_count (s->store, "SELECT count (*) FROM scanned WHERE device = ?1",
                            s->cfg->devices [i].name) != 1)
            return 1;
    if (rebuilt != 2)
        return 1;
    cs_log (s->log, CS_LOG_INFO, "rebuilt_complete", "msg", "a full export and every device's scan "
            "have arrived: planning again", NULL);
    return cs_store_set_meta (s->store, "rebuilt", 0) != 0 ? -1 : 0;
}

static int
plan (cs_state_t *s)
{
    int waits = rebuilt_waits (s);
    if (waits != 0)
        return waits < 0 ? -1 : 0;
    int rc = cs_replan (s->store, s->identity, s->cfg, s->dry_run, s->plan_days);
    s->planned = rc == 0;
    return rc;
}

static const char *
col (sqlite3_stmt *st, int i)
{
    const char *v = (const char *) sqlite3_column_text (st, i);
    return v ? v : "";
}

/* Runs a one-text-parameter write. */
static int
exec1 (cs_state_t *s, const char *sql, const char *arg)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, sql);
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, arg, -1, SQLITE_STATIC);
    return cs_db_step_done (s->db, st);
}

/* --- exports ------------------------------------------------------------------------ */

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
static int
report_unusable (cs_state_t *s)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT org, omid, raw_email, first, last FROM staging "
                                          "WHERE email IS NULL");
    int rc = st ? 0 : -1;
    while (rc == 0 && sqlite3_step (st) == SQLITE_ROW) {
        char key [64];
        snprintf (key, sizeof key, "%lld:%lld", sqlite3_column_int64 (st, 0), sqlite3_column_int64 (st, 1));
        const char *raw = (const char *) sqlite3_column_text (st, 2);
        cs_event_kind_t kind = raw ? CS_EV_BAD_EMAIL : CS_EV_NO_EMAIL;
        if (!cs_store_notice (s->store, cs_event_kind_name (kind), key))
            continue;
        cs_msg_t *ev = cs_event_new (kind);
        cs_event_member (ev, sqlite3_column_int64 (st, 0), sqlite3_column_int64 (st, 1));
        char name [600];
        snprintf (name, sizeof name, "%s %s", col (st, 3), col (st, 4));
        cs_msg_set_str (ev, CS_F_NAME, name);
        if (raw) {
            char norm [CS_EMAIL_MAX + 1];
            cs_msg_set_str (ev, CS_F_MSG, cs_email_strerror (cs_email_normalize (raw, norm)));
            cs_event_str (ev, CS_F_EMAIL, raw);
        }
        else
            cs_msg_set_str (ev, CS_F_MSG, "the member has no e-mail address in Cardskipper");
        rc = cs_store_emit (s->store, ev);
    }
    if (st)
        sqlite3_reset (st);
    return rc;
}

/* E-mails shared by several members: merged (union of their periods), and
 * said once. */
static int
report_duplicates (cs_state_t *s)
{
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT email, count (*) FROM record WHERE email IS NOT NULL "
                                          "GROUP BY email HAVING count (DISTINCT omid) > 1");
    int rc = st ? 0 : -1;
    while (rc == 0 && sqlite3_step (st) == SQLITE_ROW) {
        const char *email = col (st, 0);
        if (!cs_store_notice (s->store, cs_event_kind_name (CS_EV_DUPLICATE), email))
            continue;
        cs_msg_t *ev = cs_event_new (CS_EV_DUPLICATE);
        cs_msg_set_str (ev, CS_F_EMAIL, email);
        cs_msg_set_int (ev, CS_F_COUNT, sqlite3_column_int64 (st, 1));
        cs_msg_set_str (ev, CS_F_MSG, "several members share this e-mail; a person tagged with it "
                                      "admits for any of their memberships (the union of their periods)");
        rc = cs_store_emit (s->store, ev);
    }
    if (st)
        sqlite3_reset (st);
    return rc;
}

/* Whether a device's local day has changed since the last plan (or none ran). */
static int
days_moved (cs_state_t *s)
{
    if (!s->planned)
        return 1;
    time_t now = (time_t) (cs_store_now (s->store) / 1000);
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
    int64_t staged = cs_store_count (s->store, "SELECT count (*) FROM staging", NULL);
    int64_t known = cs_store_count (s->store, "SELECT count (*) FROM record", NULL);
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
    cs_msg_t *ev = cs_event_new (CS_EV_CYCLE);
    cs_msg_set_int (ev, CS_F_COUNT, sent);
    cs_msg_set_str (ev, CS_F_STATE, why ? "ignored" : full ? "full" : "incremental");
    if (why)
        cs_msg_set_str (ev, CS_F_MSG, why);
    if (cs_store_emit (s->store, ev) != 0)
        return -1;
    sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO export VALUES (1, ?1, ?2, ?3, ?4, ?5) "
                                          "ON CONFLICT (id) DO UPDATE SET ts = excluded.ts, result = excluded.result, "
                                          "count = excluded.count, msg = excluded.msg, "
                                          "ok_ts = max (export.ok_ts, excluded.ok_ts)");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, cs_store_now (s->store));
    sqlite3_bind_text (st, 2, why ? "ignored" : full ? "full" : "incremental", -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 3, sent);
    sqlite3_bind_text (st, 4, why ? why : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (st, 5, why ? 0 : cs_store_now (s->store));
    if (cs_db_step_done (s->db, st) != 0)
        return -1;
    if (why) {
        cs_log (s->log, CS_LOG_WARN, "cycle_ignored", "reason", why, NULL);
        return cs_db_exec (s->db, "DELETE FROM staging");
    }
    if (report_unusable (s) != 0)
        return -1;
    if (full && cs_store_meta (s->store, "rebuilt") == 1 && cs_store_set_meta (s->store, "rebuilt", 2) != 0)
        return -1;
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
    if (report_duplicates (s) != 0)
        return -1;
    return plan (s);
}

/* --- device scans ---------------------------------------------------------------------- */

static int
on_scan_begin (cs_state_t *s, const cs_msg_t *m)
{
    const char *dev = cs_msg_str (m, CS_F_DEV);
    return exec1 (s, "DELETE FROM person_staging WHERE device = ?1", dev)
           | exec1 (s, "DELETE FROM skipped WHERE device = ?1", dev);
}

static int
on_scan_user (cs_state_t *s, const cs_msg_t *m)
{
    /* the tag is whichever field [sync] tag_field names, normalised */
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

/* A person the device returned that cannot be used: said once, the rest of
 * the scan counts. */
static int
on_scan_skip (cs_state_t *s, const cs_msg_t *m)
{
    const char *dev = cs_msg_str (m, CS_F_DEV), *why = cs_msg_str (m, CS_F_MSG);
    char key [600];
    snprintf (key, sizeof key, "%s|%.500s", dev, why);
    sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT OR IGNORE INTO skipped VALUES (?1, ?2)");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, key, -1, SQLITE_STATIC);
    if (cs_db_step_done (s->db, st) != 0)
        return -1;
    if (!cs_store_notice (s->store, cs_event_kind_name (CS_EV_SKIPPED), key))
        return 0;
    cs_log (s->log, CS_LOG_WARN, "person_skipped", "device", dev, "msg", why, NULL);
    cs_msg_t *ev = cs_event_new (CS_EV_SKIPPED);
    cs_msg_set_str (ev, CS_F_DEV, dev);
    cs_event_str (ev, CS_F_NAME, cs_msg_str (m, CS_F_NAME));
    cs_msg_set_str (ev, CS_F_MSG, why);
    return cs_store_emit (s->store, ev);
}

static int
on_scan_end (cs_state_t *s, const cs_msg_t *m)
{
    const char *dev = cs_msg_str (m, CS_F_DEV);
    if (!cs_config_device (s->cfg, dev))
        return 0;
    int64_t staged = cs_store_count (s->store, "SELECT count (*) FROM person_staging WHERE device = ?1", dev);
    int64_t skipped = cs_store_count (s->store, "SELECT count (*) FROM skipped WHERE device = ?1", dev);
    cs_msg_t *ev = cs_event_new (CS_EV_SCAN);
    cs_msg_set_str (ev, CS_F_DEV, dev);
    cs_msg_set_int (ev, CS_F_COUNT, staged);
    int ok = cs_msg_bool (m, CS_F_OK) && staged == cs_msg_int (m, CS_F_COUNT);
    cs_msg_set_str (ev, CS_F_STATE, ok ? "ok" : "ignored");
    if (!ok)
        cs_msg_set_str (ev, CS_F_MSG, cs_msg_str (m, CS_F_ERROR) ? cs_msg_str (m, CS_F_ERROR)
                                                              : "the scan lost users in transit");
    else if (skipped > 0) {
        char msg [160];
        snprintf (msg, sizeof msg, "%lld person%s skipped (cannot be used; see the skipped events)",
                  (long long) skipped, skipped == 1 ? "" : "s");
        cs_msg_set_str (ev, CS_F_MSG, msg);
    }
    if (cs_store_emit (s->store, ev) != 0)
        return -1;
    if (ok) {
        const char *sql [] = {
            "DELETE FROM person WHERE device = ?1",
            "INSERT INTO person SELECT * FROM person_staging WHERE device = ?1",
            /* a skipped person that is fixed (or gone) may be said again */
            "DELETE FROM notice WHERE kind = 'skipped' AND key LIKE ?1 || '|%' AND key NOT IN "
            "(SELECT key FROM skipped WHERE device = ?1)",
        };
        for (size_t i = 0; i < sizeof sql / sizeof *sql; i++)
            if (exec1 (s, sql [i], dev) != 0)
                return -1;
        sqlite3_stmt *st = cs_db_stmt (s->db, "INSERT INTO scanned VALUES (?1, ?3, ?2) ON CONFLICT (device) "
                                              "DO UPDATE SET capacity = excluded.capacity, ts = excluded.ts");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 3, cs_store_now (s->store));
        if (cs_msg_has (m, CS_F_CAP))
            sqlite3_bind_int64 (st, 2, cs_msg_int (m, CS_F_CAP));
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
    }
    if (exec1 (s, "DELETE FROM person_staging WHERE device = ?1", dev) != 0
        || exec1 (s, "DELETE FROM skipped WHERE device = ?1", dev) != 0)
        return -1;
    return ok ? plan (s) : 0;
}

/* --- results and health ----------------------------------------------------------------- */

static int
on_result (cs_state_t *s, const cs_msg_t *m)
{
    int64_t id = cs_msg_int (m, CS_F_ID);
    const char *dev = cs_msg_str (m, CS_F_DEV);
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT employee_no, email, state, op, org, omid "
                                          "FROM command WHERE id = ?1 AND device = ?2");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, id);
    sqlite3_bind_text (st, 2, dev, -1, SQLITE_STATIC);
    if (sqlite3_step (st) != SQLITE_ROW) {
        sqlite3_reset (st);
        return 0;               /* not ours (a dry run, or a wiped state) */
    }
    char no [33], email [CS_EMAIL_MAX + 1], state [16], op [8];
    snprintf (no, sizeof no, "%s", col (st, 0));
    snprintf (email, sizeof email, "%s", col (st, 1));
    snprintf (state, sizeof state, "%s", col (st, 2));
    snprintf (op, sizeof op, "%s", col (st, 3));
    int64_t org = sqlite3_column_int64 (st, 4), omid = sqlite3_column_int64 (st, 5);
    sqlite3_reset (st);
    int pending = !strcmp (state, "pending");
    if (!pending && strcmp (state, "superseded"))
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
        snprintf (pb, sizeof pb, "%s", col (st, 0));
        snprintf (pe, sizeof pe, "%s", col (st, 1));
    }
    sqlite3_reset (st);
    st = cs_db_stmt (s->db, "UPDATE command SET state = ?2 WHERE id = ?1");
    if (!st)
        return -1;
    sqlite3_bind_int64 (st, 1, id);
    sqlite3_bind_text (st, 2, ok ? "done" : "failed", -1, SQLITE_STATIC);
    if (cs_db_step_done (s->db, st) != 0)
        return -1;
    cs_msg_t *ev = cs_event_new (ok ? CS_EV_APPLIED : CS_EV_FAILED);
    cs_event_str (ev, CS_F_EMAIL, email);
    cs_msg_set_str (ev, CS_F_DEV, dev);
    cs_msg_set_str (ev, CS_F_EMPNO, no);
    cs_msg_set_int (ev, CS_F_ID, id);
    cs_event_member (ev, org, omid);
    cs_event_str (ev, CS_F_CLASS, cs_msg_str (m, CS_F_CLASS));
    if (cs_msg_has (m, CS_F_HTTP))
        cs_msg_set_int (ev, CS_F_HTTP, cs_msg_int (m, CS_F_HTTP));
    if (cs_msg_has (m, CS_F_CODE))
        cs_msg_set_int (ev, CS_F_CODE, cs_msg_int (m, CS_F_CODE));
    cs_event_str (ev, CS_F_SUB, cs_msg_str (m, CS_F_SUB));
    cs_event_str (ev, CS_F_MSG, cs_msg_str (m, CS_F_MSG));
    cs_msg_set_int (ev, CS_F_TRIES, cs_msg_int (m, CS_F_TRIES));
    if (ok) {
        const char *b = cs_msg_str (m, CS_F_BEGIN), *e = cs_msg_str (m, CS_F_END);
        cs_event_str (ev, CS_F_BEGIN, b);
        cs_event_str (ev, CS_F_END, e);
        cs_event_str (ev, CS_F_PREV_BEGIN, pb);
        cs_event_str (ev, CS_F_PREV_END, pe);
        int created = !strcmp (op, cs_op_name (CS_OP_CREATE));
        st = cs_db_stmt (s->db, "INSERT INTO person (device, employee_no, name, tag, enable, begin_time, end_time) "
                                "VALUES (?1, ?2, '', ?3, 1, ?4, ?5) ON CONFLICT (device, employee_no) DO UPDATE "
                                "SET enable = 1, begin_time = excluded.begin_time, end_time = excluded.end_time");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
        if (created && *email)
            sqlite3_bind_text (st, 3, email, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 4, b ? b : "", -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 5, e ? e : "", -1, SQLITE_STATIC);
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
        if (created && omid > 0
            && cs_identity_tie (s->store, dev, no, org, omid, CS_RULE_CREATED, email, email) != 0)
            return -1;
        st = cs_db_stmt (s->db, "DELETE FROM failed WHERE device = ?1 AND employee_no = ?2");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
    }
    else {
        const char *cls = cs_msg_str (m, CS_F_CLASS);
        if (cls && cs_class_parse (cls) == CS_CLASS_NOT_FOUND) {
            /* the person is gone from the device: forget them, match afresh */
            st = cs_db_stmt (s->db, "DELETE FROM person WHERE device = ?1 AND employee_no = ?2");
            if (!st)
                return -1;
            sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
            if (cs_db_step_done (s->db, st) != 0
                || cs_identity_forget (s->store, dev, no, "the device says the person is gone") != 0)
                return -1;
        }
        st = cs_db_stmt (s->db, "INSERT INTO failed VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                                "ON CONFLICT (device, employee_no) DO UPDATE SET email = excluded.email, "
                                "org = excluded.org, omid = excluded.omid, command_id = excluded.command_id, "
                                "class = excluded.class, msg = excluded.msg, tries = excluded.tries");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 3, email, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 4, org);
        sqlite3_bind_int64 (st, 5, omid);
        sqlite3_bind_int64 (st, 6, id);
        sqlite3_bind_text (st, 7, cls ? cls : "", -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 8, cs_msg_str (m, CS_F_MSG) ? cs_msg_str (m, CS_F_MSG) : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 9, cs_msg_int (m, CS_F_TRIES));
        sqlite3_bind_int64 (st, 10, cs_store_now (s->store));
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
    }
    if (cs_store_emit (s->store, ev) != 0)
        return -1;
    /* a failure of a target since replaced leaves the person pending */
    return cs_replan_person (s->store, s->cfg, dev, no, !ok && pending);
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
    sqlite3_bind_int64 (st, 5, cs_store_now (s->store));
    if (cs_db_step_done (s->db, st) != 0)
        return -1;
    cs_msg_t *ev = cs_event_new (CS_EV_HEALTH);
    cs_msg_set_str (ev, CS_F_DEV, cs_msg_str (m, CS_F_DEV));
    cs_msg_set_str (ev, CS_F_STATE, cs_msg_str (m, CS_F_STATE));
    cs_event_str (ev, CS_F_MSG, cs_msg_str (m, CS_F_MSG));
    return cs_store_emit (s->store, ev);
}

/* --- operators -------------------------------------------------------------------------- */

typedef struct {
    cs_state_t *s;
    const cs_msg_t *req;
    json_t *body;
} op_t;

/* Re-sends the current desired state of failed targets: their failed entries
 * go and the planner decides afresh (a target already in sync is superseded). */
static int
replay_fn (cs_db_t *db, void *arg)
{
    (void) db;
    op_t *o = arg;
    cs_state_t *s = o->s;
    const cs_msg_t *m = o->req;
    const char *email = cs_msg_str (m, CS_F_EMAIL), *dev = cs_msg_str (m, CS_F_DEV);
    sqlite3_stmt *st = cs_db_stmt (s->db, "SELECT device, employee_no, coalesce (email, ''), command_id "
                                          "FROM failed ORDER BY since_ms, device, employee_no");
    if (!st)
        return -1;
    json_t *rows = json_array ();
    json_object_set_new (o->body, "rows", rows);
    while (sqlite3_step (st) == SQLITE_ROW) {
        const char *d = col (st, 0), *e = col (st, 2);
        int64_t cmd = sqlite3_column_int64 (st, 3);
        int wanted = cs_msg_bool (m, CS_F_ALL) || (email && !strcmp (email, e)) || (dev && !strcmp (dev, d));
        for (size_t i = 0; i < cs_msg_id_count (m) && !wanted; i++)
            wanted = (int64_t) cs_msg_id (m, i) == cmd;
        if (wanted)
            json_array_append_new (rows, json_pack ("{s:s, s:s, s:s}", "device", d, "employee_no", col (st, 1),
                                                    "email", e));
    }
    sqlite3_reset (st);
    size_t i;
    json_t *r;
    json_array_foreach (rows, i, r) {
        st = cs_db_stmt (s->db, "DELETE FROM failed WHERE device = ?1 AND employee_no = ?2");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, json_string_value (json_object_get (r, "device")), -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, json_string_value (json_object_get (r, "employee_no")), -1, SQLITE_STATIC);
        if (cs_db_step_done (s->db, st) != 0)
            return -1;
    }
    /* the planner decides afresh from the current desired state */
    if (json_array_size (rows) && plan (s) != 0)
        return -1;
    json_array_foreach (rows, i, r) {
        const char *d = json_string_value (json_object_get (r, "device"));
        const char *no = json_string_value (json_object_get (r, "employee_no"));
        st = cs_db_stmt (s->db, "SELECT id FROM command WHERE device = ?1 AND employee_no = ?2 "
                                "AND state = 'pending' ORDER BY id DESC LIMIT 1");
        if (!st)
            return -1;
        int64_t id = 0;
        sqlite3_bind_text (st, 1, d, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
            id = sqlite3_column_int64 (st, 0);
        sqlite3_reset (st);
        /* nothing to send: the desired state has moved on (or is already there) */
        cs_msg_t *ev = cs_event_new (id ? CS_EV_REPLAYED : CS_EV_SUPERSEDED);
        cs_event_str (ev, CS_F_EMAIL, json_string_value (json_object_get (r, "email")));
        cs_msg_set_str (ev, CS_F_DEV, d);
        cs_msg_set_str (ev, CS_F_EMPNO, no);
        cs_msg_set_int (ev, CS_F_REQ, cs_msg_int (m, CS_F_REQ));
        if (id)
            cs_msg_set_int (ev, CS_F_ID, id);
        else
            cs_msg_set_str (ev, CS_F_MSG, "nothing to re-send: the device already has, or no "
                                          "longer needs, what failed");
        if (cs_store_emit (s->store, ev) != 0)
            return -1;
        json_object_set_new (r, "state", json_string (cs_event_kind_name (id ? CS_EV_REPLAYED : CS_EV_SUPERSEDED)));
        if (id)
            json_object_set_new (r, "id", json_integer (id));
    }
    cs_msg_t *ev = cs_event_new (CS_EV_REPLAY);
    cs_msg_set_int (ev, CS_F_REQ, cs_msg_int (m, CS_F_REQ));
    cs_msg_set_int (ev, CS_F_COUNT, (int64_t) json_array_size (rows));
    return cs_store_emit (s->store, ev);
}

/* An operator approves the revocations the guard holds back: exactly the
 * count `auditor approve` showed, or nothing (the list has changed since). */
static int
approve_fn (cs_db_t *db, void *arg)
{
    (void) db;
    op_t *o = arg;
    cs_state_t *s = o->s;
    int64_t held = cs_store_meta (s->store, "guard");
    int64_t seen = cs_msg_int (o->req, CS_F_COUNT);
    cs_msg_t *ev = cs_event_new (CS_EV_GUARD);
    cs_msg_set_int (ev, CS_F_REQ, cs_msg_int (o->req, CS_F_REQ));
    cs_msg_set_int (ev, CS_F_COUNT, held);
    char msg [200];
    int approved = held > 0 && held == seen;
    if (!approved)
        snprintf (msg, sizeof msg, held ? "not approved: %lld revocations are held now, not the "
                  "%lld shown; look again" : "not approved: the guard is clear, nothing is held",
                  (long long) held, (long long) seen);
    else
        snprintf (msg, sizeof msg, "an operator approved %lld revocations", (long long) held);
    cs_msg_set_str (ev, CS_F_STATE, approved ? "approved" : "stale");
    cs_msg_set_str (ev, CS_F_MSG, msg);
    json_object_set_new (o->body, "approved", json_boolean (approved));
    json_object_set_new (o->body, "count", json_integer (held));
    json_object_set_new (o->body, "msg", json_string (msg));
    if (cs_store_emit (s->store, ev) != 0)
        return -1;
    if (!approved)
        return 0;
    char count [32];
    snprintf (count, sizeof count, "%lld", (long long) held);
    cs_log (s->log, CS_LOG_WARN, "guard_approved", "revocations", count, NULL);
    if (cs_store_set_meta (s->store, "guard_approved", held) != 0)
        return -1;
    return plan (s);
}

static int
operator_op (cs_state_t *self, const cs_msg_t *req, int (*fn) (cs_db_t *, void *), json_t **body,
             char *err, size_t err_size)
{
    op_t o = { self, req, json_object () };
    cs_store_set_now (self->store, zclock_time ());
    int64_t acked = cs_store_acked (self->store);
    if (!o.body || cs_db_transaction (self->db, fn, &o) != 0) {
        cs_store_restore_acked (self->store, acked);
        snprintf (err, err_size, "state.db: %s", cs_store_errmsg (self->store));
        json_decref (o.body);
        *body = NULL;
        return -1;
    }
    *body = o.body;
    return 0;
}

int
cs_state_replay (cs_state_t *self, const cs_msg_t *req, json_t **body, char *err, size_t err_size)
{
    return operator_op (self, req, replay_fn, body, err, err_size);
}

int
cs_state_approve (cs_state_t *self, const cs_msg_t *req, json_t **body, char *err, size_t err_size)
{
    return operator_op (self, req, approve_fn, body, err, err_size);
}

cs_db_t *
cs_state_db (cs_state_t *self)
{
    return self->db;
}

/* --- batches ---------------------------------------------------------------------------- */

typedef struct {
    cs_state_t *s;
    cs_msg_t **msgs;
    size_t count;
} batch_t;

/* Words from another program are checked against what the differ knows
 * before anything is stored: a device of its config, a health state, a
 * result class. 0 when all are known; else why says which is not. */
static int
unknown_word (const cs_state_t *s, const cs_msg_t *m, char *why, size_t size)
{
    const char *dev = cs_msg_str (m, CS_F_DEV), *state = cs_msg_str (m, CS_F_STATE);
    const char *cls = cs_msg_str (m, CS_F_CLASS);
    if (dev && !cs_config_device (s->cfg, dev))
        snprintf (why, size, "device '%s' is not in the config", dev);
    else if (cs_msg_type (m) == CS_MSG_HEALTH && cs_health_parse (state) < 0)
        snprintf (why, size, "'%s' is not a device health state", state);
    else if (cls && cs_class_parse (cls) < 0)
        snprintf (why, size, "'%s' is not a result class", cls);
    else
        return 0;
    return 1;
}

static int
apply_batch (cs_db_t *db, void *arg)
{
    (void) db;
    batch_t *b = arg;
    cs_state_t *s = b->s;
    for (size_t i = 0; i < b->count; i++) {
        const cs_msg_t *m = b->msgs [i];
        int rc = 0;
        char why [200];
        if (unknown_word (s, m, why, sizeof why)) {
            cs_log (s->log, CS_LOG_WARN, "bad_message", "type", cs_msg_type_name (cs_msg_type (m)),
                    "error", why, NULL);
            continue;
        }
        switch (cs_msg_type (m)) {
            case CS_MSG_CYCLE_BEGIN:
                s->cycle = (uint64_t) cs_msg_int (m, CS_F_CYCLE);
                rc = cs_db_exec (s->db, "DELETE FROM staging");
                break;
            case CS_MSG_MEMBER: rc = on_member (s, m); break;
            case CS_MSG_CYCLE_END: rc = on_cycle_end (s, m); break;
            case CS_MSG_SCAN_BEGIN: rc = on_scan_begin (s, m); break;
            case CS_MSG_SCAN_USER: rc = on_scan_user (s, m); break;
            case CS_MSG_SCAN_SKIP: rc = on_scan_skip (s, m); break;
            case CS_MSG_SCAN_END: rc = on_scan_end (s, m); break;
            case CS_MSG_RESULT: rc = on_result (s, m); break;
            case CS_MSG_HEALTH: rc = on_health (s, m); break;
            case CS_MSG_ACK: rc = cs_store_ack (s->store, cs_msg_int (m, CS_F_SEQ)); break;
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
    cs_store_set_now (self->store, zclock_time ());
    uint64_t cycle = self->cycle;
    int64_t acked = cs_store_acked (self->store);
    batch_t b = { self, msgs, count };
    if (cs_db_transaction (self->db, apply_batch, &b) != 0) {
        self->cycle = cycle;    /* as it was: the batch was rolled back */
        cs_store_restore_acked (self->store, acked);
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
    cs_store_set_now (self->store, zclock_time ());
    return cs_db_transaction (self->db, replan_fn, self);
}
