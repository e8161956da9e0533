#include "common/db.h"
#include "common/email.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 64

typedef struct {
    char *sql;                  /* the statement's text */
    sqlite3_stmt *stmt;
} cached_t;

struct _cs_db_t {
    sqlite3 *handle;            /* the connection */
    char *path;                 /* for messages */
    char error [512];           /* the last failure */
    cached_t cache [STMT_CACHE];/* prepared statements */
    size_t cached;              /* entries used */
};

static void
fail (cs_db_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
fail (cs_db_t *self, const char *fmt, ...)
{
    char what [384];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (what, sizeof what, fmt, ap);
    va_end (ap);
    snprintf (self->error, sizeof self->error, "%s: %s", self->path, what);
}

/* SQL cs_email (x): x's normal form (common/email.h), or NULL if x is not an
 * address; for migrations that bring stored addresses to a new form. */
static void
sql_email (sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void) argc;
    const char *in = (const char *) sqlite3_value_text (argv [0]);
    char norm [CS_EMAIL_MAX + 1];
    if (in && cs_email_normalize (in, norm) == CS_EMAIL_OK)
        sqlite3_result_text (ctx, norm, -1, SQLITE_TRANSIENT);
    else
        sqlite3_result_null (ctx);
}

cs_db_t *
cs_db_open (const char *path, char *error, size_t error_size)
{
    cs_db_t *self = calloc (1, sizeof *self);
    if (!self || !(self->path = strdup (path))) {
        snprintf (error, error_size, "%s: out of memory", path);
        free (self);
        return NULL;
    }
    int rc = sqlite3_open_v2 (path, &self->handle,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                              NULL);
    if (rc != SQLITE_OK) {
        snprintf (error, error_size, "%s: cannot open: %s", path,
                  self->handle ? sqlite3_errmsg (self->handle) : sqlite3_errstr (rc));
        cs_db_destroy (&self);
        return NULL;
    }
    sqlite3_extended_result_codes (self->handle, 1);
    sqlite3_create_function (self->handle, "cs_email", 1,
                             SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                             sql_email, NULL, NULL);
    sqlite3_busy_timeout (self->handle, CS_DB_BUSY_TIMEOUT_MS);
    /* journal_mode answers with a row: check it really is WAL */
    sqlite3_stmt *stmt = NULL;
    int wal = 0;
    if (sqlite3_prepare_v2 (self->handle, "PRAGMA journal_mode=WAL", -1, &stmt, NULL) == SQLITE_OK
        && sqlite3_step (stmt) == SQLITE_ROW)
        wal = strcmp ((const char *) sqlite3_column_text (stmt, 0), "wal") == 0;
    sqlite3_finalize (stmt);
    if (!wal || cs_db_exec (self, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;") != 0) {
        snprintf (error, error_size, "%s: cannot set up (WAL journal): %s", path,
                  sqlite3_errmsg (self->handle));
        cs_db_destroy (&self);
        return NULL;
    }
    return self;
}

void
cs_db_destroy (cs_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_db_t *self = *self_p;
    for (size_t i = 0; i < self->cached; i++) {
        sqlite3_finalize (self->cache [i].stmt);
        free (self->cache [i].sql);
    }
    if (self->handle)
        sqlite3_close (self->handle);
    free (self->path);
    free (self);
    *self_p = NULL;
}

sqlite3 *
cs_db_handle (cs_db_t *self)
{
    return self->handle;
}

const char *
cs_db_errmsg (const cs_db_t *self)
{
    return self->error;
}

void
cs_db_set_busy_timeout (cs_db_t *self, int ms)
{
    sqlite3_busy_timeout (self->handle, ms);
}

int
cs_db_exec (cs_db_t *self, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec (self->handle, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail (self, "%s", msg ? msg : sqlite3_errmsg (self->handle));
        sqlite3_free (msg);
        return -1;
    }
    return 0;
}

int
cs_db_version (cs_db_t *self)
{
    sqlite3_stmt *stmt = NULL;
    int version = -1;
    if (sqlite3_prepare_v2 (self->handle, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK
        && sqlite3_step (stmt) == SQLITE_ROW)
        version = sqlite3_column_int (stmt, 0);
    else
        fail (self, "cannot read the schema version: %s", sqlite3_errmsg (self->handle));
    sqlite3_finalize (stmt);
    return version;
}

typedef struct {
    const char *sql;
    int version;
} step_t;

static int
run_step (cs_db_t *db, void *arg)
{
    step_t *step = arg;
    char pragma [64];
    snprintf (pragma, sizeof pragma, "PRAGMA user_version=%d", step->version);
    return cs_db_exec (db, step->sql) == 0 && cs_db_exec (db, pragma) == 0 ? 0 : -1;
}

int
cs_db_migrate (cs_db_t *self, const char *const *steps, int count)
{
    int version = cs_db_version (self);
    if (version < 0)
        return -1;
    if (version > count) {
        fail (self, "the schema is version %d but this program knows only up to %d; "
              "run the newer cardsync or restore a backup", version, count);
        return -1;
    }
    for (int i = version; i < count; i++) {
        step_t step = { steps [i], i + 1 };
        if (cs_db_transaction (self, run_step, &step) != 0) {
            char why [512];
            snprintf (why, sizeof why, "%s", self->error);
            fail (self, "migration to schema version %d failed: %s", i + 1, why);
            return -1;
        }
    }
    return 0;
}

sqlite3_stmt *
cs_db_stmt (cs_db_t *self, const char *sql)
{
    for (size_t i = 0; i < self->cached; i++) {
        cached_t *c = &self->cache [i];
        if (strcmp (c->sql, sql) == 0) {
            sqlite3_reset (c->stmt);
            sqlite3_clear_bindings (c->stmt);
            return c->stmt;
        }
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3 (self->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL)
        != SQLITE_OK) {
        fail (self, "cannot prepare \"%.120s\": %s", sql, sqlite3_errmsg (self->handle));
        return NULL;
    }
    if (self->cached == STMT_CACHE) {
        /* full: drop the oldest */
        sqlite3_finalize (self->cache [0].stmt);
        free (self->cache [0].sql);
        memmove (&self->cache [0], &self->cache [1], (STMT_CACHE - 1) * sizeof self->cache [0]);
        self->cached--;
    }
    char *copy = strdup (sql);
    if (!copy) {
        sqlite3_finalize (stmt);
        fail (self, "out of memory");
        return NULL;
    }
    self->cache [self->cached++] = (cached_t) { copy, stmt };
    return stmt;
}

int
cs_db_step_done (cs_db_t *self, sqlite3_stmt *stmt)
{
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        fail (self, "%s", sqlite3_errmsg (self->handle));
        sqlite3_reset (stmt);
        return -1;
    }
    sqlite3_reset (stmt);
    return 0;
}

int
cs_db_transaction (cs_db_t *self, cs_db_fn *fn, void *arg)
{
    if (cs_db_exec (self, "BEGIN IMMEDIATE") != 0)
        return -1;
    self->error [0] = 0;
    if (fn (self, arg) != 0) {
        char why [512];
        snprintf (why, sizeof why, "%s", self->error [0] ? self->error : "the change was abandoned");
        sqlite3_exec (self->handle, "ROLLBACK", NULL, NULL, NULL);
        snprintf (self->error, sizeof self->error, "%s", why);
        return -1;
    }
    if (cs_db_exec (self, "COMMIT") != 0) {
        char why [512];
        snprintf (why, sizeof why, "%s", self->error);
        sqlite3_exec (self->handle, "ROLLBACK", NULL, NULL, NULL);
        snprintf (self->error, sizeof self->error, "%s", why);
        return -1;
    }
    return 0;
}
