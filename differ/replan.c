#include "differ/replan.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    cs_store_t *store;
    cs_db_t *db;
    const cs_config_t *cfg;
    cs_arena_t arena;
    cs_plan_input_t in;
} loader_t;

static const char *
col (sqlite3_stmt *st, int i)
{
    return (const char *) sqlite3_column_text (st, i);
}

/* "role:start:end;..." as the planner's roles. */
static size_t
parse_roles (cs_arena_t *arena, const char *text, const cs_plan_role_t **out)
{
    size_t n = 0;
    for (const char *p = text; p && *p; p = strchr (p, ';') ? strchr (p, ';') + 1 : NULL)
        n++;
    cs_plan_role_t *roles = cs_arena_alloc (arena, (n ? n : 1) * sizeof *roles);
    *out = roles;
    if (!roles)
        return 0;
    size_t k = 0;
    for (const char *p = text; p && *p && k < n; p = strchr (p, ';') ? strchr (p, ';') + 1 : NULL) {
        char *colon;
        long long role = strtoll (p, &colon, 10);
        char start [11], end [11];
        if (*colon != ':' || strlen (colon) < 22 || colon [11] != ':')
            continue;
        memcpy (start, colon + 1, 10);
        start [10] = 0;
        memcpy (end, colon + 12, 10);
        end [10] = 0;
        if (cs_day_parse (start, &roles [k].start) == 0 && cs_day_parse (end, &roles [k].end) == 0) {
            roles [k].role = role;
            k++;
        }
    }
    return k;
}

static int
load_members (loader_t *l)
{
    int64_t n = cs_store_count (l->store, "SELECT count (*) FROM record", NULL);
    cs_plan_member_t *ms = cs_arena_alloc (&l->arena, (size_t) (n > 0 ? n : 1) * sizeof *ms);
    sqlite3_stmt *st = cs_db_stmt (l->db, "SELECT org, omid, email, first || ' ' || last, inactive, roles "
                                          "FROM record");
    if (n < 0 || !ms || !st)
        return -1;
    size_t k = 0;
    while (k < (size_t) n && sqlite3_step (st) == SQLITE_ROW) {
        cs_plan_member_t *m = &ms [k++];
        m->org = sqlite3_column_int64 (st, 0);
        m->omid = sqlite3_column_int64 (st, 1);
        m->email = cs_arena_strdup (&l->arena, col (st, 2));
        m->name = l->cfg->sync.create_missing ? cs_arena_strdup (&l->arena, col (st, 3)) : NULL;
        m->inactive = sqlite3_column_int (st, 4);
        m->role_count = parse_roles (&l->arena, col (st, 5), &m->roles);
    }
    sqlite3_reset (st);
    l->in.members = ms;
    l->in.member_count = k;
    return l->arena.nomem ? -1 : 0;
}

static int
load_devices (loader_t *l, int64_t now_ms, cs_day_t *today)
{
    const cs_config_t *cfg = l->cfg;
    cs_plan_device_t *devs = cs_arena_alloc (&l->arena, (cfg->device_count ? cfg->device_count : 1) * sizeof *devs);
    if (!devs)
        return -1;
    time_t now = (time_t) (now_ms / 1000);
    for (size_t i = 0; i < cfg->device_count; i++) {
        const cs_device_config_t *dc = &cfg->devices [i];
        cs_plan_device_t *d = &devs [i];
        memset (d, 0, sizeof *d);
        d->name = dc->name;
        char *local = cs_arena_alloc (&l->arena, CS_TIME_LEN);
        if (!local || cs_day_local (now, dc->timezone, &d->today) != 0
            || cs_time_local (now, dc->timezone, local) != 0)
            return -1;
        d->now = local;
        today [i] = d->today;
        d->scanned = cs_store_count (l->store, "SELECT count (*) FROM scanned WHERE device = ?1", dc->name) > 0;
        if (!d->scanned)
            continue;
        int64_t n = cs_store_count (l->store, "SELECT count (*) FROM person WHERE device = ?1", dc->name);
        cs_plan_person_t *ps = cs_arena_alloc (&l->arena, (size_t) (n > 0 ? n : 1) * sizeof *ps);
        sqlite3_stmt *st = cs_db_stmt (l->db, "SELECT employee_no, tag, enable, begin_time, end_time "
                                              "FROM person WHERE device = ?1");
        if (n < 0 || !ps || !st)
            return -1;
        sqlite3_bind_text (st, 1, dc->name, -1, SQLITE_STATIC);
        size_t k = 0;
        while (k < (size_t) n && sqlite3_step (st) == SQLITE_ROW) {
            cs_plan_person_t *x = &ps [k++];
            x->no = cs_arena_strdup (&l->arena, col (st, 0));
            x->tag = col (st, 1) && *col (st, 1) ? cs_arena_strdup (&l->arena, col (st, 1)) : NULL;
            x->enable = sqlite3_column_int (st, 2);
            x->begin = col (st, 3) ? cs_arena_strdup (&l->arena, col (st, 3)) : "";
            x->end = col (st, 4) ? cs_arena_strdup (&l->arena, col (st, 4)) : "";
        }
        sqlite3_reset (st);
        d->persons = ps;
        d->person_count = k;
    }
    l->in.devices = devs;
    l->in.device_count = cfg->device_count;
    return l->arena.nomem ? -1 : 0;
}

