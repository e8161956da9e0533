/* cs_db: SQLite the way every cardsync store uses it.
 *
 * WAL journal, a busy timeout, synchronous=FULL (an acknowledged write
 * survives a power cut), foreign keys on; schema migrations numbered by
 * PRAGMA user_version; a cache of prepared statements; and a transaction
 * helper that commits all of a change or none of it. */
#ifndef CS_DB_H
#define CS_DB_H

#include <sqlite3.h>
#include <stddef.h>

typedef struct _cs_db_t cs_db_t;

#define CS_DB_BUSY_TIMEOUT_MS 5000

/* Opens (creating if need be) the database at path. On failure returns NULL
 * and writes the reason into error. */
cs_db_t *cs_db_open (const char *path, char *error, size_t error_size);
void cs_db_destroy (cs_db_t **self_p);

sqlite3 *cs_db_handle (cs_db_t *self);
/* The last failure, "path: what happened". */
const char *cs_db_errmsg (const cs_db_t *self);
void cs_db_set_busy_timeout (cs_db_t *self, int ms);

/* Brings the schema to version count: step i (0-based) takes version i to
 * i + 1, each in its own transaction. Refuses a database newer than count. */
int cs_db_migrate (cs_db_t *self, const char *const *steps, int count);
int cs_db_version (cs_db_t *self);

/* Runs one or more statements without results. */
int cs_db_exec (cs_db_t *self, const char *sql);

/* A prepared statement for sql, from the cache: reset, bindings cleared.
 * Owned by the db; NULL (with the error recorded) if sql does not prepare. */
sqlite3_stmt *cs_db_stmt (cs_db_t *self, const char *sql);

/* Steps stmt until it is done (for writes); 0 or -1. */
int cs_db_step_done (cs_db_t *self, sqlite3_stmt *stmt);

typedef int (cs_db_fn) (cs_db_t *db, void *arg);

/* Runs fn inside BEGIN IMMEDIATE ... COMMIT. If fn returns non-zero or the
 * commit fails, everything fn wrote is rolled back and -1 returned. */
int cs_db_transaction (cs_db_t *self, cs_db_fn *fn, void *arg);

#endif
