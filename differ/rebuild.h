/* The differ's state.db: is it whole, and the way out when it is not.
 *
 * cs_state_check runs SQLite's quick_check on the file (read-only). The
 * rebuild (`cardsync-differ --rebuild`, run while the group is stopped)
 * moves the damaged file aside and makes a new state.db that holds only the
 * ties between persons and members, replayed from the audit's tied/untied
 * events (audit.db read-only: the one time a program other than the auditor
 * reads it), marked so that nothing is planned until a full export and a
 * complete scan of every device have arrived. Everything else state.db held
 * (members, persons, commands) comes back from those. */
#ifndef CS_REBUILD_H
#define CS_REBUILD_H

#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"

#include <stddef.h>

/* 0 whole (or absent), 1 damaged (why says how), -1 cannot tell (why). */
int cs_state_check (const char *path, char *why, size_t why_size);

/* Rebuilds state.db; returns 0 or a sysexits code, with msg for the operator. */
int cs_rebuild (const cs_config_t *cfg, cs_log_t *log, char *msg, size_t msg_size);

#endif
