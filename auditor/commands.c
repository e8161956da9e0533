#include "auditor/commands.h"
#include "auditor/tail.h"
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
    int json = argc > 0 && !strcmp (argv [0], "--json");
    if (argc > (json ? 1 : 0)) {
        fprintf (stderr, "usage: cardsync-auditor failed [--json]\n"
                 "The failed queue: what could not be written, with the device's own words.\n"
                 "example: cardsync-auditor failed; then: cardsync-auditor replay --all\n");
        return strcmp (argv [0], "--help") ? EX_USAGE : 0;
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

int
cs_cmd_status (const cs_config_t *cfg, int argc, const char **argv)
{
    if (argc > 0) {
        fprintf (stderr, "usage: cardsync-auditor status\n"
                 "The last export, members and targets by state, each device's health, the guard.\n");
        return strcmp (argv [0], "--help") ? EX_USAGE : 0;
    }
    cs_db_t *state = open_existing (cfg, "state.db");
    if (!state)
        return EX_UNAVAILABLE;
    cs_db_t *audit = open_existing (cfg, "audit.db");
    if (audit) {
        sqlite3_stmt *st = cs_db_stmt (audit, "SELECT ts, state, count, msg FROM event "
                                              "WHERE kind = 'cycle' ORDER BY seq DESC LIMIT 1");
        if (st && sqlite3_step (st) == SQLITE_ROW) {
            char w [32];
            when (sqlite3_column_int64 (st, 0), w);
            printf ("last export:   %s  %s, %lld members%s%s\n", w, text (st, 1),
                    (long long) sqlite3_column_int64 (st, 2), *text (st, 3) ? ": " : "", text (st, 3));
        }
        else
            printf ("last export:   none yet\n");
        if (st)
            sqlite3_reset (st);
    }
    printf ("members:       %lld (%lld with a usable e-mail)\n",
            (long long) one_int (state, "SELECT count (DISTINCT omid) FROM record"),
            (long long) one_int (state, "SELECT count (DISTINCT email) FROM record WHERE email IS NOT NULL"));
    int64_t matched = one_int (state, "SELECT count (*) FROM identity");
    int64_t pending = one_int (state, "SELECT count (DISTINCT device || employee_no) FROM command WHERE state = 'pending'");
    int64_t failed = one_int (state, "SELECT count (*) FROM failed");
    int64_t unmatched = one_int (state, "SELECT count (*) FROM notice WHERE kind = 'unmatched'");
    printf ("targets:       %lld matched: %lld in sync, %lld pending, %lld failed; %lld unmatched\n",
            (long long) matched, (long long) (matched - pending - failed > 0 ? matched - pending - failed : 0),
            (long long) pending, (long long) failed, (long long) unmatched);
    printf ("devices:\n");
    for (size_t i = 0; i < cfg->device_count; i++) {
        const char *name = cfg->devices [i].name;
        sqlite3_stmt *st = cs_db_stmt (state, "SELECT state, msg, until_ms FROM health WHERE device = ?1");
        char health [600] = "unknown (no word from the pusher yet)";
        if (st) {
            sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step (st) == SQLITE_ROW)
                snprintf (health, sizeof health, "%s%s%s", text (st, 0), *text (st, 1) ? ": " : "",
                          text (st, 1));
            sqlite3_reset (st);
        }
        char scanned [64] = "never";
        st = cs_db_stmt (state, "SELECT count (*) FROM scanned WHERE device = ?1");
        int was_scanned = 0;
        if (st) {
            sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
            was_scanned = sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int64 (st, 0) > 0;
            sqlite3_reset (st);
        }
        st = audit ? cs_db_stmt (audit, "SELECT ts FROM event WHERE kind = 'scan' AND state = 'ok' "
                                        "AND device = ?1 ORDER BY seq DESC LIMIT 1") : NULL;
        if (st) {
            sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step (st) == SQLITE_ROW)
                when (sqlite3_column_int64 (st, 0), scanned);
            sqlite3_reset (st);
        }
        st = cs_db_stmt (state, "SELECT count (*) FROM person WHERE device = ?1");
        int64_t persons = 0;
        if (st) {
            sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step (st) == SQLITE_ROW)
                persons = sqlite3_column_int64 (st, 0);
            sqlite3_reset (st);
        }
        printf ("  %-12s %s; last scan %s, %lld persons%s\n", name, health, scanned,
                (long long) persons, was_scanned ? "" : " (not scanned yet)");
    }
    int64_t guard = one_int (state, "SELECT value FROM meta WHERE key = 'guard'");
    if (guard)
        printf ("guard:         TRIPPED: %lld revocations held back\n", (long long) guard);
    else
        printf ("guard:         clear\n");
    printf ("failed queue:  %lld%s\n", (long long) failed,
            failed ? " (cardsync-auditor failed; then replay)" : "");
    cs_db_destroy (&audit);
    cs_db_destroy (&state);
    return 0;
}

