/* cs_log: logfmt lines, one per event, on a stream (stdout by default).
 *
 *   ts=2026-11-22T07:30:00.123Z level=info stage=pusher event=applied email=a@b.se device=door1
 *
 * Values are quoted when they need it. Every value is scrubbed of the secrets
 * registered with cs_log_add_secret, so a password never reaches a log file. */
#ifndef CS_LOG_H
#define CS_LOG_H

#include <stdio.h>

typedef struct _cs_log_t cs_log_t;

typedef enum {
    CS_LOG_DEBUG = 0,
    CS_LOG_INFO,
    CS_LOG_WARN,
    CS_LOG_ERROR
} cs_log_level_t;

/* Logs to stream (stdout when NULL), made line-buffered. */
cs_log_t *cs_log_new (const char *stage, FILE *stream);
void cs_log_destroy (cs_log_t **self_p);

void cs_log_set_level (cs_log_t *self, cs_log_level_t level);
/* Parses "debug", "info", "warn" or "error"; -1 if none. */
int cs_log_level_parse (const char *text);

/* The secret (copied) is replaced by "[redacted]" wherever it appears. */
int cs_log_add_secret (cs_log_t *self, const char *secret);

/* One line: event, then key/value string pairs ending with NULL. A NULL value
 * is written as an empty string. */
void cs_log (cs_log_t *self, cs_log_level_t level, const char *event, ...)
    __attribute__ ((sentinel));

/* One line with a formatted msg= field. */
void cs_logf (cs_log_t *self, cs_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

/* Appends key=value (quoted as needed) to buf; used by cs_log and by tests. */
void cs_log_append_pair (char *buf, size_t size, size_t *len, const char *key, const char *value);

/* ts: the current time as RFC 3339 UTC with milliseconds ("2026-11-22T07:30:00.123Z"). */
void cs_log_timestamp (char out [32]);

#endif
