#include "auditor/commands.h"
#include "auditor/tail.h"
#include "common/cli.h"
#include "common/db.h"
#include "common/email.h"
#include "common/zmq.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* state.db or audit.db of this config, opened only if it exists. */
static cs_db_t *
open_existing (const cs_config_t *cfg, const char *name)
{
    char path [4200], error [512];
    snprintf (path, sizeof path, "%s/%s", cfg->pipeline.state_dir, name);
    if (access (path, R_OK) != 0) {
        fprintf (stderr, "cardsync-auditor: %s does not exist yet; has the %s run?\n", path,
                 strcmp (name, "state.db") ? "auditor" : "differ");
        return NULL;
    }
    cs_db_t *db = cs_db_open (path, error, sizeof error);
    if (!db)
        fprintf (stderr, "cardsync-auditor: %s\n", error);
    return db;
}

/* A command's usage: on stdout when asked for with --help (exit 0), else on
 * stderr (exit 64). */
static int
usage (const char *text, int argc, const char **argv)
{
    int asked = argc >= 1 && !strcmp (argv [0], "--help");
    fputs (text, asked ? stdout : stderr);
    return asked ? 0 : EX_USAGE;
}

/* A command that takes at most one flag: *set tells whether it was given;
 * -1 for anything else. */
static int
only_flag (int argc, const char **argv, const char *flag, int *set)
{
    *set = argc == 1 && !strcmp (argv [0], flag);
    return argc > 1 || (argc == 1 && !*set) ? -1 : 0;
}

static void
when (int64_t ms, char out [32])
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    strftime (out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}

static const char *
text (sqlite3_stmt *st, int col)
{
    const char *v = (const char *) sqlite3_column_text (st, col);
    return v ? v : "";
}

int
cs_cmd_failed (const cs_config_t *cfg, int argc, const char **argv)
{
    int json;
    if (only_flag (argc, argv, "--json", &json) != 0) {
        const char *text = "usage: cardsync-auditor failed [--json]\n"
                 "The failed queue: what could not be written, with the device's own words.\n"
                 "example: cardsync-auditor failed; then: cardsync-auditor replay --all\n";
        return usage (text, argc, argv);
    }
    cs_db_t *db = open_existing (cfg, "state.db");
    if (!db)
        return EX_UNAVAILABLE;
    sqlite3_stmt *st = cs_db_stmt (db, "SELECT command_id, since_ms, email, device, employee_no, "
                                       "class, msg, tries FROM failed ORDER BY since_ms, email");
    int n = 0;
    if (!json)
        printf ("%-6s  %-19s  %-30s  %-8s  %-8s  %-10s  %5s  %s\n", "id", "when", "member",
                "device", "person", "class", "tries", "the device said");
    while (st && sqlite3_step (st) == SQLITE_ROW) {
        n++;
        char w [32];
        when (sqlite3_column_int64 (st, 1), w);
        if (json) {
            json_t *j = json_pack ("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
                                   "id", (json_int_t) sqlite3_column_int64 (st, 0), "when", w,
                                   "email", text (st, 2), "device", text (st, 3),
                                   "employee_no", text (st, 4), "class", text (st, 5),
                                   "msg", text (st, 6), "tries", (json_int_t) sqlite3_column_int64 (st, 7));
            char *s = json_dumps (j, JSON_COMPACT);
            printf ("%s\n", s);
            free (s);
            json_decref (j);
        }
        else
            printf ("%-6lld  %-19s  %-30s  %-8s  %-8s  %-10s  %5lld  %s\n",
                    (long long) sqlite3_column_int64 (st, 0), w, text (st, 2), text (st, 3),
                    text (st, 4), text (st, 5), (long long) sqlite3_column_int64 (st, 7), text (st, 6));
    }
    if (st)
        sqlite3_reset (st);
    if (!json)
        printf ("%d failed\n", n);
    cs_db_destroy (&db);
    return 0;
}

static int64_t
one_int (cs_db_t *db, const char *sql)
{
    sqlite3_stmt *st = cs_db_stmt (db, sql);
    int64_t v = 0;
    if (st && sqlite3_step (st) == SQLITE_ROW)
        v = sqlite3_column_int64 (st, 0);
    if (st)
        sqlite3_reset (st);
    return v;
}

