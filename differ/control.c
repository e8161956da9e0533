/* The differ's control socket: operator requests answered from state.db and
 * from what the differ knows of the pipeline's liveness. */
#include "differ/control.h"
#include "differ/verdict.h"
#include "common/date.h"
#include "common/db.h"
#include "common/email.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#define CHUNK_BYTES 32768       /* rows per answer: well inside one message */
#define TAGS_SHOWN 200          /* persons to re-tag listed in status */

struct _cs_control_t {
    const cs_config_t *cfg;
    cs_state_t *state;
    cs_db_t *db;
    const cs_live_t *live;
    zsock_t *sock;
    cs_verdict_site_t *sites;   /* the verdict's facts on each site's pusher */
};

cs_control_t *
cs_control_new (cs_zmq_t *zmq, const cs_config_t *cfg, cs_state_t *state, const cs_live_t *live,
                char *error, size_t error_size)
{
    cs_control_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->state = state;
    self->db = state ? cs_state_db (state) : NULL;
    self->live = live;
    self->sites = calloc (cfg->site_count + 1, sizeof *self->sites);
    self->sock = cs_zmq_bind (zmq, ZMQ_ROUTER, cfg->pipeline.differ_ctl, 0, error, error_size);
    if (!self->sock || !self->sites) {
        if (self->sock && !self->sites)
            snprintf (error, error_size, "out of memory");
        zsock_destroy (&self->sock);
        free (self->sites);
        free (self);
        return NULL;
    }
    return self;
}

void
cs_control_destroy (cs_control_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy (&(*self_p)->sock);
    free ((*self_p)->sites);
    free (*self_p);
    *self_p = NULL;
}

zsock_t *
cs_control_sock (cs_control_t *self)
{
    return self->sock;
}

/* --- helpers ------------------------------------------------------------------------ */

static json_t *
when_json (int64_t ms)
{
    char w [CS_TIME_TEXT_LEN];
    cs_time_text (ms, w);
    return json_string (w);
}

static const char *
text (sqlite3_stmt *st, int col)
{
    const char *v = (const char *) sqlite3_column_text (st, col);
    return v ? v : "";
}

static int64_t
one_int (cs_db_t *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = cs_db_stmt (db, sql);
    int64_t v = 0;
    if (!st)
        return 0;
    if (arg)
        sqlite3_bind_text (st, 1, arg, -1, SQLITE_STATIC);
    if (sqlite3_step (st) == SQLITE_ROW)
        v = sqlite3_column_int64 (st, 0);
    sqlite3_reset (st);
    return v;
}

/* --- status ---------------------------------------------------------------------------- *
 * The facts are gathered here (state.db, the liveness record, the file
 * system), both into the answer and into the verdict's facts; what needs
 * attention is differ/verdict.c's to decide. */

