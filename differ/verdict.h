/* cs_verdict: the one health verdict, as a pure function. The control
 * socket gathers the facts (state.db, the differ's liveness record, the file
 * system); this decides from them alone what needs attention, each a line
 * for the operator. No attention: "all well". Unit-tested as small worlds
 * (tests/unit/test_verdict.c). */
#ifndef CS_VERDICT_H
#define CS_VERDICT_H

#include "common/vocab.h"

#include <stddef.h>
#include <stdint.h>

#define CS_VERDICT_ACK_LAG_MS 60000          /* the audit silent this long, with events waiting */
#define CS_VERDICT_GAP_SHOWN_MS 86400000LL   /* a lost stretch of the audit is shown a day */
#define CS_VERDICT_DISK_MIN_BYTES (200LL * 1024 * 1024)
#define CS_VERDICT_DISK_MIN_PERCENT 5
#define CS_VERDICT_FULL_PERCENT 95

typedef struct {
    const char *name;
    const char *health;         /* "ok", "down", ...; NULL: no word from the pusher yet */
    const char *msg;            /* the pusher's words, or NULL */
    int scanned;                /* a complete scan has arrived */
    int64_t scan_ms;            /* when the last one did (0: before this was kept) */
    int64_t persons;
    int64_t capacity;           /* 0: unknown */
} cs_verdict_device_t;

typedef struct {               /* a [site NAME]'s pusher */
    const char *name;
    const char *endpoint;
    int64_t beat_ms;            /* its last heartbeat; 0: none since the start */
} cs_verdict_site_t;

typedef struct {
    int64_t now_ms;
    /* the pipeline */
    int64_t started_ms;                  /* the differ's start */
    int heartbeat_interval;              /* seconds */
    int64_t beat_ms [CS_STAGE_COUNT];    /* 0: none since the start */
    int no_local_pusher;                 /* every device is at a site: no local pusher to hear */
    const cs_verdict_site_t *sites;      /* each site's pusher */
    size_t site_count;
    const char *db_error;                /* a failed write of state.db, or NULL */
    int64_t outbox;                      /* events the audit has not acknowledged */
    int64_t acked_ms;                    /* when it last did (or nothing waited) */
    int64_t gap_ms;                      /* when the audit last lost events; 0 never */
    int disk_known;
    int64_t disk_free;                   /* bytes free where state_dir lives */
    int disk_percent;
    const char *state_dir;
    /* the exports */
    int export_ignored;                  /* the last export was ignored */
    const char *export_msg;              /* why */
    int64_t export_ok_ms;                /* the last good one; 0 none yet */
    int export_alert_after;              /* seconds */
    /* the sync */
    int64_t failed;
    int64_t guard_held;
    int rebuilt;                         /* waiting for a full export and every scan */
    int scan_interval;                   /* seconds */
    const cs_verdict_device_t *devices;
    size_t device_count;
} cs_verdict_facts_t;

/* Calls say (arg, line) for each thing that needs attention, in a fixed
 * order; returns how many. */
size_t cs_verdict (const cs_verdict_facts_t *f, void (*say) (void *arg, const char *line), void *arg);

#endif
