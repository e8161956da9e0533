/* cs_control: the differ's control socket (differ.ctl, a ROUTER). Operator
 * commands send a `request` (status, failed, held, unmatched, orphans,
 * member, replay, approve) and get their `answer` on the same socket: the
 * only way into state.db from outside the differ. A long list comes as
 * several answers, each with part of "rows", all but the last with more.
 *
 * It also holds what the differ knows of the pipeline's liveness (cs_live_t),
 * from which `status` gives the one health verdict. */
#ifndef CS_CONTROL_H
#define CS_CONTROL_H

#include "common/config.h"
#include "common/vocab.h"
#include "common/zmq.h"
#include "differ/state.h"

#include <stdint.h>


/* What the differ knows of the pipeline beyond state.db, kept by its main loop. */
typedef struct {
    int64_t started_ms;                 /* wall clock when the differ started */
    int64_t beat_ms [CS_STAGE_COUNT];   /* each stage's last heartbeat; 0: none since the start */
    int64_t acked_ms;                   /* when the audit last acknowledged (or the start) */
    char db_error [300];                /* the last failed write of state.db; "" after a good one */
    int damaged;                        /* state.db is damaged: db_error says how; nothing is read */
    json_t *counters [CS_STAGE_COUNT];  /* each stage's counters from its last heartbeat (owned) */
    size_t site_count;                  /* each site's pusher ([site NAME], in config order): */
    int64_t *site_beat_ms;              /*   its last heartbeat; 0: none since the start */
    json_t **site_counters;             /*   its counters (owned) */
} cs_live_t;

typedef struct _cs_control_t cs_control_t;

/* Binds [pipeline] differ_ctl. NULL with the reason in error. */
cs_control_t *cs_control_new (cs_zmq_t *zmq, const cs_config_t *cfg, cs_state_t *state,
                              const cs_live_t *live, char *error, size_t error_size);
void cs_control_destroy (cs_control_t **self_p);

zsock_t *cs_control_sock (cs_control_t *self);

/* Answers the requests waiting (never blocks: an answer nobody takes is dropped). */
void cs_control_handle (cs_control_t *self);

#endif
