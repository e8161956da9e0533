/* The operator commands: each asks the differ on its control socket (history
 * reads the audit). */
#ifndef CS_COMMANDS_H
#define CS_COMMANDS_H

#include "common/config.h"

int cs_cmd_failed (const cs_config_t *cfg, int argc, const char **argv);
int cs_cmd_status (const cs_config_t *cfg, int argc, const char **argv);
int cs_cmd_history (const cs_config_t *cfg, int argc, const char **argv);
int cs_cmd_replay (const cs_config_t *cfg, int argc, const char **argv);
int cs_cmd_approve (const cs_config_t *cfg, int argc, const char **argv);
int cs_cmd_held (const cs_config_t *cfg, int argc, const char **argv);
int cs_cmd_unmatched (const cs_config_t *cfg, int argc, const char **argv);
int cs_cmd_orphans (const cs_config_t *cfg, int argc, const char **argv);
int cs_cmd_member (const cs_config_t *cfg, int argc, const char **argv);

#endif
