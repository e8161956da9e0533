#include "harness.h"
#include "common/db.h"

#include <sys/stat.h>
#include <unistd.h>

static const char *SCHEMA [] = {
    "CREATE TABLE member (email TEXT PRIMARY KEY, end_time TEXT NOT NULL);",
    "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    "CREATE INDEX member_end ON member (end_time);",
};

static cs_db_t *
open_db (const char *name)
{
    char path [512], error [256];
    snprintf (path, sizeof path, "%s/%s", cs_test_dir (), name);
    cs_db_t *db = cs_db_open (path, error, sizeof error);
    if (!db)
        cs_test_fail (__FILE__, __LINE__, "open: %s", error);
    return db;
}

static long long
count (cs_db_t *db, const char *sql)
{
    sqlite3_stmt *stmt = cs_db_stmt (db, sql);
    if (!stmt || sqlite3_step (stmt) != SQLITE_ROW)
        return -1;
    long long n = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    return n;
}

TEST (opens_in_wal_and_migrates)
{
    cs_db_t *db = open_db ("state.db");
    REQUIRE (db);
    sqlite3_stmt *stmt = cs_db_stmt (db, "PRAGMA journal_mode");
    REQUIRE (stmt && sqlite3_step (stmt) == SQLITE_ROW);
    CHECK_STR ((const char *) sqlite3_column_text (stmt, 0), "wal");
    sqlite3_reset (stmt);
    CHECK_INT (count (db, "PRAGMA synchronous"), 2);       /* FULL */
    CHECK_INT (count (db, "PRAGMA foreign_keys"), 1);
    CHECK_INT (cs_db_version (db), 0);
    CHECK (cs_db_migrate (db, SCHEMA, 1) == 0);
    CHECK_INT (cs_db_version (db), 1);
    CHECK (cs_db_migrate (db, SCHEMA, 2) == 0);
    CHECK_INT (cs_db_version (db), 2);
    CHECK (cs_db_migrate (db, SCHEMA, 2) == 0);             /* idempotent */
    CHECK_INT (count (db, "SELECT count(*) FROM outbox"), 0);
    cs_db_destroy (&db);
    CHECK (db == NULL);
    cs_db_destroy (&db);
    /* reopened, the version stays */
    db = open_db ("state.db");
    CHECK_INT (cs_db_version (db), 2);
    cs_db_destroy (&db);
}

TEST (refuses_newer_schema)
{
    cs_db_t *db = open_db ("state.db");
    REQUIRE (db);
    CHECK (cs_db_exec (db, "PRAGMA user_version=9") == 0);
    CHECK (cs_db_migrate (db, SCHEMA, 2) == -1);
    CHECK_HAS (cs_db_errmsg (db), "schema is version 9 but this program knows only up to 2");
    cs_db_destroy (&db);
}

TEST (failed_migration_changes_nothing)
{
    static const char *bad [] = {
        "CREATE TABLE a (x);",
        "CREATE TABLE b (y); CREATE TABLE oops (;",
    };
    cs_db_t *db = open_db ("state.db");
    REQUIRE (db);
    CHECK (cs_db_migrate (db, bad, 2) == -1);
    CHECK_HAS (cs_db_errmsg (db), "migration to schema version 2 failed");
    CHECK_HAS (cs_db_errmsg (db), "syntax error");
    CHECK_INT (cs_db_version (db), 1);
    CHECK_INT (count (db, "SELECT count(*) FROM sqlite_master WHERE name='b'"), 0);
    cs_db_destroy (&db);
}

typedef struct {
    int rows;
    int fail_after;
} insert_job_t;