/* A count from a one-parameter query on db. */
static int64_t
count_for (cs_db_t *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = db ? cs_db_stmt (db, sql) : NULL;
    int64_t v = 0;
    if (st) {
        sqlite3_bind_text (st, 1, arg, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
            v = sqlite3_column_int64 (st, 0);
        sqlite3_reset (st);
    }
    return v;
}

static void
attention (json_t *list, const char *fmt, ...)
{
    char line [600];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    json_array_append_new (list, json_string (line));
}

/* Everything `status` says, as one JSON object. */
static json_t *
gather_status (const cs_config_t *cfg, cs_db_t *state, cs_db_t *audit)
{
    json_t *j = json_object (), *need = json_array ();
    int64_t now = zclock_time ();
    json_t *exp = json_object ();
    sqlite3_stmt *st = audit ? cs_db_stmt (audit, "SELECT ts, state, count, msg FROM event "
                                                  "WHERE kind = 'cycle' ORDER BY seq DESC LIMIT 1") : NULL;
    if (st && sqlite3_step (st) == SQLITE_ROW) {
        char w [32];
        when (sqlite3_column_int64 (st, 0), w);
        json_object_set_new (exp, "when", json_string (w));
        json_object_set_new (exp, "result", json_string (text (st, 1)));
        json_object_set_new (exp, "members", json_integer (sqlite3_column_int64 (st, 2)));
        json_object_set_new (exp, "msg", json_string (text (st, 3)));
        if (!strcmp (text (st, 1), "ignored"))
            attention (need, "the last export was ignored: %s", text (st, 3));
    }
    else
        attention (need, "no export has arrived yet");
    if (st)
        sqlite3_reset (st);
    st = audit ? cs_db_stmt (audit, "SELECT max (ts) FROM event WHERE kind = 'cycle' AND state != 'ignored'") : NULL;
    if (st && sqlite3_step (st) == SQLITE_ROW && sqlite3_column_type (st, 0) != SQLITE_NULL) {
        int64_t good = sqlite3_column_int64 (st, 0);
        char w [32];
        when (good, w);
        json_object_set_new (exp, "last_good", json_string (w));
        if (now - good > (int64_t) cfg->notify.export_alert_after * 1000)
            attention (need, "no good export since %s (export_alert_after is %d s)", w,
                       cfg->notify.export_alert_after);
    }
    if (st)
        sqlite3_reset (st);
    json_object_set_new (j, "last_export", exp);

    /* persons, as the differ's planner left them: each tied person's sync state */
    int64_t members = one_int (state, "SELECT count (*) FROM record");
    int64_t usable = one_int (state, "SELECT count (*) FROM record WHERE email IS NOT NULL");
    int64_t matched = one_int (state, "SELECT count (*) FROM target");
    int64_t in_sync = one_int (state, "SELECT count (*) FROM target WHERE sync = 'in_sync'");
    int64_t pending = one_int (state, "SELECT count (*) FROM target WHERE sync = 'pending'");
    int64_t held = one_int (state, "SELECT count (*) FROM target WHERE sync = 'held'");
    int64_t failed = one_int (state, "SELECT count (*) FROM failed");
    int64_t unmatched = one_int (state, "SELECT count (*) FROM notice WHERE kind = 'unmatched'");
    json_object_set_new (j, "members", json_integer (members));
    json_object_set_new (j, "members_with_email", json_integer (usable));
    json_object_set_new (j, "targets", json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I}", "matched", (json_int_t) matched,
                                                  "in_sync", (json_int_t) in_sync, "pending", (json_int_t) pending,
                                                  "failed", (json_int_t) failed, "held", (json_int_t) held,
                                                  "unmatched", (json_int_t) unmatched));
    if (failed)
        attention (need, "%lld failed target%s (cardsync-auditor failed; then replay)", (long long) failed,
                   failed == 1 ? "" : "s");
    /* persons still tied to a member whose e-mail their tag no longer holds */
    json_t *retag = json_array ();
    st = cs_db_stmt (state, "SELECT device, employee_no, retag FROM target WHERE retag IS NOT NULL "
                            "ORDER BY device, employee_no");
    while (st && sqlite3_step (st) == SQLITE_ROW)
        json_array_append_new (retag, json_pack ("{s:s, s:s, s:s}", "device", text (st, 0),
                                                 "employee_no", text (st, 1), "email", text (st, 2)));
    if (st)
        sqlite3_reset (st);
    json_object_set_new (j, "tags_to_update", retag);

    json_t *devices = json_array ();
    for (size_t i = 0; i < cfg->device_count; i++) {
        const char *name = cfg->devices [i].name;
        json_t *d = json_pack ("{s:s}", "name", name);
        st = cs_db_stmt (state, "SELECT state, msg, until_ms FROM health WHERE device = ?1");
        const char *health = "unknown";
        if (st) {
            sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step (st) == SQLITE_ROW) {
                json_object_set_new (d, "health", json_string (text (st, 0)));
                if (*text (st, 1))
                    json_object_set_new (d, "msg", json_string (text (st, 1)));
                if (sqlite3_column_int64 (st, 2) > now) {
                    char w [32];
                    when (sqlite3_column_int64 (st, 2), w);
                    json_object_set_new (d, "paused_until", json_string (w));
                }
            }
            sqlite3_reset (st);
        }
        if (json_object_get (d, "health"))
            health = json_string_value (json_object_get (d, "health"));
        else
            json_object_set_new (d, "health", json_string (health));
        if (strcmp (health, "ok"))
            attention (need, "device %s: %s%s%s", name, !strcmp (health, "unknown")
                       ? "no word from the pusher yet" : health,
                       json_object_get (d, "msg") ? ": " : "",
                       json_object_get (d, "msg") ? json_string_value (json_object_get (d, "msg")) : "");
        st = audit ? cs_db_stmt (audit, "SELECT ts FROM event WHERE kind = 'scan' AND state = 'ok' "
                                        "AND device = ?1 ORDER BY seq DESC LIMIT 1") : NULL;
        if (st) {
            sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step (st) == SQLITE_ROW) {
                char w [32];
                when (sqlite3_column_int64 (st, 0), w);
                json_object_set_new (d, "last_scan", json_string (w));
            }
            sqlite3_reset (st);
        }
        json_object_set_new (d, "scanned", json_boolean (count_for (state, "SELECT count (*) FROM scanned "
                                                                           "WHERE device = ?1", name)));
        int64_t persons = count_for (state, "SELECT count (*) FROM person WHERE device = ?1", name);
        int64_t capacity = count_for (state, "SELECT coalesce (capacity, 0) FROM scanned WHERE device = ?1", name);
        json_object_set_new (d, "persons", json_integer (persons));
        if (capacity > 0) {
            json_object_set_new (d, "capacity", json_integer (capacity));
            if (persons * 100 >= capacity * 95)
                attention (need, "device %s is %lld%% full (%lld of %lld persons)", name,
                           (long long) (persons * 100 / capacity), (long long) persons, (long long) capacity);
        }
        json_array_append_new (devices, d);
    }
    json_object_set_new (j, "devices", devices);
    int64_t guard = one_int (state, "SELECT value FROM meta WHERE key = 'guard'");
    json_object_set_new (j, "guard_held", json_integer (guard));
    if (guard)
        attention (need, "the guard holds back %lld revocations (cardsync-auditor approve)", (long long) guard);
    json_object_set_new (j, "outbox", json_integer (one_int (state, "SELECT count (*) FROM outbox")));
    json_object_set_new (j, "attention", need);
    return j;
}

