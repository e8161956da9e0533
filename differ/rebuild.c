/* cardsync-differ --rebuild: the way out of a damaged state.db. */
#include "differ/rebuild.h"
#include "differ/store.h"
#include "common/zmq.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
cs_state_check (const char *path, char *why, size_t why_size)
{
    if (access (path, F_OK) != 0)
        return 0;               /* a new one will be made */
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2 (db, "PRAGMA quick_check", -1, &st, NULL);
    int damaged = 0;
    if (rc == SQLITE_OK && sqlite3_step (st) == SQLITE_ROW) {
        const char *first = (const char *) sqlite3_column_text (st, 0);
        damaged = !first || strcmp (first, "ok") != 0;
        if (damaged)
            snprintf (why, why_size, "%s", first ? first : "quick_check says nothing");
    }
    else {
        int code = db ? sqlite3_errcode (db) : rc;
        damaged = code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
        snprintf (why, why_size, "%s", db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
        if (!damaged) {
            sqlite3_finalize (st);
            sqlite3_close (db);
            return -1;
        }
    }
    sqlite3_finalize (st);
    sqlite3_close (db);
    return damaged;
}

/* Is a differ answering on its control socket? */
static int
differ_running (const cs_config_t *cfg)
{
    char error [512];
    cs_zmq_t *zmq = cs_zmq_new (&cfg->pipeline, error, sizeof error);
    zsock_t *sock = zmq ? cs_zmq_connect (zmq, ZMQ_DEALER, cfg->pipeline.differ_ctl, 0, error, sizeof error) : NULL;
    int running = 0;
    if (sock) {
        zmq_pollitem_t out = { zsock_resolve (sock), 0, ZMQ_POLLOUT, 0 };
        running = zmq_poll (&out, 1, 1000) == 1;
        zsock_set_linger (sock, 0);
    }
    zsock_destroy (&sock);
    cs_zmq_destroy (&zmq);
    return running;
}

/* Moves path (and its -wal and -shm) aside, with suffix. */
static int
move_aside (const char *path, const char *suffix, char *error, size_t error_size)
{
    static const char *const tails [] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        char from [4300], to [4400];
        snprintf (from, sizeof from, "%s%s", path, tails [i]);
        snprintf (to, sizeof to, "%s%s%s", path, suffix, tails [i]);
        if (access (from, F_OK) == 0 && rename (from, to) != 0) {
            snprintf (error, error_size, "cannot move %.1000s to %.1000s: %s", from, to, strerror (errno));
            return -1;
        }
    }
    return 0;
}

int
cs_rebuild (const cs_config_t *cfg, cs_log_t *log, char *msg, size_t msg_size)
{
    char path [4200], audit_path [4200], error [9000];
    snprintf (path, sizeof path, "%s/state.db", cfg->pipeline.state_dir);
    snprintf (audit_path, sizeof audit_path, "%s/audit.db", cfg->pipeline.state_dir);
    if (differ_running (cfg)) {
        snprintf (msg, msg_size, "a differ is running (it answers on %s); stop the group first "
                  "(supervisorctl stop cardsync:)", cfg->pipeline.differ_ctl);
        return EX_TEMPFAIL;
    }
    /* the audit, read-only: the one time another program reads it */
    sqlite3 *audit = NULL;
    if (access (audit_path, R_OK) != 0
        || sqlite3_open_v2 (audit_path, &audit, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf (msg, msg_size, "cannot read %s: the ties are rebuilt from the audit", audit_path);
        sqlite3_close (audit);
        return EX_UNAVAILABLE;
    }
    sqlite3_stmt *st = NULL;
    int64_t last_seq = 0;
    if (sqlite3_prepare_v2 (audit, "SELECT coalesce (max (seq), 0) FROM event", -1, &st, NULL) == SQLITE_OK
        && sqlite3_step (st) == SQLITE_ROW)
        last_seq = sqlite3_column_int64 (st, 0);
    sqlite3_finalize (st);
    st = NULL;
    if (sqlite3_prepare_v2 (audit, "SELECT kind, device, employee_no, org, member_id, rule, coalesce (email, '') "
                                   "FROM event WHERE kind IN ('tied', 'untied') AND device IS NOT NULL "
                                   "AND employee_no IS NOT NULL AND org IS NOT NULL AND member_id IS NOT NULL "
                                   "AND rule IS NOT NULL ORDER BY seq",
                            -1, &st, NULL) != SQLITE_OK) {
        snprintf (msg, msg_size, "%s: %s", audit_path, sqlite3_errmsg (audit));
        sqlite3_close (audit);
        return EX_DATAERR;
    }
    char suffix [64];
    time_t now = time (NULL);
    strftime (suffix, sizeof suffix, ".damaged-%Y%m%d-%H%M%S", localtime (&now));
    if (move_aside (path, suffix, error, sizeof error) != 0) {
        snprintf (msg, msg_size, "%s", error);
        sqlite3_finalize (st);
        sqlite3_close (audit);
        return EX_CANTCREAT;
    }
    cs_store_t *store = cs_store_open (path, log, error, sizeof error);
    cs_db_t *db = store ? cs_store_db (store) : NULL;
    int rc = db && cs_db_exec (db, "BEGIN") == 0 ? 0 : -1;
    while (rc == 0 && sqlite3_step (st) == SQLITE_ROW) {
        int made = !strcmp ((const char *) sqlite3_column_text (st, 0), "tied");
        sqlite3_stmt *w = cs_db_stmt (db, made ? "INSERT INTO tie VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING"
                                               : "DELETE FROM tie WHERE device = ?1 AND employee_no = ?2 "
                                                 "AND org = ?3 AND omid = ?4");
        rc = w ? 0 : -1;
        if (w) {
            for (int i = 1; i <= (made ? 6 : 4); i++)
                sqlite3_bind_value (w, i, sqlite3_column_value (st, i));
            rc = cs_db_step_done (db, w);
        }
    }
    sqlite3_finalize (st);
    sqlite3_close (audit);
    /* events go on after the last one the audit holds; nothing is planned
     * until a full export and a scan of every device have come */
    if (rc == 0) {
        sqlite3_stmt *seq = cs_db_stmt (db, "INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?1)");
        rc = seq ? 0 : -1;
        if (seq) {
            sqlite3_bind_int64 (seq, 1, last_seq);
            rc = cs_db_step_done (db, seq);
        }
    }
    if (rc == 0)
        rc = cs_store_set_meta (store, "acked", last_seq) || cs_store_set_meta (store, "rebuilt", 1)
             || cs_db_exec (db, "COMMIT") ? -1 : 0;
    if (rc != 0) {
        snprintf (msg, msg_size, "rebuilding %s failed: %s", path, db ? cs_db_errmsg (db) : error);
        cs_store_destroy (&store);
        return EX_CANTCREAT;
    }
    int64_t kept = cs_store_count (store, "SELECT count (*) FROM tie", NULL);
    cs_store_destroy (&store);
    snprintf (msg, msg_size, "rebuilt %s with %lld ties from the audit (the damaged file is %s%s); "
              "start the group: nothing is planned until a full export and a complete scan of "
              "every device have arrived", path, (long long) kept, path, suffix);
    return 0;
}