/* Commands from a (device, no, begin, end) query. */
static int
load_sent (loader_t *l, const char *count_sql, const char *sql, const cs_plan_sent_t **out, size_t *count)
{
    int64_t n = cs_store_count (l->store, count_sql, NULL);
    cs_plan_sent_t *list = cs_arena_alloc (&l->arena, (size_t) (n > 0 ? n : 1) * sizeof *list);
    sqlite3_stmt *st = cs_db_stmt (l->db, sql);
    if (n < 0 || !list || !st)
        return -1;
    size_t k = 0;
    while (k < (size_t) n && sqlite3_step (st) == SQLITE_ROW) {
        cs_plan_sent_t *s = &list [k++];
        s->device = cs_arena_strdup (&l->arena, col (st, 0));
        s->no = cs_arena_strdup (&l->arena, col (st, 1));
        s->begin = cs_arena_strdup (&l->arena, col (st, 2) ? col (st, 2) : "");
        s->end = cs_arena_strdup (&l->arena, col (st, 3) ? col (st, 3) : "");
    }
    sqlite3_reset (st);
    *out = list;
    *count = k;
    return l->arena.nomem ? -1 : 0;
}

/* --- writing the plan ------------------------------------------------------------ */

/* The notices the planner keeps: said once while they hold, forgotten (and
 * so said again) once they no longer do - on the devices it planned. */
static int
write_notices (cs_store_t *store, const cs_plan_t *plan, const cs_plan_input_t *in)
{
    cs_db_t *db = cs_store_db (store);
    zhashx_t *had = zhashx_new ();
    if (!had)
        return -1;
    sqlite3_stmt *st = cs_db_stmt (db, "SELECT kind, key FROM notice WHERE kind IN "
                                       "('unmatched', 'conflict', 'email_changed')");
    while (st && sqlite3_step (st) == SQLITE_ROW) {
        char k [400];
        snprintf (k, sizeof k, "%s\x1f%s", col (st, 0), col (st, 1));
        zhashx_insert (had, k, (void *) 1);
    }
    if (st)
        sqlite3_reset (st);
    int rc = st ? 0 : -1;
    for (size_t i = 0; i < plan->notice_count && rc == 0; i++) {
        const cs_plan_notice_t *n = &plan->notices [i];
        const char *kind = cs_event_kind_name (n->kind);
        char k [400];
        snprintf (k, sizeof k, "%s\x1f%s", kind, n->key);
        if (n->kind != CS_EV_PLANNED && zhashx_lookup (had, k)) {
            zhashx_delete (had, k);
            continue;           /* said already, and still so */
        }
        if (!cs_store_notice (store, kind, n->key))
            continue;
        cs_msg_t *ev = cs_event_new (n->kind);
        cs_event_str (ev, CS_F_DEV, n->device);
        cs_event_str (ev, CS_F_EMPNO, n->no);
        cs_event_member (ev, n->org, n->omid);
        cs_event_str (ev, CS_F_EMAIL, n->email);
        if (n->kind == CS_EV_PLANNED) {
            cs_event_str (ev, CS_F_BEGIN, n->begin);
            cs_event_str (ev, CS_F_END, n->end);
        }
        cs_event_str (ev, CS_F_MSG, n->msg);
        rc = cs_store_emit (store, ev);
    }
    /* what no longer holds, on a device this plan looked at */
    for (void *v = zhashx_first (had); v && rc == 0; v = zhashx_next (had)) {
        const char *k = zhashx_cursor (had);
        const char *sep = strchr (k, '\x1f');
        char kind [32];
        snprintf (kind, sizeof kind, "%.*s", (int) (sep - k), k);
        size_t dlen = strcspn (sep + 1, "|");
        for (size_t i = 0; i < in->device_count; i++)
            if (in->devices [i].scanned && strlen (in->devices [i].name) == dlen
                && !strncmp (in->devices [i].name, sep + 1, dlen))
                cs_store_forget (store, kind, sep + 1);
    }
    zhashx_destroy (&had);
    return rc;
}