static void
status_liveness (cs_control_t *c, cs_verdict_facts_t *f, json_t *j)
{
    const cs_live_t *l = c->live;
    int64_t silent_after = 3LL * c->cfg->pipeline.heartbeat_interval * 1000;
    f->started_ms = l->started_ms;
    f->heartbeat_interval = c->cfg->pipeline.heartbeat_interval;
    f->no_local_pusher = 1;
    for (size_t i = 0; i < c->cfg->device_count; i++)
        f->no_local_pusher &= c->cfg->devices [i].site != NULL;
    json_t *stages = json_array ();
    for (int i = 0; i < CS_STAGE_COUNT; i++) {
        f->beat_ms [i] = l->beat_ms [i];
        json_t *st = json_pack ("{s:s, s:b}", "name", cs_stage_name ((cs_stage_t) i), "alive",
                                l->beat_ms [i] && f->now_ms - l->beat_ms [i] <= silent_after);
        if (l->beat_ms [i]) {
            json_object_set_new (st, "last_heartbeat", when_json (l->beat_ms [i]));
            json_object_set_new (st, "last_heartbeat_ts", json_integer (l->beat_ms [i] / 1000));
        }
        /* its counters since it started (the pusher's are per device: under devices) */
        if (l->counters [i] && i != CS_STAGE_PUSHER)
            json_object_set (st, "counters", l->counters [i]);
        if (i == CS_STAGE_PUSHER)
            json_object_set_new (st, "needed", json_boolean (!f->no_local_pusher));
        json_array_append_new (stages, st);
    }
    /* each site's pusher, after the local one */
    for (size_t i = 0; i < l->site_count && c->sites; i++) {
        const cs_site_config_t *site = &c->cfg->sites [i];
        int64_t last = l->site_beat_ms [i];
        c->sites [i] = (cs_verdict_site_t) { site->name, site->endpoint, last };
        json_t *st = json_pack ("{s:s, s:s, s:s, s:b}", "name", "pusher", "site", site->name,
                                "endpoint", site->endpoint, "alive",
                                last && f->now_ms - last <= silent_after);
        if (last) {
            json_object_set_new (st, "last_heartbeat", when_json (last));
            json_object_set_new (st, "last_heartbeat_ts", json_integer (last / 1000));
        }
        json_array_append_new (stages, st);
    }
    f->sites = c->sites;
    f->site_count = c->sites ? l->site_count : 0;
    json_object_set_new (j, "stages", stages);
    f->db_error = l->db_error;
    json_object_set_new (j, "state_db", json_string (l->db_error [0] ? l->db_error : "ok"));
    f->outbox = one_int (c->db, "SELECT count (*) FROM outbox", NULL);
    f->acked_ms = l->acked_ms;
    json_object_set_new (j, "outbox", json_integer (f->outbox));
    if (f->outbox > 0)
        json_object_set_new (j, "outbox_waiting_s", json_integer ((f->now_ms - l->acked_ms) / 1000));
    f->gap_ms = one_int (c->db, "SELECT value FROM meta WHERE key = 'audit_gap_ms'", NULL);
    struct statvfs vfs;
    f->state_dir = c->cfg->pipeline.state_dir;
    if (statvfs (c->cfg->pipeline.state_dir, &vfs) == 0 && vfs.f_blocks > 0) {
        f->disk_known = 1;
        f->disk_free = (int64_t) vfs.f_bavail * (int64_t) vfs.f_frsize;
        f->disk_percent = (int) ((double) vfs.f_bavail * 100.0 / (double) vfs.f_blocks);
        json_object_set_new (j, "disk", json_pack ("{s:I, s:i}", "free_mb", (json_int_t) (f->disk_free >> 20),
                                                   "free_percent", f->disk_percent));
    }
}

static void
status_export (cs_control_t *c, cs_verdict_facts_t *f, json_t *j, char *msg, size_t msg_size)
{
    json_t *exp = json_object ();
    sqlite3_stmt *st = cs_db_stmt (c->db, "SELECT ts, result, count, msg, ok_ts FROM export");
    if (st && sqlite3_step (st) == SQLITE_ROW) {
        json_object_set_new (exp, "when", when_json (sqlite3_column_int64 (st, 0)));
        json_object_set_new (exp, "result", json_string (text (st, 1)));
        json_object_set_new (exp, "members", json_integer (sqlite3_column_int64 (st, 2)));
        json_object_set_new (exp, "msg", json_string (text (st, 3)));
        f->export_ok_ms = sqlite3_column_int64 (st, 4);
        f->export_ignored = !strcmp (text (st, 1), "ignored");
        snprintf (msg, msg_size, "%s", text (st, 3));
        f->export_msg = msg;
    }
    if (st)
        sqlite3_reset (st);
    if (f->export_ok_ms) {
        json_object_set_new (exp, "last_good", when_json (f->export_ok_ms));
        json_object_set_new (exp, "last_good_ts", json_integer (f->export_ok_ms / 1000));
    }
    f->export_alert_after = c->cfg->notify.export_alert_after;
    json_object_set_new (j, "last_export", exp);
}

