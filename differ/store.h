/* cs_store: the differ's state.db - its schema and migrations, the meta
 * values, the notices said once, the outbox of events the auditor
 * acknowledges, and the commands due to the pusher. The only SQL for those;
 * the handlers, the identity module and the planner's loader use the
 * database handle for their own tables. */
#ifndef CS_STORE_H
#define CS_STORE_H

#include "common/config.h"
#include "common/db.h"
#include "common/log.h"
#include "common/msg.h"
#include "common/vocab.h"

#include <stdint.h>

typedef struct _cs_store_t cs_store_t;

cs_store_t *cs_store_open (const char *path, cs_log_t *log, char *error, size_t error_size);
void cs_store_destroy (cs_store_t **self_p);

cs_db_t *cs_store_db (cs_store_t *self);

/* The schema's migration steps (step i takes version i to i + 1), for tests
 * that build an older database. */
const char *const *cs_store_schema (int *count);

/* A count from a query with at most one text parameter (arg NULL: none);
 * -1 on error. */
int64_t cs_store_count (cs_store_t *self, const char *sql, const char *arg);
const char *cs_store_errmsg (cs_store_t *self);
cs_log_t *cs_store_log (cs_store_t *self);

/* The wall clock of the transaction under way (ms since 1970), for events. */
void cs_store_set_now (cs_store_t *self, int64_t now_ms);
int64_t cs_store_now (cs_store_t *self);

/* A new event of this kind; cs_store_emit appends it to the outbox (inside
 * the caller's transaction) and destroys it. */
cs_msg_t *cs_event_new (cs_event_kind_t kind);
int cs_store_emit (cs_store_t *self, cs_msg_t *event);
/* Sets a string field when v is neither NULL nor empty. */
void cs_event_str (cs_msg_t *event, cs_field_t field, const char *v);
/* Sets org and mid when the member is known (omid > 0). */
void cs_event_member (cs_msg_t *event, int64_t org, int64_t omid);

/* A notice is said once while it holds: 1 if (kind, key) is new. */
int cs_store_notice (cs_store_t *self, const char *kind, const char *key);
void cs_store_forget (cs_store_t *self, const char *kind, const char *key);

int64_t cs_store_meta (cs_store_t *self, const char *key);
int cs_store_set_meta (cs_store_t *self, const char *key, int64_t value);

/* The auditor stored every event up to seq: they leave the outbox. An ack
 * beyond the last event ever written is ignored (and logged); one below what
 * it acknowledged before means its file was lost: an audit_gap event names
 * the events gone. */
int cs_store_ack (cs_store_t *self, int64_t seq);
int64_t cs_store_acked (cs_store_t *self);
/* After a rolled-back transaction: the acknowledged seq as it was before. */
void cs_store_restore_acked (cs_store_t *self, int64_t acked);
int64_t cs_store_last_seq (cs_store_t *self);

/* Outbox events after seq, oldest first, at most max. */
int cs_store_events_after (cs_store_t *self, int64_t seq, size_t max, cs_msg_t ***out,
                           size_t *count);

/* Commands due (new, or with an expired lease), marked as sent; a window
 * of them per device. */
int cs_store_due_commands (cs_store_t *self, const cs_config_t *cfg, int64_t now_ms,
                           cs_msg_t ***out, size_t *count);

#endif
