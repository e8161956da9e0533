/* cs_notify: the auditor's e-mail digest ([notify]). At most one mail per
 * batch_interval lists what happened since the last one: new permanent
 * failures, a tripped guard, a paused device, and exports failing for longer
 * than export_alert_after. What has been mailed is kept in audit.db (meta
 * mailed_seq), so a restart or an unreachable mail server loses nothing. */
#ifndef CS_NOTIFY_H
#define CS_NOTIFY_H

#include "common/config.h"
#include "common/db.h"
#include "common/log.h"

typedef struct _cs_notify_t cs_notify_t;

/* NULL when [notify] has no smtp_url (nothing to do) or on failure. */
cs_notify_t *cs_notify_new (const cs_notify_config_t *cfg, cs_db_t *audit, cs_log_t *log);
void cs_notify_destroy (cs_notify_t **self_p);

/* Sends the digest if one is due; call it about once a second. */
void cs_notify_tick (cs_notify_t *self, int64_t now_ms);

#endif