static void
status_targets (cs_control_t *c, cs_verdict_facts_t *f, json_t *j)
{
    cs_db_t *db = c->db;
    int64_t members = one_int (db, "SELECT count (*) FROM record", NULL);
    int64_t usable = one_int (db, "SELECT count (*) FROM record WHERE email IS NOT NULL", NULL);
    int64_t matched = one_int (db, "SELECT count (*) FROM target", NULL);
    int64_t in_sync = one_int (db, "SELECT count (*) FROM target WHERE sync = 'in_sync'", NULL);
    int64_t pending = one_int (db, "SELECT count (*) FROM target WHERE sync = 'pending'", NULL);
    int64_t held = one_int (db, "SELECT count (*) FROM target WHERE sync = 'held'", NULL);
    int64_t unmatched = one_int (db, "SELECT count (*) FROM notice WHERE kind = 'unmatched'", NULL);
    f->failed = one_int (db, "SELECT count (*) FROM failed", NULL);
    json_object_set_new (j, "members", json_integer (members));
    json_object_set_new (j, "members_with_email", json_integer (usable));
    json_object_set_new (j, "targets", json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I}", "matched", (json_int_t) matched,
                                                  "in_sync", (json_int_t) in_sync, "pending", (json_int_t) pending,
                                                  "failed", (json_int_t) f->failed, "held", (json_int_t) held,
                                                  "unmatched", (json_int_t) unmatched));
    json_t *retag = json_array ();
    sqlite3_stmt *st = cs_db_stmt (db, "SELECT device, employee_no, retag FROM target WHERE retag IS NOT NULL "
                                       "ORDER BY device, employee_no");
    int64_t retags = 0;
    while (st && sqlite3_step (st) == SQLITE_ROW)
        if (retags++ < TAGS_SHOWN)
            json_array_append_new (retag, json_pack ("{s:s, s:s, s:s}", "device", text (st, 0),
                                                     "employee_no", text (st, 1), "email", text (st, 2)));
    if (st)
        sqlite3_reset (st);
    json_object_set_new (j, "tags_to_update", retag);
    json_object_set_new (j, "tags_to_update_count", json_integer (retags));
    f->guard_held = one_int (db, "SELECT value FROM meta WHERE key = 'guard'", NULL);
    json_object_set_new (j, "guard_held", json_integer (f->guard_held));
    f->rebuilt = one_int (db, "SELECT value FROM meta WHERE key = 'rebuilt'", NULL) != 0;
    f->scan_interval = c->cfg->sync.scan_interval;
}

/* Each device's facts; the strings live in the answer (j) until the verdict is made. */
static void
status_devices (cs_control_t *c, cs_verdict_facts_t *f, cs_verdict_device_t *devs, json_t *j)
{
    json_t *devices = json_array ();
    json_object_set_new (j, "devices", devices);
    for (size_t i = 0; i < c->cfg->device_count; i++) {
        cs_verdict_device_t *v = &devs [i];
        v->name = c->cfg->devices [i].name;
        json_t *d = json_pack ("{s:s}", "name", v->name);
        json_array_append_new (devices, d);
        sqlite3_stmt *st = cs_db_stmt (c->db, "SELECT state, msg, until_ms FROM health WHERE device = ?1");
        if (st) {
            sqlite3_bind_text (st, 1, v->name, -1, SQLITE_STATIC);
            if (sqlite3_step (st) == SQLITE_ROW) {
                json_object_set_new (d, "health", json_string (text (st, 0)));
                if (*text (st, 1))
                    json_object_set_new (d, "msg", json_string (text (st, 1)));
                if (sqlite3_column_int64 (st, 2) > f->now_ms)
                    json_object_set_new (d, "paused_until", when_json (sqlite3_column_int64 (st, 2)));
            }
            sqlite3_reset (st);
        }
        v->health = json_string_value (json_object_get (d, "health"));
        v->msg = json_string_value (json_object_get (d, "msg"));
        if (!v->health)
            json_object_set_new (d, "health", json_string ("unknown"));
        st = cs_db_stmt (c->db, "SELECT ts, coalesce (capacity, 0) FROM scanned WHERE device = ?1");
        if (st) {
            sqlite3_bind_text (st, 1, v->name, -1, SQLITE_STATIC);
            if (sqlite3_step (st) == SQLITE_ROW) {
                v->scanned = 1;
                v->scan_ms = sqlite3_column_int64 (st, 0);
                v->capacity = sqlite3_column_int64 (st, 1);
            }
            sqlite3_reset (st);
        }
        json_object_set_new (d, "scanned", json_boolean (v->scanned));
        if (v->scan_ms) {
            json_object_set_new (d, "last_scan", when_json (v->scan_ms));
            json_object_set_new (d, "last_scan_ts", json_integer (v->scan_ms / 1000));
        }
        v->persons = one_int (c->db, "SELECT count (*) FROM person WHERE device = ?1", v->name);
        json_object_set_new (d, "persons", json_integer (v->persons));
        json_object_set_new (d, "managed", json_integer (one_int (c->db, "SELECT count (*) FROM target "
                                                                         "WHERE device = ?1", v->name)));
        /* its pusher's counters for this device since it started */
        int at = cs_config_site_index (c->cfg, v->name);
        json_t *from = at < 0 ? c->live->counters [CS_STAGE_PUSHER] : c->live->site_counters [at];
        json_t *pushed = json_object_get (json_object_get (from, "devices"), v->name);
        if (at >= 0)
            json_object_set_new (d, "site", json_string (c->cfg->sites [at].name));
        /* its health is as its pusher last told it: is that pusher still heard? (not
         * said in the first three heartbeat intervals, as for the stages) */
        int64_t heard = at < 0 ? c->live->beat_ms [CS_STAGE_PUSHER] : c->live->site_beat_ms [at];
        int64_t silent_after = 3LL * c->cfg->pipeline.heartbeat_interval * 1000;
        if (heard || f->now_ms - c->live->started_ms > silent_after)
            json_object_set_new (d, "pusher_alive", json_boolean (heard && f->now_ms - heard <= silent_after));
        if (json_is_object (pushed))
            json_object_set (d, "counters", pushed);
        if (v->capacity > 0)
            json_object_set_new (d, "capacity", json_integer (v->capacity));
    }
    f->devices = devs;
    f->device_count = c->cfg->device_count;
}