static int
record_command (cs_store_t *store, const cs_plan_command_t *c)
{
    cs_db_t *db = cs_store_db (store);
    /* a newer target replaces an open command for the same person */
    sqlite3_stmt *st = cs_db_stmt (db, "UPDATE command SET state = 'superseded' "
                                       "WHERE device = ?1 AND employee_no = ?2 AND state = 'pending'");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, c->device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, c->no, -1, SQLITE_STATIC);
    if (cs_db_step_done (db, st) != 0)
        return -1;
    st = cs_db_stmt (db, "INSERT INTO command (device, employee_no, email, op, name, begin_time, "
                         "end_time, state, created_ms, org, omid, tag) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                         "'pending', ?8, ?9, ?10, ?11)");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, c->device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, c->no, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, c->email, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 4, cs_op_name (c->op), -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 5, c->name ? c->name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 6, c->begin, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 7, c->end, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 8, cs_store_now (store));
    sqlite3_bind_int64 (st, 9, c->org);
    sqlite3_bind_int64 (st, 10, c->omid);
    if (c->tag)
        sqlite3_bind_text (st, 11, c->tag, -1, SQLITE_STATIC);
    return cs_db_step_done (db, st);
}

/* The guard's verdict: events when it trips or clears, the held list for
 * `auditor approve`. */
static int
write_guard (cs_store_t *store, const cs_plan_t *plan)
{
    cs_db_t *db = cs_store_db (store);
    if (plan->approval_spent && cs_store_set_meta (store, "guard_approved", 0) != 0)
        return -1;
    if (plan->tripped) {
        if (cs_store_meta (store, "guard") == 0) {
            cs_msg_t *ev = cs_event_new (CS_EV_GUARD);
            cs_msg_set_int (ev, CS_F_COUNT, (int64_t) plan->revocations);
            char msg [256];
            snprintf (msg, sizeof msg, "%zu revocations exceed the guard (%zu); none sent until "
                      "an operator approves or a later export is back within it", plan->revocations,
                      plan->limit);
            cs_msg_set_str (ev, CS_F_MSG, msg);
            cs_msg_set_str (ev, CS_F_STATE, "tripped");
            if (cs_store_emit (store, ev) != 0)
                return -1;
            char n [32];
            snprintf (n, sizeof n, "%zu", plan->revocations);
            cs_log (cs_store_log (store), CS_LOG_WARN, "guard_tripped", "revocations", n, NULL);
        }
        if (cs_store_set_meta (store, "guard", (int64_t) plan->revocations) != 0
            || cs_db_exec (db, "DELETE FROM held") != 0)
            return -1;
        for (size_t i = 0; i < plan->command_count; i++) {
            const cs_plan_command_t *c = &plan->commands [i];
            if (!c->held)
                continue;
            sqlite3_stmt *st = cs_db_stmt (db, "INSERT OR REPLACE INTO held VALUES (?1, ?2, ?3, ?4, ?5)");
            if (!st)
                return -1;
            sqlite3_bind_text (st, 1, c->device, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 2, c->no, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 3, c->email, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 4, c->prev_begin, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 5, c->prev_end, -1, SQLITE_STATIC);
            if (cs_db_step_done (db, st) != 0)
                return -1;
        }
        return 0;
    }
    if (cs_store_meta (store, "guard") == 0)
        return 0;
    if (cs_store_set_meta (store, "guard", 0) != 0 || cs_db_exec (db, "DELETE FROM held") != 0)
        return -1;
    cs_msg_t *ev = cs_event_new (CS_EV_GUARD);
    cs_msg_set_str (ev, CS_F_STATE, "cleared");
    cs_msg_set_int (ev, CS_F_COUNT, (int64_t) plan->revocations);
    return cs_store_emit (store, ev);
}