int
cs_cmd_status (const cs_config_t *cfg, int argc, const char **argv)
{
    int json;
    if (only_flag (argc, argv, "--json", &json) != 0) {
        const char *text = "usage: cardsync-auditor status [--json]\n"
                 "The last export, members and targets by state, each device's health, the guard,\n"
                 "the events not yet in the audit. Exits 0 when all is well, 1 when something\n"
                 "needs attention (listed last), 69 when there is no state yet: usable as a\n"
                 "health check.\n"
                 "example: cardsync-auditor status || mail -s 'cardsync needs attention' root\n";
        return usage (text, argc, argv);
    }
    cs_db_t *state = open_existing (cfg, "state.db");
    if (!state)
        return EX_UNAVAILABLE;
    cs_db_t *audit = open_existing (cfg, "audit.db");
    json_t *j = gather_status (cfg, state, audit);
    cs_db_destroy (&audit);
    cs_db_destroy (&state);
    json_t *need = json_object_get (j, "attention");
    int rc = json_array_size (need) ? 1 : 0;
    if (json) {
        char *s = json_dumps (j, JSON_COMPACT);
        printf ("%s\n", s);
        free (s);
        json_decref (j);
        return rc;
    }
    json_t *e = json_object_get (j, "last_export"), *t = json_object_get (j, "targets");
#define S(o, k) (json_string_value (json_object_get (o, k)) ? json_string_value (json_object_get (o, k)) : "")
#define I(o, k) ((long long) json_integer_value (json_object_get (o, k)))
    if (json_object_get (e, "when"))
        printf ("last export:   %s  %s, %lld members%s%s\n", S (e, "when"), S (e, "result"),
                I (e, "members"), *S (e, "msg") ? ": " : "", S (e, "msg"));
    else
        printf ("last export:   none yet\n");
    printf ("members:       %lld (%lld with a usable e-mail)\n", I (j, "members"), I (j, "members_with_email"));
    printf ("persons:       %lld tied to members: %lld in sync, %lld pending, %lld failed, %lld held by "
            "the guard; %lld unmatched\n", I (t, "matched"), I (t, "in_sync"), I (t, "pending"), I (t, "failed"),
            I (t, "held"), I (t, "unmatched"));
    size_t k;
    json_t *r;
    json_array_foreach (json_object_get (j, "tags_to_update"), k, r) {
        if (k == 0)
            printf ("tags to update (the member's e-mail changed; the person stays tied):\n");
        printf ("  %-12s person %-10s should be tagged %s\n", S (r, "device"), S (r, "employee_no"),
                S (r, "email"));
    }
    printf ("devices:\n");
    size_t i;
    json_t *d;
    json_array_foreach (json_object_get (j, "devices"), i, d) {
        char paused [64] = "";
        if (json_object_get (d, "paused_until"))
            snprintf (paused, sizeof paused, " (paused until %s)", S (d, "paused_until"));
        char capacity [48] = "";
        if (I (d, "capacity"))
            snprintf (capacity, sizeof capacity, " of %lld", I (d, "capacity"));
        printf ("  %-12s %s%s%s%s; last scan %s, %lld persons%s%s\n", S (d, "name"), S (d, "health"),
                *S (d, "msg") ? ": " : "", S (d, "msg"), paused,
                json_object_get (d, "last_scan") ? S (d, "last_scan") : "never", I (d, "persons"),
                capacity, json_is_true (json_object_get (d, "scanned")) ? "" : " (not scanned yet)");
    }
    if (I (j, "guard_held"))
        printf ("guard:         TRIPPED: %lld revocations held back (cardsync-auditor approve)\n",
                I (j, "guard_held"));
    else
        printf ("guard:         clear\n");
    printf ("failed queue:  %lld%s\n", I (t, "failed"), I (t, "failed") ? " (cardsync-auditor failed; then replay)" : "");
    printf ("outbox:        %lld event%s not yet acknowledged by the auditor\n", I (j, "outbox"),
            I (j, "outbox") == 1 ? "" : "s");
#undef S
#undef I
    json_t *a;
    if (json_array_size (need)) {
        printf ("attention:\n");
        json_array_foreach (need, i, a)
            printf ("  - %s\n", json_string_value (a));
    }
    else
        printf ("all well\n");
    json_decref (j);
    return rc;
}