static void
say_attention (void *arg, const char *line)
{
    json_array_append_new (arg, json_string (line));
}

static json_t *
status_body (cs_control_t *c)
{
    json_t *j = json_object (), *need = json_array ();
    cs_verdict_facts_t f;
    memset (&f, 0, sizeof f);
    f.now_ms = zclock_time ();
    char export_msg [1200] = "";
    cs_verdict_device_t *devs = calloc (c->cfg->device_count ? c->cfg->device_count : 1, sizeof *devs);
    json_object_set_new (j, "differ_started", when_json (c->live->started_ms));
    status_liveness (c, &f, j);
    status_export (c, &f, j, export_msg, sizeof export_msg);
    status_targets (c, &f, j);
    if (devs)
        status_devices (c, &f, devs, j);
    else
        json_array_append_new (need, json_string ("out of memory"));
    cs_verdict (&f, say_attention, need);
    free (devs);
    json_object_set_new (j, "attention", need);
    return j;
}

/* --- lists --------------------------------------------------------------------------------- */

/* Sends rows in answers of at most CHUNK_BYTES each; head (may be NULL) goes
 * with the first. Takes both. */
typedef struct {
    cs_control_t *c;
    zframe_t *who;
    int64_t req;
    json_t *head;
    json_t *rows;
    size_t bytes;
} chunker_t;

static void
send_answer (cs_control_t *c, zframe_t *who, int64_t req, int ok, const char *err, json_t *body, int more)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_ANSWER);
    cs_msg_set_int (m, CS_F_REQ, req);
    cs_msg_set_bool (m, CS_F_OK, ok);
    if (err)
        cs_msg_set_str (m, CS_F_ERROR, err);
    if (body && cs_msg_set_doc (m, CS_F_BODY, body) != 0) {
        cs_msg_set_bool (m, CS_F_OK, 0);
        cs_msg_set_str (m, CS_F_ERROR, "the answer cannot be encoded");
    }
    if (more)
        cs_msg_set_bool (m, CS_F_MORE, 1);
    uint8_t *data;
    size_t size;
    cs_msg_error_t e;
    if (cs_msg_encode (m, &data, &size, &e) == 0) {
        zmsg_t *out = zmsg_new ();
        zframe_t *to = zframe_dup (who);
        zmsg_append (out, &to);
        zmsg_addmem (out, data, size);
        free (data);
        if (zmsg_send (&out, c->sock) != 0)
            zmsg_destroy (&out);    /* the asker is gone or not reading: dropped */
    }
    cs_msg_destroy (&m);
}

static void
chunk_flush (chunker_t *k, int more)
{
    json_t *body = k->head ? k->head : json_object ();
    k->head = NULL;
    json_object_set_new (body, "rows", k->rows);
    send_answer (k->c, k->who, k->req, 1, NULL, body, more);
    json_decref (body);
    k->rows = json_array ();
    k->bytes = 0;
}