static int
bind_target (sqlite3_stmt *st, const cs_plan_target_t *t)
{
    sqlite3_bind_text (st, 1, t->device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, t->no, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 3, t->org);
    sqlite3_bind_int64 (st, 4, t->omid);
    if (t->email)
        sqlite3_bind_text (st, 5, t->email, -1, SQLITE_STATIC);
    if (t->retag)
        sqlite3_bind_text (st, 6, t->retag, -1, SQLITE_STATIC);
    sqlite3_bind_int (st, 7, t->revoke);
    sqlite3_bind_int (st, 8, t->keep);
    sqlite3_bind_text (st, 9, t->begin, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 10, t->end, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 11, cs_sync_name (t->sync), -1, SQLITE_STATIC);
    return 0;
}

/* Each tied person's target and sync state: only the rows that changed.
 * The persons no longer tied (on the devices this plan looked at) go first. */
static int
write_targets (cs_store_t *store, const cs_plan_t *plan, const cs_plan_input_t *in)
{
    cs_db_t *db = cs_store_db (store);
    int rc = 0;
    for (size_t i = 0; i < in->device_count && rc == 0; i++) {
        if (!in->devices [i].scanned)
            continue;
        sqlite3_stmt *st = cs_db_stmt (db, "DELETE FROM target WHERE device = ?1 AND NOT EXISTS "
                                           "(SELECT 1 FROM tie t WHERE t.device = target.device "
                                           "AND t.employee_no = target.employee_no)");
        if (!st)
            return -1;
        sqlite3_bind_text (st, 1, in->devices [i].name, -1, SQLITE_STATIC);
        rc = cs_db_step_done (db, st);
    }
    for (size_t i = 0; i < plan->target_count && rc == 0; i++) {
        sqlite3_stmt *st = cs_db_stmt (db, "INSERT INTO target VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                             "ON CONFLICT (device, employee_no) DO UPDATE SET org = excluded.org, "
                             "omid = excluded.omid, email = excluded.email, retag = excluded.retag, "
                             "revoke = excluded.revoke, keep = excluded.keep, begin_time = excluded.begin_time, "
                             "end_time = excluded.end_time, sync = excluded.sync WHERE (org, omid, email, "
                             "retag, revoke, keep, begin_time, end_time, sync) IS NOT (excluded.org, "
                             "excluded.omid, excluded.email, excluded.retag, excluded.revoke, excluded.keep, "
                             "excluded.begin_time, excluded.end_time, excluded.sync)");
        if (!st)
            return -1;
        bind_target (st, &plan->targets [i]);
        rc = cs_db_step_done (db, st);
    }
    return rc;
}

