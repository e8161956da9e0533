/* cs_state: the differ as a whole - state.db and everything that changes it.
 *
 * Implemented in differ/handlers.c (one on_* handler per message, a batch in
 * one transaction), on top of differ/store.c (schema, meta, outbox, notices,
 * due commands), differ/identity.c (ties between persons and members),
 * differ/replan.c (reads the planner's inputs, writes what it decided) and
 * differ/plan.c (the rules, a pure function). Every change and the event
 * that tells of it are written in one transaction, the events into an outbox
 * the auditor acknowledges. */
#ifndef CS_STATE_H
#define CS_STATE_H

#include "common/config.h"
#include "common/db.h"
#include "common/log.h"
#include "common/msg.h"

#include <stdint.h>

struct json_t;

typedef struct _cs_state_t cs_state_t;

cs_state_t *cs_state_open (const char *path, const cs_config_t *cfg, cs_log_t *log, int dry_run,
                           char *error, size_t error_size);
void cs_state_destroy (cs_state_t **self_p);

/* Applies a batch of incoming messages in one transaction (planning when a
 * cycle or a scan completes). Returns 0, or -1 with nothing changed. */
int cs_state_apply (cs_state_t *self, cs_msg_t **msgs, size_t count);

/* Plans again (the date moves on even when nothing else does). */
int cs_state_replan (cs_state_t *self);

/* Commands due to be sent (new, or with an expired lease), marked as sent. */
int cs_state_due_commands (cs_state_t *self, int64_t now_ms, cs_msg_t ***out, size_t *count);

/* Outbox events after seq, oldest first, at most max. */
int cs_state_events_after (cs_state_t *self, int64_t seq, size_t max, cs_msg_t ***out,
                           size_t *count);

/* The highest seq the auditor has acknowledged. */
int64_t cs_state_acked (cs_state_t *self);
int64_t cs_state_last_seq (cs_state_t *self);

const char *cs_state_errmsg (cs_state_t *self);

/* state.db, for the control socket's reading. */
cs_db_t *cs_state_db (cs_state_t *self);

/* An operator's replay request (ALL, IDS, EMAIL or DEV): the failed targets
 * named go and the planner decides afresh, in one transaction. *body lists
 * them ({"rows": [{device, employee_no, email, state: replayed|superseded,
 * id}]}). -1 with err set on a failed write. */
int cs_state_replay (cs_state_t *self, const cs_msg_t *req, struct json_t **body, char *err,
                     size_t err_size);

/* An operator approves the revocations the guard holds: exactly the COUNT
 * shown, or nothing (the list changed since): *body says which ({approved,
 * count, msg}). -1 with err set on a failed write. */
int cs_state_approve (cs_state_t *self, const cs_msg_t *req, struct json_t **body, char *err,
                      size_t err_size);

#endif
