/* cardsync-differ: keeps the desired and actual state and sends the changes the devices need. */
#include "common/cli.h"

#include <stdio.h>

static const cs_cli_spec_t s_spec = {
    .program = "cardsync-differ",
    .summary = "Keeps the desired and actual state and sends the changes the devices need.",
};

int
main (int argc, char **argv)
{
    cs_cli_t cli;
    int rc = cs_cli_parse (&s_spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    cs_config_t *cfg = cs_cli_config (&s_spec, &cli, 0, &rc);
    if (rc < 0) {
        fprintf (stderr, "%s: the pipeline is not built yet; only --check-config and "
                 "--print-config work\n", s_spec.program);
        rc = EX_UNAVAILABLE;
    }
    cs_config_destroy (&cfg);
    return rc;
}