int
cs_cmd_history (const cs_config_t *cfg, int argc, const char **argv)
{
    char email [CS_EMAIL_MAX + 1];
    if (argc < 1 || !strcmp (argv [0], "--help") || cs_email_normalize (argv [0], email) != CS_EMAIL_OK) {
        const char *text = "usage: cardsync-auditor history EMAIL [--json]\n"
                 "Everything the audit holds about one member.\n"
                 "example: cardsync-auditor history asa.oberg@example.se\n";
        return usage (text, argc, argv);
    }
    const char *args [8] = { "--email", email, "-n", "1000000" };
    int n = 4;
    for (int i = 1; i < argc && n < 8; i++)
        args [n++] = argv [i];
    return cs_tail_run (cfg, n, args);
}

/* Sends m to the differ and waits until the audit holds an event of this
 * kind answering request req; returns audit.db open, or NULL (said why). */
static cs_db_t *
ask_differ (const cs_config_t *cfg, const char *command, cs_msg_t *m, int64_t req, const char *kind)
{
    char error [512];
    cs_zmq_t *zmq = cs_zmq_new (&cfg->pipeline, error, sizeof error);
    zsock_t *out = zmq ? cs_zmq_connect (zmq, ZMQ_PUSH, cfg->pipeline.differ_in, 0, error, sizeof error) : NULL;
    if (!out) {
        fprintf (stderr, "cardsync-auditor %s: %s\n", command, error);
        cs_zmq_destroy (&zmq);
        return NULL;
    }
    cs_zmq_send (out, m, NULL);
    /* the differ answers through the audit */
    int done = 0;
    int64_t deadline = zclock_mono () + 15000;
    cs_db_t *audit = NULL;
    while (!done && zclock_mono () < deadline && !cs_zmq_interrupted ()) {
        if (!audit) {
            char path [4200];
            snprintf (path, sizeof path, "%s/audit.db", cfg->pipeline.state_dir);
            if (access (path, R_OK) == 0)
                audit = cs_db_open (path, error, sizeof error);
        }
        sqlite3_stmt *st = audit ? cs_db_stmt (audit, "SELECT 1 FROM event WHERE kind = ?1 AND req = ?2") : NULL;
        if (st) {
            sqlite3_bind_text (st, 1, kind, -1, SQLITE_STATIC);
            sqlite3_bind_int64 (st, 2, req);
            done = sqlite3_step (st) == SQLITE_ROW;
            sqlite3_reset (st);
        }
        if (!done)
            zclock_sleep (200);
    }
    zsock_destroy (&out);
    cs_zmq_destroy (&zmq);
    if (!done) {
        fprintf (stderr, "cardsync-auditor %s: no answer from the differ in 15 s; are the differ "
                 "and the auditor running? (supervisorctl status cardsync:)\n", command);
        cs_db_destroy (&audit);
    }
    return audit;
}