static int
insert_rows (cs_db_t *db, void *arg)
{
    insert_job_t *job = arg;
    for (int i = 0; i < job->rows; i++) {
        if (i == job->fail_after)
            return -1;
        sqlite3_stmt *stmt = cs_db_stmt (db, "INSERT INTO member (email, end_time) VALUES (?, ?)");
        if (!stmt)
            return -1;
        char email [64];
        snprintf (email, sizeof email, "m%d@club.se", i);
        sqlite3_bind_text (stmt, 1, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (stmt, 2, "2025-11-01T23:59:59", -1, SQLITE_STATIC);
        if (cs_db_step_done (db, stmt) != 0)
            return -1;
    }
    return 0;
}

TEST (transaction_all_or_nothing)
{
    cs_db_t *db = open_db ("state.db");
    REQUIRE (db && cs_db_migrate (db, SCHEMA, 2) == 0);
    insert_job_t ok = { 100, -1 };
    CHECK (cs_db_transaction (db, insert_rows, &ok) == 0);
    CHECK_INT (count (db, "SELECT count(*) FROM member"), 100);
    /* a change that gives up half way leaves the state as it was */
    CHECK (cs_db_exec (db, "DELETE FROM member") == 0);
    insert_job_t half = { 100, 50 };
    CHECK (cs_db_transaction (db, insert_rows, &half) == -1);
    CHECK_HAS (cs_db_errmsg (db), "abandoned");
    CHECK_INT (count (db, "SELECT count(*) FROM member"), 0);
    /* a write the database refuses (a constraint) also rolls everything back */
    CHECK (cs_db_exec (db, "CREATE TRIGGER no_more BEFORE INSERT ON member "
                           "WHEN (SELECT count(*) FROM member) >= 30 "
                           "BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END;") == 0);
    insert_job_t refused = { 100, -1 };
    CHECK (cs_db_transaction (db, insert_rows, &refused) == -1);
    CHECK_HAS (cs_db_errmsg (db), "disk full (simulated)");
    CHECK_INT (count (db, "SELECT count(*) FROM member"), 0);
    /* and the connection is usable afterwards */
    insert_job_t few = { 10, -1 };
    CHECK (cs_db_transaction (db, insert_rows, &few) == 0);
    CHECK_INT (count (db, "SELECT count(*) FROM member"), 10);
    cs_db_destroy (&db);
}

TEST (busy_database_times_out_cleanly)
{
    cs_db_t *a = open_db ("shared.db");
    cs_db_t *b = open_db ("shared.db");
    REQUIRE (a && b);
    CHECK (cs_db_migrate (a, SCHEMA, 2) == 0);
    CHECK (cs_db_exec (a, "BEGIN IMMEDIATE") == 0);
    cs_db_set_busy_timeout (b, 50);
    insert_job_t job = { 1, -1 };
    CHECK (cs_db_transaction (b, insert_rows, &job) == -1);
    CHECK_HAS (cs_db_errmsg (b), "locked");
    CHECK (cs_db_exec (a, "COMMIT") == 0);
    CHECK (cs_db_transaction (b, insert_rows, &job) == 0);
    /* readers see committed data while a writer works (WAL) */
    CHECK (cs_db_exec (a, "BEGIN IMMEDIATE; DELETE FROM member;") == 0);
    CHECK_INT (count (b, "SELECT count(*) FROM member"), 1);
    CHECK (cs_db_exec (a, "ROLLBACK") == 0);
    cs_db_destroy (&a);
    cs_db_destroy (&b);
}

TEST (statement_cache)
{
    cs_db_t *db = open_db ("state.db");
    REQUIRE (db && cs_db_migrate (db, SCHEMA, 2) == 0);
    sqlite3_stmt *one = cs_db_stmt (db, "SELECT count(*) FROM member");
    char copy [64];
    snprintf (copy, sizeof copy, "SELECT count(*) FROM member");
    CHECK (cs_db_stmt (db, copy) == one);                 /* same text, same statement */
    CHECK (cs_db_stmt (db, "SELECT x FROM nowhere") == NULL);
    CHECK_HAS (cs_db_errmsg (db), "no such table: nowhere");
    /* more statements than the cache holds still all work */
    for (int i = 0; i < 200; i++) {
        char sql [64];
        snprintf (sql, sizeof sql, "SELECT %d", i);
        sqlite3_stmt *stmt = cs_db_stmt (db, sql);
        REQUIRE (stmt && sqlite3_step (stmt) == SQLITE_ROW);
        CHECK_INT (sqlite3_column_int (stmt, 0), i);
    }
    cs_db_destroy (&db);
}

TEST (open_errors)
{
    char error [256];
    cs_db_t *db = cs_db_open ("/nonexistent/dir/state.db", error, sizeof error);
    CHECK (db == NULL);
    CHECK_HAS (error, "/nonexistent/dir/state.db: cannot open");
    /* a file that is not a database */
    const char *junk = cs_test_write ("junk.db", "this is not an SQLite database, not at all......"
                                      "................................................\n");
    db = cs_db_open (junk, error, sizeof error);
    CHECK (db == NULL);
    CHECK_HAS (error, "junk.db");
    cs_db_destroy (&db);
}
