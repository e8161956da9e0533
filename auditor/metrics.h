/* cs_metrics: the window's /metrics, in the Prometheus text exposition
 * format (version 0.0.4), from the differ's status answer: the programs'
 * own counters since each started (carried by their heartbeats; a restart
 * resets them, as Prometheus expects of a counter) and the differ's gauges.
 * Nothing is counted out of audit.db. */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <jansson.h>

/* The exposition for status (the differ's `status` body), or, when status is
 * NULL (the differ does not answer), only that it is down. A new string. */
char *cs_metrics_text (const json_t *status);

#endif
