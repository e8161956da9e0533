#include "common/cli.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_CONFIG = 1000, OPT_CHECK, OPT_PRINT, OPT_HELP, OPT_VERSION, OPT_OWN };

static void
print_help (const cs_cli_spec_t *spec)
{
    printf ("usage: %s %s\n\n%s\n\noptions:\n", spec->program,
            spec->usage ? spec->usage : "[--config FILE] [options]", spec->summary);
    printf ("  --config FILE      the config file (default: $CARDSYNC_CONFIG, else %s)\n",
            CS_CLI_DEFAULT_CONFIG);
    printf ("  --check-config     validate the config, print each problem, and exit\n");
    printf ("  --print-config     print the effective config (secrets redacted) and exit\n");
    for (const cs_cli_option_t *o = spec->options; o && o->name; o++) {
        char left [64];
        snprintf (left, sizeof left, "--%s%s", o->name, o->takes_value ? " VALUE" : "");
        printf ("  %-18s %s\n", left, o->help);
    }
    printf ("  --help             show this help\n  --version          show the version\n");
    if (spec->more_help)
        printf ("\n%s\n", spec->more_help);
    printf ("\nexit codes: 0 ok, 64 usage, 69 unavailable, 75 temporary failure, "
            "78 config error\n");
}

int
cs_cli_parse (const cs_cli_spec_t *spec, int argc, char **argv, cs_cli_t *cli)
{
    memset (cli, 0, sizeof *cli);
    struct option table [CS_CLI_MAX_OPTIONS + 6];
    int n = 0;
    table [n++] = (struct option) { "config", required_argument, NULL, OPT_CONFIG };
    table [n++] = (struct option) { "check-config", no_argument, NULL, OPT_CHECK };
    table [n++] = (struct option) { "print-config", no_argument, NULL, OPT_PRINT };
    table [n++] = (struct option) { "help", no_argument, NULL, OPT_HELP };
    table [n++] = (struct option) { "version", no_argument, NULL, OPT_VERSION };
    int own = 0;
    for (const cs_cli_option_t *o = spec->options; o && o->name; o++, own++)
        table [n++] = (struct option) { o->name, o->takes_value ? required_argument : no_argument,
                                        NULL, OPT_OWN + own };
    table [n] = (struct option) { NULL, 0, NULL, 0 };

    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long (argc, argv, "+hVc:", table, NULL)) != -1) {
        switch (c) {
            case 'c':
            case OPT_CONFIG: cli->config_path = optarg; break;
            case OPT_CHECK: cli->check_config = 1; break;
            case OPT_PRINT: cli->print_config = 1; break;
            case 'h':
            case OPT_HELP: print_help (spec); return 0;
            case 'V':
            case OPT_VERSION: printf ("%s %s\n", spec->program, CARDSYNC_VERSION); return 0;
            case '?':
            case ':': {
                const char *arg = argv [optind - 1];
                const char *why = "is not known";
                if (optopt == 'c' || optopt == OPT_CONFIG)
                    why = "needs a value";
                else if (optopt >= OPT_OWN && optopt < OPT_OWN + own)
                    why = spec->options [optopt - OPT_OWN].takes_value ? "needs a value"
                                                                         : "takes no value";
                else if (optopt >= OPT_CHECK && optopt <= OPT_VERSION)
                    why = "takes no value";
                fprintf (stderr, "%s: option '%s' %s\n", spec->program, arg, why);
                fprintf (stderr, "try '%s --help'\n", spec->program);
                return EX_USAGE;
            }
            default:
                if (c >= OPT_OWN && c < OPT_OWN + own)
                    cli->values [c - OPT_OWN] = optarg ? optarg : "1";
                break;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (cli->arg_count == CS_CLI_MAX_ARGS) {
            fprintf (stderr, "%s: too many arguments\n", spec->program);
            return EX_USAGE;
        }
        cli->args [cli->arg_count++] = argv [i];
    }
    if (!cli->config_path) {
        const char *env = getenv ("CARDSYNC_CONFIG");
        cli->config_path = env && *env ? env : CS_CLI_DEFAULT_CONFIG;
    }
    return -1;
}

const char *
cs_cli_value (const cs_cli_spec_t *spec, const cs_cli_t *cli, const char *name)
{
    int i = 0;
    for (const cs_cli_option_t *o = spec->options; o && o->name; o++, i++)
        if (strcmp (o->name, name) == 0)
            return cli->values [i];
    return NULL;
}

cs_config_t *
cs_cli_config (const cs_cli_spec_t *spec, const cs_cli_t *cli, int secrets, int *exit_code)
{
    *exit_code = -1;
    char *errors = NULL;
    cs_config_t *cfg = cs_config_load (cli->config_path, secrets, &errors);
    if (!cfg) {
        int count = 0;
        for (const char *e = errors; e && *e; e++)
            count += *e == '\n';
        fprintf (stderr, "%s: %d error%s in the config:\n", spec->program, count,
                 count == 1 ? "" : "s");
        for (char *line = errors, *next; line && *line; line = next) {
            next = strchr (line, '\n');
            if (next)
                *next++ = 0;
            fprintf (stderr, "  %s\n", line);
        }
        free (errors);
        *exit_code = EX_CONFIG;
        return NULL;
    }
    if (cli->print_config) {
        cs_config_print (cfg, stdout);
        *exit_code = 0;
    }
    else if (cli->check_config) {
        printf ("%s: %s is valid (%zu device%s)\n", spec->program, cli->config_path,
                cfg->device_count, cfg->device_count == 1 ? "" : "s");
        *exit_code = 0;
    }
    return cfg;
}

cs_log_t *
cs_cli_log (const cs_cli_spec_t *spec, const cs_config_t *cfg)
{
    const char *stage = strncmp (spec->program, "cardsync-", 9) == 0 ? spec->program + 9
                                                                       : spec->program;
    cs_log_t *log = cs_log_new (stage, stdout);
    if (!log)
        return NULL;
    int level = cs_log_level_parse (cfg->pipeline.log_level);
    cs_log_set_level (log, level < 0 ? CS_LOG_INFO : (cs_log_level_t) level);
    cs_log_add_secret (log, cfg->cardskipper.password);
    for (size_t i = 0; i < cfg->device_count; i++)
        cs_log_add_secret (log, cfg->devices [i].password);
    cs_log_add_secret (log, cfg->notify.password);
    return log;
}

void
cs_cli_lean_memory (void)
{
    mallopt (M_ARENA_MAX, 1);
}
