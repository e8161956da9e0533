#include "differ/identity.h"
#include "common/email.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _cs_identity_t {
    cs_plan_map_line_t *map;    /* the identity_map lines (strings owned) */
    size_t map_count;
};

static void
free_map (cs_identity_t *self)
{
    for (size_t i = 0; i < self->map_count; i++) {
        free ((char *) self->map [i].email);
        free ((char *) self->map [i].no);
    }
    free (self->map);
    self->map = NULL;
    self->map_count = 0;
}

cs_identity_t *
cs_identity_new (const char *map_path, cs_log_t *log, char *error, size_t error_size)
{
    cs_identity_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    if (!map_path)
        return self;
    FILE *f = fopen (map_path, "r");
    if (!f) {
        snprintf (error, error_size, "[sync] identity_map: cannot read %s", map_path);
        cs_identity_destroy (&self);
        return NULL;
    }
    char line [1024];
    int lineno = 0;
    size_t cap = 0;
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
        if (cs_email_normalize (line, email) != CS_EMAIL_OK || !*no || strlen (no) > 32) {
            if (lineno > 1)
                cs_log (log, CS_LOG_WARN, "identity_map_line_skipped", "file", map_path, "line", line, NULL);
            continue;
        }
        if (self->map_count == cap) {
            cap = cap ? cap * 2 : 64;
            cs_plan_map_line_t *bigger = realloc (self->map, cap * sizeof *bigger);
            if (!bigger)
                break;
            self->map = bigger;
        }
        self->map [self->map_count].email = strdup (email);
        self->map [self->map_count].no = strdup (no);
        if (self->map [self->map_count].email && self->map [self->map_count].no)
            self->map_count++;
        else {
            free ((char *) self->map [self->map_count].email);
            free ((char *) self->map [self->map_count].no);
        }
    }
    fclose (f);
    return self;
}

void
cs_identity_destroy (cs_identity_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free_map (*self_p);
    free (*self_p);
    *self_p = NULL;
}

const cs_plan_map_line_t *
cs_identity_map (cs_identity_t *self, size_t *count)
{
    *count = self->map_count;
    return self->map;
}

int
cs_identity_ties (cs_store_t *store, cs_arena_t *arena, cs_plan_tie_t **out, size_t *count)
{
    cs_db_t *db = cs_store_db (store);
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st = cs_db_stmt (db, "SELECT count (*) FROM tie");
    if (!st)
        return -1;
    size_t n = sqlite3_step (st) == SQLITE_ROW ? (size_t) sqlite3_column_int64 (st, 0) : 0;
    sqlite3_reset (st);
    *out = cs_arena_alloc (arena, (n ? n : 1) * sizeof **out);
    st = cs_db_stmt (db, "SELECT device, employee_no, org, omid, rule, via FROM tie");
    if (!*out || !st)
        return -1;
    while (*count < n && sqlite3_step (st) == SQLITE_ROW) {
        int rule = cs_rule_parse ((const char *) sqlite3_column_text (st, 4));
        cs_plan_tie_t *t = &(*out) [*count];
        t->device = cs_arena_strdup (arena, (const char *) sqlite3_column_text (st, 0));
        t->no = cs_arena_strdup (arena, (const char *) sqlite3_column_text (st, 1));
        t->org = sqlite3_column_int64 (st, 2);
        t->omid = sqlite3_column_int64 (st, 3);
        t->rule = rule >= 0 ? (cs_rule_t) rule : CS_RULE_TAG;
        t->via = cs_arena_strdup (arena, (const char *) sqlite3_column_text (st, 5));
        if (!t->via)
            t->via = "";
        (*count)++;
    }
    sqlite3_reset (st);
    return arena->nomem ? -1 : 0;
}

static int
tie_event (cs_store_t *store, int made, const char *device, const char *no, int64_t org, int64_t omid,
           cs_rule_t rule, const char *email, const char *why)
{
    cs_msg_t *ev = cs_event_new (made ? CS_EV_TIED : CS_EV_UNTIED);
    cs_msg_set_str (ev, CS_F_DEV, device);
    cs_msg_set_str (ev, CS_F_EMPNO, no);
    cs_event_member (ev, org, omid);
    cs_msg_set_str (ev, CS_F_RULE, cs_rule_name (rule));
    cs_event_str (ev, CS_F_EMAIL, email);
    cs_event_str (ev, CS_F_MSG, why);
    return cs_store_emit (store, ev);
}

int
cs_identity_tie (cs_store_t *store, const char *device, const char *no, int64_t org, int64_t omid,
                 cs_rule_t rule, const char *via, const char *email)
{
    sqlite3_stmt *st = cs_db_stmt (cs_store_db (store), "INSERT INTO tie VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                                                        "ON CONFLICT DO NOTHING");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 3, org);
    sqlite3_bind_int64 (st, 4, omid);
    sqlite3_bind_text (st, 5, cs_rule_name (rule), -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 6, via ? via : "", -1, SQLITE_STATIC);
    if (cs_db_step_done (cs_store_db (store), st) != 0)
        return -1;
    if (sqlite3_changes (cs_db_handle (cs_store_db (store))) == 0)
        return 0;               /* already tied */
    return tie_event (store, 1, device, no, org, omid, rule, email, NULL);
}

static int
untie (cs_store_t *store, const char *device, const char *no, int64_t org, int64_t omid)
{
    sqlite3_stmt *st = cs_db_stmt (cs_store_db (store), "DELETE FROM tie WHERE device = ?1 AND "
                                                        "employee_no = ?2 AND org = ?3 AND omid = ?4");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 3, org);
    sqlite3_bind_int64 (st, 4, omid);
    return cs_db_step_done (cs_store_db (store), st);
}

int
cs_identity_apply (cs_store_t *store, const cs_plan_t *plan)
{
    for (size_t i = 0; i < plan->untied_count; i++) {
        const cs_plan_tie_change_t *c = &plan->untied [i];
        if (untie (store, c->device, c->no, c->org, c->omid) != 0
            || tie_event (store, 0, c->device, c->no, c->org, c->omid, c->rule, c->email, c->why) != 0)
            return -1;
    }
    for (size_t i = 0; i < plan->tied_count; i++) {
        const cs_plan_tie_change_t *c = &plan->tied [i];
        if (cs_identity_tie (store, c->device, c->no, c->org, c->omid, c->rule, c->via, c->email) != 0)
            return -1;
    }
    return 0;
}

int
cs_identity_forget (cs_store_t *store, const char *device, const char *no, const char *why)
{
    cs_db_t *db = cs_store_db (store);
    sqlite3_stmt *st = cs_db_stmt (db, "SELECT org, omid, rule FROM tie WHERE device = ?1 AND employee_no = ?2");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
    int rc = 0;
    while (rc == 0 && sqlite3_step (st) == SQLITE_ROW) {
        int rule = cs_rule_parse ((const char *) sqlite3_column_text (st, 2));
        rc = tie_event (store, 0, device, no, sqlite3_column_int64 (st, 0), sqlite3_column_int64 (st, 1),
                        rule >= 0 ? (cs_rule_t) rule : CS_RULE_TAG, NULL, why);
    }
    sqlite3_reset (st);
    if (rc != 0)
        return -1;
    st = cs_db_stmt (db, "DELETE FROM tie WHERE device = ?1 AND employee_no = ?2");
    if (!st)
        return -1;
    sqlite3_bind_text (st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, no, -1, SQLITE_STATIC);
    return cs_db_step_done (db, st);
}
