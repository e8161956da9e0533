/* state.db's migrations: a database written by the release before ties
 * by member (schema 7) opens, and what it remembered is kept - identities as
 * ties to (organisation, member id), the failed queue by person. */
#include "harness.h"
#include "differ/store.h"

#include <sqlite3.h>

static void
make_v7 (const char *path)
{
    sqlite3 *db = NULL;
    int steps;
    const char *const *schema = cs_store_schema (&steps);
    REQUIRE (steps > 7 && sqlite3_open (path, &db) == SQLITE_OK);
    for (int i = 0; i < 7; i++)        /* schema 7, as that release created it */
        REQUIRE (sqlite3_exec (db, schema [i], NULL, NULL, NULL) == SQLITE_OK);
    REQUIRE (sqlite3_exec (db,
        "INSERT INTO record VALUES (1234, 1001, 'asa@x.se', 'Asa@x.se', 'A', 'B', 0, '3126:2026-01-01:2026-12-31');"
        "INSERT INTO record VALUES (1234, 1002, 'fam@x.se', 'fam@x.se', 'C', 'D', 0, '3126:2026-01-01:2026-12-31');"
        "INSERT INTO record VALUES (1240, 1002, 'fam@x.se', 'fam@x.se', 'C', 'D', 0, '4001:2026-01-01:2026-12-31');"
        "INSERT INTO identity VALUES ('asa@x.se', 'door1', '1001', 'tag');"
        "INSERT INTO identity VALUES ('fam@x.se', 'door1', '7001', 'map');"
        "INSERT INTO identity VALUES ('gone@x.se', 'door1', '9009', 'tag');"
        "INSERT INTO command (device, employee_no, email, op, name, begin_time, end_time, state, created_ms)"
        "  VALUES ('door1', '1001', 'asa@x.se', 'set', '', '2026-01-01T00:00:00', '2026-12-31T23:59:59', 'failed', 1);"
        "INSERT INTO failed VALUES ('asa@x.se', 'door1', '1001', 1, 'invalid', 'Invalid Content', 1, 5);"
        "INSERT INTO notice VALUES ('unmatched', 'bo@x.se|door1');"
        "PRAGMA user_version = 7;", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close (db);
}

static char *
one (cs_db_t *db, const char *sql)
{
    static char out [512];
    sqlite3_stmt *st = cs_db_stmt (db, sql);
    out [0] = 0;
    size_t len = 0;
    while (st && sqlite3_step (st) == SQLITE_ROW && len + 1 < sizeof out) {
        const char *v = (const char *) sqlite3_column_text (st, 0);
        len += (size_t) snprintf (out + len, sizeof out - len, "%s%s", len ? " " : "", v ? v : "NULL");
    }
    if (st)
        sqlite3_reset (st);
    return out;
}

TEST (schema_7_migrates_keeping_ties_and_failures)
{
    char path [512];
    snprintf (path, sizeof path, "%s/state.db", cs_test_dir ());
    make_v7 (path);
    char error [512] = "";
    cs_store_t *s = cs_store_open (path, NULL, error, sizeof error);
    if (!s)
        cs_test_fail (__FILE__, __LINE__, "open: %s", error);
    REQUIRE (s);
    cs_db_t *db = cs_store_db (s);
    /* a remembered identity is a tie to every member with that e-mail; one
     * whose member is gone from the export cannot be placed and is dropped */
    CHECK_STR (one (db, "SELECT device || ':' || employee_no || '=' || org || ':' || omid || '/' || rule "
                        "|| '/' || via FROM tie ORDER BY employee_no, org"),
               "door1:1001=1234:1001/tag/asa@x.se door1:7001=1234:1002/map/fam@x.se "
               "door1:7001=1240:1002/map/fam@x.se");
    CHECK_STR (one (db, "SELECT device || ':' || employee_no || ' ' || class || ' ' || email FROM failed"),
               "door1:1001 invalid asa@x.se");
    CHECK_STR (one (db, "SELECT count (*) FROM target"), "0");
    CHECK_STR (one (db, "SELECT count (*) FROM notice WHERE kind = 'unmatched'"), "0");
    CHECK_STR (one (db, "SELECT org IS NULL AND tag IS NULL FROM command"), "1");
    cs_store_destroy (&s);
    /* and it opens again at the new version without migrating twice */
    s = cs_store_open (path, NULL, error, sizeof error);
    REQUIRE (s);
    CHECK_STR (one (cs_store_db (s), "SELECT count (*) FROM tie"), "3");
    cs_store_destroy (&s);
}

/* Addresses stored in the ASCII-only form of schema 9 and before take the
 * Unicode normal form: ties, the failed queue, targets, commands, held
 * revocations and duplicate notices keep finding their member. */
TEST (schema_9_addresses_take_the_unicode_form)
{
    char path [512], error [512] = "";
    snprintf (path, sizeof path, "%s/state.db", cs_test_dir ());
    cs_store_t *s = cs_store_open (path, NULL, error, sizeof error);
    REQUIRE (s);
    /* the old normaliser lower-cased ASCII letters only */
    REQUIRE (cs_db_exec (cs_store_db (s),
        "INSERT INTO record VALUES (1, 1, 'Åsa@fÖrening.se', 'ÅSA@FÖRENING.SE', 'A', 'B', 0, '');"
        "INSERT INTO record VALUES (1, 2, 'bo@xn--frening-90a.se', 'bo@xn--frening-90a.se', 'B', 'C', 0, '');"
        "INSERT INTO record VALUES (1, 3, 'plain@club.se', 'Plain@club.se', 'C', 'D', 0, '');"
        "INSERT INTO record VALUES (1, 4, 'x@xn--zz.se', 'x@xn--zz.se', 'D', 'E', 0, '');"
        "INSERT INTO tie VALUES ('door1', '5001', 1, 1, 'tag', 'Åsa@fÖrening.se');"
        "INSERT INTO failed (device, employee_no, email, class) VALUES ('door1', '5001', 'a\xCC\x8A" "sa@förening.se', 'invalid');"
        "INSERT INTO target VALUES ('door1', '5001', 1, 1, 'bo@xn--frening-90a.se', NULL, 0, 0, '', '', 'x');"
        "INSERT INTO command (device, employee_no, email, op, begin_time, end_time, state, created_ms)"
        "  VALUES ('door1', '5001', 'Åsa@fÖrening.se', 'set', '', '', 'pending', 1);"
        "INSERT INTO held VALUES ('door1', '5002', 'bo@xn--frening-90a.se', '', '');"
        "INSERT INTO notice VALUES ('duplicate', 'Åsa@fÖrening.se');"
        "PRAGMA user_version = 9;") == 0);
    cs_store_destroy (&s);
    s = cs_store_open (path, NULL, error, sizeof error);
    if (!s)
        cs_test_fail (__FILE__, __LINE__, "open: %s", error);
    REQUIRE (s);
    cs_db_t *db = cs_store_db (s);
    CHECK_STR (one (db, "SELECT email FROM record ORDER BY omid"),
               "åsa@förening.se bo@förening.se plain@club.se x@xn--zz.se");
    CHECK_STR (one (db, "SELECT via FROM tie"), "åsa@förening.se");
    CHECK_STR (one (db, "SELECT email FROM failed"), "åsa@förening.se");
    CHECK_STR (one (db, "SELECT email FROM target"), "bo@förening.se");
    CHECK_STR (one (db, "SELECT email FROM command"), "åsa@förening.se");
    CHECK_STR (one (db, "SELECT email FROM held"), "bo@förening.se");
    CHECK_STR (one (db, "SELECT key FROM notice WHERE kind = 'duplicate'"), "åsa@förening.se");
    cs_store_destroy (&s);
}

TEST (a_newer_database_is_refused)
{
    char path [512];
    snprintf (path, sizeof path, "%s/state.db", cs_test_dir ());
    sqlite3 *db = NULL;
    REQUIRE (sqlite3_open (path, &db) == SQLITE_OK);
    REQUIRE (sqlite3_exec (db, "PRAGMA user_version = 99;", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close (db);
    char error [512] = "";
    cs_store_t *s = cs_store_open (path, NULL, error, sizeof error);
    CHECK (s == NULL);
    CHECK_HAS (error, "version 99");
    cs_store_destroy (&s);
}

TEST (an_ack_beyond_anything_sent_is_ignored)
{
    char path [512], error [512] = "";
    snprintf (path, sizeof path, "%s/state.db", cs_test_dir ());
    cs_store_t *s = cs_store_open (path, NULL, error, sizeof error);
    REQUIRE (s);
    for (int i = 0; i < 3; i++)
        CHECK_INT (cs_store_emit (s, cs_event_new (CS_EV_CYCLE)), 0);
    CHECK_INT (cs_store_last_seq (s), 3);
    CHECK_INT (cs_store_ack (s, INT64_MAX), 0);
    CHECK_INT (cs_store_acked (s), 0);              /* not believed */
    CHECK_INT (cs_store_ack (s, 2), 0);
    CHECK_INT (cs_store_acked (s), 2);
    CHECK_STR (one (cs_store_db (s), "SELECT count (*) FROM outbox"), "1");
    CHECK_INT (cs_store_ack (s, 4), 0);             /* one past the last: still never sent */
    CHECK_INT (cs_store_acked (s), 2);
    cs_store_destroy (&s);
    /* and after a restart, as stored */
    s = cs_store_open (path, NULL, error, sizeof error);
    REQUIRE (s);
    CHECK_INT (cs_store_acked (s), 2);
    cs_store_destroy (&s);
}

/* An ack below what the auditor acknowledged before: its file was lost.
 * The events it held and the outbox no longer has are named once in an
 * audit_gap event [first, last]; the acknowledged mark does not go back. */
TEST (an_ack_below_the_acknowledged_names_the_lost_events_once)
{
    char path [512], error [512] = "";
    snprintf (path, sizeof path, "%s/state.db", cs_test_dir ());
    cs_store_t *s = cs_store_open (path, NULL, error, sizeof error);
    REQUIRE (s);
    for (int i = 0; i < 5; i++)
        CHECK_INT (cs_store_emit (s, cs_event_new (CS_EV_CYCLE)), 0);
    CHECK_INT (cs_store_ack (s, 4), 0);
    cs_store_set_now (s, 12345);
    CHECK_INT (cs_store_ack (s, 0), 0);             /* a new, empty audit file */
    CHECK_INT (cs_store_acked (s), 4);
    CHECK_INT (cs_store_last_seq (s), 6);
    cs_msg_t **evs = NULL;
    size_t n = 0;
    REQUIRE (cs_store_events_after (s, 5, 10, &evs, &n) == 0);
    REQUIRE (n == 1);
    CHECK_STR (cs_msg_str (evs [0], CS_F_KIND), "audit_gap");
    CHECK_INT (cs_msg_id_count (evs [0]), 2);
    CHECK_INT (cs_msg_id (evs [0], 0), 1);
    CHECK_INT (cs_msg_id (evs [0], 1), 4);
    CHECK_INT (cs_msg_int (evs [0], CS_F_COUNT), 4);
    cs_msg_destroy (&evs [0]);
    free (evs);
    CHECK_INT (cs_store_ack (s, 0), 0);             /* said once */
    CHECK_INT (cs_store_last_seq (s), 6);
    CHECK_INT (cs_store_meta (s, "audit_gap_ms"), 12345);  /* status shows it for a day */
    cs_store_destroy (&s);
}

/* The command window: at most 100 out per device; topped up only once half
 * of it is done (one write transaction per half window, not one a result);
 * a command whose lease ran out goes again. */
static size_t
due (cs_store_t *s, const cs_config_t *cfg, int64_t now)
{
    cs_msg_t **msgs = NULL;
    size_t n = 0;
    REQUIRE (cs_store_due_commands (s, cfg, now, &msgs, &n) == 0);
    for (size_t i = 0; i < n; i++)
        cs_msg_destroy (&msgs [i]);
    free (msgs);
    return n;
}

TEST (the_command_window_is_topped_up_once_half_is_done)
{
    char path [512], error [512] = "";
    snprintf (path, sizeof path, "%s/state.db", cs_test_dir ());
    cs_store_t *s = cs_store_open (path, NULL, error, sizeof error);
    REQUIRE (s);
    cs_db_t *db = cs_store_db (s);
    REQUIRE (cs_db_exec (db,
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 180) "
        "INSERT INTO command (device, employee_no, email, op, name, begin_time, end_time, state, created_ms) "
        "SELECT 'door1', i, 'm' || i || '@x.se', 'set', '', '2026-01-01T00:00:00', "
        "'2026-12-31T23:59:59', 'pending', 1 FROM n") == 0);
    cs_device_config_t dev = { .name = "door1" };
    cs_config_t cfg = { .devices = &dev, .device_count = 1 };
    cfg.sync.lease = 60;
    int64_t t = 1000000;
    CHECK_INT (due (s, &cfg, t), 100);              /* the first window */
    CHECK_INT (due (s, &cfg, t + 1), 0);
    REQUIRE (cs_db_exec (db, "UPDATE command SET state = 'done' WHERE id <= 49") == 0);
    CHECK_INT (due (s, &cfg, t + 2), 0);            /* 51 still out: not yet */
    REQUIRE (cs_db_exec (db, "UPDATE command SET state = 'done' WHERE id = 50") == 0);
    CHECK_INT (due (s, &cfg, t + 3), 50);           /* half done: back to 100 out */
    CHECK_STR (one (db, "SELECT min (id) FROM command WHERE sent_ms = 1000003"), "101");
    CHECK_STR (one (db, "SELECT max (id) FROM command WHERE sent_ms = 1000003"), "150");
    /* 51..100 ran out of their lease (101..150 not yet): those go again first */
    CHECK_INT (due (s, &cfg, t + 60 * 1000 + 1), 50);
    CHECK_STR (one (db, "SELECT count (*) FROM command WHERE sent_ms = 1060001 AND id BETWEEN 51 AND 100"), "50");
    cs_store_destroy (&s);
}