int
cs_cmd_replay (const cs_config_t *cfg, int argc, const char **argv)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_REPLAY);
    int64_t req = zclock_time ();
    cs_msg_set_int (m, CS_F_REQ, req);
    int what = 0;
    char email [CS_EMAIL_MAX + 1];
    for (int i = 0; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc ? argv [i + 1] : NULL;
        char *end;
        long long id = strtoll (a, &end, 10);
        if (!strcmp (a, "--all"))
            what += cs_msg_set_bool (m, CS_F_ALL, 1) == 0;
        else if (!strcmp (a, "--email") && v && cs_email_normalize (v, email) == CS_EMAIL_OK) {
            what += cs_msg_set_str (m, CS_F_EMAIL, email) == 0;
            i++;
        }
        else if (!strcmp (a, "--device") && v) {
            what += cs_msg_set_str (m, CS_F_DEV, v) == 0;
            i++;
        }
        else if (*a && !*end && id > 0)
            what += cs_msg_add_id (m, (uint64_t) id) == 0;
        else {
            what = -1000;
            break;
        }
    }
    if (what <= 0) {
        const char *text = "usage: cardsync-auditor replay (--all | ID... | --email E | --device D)\n"
                 "Sends the current desired state of failed targets again (IDs from `failed`).\n"
                 "example: cardsync-auditor replay --device door1\n";
        cs_msg_destroy (&m);
        return usage (text, argc, argv);
    }
    cs_db_t *audit = ask_differ (cfg, "replay", m, req, "replay");
    cs_msg_destroy (&m);
    if (!audit)
        return EX_TEMPFAIL;
    sqlite3_stmt *st = cs_db_stmt (audit, "SELECT kind, email, device, command_id FROM event "
                                          "WHERE req = ?1 AND kind IN ('replayed', 'superseded') ORDER BY seq");
    int n = 0;
    sqlite3_bind_int64 (st, 1, req);
    while (sqlite3_step (st) == SQLITE_ROW) {
        n++;
        if (!strcmp (text (st, 0), "replayed"))
            printf ("re-sent     %-8s %s (command %lld)\n", text (st, 2), text (st, 1),
                    (long long) sqlite3_column_int64 (st, 3));
        else
            printf ("superseded  %-8s %s: the device already has, or no longer needs, "
                    "what failed\n", text (st, 2), text (st, 1));
    }
    sqlite3_reset (st);
    printf ("%d failed target%s replayed; watch them with: cardsync-auditor tail -f\n", n,
            n == 1 ? "" : "s");
    cs_db_destroy (&audit);
    return 0;
}