static void
chunk_add (chunker_t *k, json_t *row)
{
    size_t n = json_dumpb (row, NULL, 0, JSON_COMPACT);
    if (k->bytes + n > CHUNK_BYTES && json_array_size (k->rows))
        chunk_flush (k, 1);
    json_array_append_new (k->rows, row);
    k->bytes += n;
}

static void
chunk_end (chunker_t *k)
{
    chunk_flush (k, 0);
    json_decref (k->rows);
}

static void
list_failed (cs_control_t *c, chunker_t *k)
{
    sqlite3_stmt *st = cs_db_stmt (c->db, "SELECT command_id, since_ms, coalesce (email, ''), device, "
                                          "employee_no, coalesce (class, ''), coalesce (msg, ''), "
                                          "coalesce (tries, 0) FROM failed ORDER BY since_ms, device, employee_no");
    while (st && sqlite3_step (st) == SQLITE_ROW)
        chunk_add (k, json_pack ("{s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:I}",
                                 "id", (json_int_t) sqlite3_column_int64 (st, 0),
                                 "when", when_json (sqlite3_column_int64 (st, 1)), "email", text (st, 2),
                                 "device", text (st, 3), "employee_no", text (st, 4), "class", text (st, 5),
                                 "msg", text (st, 6), "tries", (json_int_t) sqlite3_column_int64 (st, 7)));
    if (st)
        sqlite3_reset (st);
}

static void
list_held (cs_control_t *c, chunker_t *k)
{
    k->head = json_pack ("{s:I}", "held", (json_int_t) one_int (c->db, "SELECT value FROM meta WHERE key = 'guard'", NULL));
    sqlite3_stmt *st = cs_db_stmt (c->db, "SELECT device, employee_no, coalesce (email, ''), "
                                          "coalesce (end_time, '') FROM held ORDER BY device, email, employee_no");
    while (st && sqlite3_step (st) == SQLITE_ROW)
        chunk_add (k, json_pack ("{s:s, s:s, s:s, s:s}", "device", text (st, 0), "employee_no", text (st, 1),
                                 "email", text (st, 2), "end", text (st, 3)));
    if (st)
        sqlite3_reset (st);
}

/* An unmatched notice's key is "device|org:omid"; the member is looked up by
 * its key (the record's primary key). */
static void
list_unmatched (cs_control_t *c, chunker_t *k)
{
    zlistx_t *keys = zlistx_new ();
    zlistx_set_destructor (keys, (zlistx_destructor_fn *) zstr_free);
    sqlite3_stmt *st = cs_db_stmt (c->db, "SELECT key FROM notice WHERE kind = 'unmatched' ORDER BY key");
    while (st && sqlite3_step (st) == SQLITE_ROW)
        zlistx_add_end (keys, strdup (text (st, 0)));
    if (st)
        sqlite3_reset (st);
    for (char *key = zlistx_first (keys); key; key = zlistx_next (keys)) {
        char device [CS_DEVICE_NAME_MAX + 1];
        long long org = 0, omid = 0;
        const char *bar = strchr (key, '|');
        if (!bar || sscanf (bar + 1, "%lld:%lld", &org, &omid) != 2)
            continue;
        snprintf (device, sizeof device, "%.*s", (int) (bar - key), key);
        char email [600] = "", name [1100] = "";
        st = cs_db_stmt (c->db, "SELECT coalesce (email, ''), coalesce (first, ''), coalesce (last, '') "
                                "FROM record WHERE org = ?1 AND omid = ?2");
        if (st) {
            sqlite3_bind_int64 (st, 1, org);
            sqlite3_bind_int64 (st, 2, omid);
            if (sqlite3_step (st) == SQLITE_ROW) {
                snprintf (email, sizeof email, "%s", text (st, 0));
                snprintf (name, sizeof name, "%s%s%s", text (st, 1), *text (st, 1) && *text (st, 2) ? " " : "",
                          text (st, 2));
            }
            sqlite3_reset (st);
        }
        chunk_add (k, json_pack ("{s:s, s:I, s:I, s:s, s:s}", "device", device, "org", (json_int_t) org,
                                 "member_id", (json_int_t) omid, "email", email, "name", name));
    }
    zlistx_destroy (&keys);
}

/* Persons the device still admits whom no entitled member ties: staff,
 * strangers, and members whose revocation has not landed yet. */