int
cs_cmd_history (const cs_config_t *cfg, int argc, const char **argv)
{
    char email [CS_EMAIL_MAX + 1];
    if (argc < 1 || !strcmp (argv [0], "--help") || cs_email_normalize (argv [0], email) != CS_EMAIL_OK) {
        fprintf (stderr, "usage: cardsync-auditor history EMAIL [--json]\n"
                 "Everything the audit holds about one member.\n"
                 "example: cardsync-auditor history asa.oberg@example.se\n");
        return argc >= 1 && !strcmp (argv [0], "--help") ? 0 : EX_USAGE;
    }
    const char *args [8] = { "--email", email, "-n", "1000000" };
    int n = 4;
    for (int i = 1; i < argc && n < 8; i++)
        args [n++] = argv [i];
    return cs_tail_run (cfg, n, args);
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
        fprintf (stderr, "usage: cardsync-auditor replay (--all | ID... | --email E | --device D)\n"
                 "Sends the current desired state of failed targets again (IDs from `failed`).\n"
                 "example: cardsync-auditor replay --device door1\n");
        cs_msg_destroy (&m);
        return argc == 1 && !strcmp (argv [0], "--help") ? 0 : EX_USAGE;
    }
    char error [512];
    cs_zmq_t *zmq = cs_zmq_new (&cfg->pipeline, error, sizeof error);
    zsock_t *out = zmq ? cs_zmq_connect (zmq, ZMQ_PUSH, cfg->pipeline.differ_in, 0, error, sizeof error) : NULL;
    if (!out) {
        fprintf (stderr, "cardsync-auditor replay: %s\n", error);
        cs_msg_destroy (&m);
        cs_zmq_destroy (&zmq);
        return EX_UNAVAILABLE;
    }
    cs_zmq_send (out, m, NULL);
    cs_msg_destroy (&m);
    /* the differ answers through the audit: wait for its 'replay' event */
    int rc = EX_TEMPFAIL;
    int64_t deadline = zclock_mono () + 15000;
    cs_db_t *audit = NULL;
    while (zclock_mono () < deadline && !cs_zmq_interrupted ()) {
        if (!audit) {
            char path [4200];
            snprintf (path, sizeof path, "%s/audit.db", cfg->pipeline.state_dir);
            if (access (path, R_OK) == 0)
                audit = cs_db_open (path, error, sizeof error);
        }
        sqlite3_stmt *st = audit ? cs_db_stmt (audit, "SELECT count FROM event WHERE kind = 'replay' AND req = ?1") : NULL;
        int done = 0;
        if (st) {
            sqlite3_bind_int64 (st, 1, req);
            done = sqlite3_step (st) == SQLITE_ROW;
            sqlite3_reset (st);
        }
        if (done) {
            st = cs_db_stmt (audit, "SELECT kind, email, device, command_id FROM event "
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
            rc = 0;
            break;
        }
        zclock_sleep (200);
    }
    if (rc != 0)
        fprintf (stderr, "cardsync-auditor replay: no answer from the differ in 15 s; are the "
                 "differ and the auditor running?\n");
    cs_db_destroy (&audit);
    zsock_destroy (&out);
    cs_zmq_destroy (&zmq);
    return rc;
}