int
cs_replan (cs_store_t *store, cs_identity_t *identity, const cs_config_t *cfg, int dry_run, cs_day_t *today)
{
    loader_t l;
    memset (&l, 0, sizeof l);
    l.store = store;
    l.db = cs_store_db (store);
    l.cfg = cfg;
    cs_plan_input_t *in = &l.in;
    in->match = cfg->sync.match;
    in->match_count = cfg->sync.match_count;
    in->roles = cfg->cardskipper.roles;
    in->role_count = cfg->cardskipper.role_count;
    in->create_missing = cfg->sync.create_missing;
    in->revoke = cfg->sync.revoke;
    in->tag_by_name = !strcmp (cfg->sync.tag_field, "name");
    in->guard_max_revocations = cfg->sync.guard_max_revocations;
    in->guard_max_percent = cfg->sync.guard_max_percent;
    in->dry_run = dry_run;
    in->approved = cs_store_meta (store, "guard_approved");
    in->map = cs_identity_map (identity, &in->map_count);
    cs_plan_tie_t *ties = NULL;
    int rc = load_members (&l);
    if (rc == 0)
        rc = load_devices (&l, cs_store_now (store), today);
    if (rc == 0)
        rc = cs_identity_ties (store, &l.arena, &ties, &in->tie_count);
    in->ties = ties;
    if (rc == 0)
        rc = load_sent (&l, "SELECT count (*) FROM command WHERE state = 'pending'",
                        "SELECT device, employee_no, begin_time, end_time FROM command "
                        "WHERE state = 'pending'", &in->open, &in->open_count);
    if (rc == 0)
        rc = load_sent (&l, "SELECT count (*) FROM failed",
                        "SELECT f.device, f.employee_no, c.begin_time, c.end_time FROM failed f "
                        "JOIN command c ON c.id = f.command_id", &in->failed, &in->failed_count);
    cs_plan_t *plan = rc == 0 ? cs_plan_new (in) : NULL;
    if (!plan)
        rc = -1;
    if (rc == 0)
        rc = cs_identity_apply (store, plan);
    if (rc == 0)
        rc = write_notices (store, plan, in);
    if (rc == 0)
        rc = write_guard (store, plan);
    for (size_t i = 0; plan && i < plan->command_count && rc == 0; i++)
        if (!plan->commands [i].held)
            rc = record_command (store, &plan->commands [i]);
    if (rc == 0)
        rc = write_targets (store, plan, in);
    cs_plan_destroy (&plan);
    cs_arena_free (&l.arena);
    return rc;
}

int
cs_replan_person (cs_store_t *store, const cs_config_t *cfg, const char *device, const char *no, int failed)
{
    cs_db_t *db = cs_store_db (store);
    const cs_device_config_t *dc = cs_config_device (cfg, device);
    sqlite3_stmt *st = cs_db_stmt (db, "SELECT t.revoke, t.keep, t.begin_time, t.end_time, p.enable, "
                                       "p.begin_time, p.end_time, t.sync FROM target t LEFT JOIN person p "
                                       "ON p.device = t.device AND p.employee_no = t.employee_no "
                                       "WHERE t.device = ?1 AND t.employee_no = ?2");
    if (!st || !dc)
        return st ? 0 : -1;
    sqlite3_bind_text (st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
    if (sqlite3_step (st) != SQLITE_ROW) {
        sqlite3_reset (st);
        return 0;               /* not a tied person (any more) */
    }
    cs_plan_target_t t;
    memset (&t, 0, sizeof t);
    t.revoke = sqlite3_column_int (st, 0);
    t.keep = sqlite3_column_int (st, 1);
    snprintf (t.begin, sizeof t.begin, "%s", col (st, 2) ? col (st, 2) : "");
    snprintf (t.end, sizeof t.end, "%s", col (st, 3) ? col (st, 3) : "");
    int enable = sqlite3_column_int (st, 4);
    char begin [CS_TIME_LEN], end [CS_TIME_LEN], was [16], now [CS_TIME_LEN];
    snprintf (begin, sizeof begin, "%s", col (st, 5) ? col (st, 5) : "");
    snprintf (end, sizeof end, "%s", col (st, 6) ? col (st, 6) : "");
    snprintf (was, sizeof was, "%s", col (st, 7) ? col (st, 7) : "");
    sqlite3_reset (st);
    /* only a revocation depends on the time (one result after another: no clock for the rest) */
    now [0] = 0;
    if (t.revoke && cs_time_local ((time_t) (cs_store_now (store) / 1000), dc->timezone, now) != 0)
        return -1;
    const char *sync = cs_sync_name (cs_plan_sync (&t, enable, begin, end, now, failed,
                                                   !strcmp (was, cs_sync_name (CS_SYNC_HELD))));
    if (!strcmp (sync, was))
        return 0;
    st = cs_db_stmt (db, "UPDATE target SET sync = ?3 WHERE device = ?1 AND employee_no = ?2");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, sync, -1, SQLITE_STATIC);
    return cs_db_step_done (db, st);
}