static void
list_orphans (cs_control_t *c, chunker_t *k)
{
    time_t now = time (NULL);
    for (size_t i = 0; i < c->cfg->device_count; i++) {
        const cs_device_config_t *dev = &c->cfg->devices [i];
        char local [CS_TIME_LEN];
        if (cs_time_local (now, dev->timezone, local) != 0)
            continue;
        sqlite3_stmt *st = cs_db_stmt (c->db, "SELECT p.employee_no, coalesce (p.name, ''), coalesce (p.tag, ''), "
                                              "coalesce (p.enable, 0), coalesce (p.begin_time, ''), "
                                              "coalesce (p.end_time, ''), t.email, t.sync FROM person p "
                                              "LEFT JOIN target t USING (device, employee_no) WHERE p.device = ?1 "
                                              "AND t.revoke IS NOT 0 ORDER BY p.employee_no");
        if (!st)
            return;
        sqlite3_bind_text (st, 1, dev->name, -1, SQLITE_STATIC);
        while (sqlite3_step (st) == SQLITE_ROW) {
            int limited = sqlite3_column_int (st, 3);
            if (limited && (strcmp (text (st, 4), local) > 0 || strcmp (text (st, 5), local) < 0))
                continue;       /* not admitted now */
            int tied = sqlite3_column_type (st, 6) != SQLITE_NULL;
            char why [200];
            if (tied)
                snprintf (why, sizeof why, "the membership of %s ended; revocation %s", text (st, 6),
                          !strcmp (text (st, 7), "held") ? "held by the guard" : !strcmp (text (st, 7), "failed")
                          ? "failed (cardsync-auditor failed)" : "on its way");
            else
                snprintf (why, sizeof why, "tied to no member");
            chunk_add (k, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "device", dev->name,
                                     "employee_no", text (st, 0), "name", text (st, 1), "tag", text (st, 2),
                                     "until", limited ? text (st, 5) : "no limit", "why", why));
        }
        sqlite3_reset (st);
    }
}

/* One member (by e-mail, or org and member id): its record and the persons
 * tied to it on each device. */
static void
list_member (cs_control_t *c, chunker_t *k, const cs_msg_t *req)
{
    const char *email = cs_msg_str (req, CS_F_EMAIL);
    sqlite3_stmt *st = cs_db_stmt (c->db, email
                                   ? "SELECT org, omid, coalesce (email, ''), coalesce (first, ''), coalesce (last, ''), "
                                     "inactive, roles FROM record WHERE email = ?1 ORDER BY org, omid"
                                   : "SELECT org, omid, coalesce (email, ''), coalesce (first, ''), coalesce (last, ''), "
                                     "inactive, roles FROM record WHERE org = ?2 AND omid = ?3");
    if (!st)
        return;
    if (email)
        sqlite3_bind_text (st, 1, email, -1, SQLITE_STATIC);
    else {
        sqlite3_bind_int64 (st, 2, cs_msg_int (req, CS_F_ORG));
        sqlite3_bind_int64 (st, 3, cs_msg_int (req, CS_F_MID));
    }
    /* rows first, then their persons (a second statement may not run inside the first) */
    json_t *members = json_array ();
    while (sqlite3_step (st) == SQLITE_ROW)
        json_array_append_new (members, json_pack ("{s:I, s:I, s:s, s:s, s:s, s:b, s:s}",
                                                   "org", (json_int_t) sqlite3_column_int64 (st, 0),
                                                   "member_id", (json_int_t) sqlite3_column_int64 (st, 1),
                                                   "email", text (st, 2), "first", text (st, 3),
                                                   "last", text (st, 4), "inactive", sqlite3_column_int (st, 5),
                                                   "roles", text (st, 6)));
    sqlite3_reset (st);
    size_t i;
    json_t *m;
    json_array_foreach (members, i, m) {
        json_t *persons = json_array ();
        st = cs_db_stmt (c->db, "SELECT t.device, t.employee_no, t.rule, coalesce (t.via, ''), "
                                "coalesce (g.sync, ''), coalesce (g.begin_time, ''), coalesce (g.end_time, ''), "
                                "coalesce (p.end_time, ''), coalesce (g.retag, '') FROM tie t "
                                "LEFT JOIN target g USING (device, employee_no) "
                                "LEFT JOIN person p USING (device, employee_no) "
                                "WHERE t.org = ?1 AND t.omid = ?2 ORDER BY t.device, t.employee_no");
        if (st) {
            sqlite3_bind_int64 (st, 1, json_integer_value (json_object_get (m, "org")));
            sqlite3_bind_int64 (st, 2, json_integer_value (json_object_get (m, "member_id")));
            while (sqlite3_step (st) == SQLITE_ROW)
                json_array_append_new (persons, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                                           "device", text (st, 0), "employee_no", text (st, 1),
                                                           "rule", text (st, 2), "via", text (st, 3),
                                                           "sync", text (st, 4), "begin", text (st, 5),
                                                           "end", text (st, 6), "device_end", text (st, 7),
                                                           "retag", text (st, 8)));
            sqlite3_reset (st);
        }
        json_object_set_new (m, "persons", persons);
        chunk_add (k, json_incref (m));
    }
    json_decref (members);
}

