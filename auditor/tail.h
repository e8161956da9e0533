/* auditor tail: the audit as lines a person reads (or JSON a script reads),
 * history from audit.db then, with -f, live from the auditor's PUB socket,
 * switching over by sequence number so nothing is printed twice or missed. */
#ifndef CS_TAIL_H
#define CS_TAIL_H

#include "common/config.h"

int cs_tail_run (const cs_config_t *cfg, int argc, const char **argv);

#endif
