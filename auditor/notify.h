/* cs_notify: alerts where people are ([notify]). At most once per
 * batch_interval a digest of what happened since the last one (new permanent
 * failures, a tripped guard, a paused device, exports failing for longer than
 * export_alert_after) goes by e-mail (smtp_url) and as a JSON POST to a
 * webhook (CARDSYNC_WEBHOOK_URL or webhook_url_file: ntfy, Slack- and
 * Teams-compatible endpoints read its "text"); a dead-man ping
 * (CARDSYNC_HEALTHCHECK_URL or healthcheck_url_file, the healthchecks.io
 * convention) gets a GET after each good full cycle and URL/fail once exports
 * have failed for export_alert_after. Every delivery runs in the background
 * (libcurl's multi interface: the auditor's loop never waits on it), and what
 * each channel delivered is kept in audit.db (meta), so a restart or an
 * endpoint that is down loses nothing: it is tried again, 30 s then doubling
 * to 15 min, with whatever came since. The URLs carry tokens: the log shows
 * only their scheme and host. */
#ifndef CS_NOTIFY_H
#define CS_NOTIFY_H

#include "common/config.h"
#include "common/db.h"
#include "common/log.h"

typedef struct _cs_notify_t cs_notify_t;

/* NULL when [notify] has no smtp_url, webhook or healthcheck (nothing to do),
 * or on failure. */
cs_notify_t *cs_notify_new (const cs_notify_config_t *cfg, cs_db_t *audit, cs_log_t *log);
void cs_notify_destroy (cs_notify_t **self_p);

/* Moves the deliveries under way on and starts what is due; never waits.
 * Call it at least once a second, and often while cs_notify_busy. */
void cs_notify_tick (cs_notify_t *self, int64_t now_ms);
int cs_notify_busy (const cs_notify_t *self);

#endif