/* --- requests ----------------------------------------------------------------------------- */

static void
answer (cs_control_t *c, zframe_t *who, const cs_msg_t *req)
{
    const char *op = cs_msg_str (req, CS_F_OP);
    int64_t id = cs_msg_int (req, CS_F_REQ);
    if (c->live->damaged) {
        /* nothing in state.db can be trusted: status says so, the rest is refused */
        if (strcmp (op, "status")) {
            send_answer (c, who, id, 0, c->live->db_error, NULL, 0);
            return;
        }
        json_t *body = json_pack ("{s:o, s:s, s:[s]}", "differ_started", when_json (c->live->started_ms),
                                  "state_db", c->live->db_error, "attention", c->live->db_error);
        send_answer (c, who, id, 1, NULL, body, 0);
        json_decref (body);
        return;
    }
    chunker_t k = { c, who, id, NULL, json_array (), 0 };
    if (!strcmp (op, "status")) {
        json_t *body = status_body (c);
        send_answer (c, who, id, 1, NULL, body, 0);
        json_decref (body);
        json_decref (k.rows);
        return;
    }
    if (!strcmp (op, "replay") || !strcmp (op, "approve")) {
        json_t *body = NULL;
        char err [400] = "";
        int rc = !strcmp (op, "replay") ? cs_state_replay (c->state, req, &body, err, sizeof err)
                                        : cs_state_approve (c->state, req, &body, err, sizeof err);
        send_answer (c, who, id, rc == 0, rc == 0 ? NULL : err, body, 0);
        json_decref (body);
        json_decref (k.rows);
        return;
    }
    if (!strcmp (op, "failed"))
        list_failed (c, &k);
    else if (!strcmp (op, "held"))
        list_held (c, &k);
    else if (!strcmp (op, "unmatched"))
        list_unmatched (c, &k);
    else if (!strcmp (op, "orphans"))
        list_orphans (c, &k);
    else if (!strcmp (op, "member") && (cs_msg_has (req, CS_F_EMAIL) || cs_msg_has (req, CS_F_MID)))
        list_member (c, &k, req);
    else {
        char err [120];
        snprintf (err, sizeof err, "'%s' is not a request this differ answers", op);
        send_answer (c, who, id, 0, err, NULL, 0);
        json_decref (k.rows);
        return;
    }
    chunk_end (&k);
}

void
cs_control_handle (cs_control_t *self)
{
    for (int i = 0; i < 100; i++) {
        zmsg_t *in = NULL;
        if (zsock_events (self->sock) & ZMQ_POLLIN)
            in = zmsg_recv (self->sock);
        if (!in)
            return;
        zframe_t *who = zmsg_pop (in);
        zframe_t *body = zmsg_pop (in);
        cs_msg_error_t err;
        cs_msg_t *req = who && body && zmsg_size (in) == 0
                        ? cs_msg_decode (zframe_data (body), zframe_size (body), &err) : NULL;
        if (req && cs_msg_type (req) == CS_MSG_REQUEST)
            answer (self, who, req);
        else if (who) {
            char why [200];
            snprintf (why, sizeof why, "not a request: %s", req ? cs_msg_type_name (cs_msg_type (req))
                      : body && zmsg_size (in) == 0 ? err.text : "a message of the wrong shape");
            send_answer (self, who, req ? cs_msg_int (req, CS_F_REQ) : 0, 0, why, NULL, 0);
        }
        cs_msg_destroy (&req);
        zframe_destroy (&who);
        zframe_destroy (&body);
        zmsg_destroy (&in);
    }
}
