/* cs_state: the differ's state.db and everything that changes it.
 *
 * Desired state: the members of the last good export cycles, by e-mail.
 * Actual state: the persons of each device, from scans and results. The
 * planner compares them per (member, device) and records a command for each
 * difference; every change and the event that tells of it are written in one
 * transaction, the events into an outbox the auditor acknowledges. */
#ifndef CS_STATE_H
#define CS_STATE_H

#include "common/config.h"
#include "common/log.h"
#include "common/msg.h"

#include <stdint.h>

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

#endif
