/* cs_cli: the command line every cardsync program shares.
 *
 *   --config FILE    (or CARDSYNC_CONFIG; default /etc/cardsync/cardsync.ini)
 *   --check-config   validate the config, with the secrets this program needs,
 *                    and exit (0, or 78 naming each bad key)
 *   --print-config   print the effective config, secrets redacted
 *   --help, --version
 *
 * Exit codes are sysexits: 64 usage, 69 unavailable, 75 temporary, 78 config. */
#ifndef CS_CLI_H
#define CS_CLI_H

#include "common/config.h"
#include "common/log.h"

#include <sysexits.h>

#ifndef CARDSYNC_VERSION             /* from the VERSION file, by the Makefile */
#error "CARDSYNC_VERSION is not defined: build with make (it reads VERSION)"
#endif
#define CS_CLI_DEFAULT_CONFIG "/etc/cardsync/cardsync.ini"
#define CS_CLI_MAX_OPTIONS 16
#define CS_CLI_MAX_ARGS 64

typedef struct {
    const char *name;           /* long option, without "--" */
    int takes_value;            /* 1: --name VALUE */
    const char *help;           /* one line */
} cs_cli_option_t;

typedef struct {
    const char *program;        /* "cardsync-producer" */
    const char *summary;        /* one line: what it does */
    const char *usage;          /* the usage line after the program name, or NULL */
    const cs_cli_option_t *options;  /* the program's own options, ending with {NULL} */
    const char *more_help;      /* extra paragraphs (commands, examples), or NULL */
} cs_cli_spec_t;

typedef struct {
    const char *config_path;
    int check_config;
    int print_config;
    const char *values [CS_CLI_MAX_OPTIONS];   /* per spec option: its value, "1", or NULL */
    const char *args [CS_CLI_MAX_ARGS];        /* positional arguments */
    int arg_count;
} cs_cli_t;

/* Keeps a daemon's private memory small: one malloc arena for the whole
 * program. libzmq's I/O threads would otherwise each get their own, about
 * 1.5 MB touched of 64 MB reserved, for the few messages they allocate.
 * Called first thing by each program's main. */
void cs_cli_lean_memory (void);

/* Parses argv. Returns -1 to go on, or an exit code: 0 after --help or
 * --version, EX_USAGE (with a message on stderr) for a bad command line. */
int cs_cli_parse (const cs_cli_spec_t *spec, int argc, char **argv, cs_cli_t *cli);

/* The value of the program's own option called name, or NULL. */
const char *cs_cli_value (const cs_cli_spec_t *spec, const cs_cli_t *cli, const char *name);

/* Loads the config. On error prints every problem to stderr and returns NULL:
 * exit EX_CONFIG (78). Handles --check-config and --print-config: *exit_code
 * is then set to 0 (or 78) and the caller should exit with it. */
cs_config_t *cs_cli_config (const cs_cli_spec_t *spec, const cs_cli_t *cli, int secrets,
                            int *exit_code);

/* The program's logger on stdout: stage from the program name ("pusher"),
 * level from [pipeline] log_level, every configured secret scrubbed. */
cs_log_t *cs_cli_log (const cs_cli_spec_t *spec, const cs_config_t *cfg);

#endif
