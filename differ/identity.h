/* cs_identity: who is who on a device (design §3) - the ties between device
 * persons and members, remembered by member in state.db, and the operator's
 * identity_map. The planner decides which ties are made and ended; this
 * module keeps them and tells of each one in a `tied` or `untied` event
 * (which audit retention keeps, so ties can be rebuilt from the audit). */
#ifndef CS_IDENTITY_H
#define CS_IDENTITY_H

#include "differ/arena.h"
#include "differ/plan.h"
#include "differ/store.h"

typedef struct _cs_identity_t cs_identity_t;

/* Reads the operator's CSV (email,employeeNo; a header line is fine) when
 * map_path is set. NULL with error set if it cannot be read. */
cs_identity_t *cs_identity_new (const char *map_path, cs_log_t *log, char *error, size_t error_size);
void cs_identity_destroy (cs_identity_t **self_p);

const cs_plan_map_line_t *cs_identity_map (cs_identity_t *self, size_t *count);

/* Every remembered tie, its strings in arena. */
int cs_identity_ties (cs_store_t *store, cs_arena_t *arena, cs_plan_tie_t **out, size_t *count);

/* Keeps the ties a plan made and ended, each with its event. */
int cs_identity_apply (cs_store_t *store, const cs_plan_t *plan);

/* Ties a person cardsync created for a member. */
int cs_identity_tie (cs_store_t *store, const char *device, const char *no, int64_t org,
                     int64_t omid, cs_rule_t rule, const char *via, const char *email);

/* Ends every tie of a person (the device says it is gone). */
int cs_identity_forget (cs_store_t *store, const char *device, const char *no, const char *why);

#endif
