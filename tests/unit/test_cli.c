#include "harness.h"
#include "common/cli.h"

static const cs_cli_option_t OPTIONS [] = {
    { "once", 0, "run one cycle, then exit" },
    { "since", 1, "start from this id" },
    { NULL, 0, NULL },
};

static const cs_cli_spec_t SPEC = {
    .program = "cardsync-test",
    .summary = "Tests the command line.",
    .options = OPTIONS,
    .more_help = "example: cardsync-test --once",
};

static int
parse (cs_cli_t *cli, int argc, const char **argv)
{
    return cs_cli_parse (&SPEC, argc, (char **) argv, cli);
}

TEST (common_and_own_options)
{
    unsetenv ("CARDSYNC_CONFIG");
    cs_cli_t cli;
    const char *argv [] = { "x", "--config", "/tmp/c.ini", "--once", "--since=42", "tail", "-f", NULL };
    CHECK_INT (parse (&cli, 5, argv), -1);
    CHECK_STR (cli.config_path, "/tmp/c.ini");
    CHECK_STR (cs_cli_value (&SPEC, &cli, "once"), "1");
    CHECK_STR (cs_cli_value (&SPEC, &cli, "since"), "42");
    CHECK (cs_cli_value (&SPEC, &cli, "nope") == NULL);
    CHECK_INT (cli.arg_count, 0);
    /* positional arguments, and everything after the first one, stay in order */
    CHECK_INT (parse (&cli, 7, argv), -1);
    CHECK_INT (cli.arg_count, 2);
    CHECK_STR (cli.args [0], "tail");
    CHECK_STR (cli.args [1], "-f");
}

TEST (default_config_path)
{
    cs_cli_t cli;
    const char *argv [] = { "x", "--check-config", NULL };
    unsetenv ("CARDSYNC_CONFIG");
    CHECK_INT (parse (&cli, 2, argv), -1);
    CHECK_STR (cli.config_path, CS_CLI_DEFAULT_CONFIG);
    CHECK (cli.check_config);
    setenv ("CARDSYNC_CONFIG", "/etc/other.ini", 1);
    CHECK_INT (parse (&cli, 2, argv), -1);
    CHECK_STR (cli.config_path, "/etc/other.ini");
    unsetenv ("CARDSYNC_CONFIG");
}

TEST (usage_errors)
{
    cs_cli_t cli;
    char *text = NULL;
    size_t size = 0;
    fflush (stderr);
    FILE *saved = stderr;
    stderr = open_memstream (&text, &size);
    const char *unknown [] = { "x", "--frobnicate", NULL };
    int rc_unknown = parse (&cli, 2, unknown);
    const char *missing [] = { "x", "--since", NULL };
    int rc_missing = parse (&cli, 2, missing);
    const char *flag_value [] = { "x", "--once=yes", NULL };
    int rc_flag = parse (&cli, 2, flag_value);
    fclose (stderr);
    stderr = saved;
    CHECK_INT (rc_unknown, EX_USAGE);
    CHECK_INT (rc_missing, EX_USAGE);
    CHECK_INT (rc_flag, EX_USAGE);
    CHECK_HAS (text, "cardsync-test: option '--frobnicate' is not known\ntry 'cardsync-test --help'");
    CHECK_HAS (text, "option '--since' needs a value");
    CHECK_HAS (text, "option '--once=yes' takes no value");
    free (text);
}

TEST (help_and_version)
{
    cs_cli_t cli;
    char *text = NULL;
    size_t size = 0;
    fflush (stdout);
    FILE *saved = stdout;
    stdout = open_memstream (&text, &size);
    const char *help [] = { "x", "--help", NULL };
    int rc_help = parse (&cli, 2, help);
    const char *version [] = { "x", "--version", NULL };
    int rc_version = parse (&cli, 2, version);
    fclose (stdout);
    stdout = saved;
    CHECK_INT (rc_help, 0);
    CHECK_INT (rc_version, 0);
    CHECK_HAS (text, "usage: cardsync-test [--config FILE] [options]");
    CHECK_HAS (text, "Tests the command line.");
    CHECK_HAS (text, "--since VALUE");
    CHECK_HAS (text, "run one cycle, then exit");
    CHECK_HAS (text, "example: cardsync-test --once");
    CHECK_HAS (text, "78 config error");
    CHECK_HAS (text, "cardsync-test " CARDSYNC_VERSION);
    free (text);
}

TEST (config_and_logger)
{
    setenv ("CARDSYNC_DEVICE_DOOR1_PASSWORD", "door-secret", 1);
    const char *path = cs_test_write ("c.ini",
        "[cardskipper]\nurl = https://x.example\nusername = u\norganisation_ids = 1\n"
        "[device door1]\nurl = http://127.0.0.1:1\nusername = admin\n"
        "[pipeline]\nlog_level = warn\n");
    cs_cli_t cli;
    const char *argv [] = { "x", "--config", path, NULL };
    CHECK_INT (parse (&cli, 3, argv), -1);
    int rc;
    cs_config_t *cfg = cs_cli_config (&SPEC, &cli, CS_SECRETS_DEVICES, &rc);
    REQUIRE (cfg);
    CHECK_INT (rc, -1);                  /* go on: not --check-config */
    char *text = NULL;
    size_t size = 0;
    fflush (stdout);
    FILE *saved = stdout;
    stdout = open_memstream (&text, &size);
    cs_log_t *log = cs_cli_log (&SPEC, cfg);
    cs_log (log, CS_LOG_INFO, "quiet", NULL);
    cs_log (log, CS_LOG_WARN, "login", "url", "http://admin:door-secret@127.0.0.1", NULL);
    cs_log_destroy (&log);
    fclose (stdout);
    stdout = saved;
    CHECK_LACKS (text, "quiet");
    CHECK_HAS (text, "stage=test event=login url=http://admin:[redacted]@127.0.0.1");
    CHECK_LACKS (text, "door-secret");
    free (text);
    cs_config_destroy (&cfg);
    unsetenv ("CARDSYNC_DEVICE_DOOR1_PASSWORD");
}