int
cs_cmd_approve (const cs_config_t *cfg, int argc, const char **argv)
{
    int yes;
    if (only_flag (argc, argv, "--yes", &yes) != 0) {
        const char *text = "usage: cardsync-auditor approve [--yes]\n"
                 "Shows the revocations a tripped guard holds back and, once confirmed, lets the\n"
                 "differ send them. --yes confirms without asking (for scripts).\n"
                 "example: cardsync-auditor approve\n";
        return usage (text, argc, argv);
    }
    cs_db_t *state = open_existing (cfg, "state.db");
    if (!state)
        return EX_UNAVAILABLE;
    int64_t held = one_int (state, "SELECT value FROM meta WHERE key = 'guard'");
    if (held == 0) {
        printf ("the guard is clear: no revocation waits for approval\n");
        cs_db_destroy (&state);
        return 0;
    }
    printf ("%-8s  %-10s  %-30s  %s\n", "device", "person", "member", "admitted until now");
    sqlite3_stmt *st = cs_db_stmt (state, "SELECT device, employee_no, email, end_time FROM held "
                                          "ORDER BY device, email");
    while (st && sqlite3_step (st) == SQLITE_ROW)
        printf ("%-8s  %-10s  %-30s  %s\n", text (st, 0), text (st, 1), text (st, 2), text (st, 3));
    if (st)
        sqlite3_reset (st);
    cs_db_destroy (&state);
    printf ("%lld revocation%s held back by the guard: these persons would no longer be admitted\n"
            "(their validity would end yesterday).\n", (long long) held, held == 1 ? "" : "s");
    if (!yes) {
        printf ("Send them? Type yes to confirm: ");
        fflush (stdout);
        char answer [16] = "";
        if (!fgets (answer, sizeof answer, stdin) || strcmp (answer, "yes\n") != 0) {
            printf ("\nnot approved; nothing sent\n");
            return 1;
        }
    }
    cs_msg_t *m = cs_msg_new (CS_MSG_APPROVE);
    int64_t req = zclock_time ();
    cs_msg_set_int (m, CS_F_REQ, req);
    cs_msg_set_int (m, CS_F_COUNT, held);
    cs_db_t *audit = ask_differ (cfg, "approve", m, req, "guard");
    cs_msg_destroy (&m);
    if (!audit)
        return EX_TEMPFAIL;
    st = cs_db_stmt (audit, "SELECT state, msg FROM event WHERE kind = 'guard' AND req = ?1");
    int rc = EX_TEMPFAIL;
    if (st) {
        sqlite3_bind_int64 (st, 1, req);
        if (sqlite3_step (st) == SQLITE_ROW) {
            rc = strcmp (text (st, 0), "approved") ? EX_TEMPFAIL : 0;
            if (rc == 0)
                printf ("approved: %s; watch them with: cardsync-auditor tail -f --type applied\n",
                        text (st, 1));
            else
                fprintf (stderr, "cardsync-auditor approve: %s\n", text (st, 1));
        }
        sqlite3_reset (st);
    }
    cs_db_destroy (&audit);
    return rc;
}
