/* cs_replan: one plan, start to finish - reads the planner's inputs from
 * state.db (members, each device's persons, ties, the commands on their way
 * and refused), runs the pure planner, and writes what it decided: ties,
 * notices (said once), commands, the guard's verdict and each tied person's
 * target and sync state. Inside the caller's transaction. */
#ifndef CS_REPLAN_H
#define CS_REPLAN_H

#include "common/config.h"
#include "differ/identity.h"
#include "differ/store.h"

/* today [i]: set to device i's local day at this plan. */
int cs_replan (cs_store_t *store, cs_identity_t *identity, const cs_config_t *cfg, int dry_run,
               cs_day_t *today);

/* The sync state of one person now, by the rule the planner uses (after a
 * result changed its record): updates its target. failed: its last write
 * was refused. */
int cs_replan_person (cs_store_t *store, const cs_config_t *cfg, const char *device, const char *no,
                      int failed);

#endif
