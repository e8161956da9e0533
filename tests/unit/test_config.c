#include "harness.h"
#include "common/config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *MINIMAL =
    "[cardskipper]\n"
    "url = https://api.cardskipper.se/\n"
    "username = api@club.example\n"
    "organisation_ids = 1234, 99\n"
    "\n"
    "[device door1]\n"
    "url = http://192.168.1.100\n"
    "username = admin\n";

static cs_config_t *
load_text (const char *text, int secrets, char **errors)
{
    const char *path = cs_test_write ("cardsync.ini", text);
    return cs_config_load (path, secrets, errors);
}

/* Loads text expecting failure; returns the error text (caller frees). */
static char *
errors_of (const char *text, int secrets)
{
    char *errors = NULL;
    cs_config_t *cfg = load_text (text, secrets, &errors);
    if (cfg) {
        cs_test_fail (__FILE__, __LINE__, "config loaded, expected errors");
        cs_config_destroy (&cfg);
    }
    return errors;
}

static char *
with (const char *extra)
{
    static char buf [4096];
    snprintf (buf, sizeof buf, "%s%s", MINIMAL, extra);
    return buf;
}

TEST (minimal_defaults)
{
    unsetenv ("CARDSYNC_CARDSKIPPER_PASSWORD");
    char *errors = NULL;
    cs_config_t *cfg = load_text (MINIMAL, 0, &errors);
    REQUIRE (cfg);
    CHECK (errors == NULL);
    CHECK_STR (cfg->cardskipper.url, "https://api.cardskipper.se");
    CHECK_INT (cfg->cardskipper.organisation_count, 2);
    CHECK_INT (cfg->cardskipper.organisation_ids [1], 99);
    CHECK_INT (cfg->cardskipper.role_count, 0);
    CHECK_INT (cfg->cardskipper.only_active, 1);
    CHECK_INT (cfg->cardskipper.poll_interval, 300);
    CHECK_INT (cfg->cardskipper.full_interval, 3600);
    CHECK_INT (cfg->device_count, 1);
    CHECK_STR (cfg->devices [0].name, "door1");
    CHECK_INT (cfg->devices [0].max_inflight, 1);
    CHECK_STR (cfg->devices [0].door_right, "1");
    CHECK_STR (cfg->devices [0].timezone, "");
    CHECK_INT (cfg->sync.match_count, 3);
    CHECK_INT (cfg->sync.match [0], CS_MATCH_TAG);
    CHECK_INT (cfg->sync.match [2], CS_MATCH_MEMBER_ID);
    CHECK_STR (cfg->sync.tag_field, "PersonInfoExtends");
    CHECK_INT (cfg->sync.guard_max_revocations, 10);
    CHECK_INT (cfg->sync.guard_max_percent, 5);
    CHECK_INT (cfg->sync.lease, 600);
    CHECK_STR (cfg->pipeline.run_dir, "/run/cardsync");
    CHECK_STR (cfg->pipeline.differ_in, "ipc:///run/cardsync/differ.in");
    CHECK_STR (cfg->pipeline.auditor_pub, "ipc:///run/cardsync/auditor.pub");
    CHECK_INT (cfg->auditor.retention_days, 365);
    CHECK (cfg->notify.smtp_url == NULL);
    CHECK (cfg->cardskipper.password == NULL);
    CHECK (cs_config_device (cfg, "door1") == &cfg->devices [0]);
    CHECK (cs_config_device (cfg, "door2") == NULL);
    cs_config_destroy (&cfg);
    CHECK (cfg == NULL);
    cs_config_destroy (&cfg);
}

TEST (shipped_example_is_valid)
{
    setenv ("CARDSYNC_CARDSKIPPER_PASSWORD", "s3cret-cs", 1);
    setenv ("CARDSYNC_DEVICE_DOOR1_PASSWORD", "s3cret-1", 1);
    setenv ("CARDSYNC_DEVICE_DOOR2_PASSWORD", "s3cret-2", 1);
    char *errors = NULL;
    cs_config_t *cfg = cs_config_load ("cardsync.ini.example", CS_SECRETS_ALL, &errors);
    if (errors)
        printf ("%s", errors);
    REQUIRE (cfg);
    CHECK_INT (cfg->device_count, 2);
    CHECK_STR (cfg->devices [1].password, "s3cret-2");
    CHECK_STR (cfg->devices [1].password_source, "CARDSYNC_DEVICE_DOOR2_PASSWORD");
    CHECK_STR (cfg->devices [0].timezone, "Europe/Stockholm");
    cs_config_destroy (&cfg);
}

TEST (every_error_names_file_line_and_key)
{
    char *e = errors_of (
        "[cardskipper]\n"                          /* 1 */
        "url = ftp://example.com\n"                /* 2 */
        "username = u\n"                           /* 3 */
        "organisation_ids = 12, x\n"               /* 4 */
        "poll_interval = soon\n"                   /* 5 */
        "only_active = maybe\n"                    /* 6 */
        "[device door1]\n"                         /* 7 */
        "url = http://10.0.0.1\n"                  /* 8 */
        "username = admin\n"                       /* 9 */
        "max_inflight = many\n"                    /* 10 */
        "timezone = Mars/Olympus\n"                /* 11 */
        "[sync]\n"                                 /* 12 */
        "match = tag, email\n"                     /* 13 */
        "guard_max_percent = 101\n", 0);           /* 14 */
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:2: [cardskipper] url: must start with http:// or https://");
    CHECK_HAS (e, "cardsync.ini:4: [cardskipper] organisation_ids: 'x' is not a positive whole number");
    CHECK_HAS (e, "cardsync.ini:5: [cardskipper] poll_interval: must be a duration");
    CHECK_HAS (e, "cardsync.ini:6: [cardskipper] only_active: must be true or false, not 'maybe'");
    CHECK_HAS (e, "cardsync.ini:10: [device door1] max_inflight: must be a whole number from 1 to 8, not 'many'");
    CHECK_HAS (e, "cardsync.ini:11: [device door1] timezone: unknown time zone 'Mars/Olympus'");
    CHECK_HAS (e, "cardsync.ini:13: [sync] match: 'email' is not one of tag, map, member_id");
    CHECK_HAS (e, "cardsync.ini:14: [sync] guard_max_percent: must be a whole number from 0 to 100");
    free (e);
}

TEST (missing_sections_and_keys)
{
    char *e = errors_of ("[sync]\nrevoke = false\n", 0);
    REQUIRE (e);
    CHECK_HAS (e, "[cardskipper] url: required (the section is missing)");
    CHECK_HAS (e, "[cardskipper] organisation_ids: required");
    CHECK_HAS (e, "no device configured");
    free (e);
    e = errors_of ("[cardskipper]\nurl = https://x.example\norganisation_ids = 1\n"
                   "[device d]\nurl = http://127.0.0.1:8080\n", 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:1: [cardskipper] username: required");
    CHECK_HAS (e, "cardsync.ini:4: [device d] username: required");
    free (e);
}

TEST (syntax_errors)
{
    char *e = errors_of (with ("[sync\n"
                               "just some words\n"
                               "[weird]\n"
                               "a = b\n"
                               "[device Door One]\n"
                               "[device]\n"), 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:9: section header without ']'");
    CHECK_HAS (e, "cardsync.ini:10: expected 'key = value' or '[section]'");
    CHECK_HAS (e, "cardsync.ini:11: [weird]: unknown section");
    CHECK_HAS (e, "cardsync.ini:13: [device Door One]: device names are");
    CHECK_HAS (e, "cardsync.ini:14: [device]: a device section needs a name");
    CHECK_LACKS (e, "a: unknown key");   /* keys of a bad section are not reported again */
    free (e);
}

TEST (key_before_section_and_continuation)
{
    char *e = errors_of ("stray = 1\n[cardskipper]\nurl = https://x.example\n"
                         "  continued\nusername = u\norganisation_ids = 1\n"
                         "[device d]\nurl = http://127.0.0.1\nusername = a\n", 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:1: 'stray' comes before any [section]");
    CHECK_HAS (e, "cardsync.ini:4: indented line would continue the value above");
    free (e);
}

TEST (unknown_duplicate_and_secret_keys)
{
    char *e = errors_of (with ("pol_interval = 5m\n"
                               "username = again\n"
                               "password = hunter2\n"
                               "[device door2]\nurl = http://127.0.0.1\nusername = a\n"
                               "password = hunter3\n"
                               "[device door1]\n"), 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:9: [device door1] pol_interval: unknown key (known: url, username");
    CHECK_HAS (e, "cardsync.ini:10: [device door1] username: given twice (first at line 8)");
    CHECK_HAS (e, "cardsync.ini:11: [device door1] password: secrets do not belong in the config file; set CARDSYNC_DEVICE_DOOR1_PASSWORD");
    CHECK_HAS (e, "cardsync.ini:15: [device door2] password: secrets do not belong");
    CHECK_HAS (e, "cardsync.ini:16: [device door1]: defined twice (first at line 6)");
    CHECK_LACKS (e, "hunter");
    free (e);
}

TEST (overlong_line)
{
    char text [2048];
    char pad [400];
    memset (pad, 'a', sizeof pad - 1);
    pad [sizeof pad - 1] = 0;
    snprintf (text, sizeof text, "%s[sync]\nidentity_map = %s\nrevoke = nope\n", MINIMAL, pad);
    char *e = errors_of (text, 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:10: line longer than");
    CHECK_HAS (e, "cardsync.ini:11: [sync] revoke: must be true or false");
    free (e);
}

TEST (https_required_for_cardskipper_off_loopback)
{
    char *e = errors_of ("[cardskipper]\nurl = http://api.cardskipper.se\nusername = u\n"
                         "organisation_ids = 1\n[device d]\nurl = http://10.1.1.1\nusername = a\n", 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:2: [cardskipper] url: use https://");
    free (e);
    char *errors = NULL;
    cs_config_t *cfg = load_text ("[cardskipper]\nurl = http://127.0.0.1:8080\nusername = u\n"
                                  "organisation_ids = 1\n[device d]\nurl = http://127.0.0.1:9\n"
                                  "username = a\n", 0, &errors);
    CHECK (cfg);
    cs_config_destroy (&cfg);
    free (errors);
}

/* A URL is read by libcurl's parser, not by its prefix: "localhost.example.com"
 * is not this machine, and a password inside a URL is refused, never repeated. */
TEST (urls_parsed_by_curl_and_no_password_in_them)
{
    char *e = errors_of ("[cardskipper]\nurl = http://localhost.example.com\nusername = u\n"
                         "organisation_ids = 1\n[device d]\nurl = http://10.1.1.1\nusername = a\n", 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:2: [cardskipper] url: use https://");
    free (e);
    static const char *const cases [][3] = {
        { "[cardskipper]\nurl = https://api@club:Secret1@api.cardskipper.se\nusername = u\norganisation_ids = 1\n"
          "[device d]\nurl = http://10.1.1.1\nusername = a\n", "[cardskipper] url: must not carry a username or password",
          "CARDSYNC_CARDSKIPPER_PASSWORD" },
        { "[cardskipper]\nurl = https://api.cardskipper.se\nusername = u\norganisation_ids = 1\n"
          "[device door-2]\nurl = http://admin:Secret1@10.0.0.5\nusername = a\n",
          "[device door-2] url: must not carry a username or password", "CARDSYNC_DEVICE_DOOR_2_PASSWORD" },
        { "[cardskipper]\nurl = https://api.cardskipper.se\nusername = u\norganisation_ids = 1\n"
          "[device d]\nurl = http://:Secret1@10.0.0.5\nusername = a\n", "url: must not carry a username or password",
          "password_file" },
        { "[cardskipper]\nurl = https://api.cardskipper.se\nusername = u\norganisation_ids = 1\n"
          "[device d]\nurl = http://10.1.1.1\nusername = a\n[notify]\nsmtp_url = smtp://mail:Secret1@mail.example\n"
          "from = a@example.se\nto = b@example.se\n", "[notify] smtp_url: must not carry a username or password",
          "CARDSYNC_SMTP_PASSWORD" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        e = errors_of (cases [i][0], 0);
        REQUIRE (e);
        CHECK_HAS (e, cases [i][1]);
        CHECK_HAS (e, cases [i][2]);
        CHECK_LACKS (e, "Secret1");
        free (e);
    }
    char *errors = NULL;
    cs_config_t *cfg = load_text ("[cardskipper]\nurl = http://[::1]:8080\nusername = u\n"
                                  "organisation_ids = 1\n[device d]\nurl = http://127.1.2.3:9\n"
                                  "username = a\n", 0, &errors);
    CHECK (cfg);
    cs_config_destroy (&cfg);
    free (errors);
}

TEST (durations)
{
    int s = 0;
    CHECK (cs_config_parse_duration ("90s", &s) == 0 && s == 90);
    CHECK (cs_config_parse_duration ("5m", &s) == 0 && s == 300);
    CHECK (cs_config_parse_duration ("1h30m", &s) == 0 && s == 5400);
    CHECK (cs_config_parse_duration ("2d", &s) == 0 && s == 172800);
    CHECK (cs_config_parse_duration ("300", &s) == 0 && s == 300);
    CHECK (cs_config_parse_duration ("", &s) == -1);
    CHECK (cs_config_parse_duration ("5 m", &s) == -1);
    CHECK (cs_config_parse_duration ("-5m", &s) == -1);
    CHECK (cs_config_parse_duration ("5x", &s) == -1);
    CHECK (cs_config_parse_duration ("m", &s) == -1);
    CHECK (cs_config_parse_duration ("99999999999h", &s) == -1);
    CHECK (cs_config_parse_duration ("99999999999", &s) == -1);
    char *e = errors_of (with ("[sync]\nscan_interval = 1s\nlease = 0s\n"), 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:10: [sync] scan_interval: must be from 10s to 7d, not '1s'");
    CHECK_HAS (e, "cardsync.ini:11: [sync] lease: must be from 1s to 1d");
    free (e);
}

TEST (secrets_from_environment_and_file)
{
    unsetenv ("CARDSYNC_CARDSKIPPER_PASSWORD");
    setenv ("CARDSYNC_DEVICE_FRONT_DOOR_PASSWORD", "env-secret", 1);
    char pw [512];
    snprintf (pw, sizeof pw, "%s", cs_test_write ("cs.password", "file-secret\n"));
    chmod (pw, 0600);
    char text [2048];
    snprintf (text, sizeof text,
              "[cardskipper]\nurl = https://x.example\nusername = u\norganisation_ids = 1\n"
              "password_file = cs.password\n"
              "[device front-door]\nurl = http://127.0.0.1:1\nusername = admin\n");
    char *errors = NULL;
    cs_config_t *cfg = load_text (text, CS_SECRETS_ALL, &errors);
    if (errors)
        printf ("%s", errors);
    REQUIRE (cfg);
    CHECK_STR (cfg->cardskipper.password, "file-secret");
    CHECK_HAS (cfg->cardskipper.password_source, "/cs.password");
    CHECK_STR (cfg->devices [0].password, "env-secret");
    CHECK_STR (cfg->devices [0].password_source, "CARDSYNC_DEVICE_FRONT_DOOR_PASSWORD");
    /* the printer shows where secrets come from, never the secrets */
    char *printed = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&printed, &size);
    cs_config_print (cfg, out);
    fclose (out);
    CHECK_LACKS (printed, "file-secret");
    CHECK_LACKS (printed, "env-secret");
    CHECK_HAS (printed, "; password: (redacted) from the environment");
    CHECK_HAS (printed, "[device front-door]");
    free (printed);
    cs_config_destroy (&cfg);

    /* a password file others can read is refused, naming the fix */
    chmod (pw, 0644);
    char *e = errors_of (text, CS_SECRETS_ALL);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:5: [cardskipper] password_file:");
    CHECK_HAS (e, "is open to other users (mode 0644); run: chmod o-rw");
    free (e);

    /* an empty password file, and a missing one */
    cs_test_write ("cs.password", "\n");
    chmod (pw, 0600);
    e = errors_of (text, CS_SECRETS_ALL);
    CHECK_HAS (e, "holds no password on its first line");
    free (e);
    unlink (pw);
    e = errors_of (text, 0);
    CHECK_HAS (e, "[cardskipper] password_file: cannot use");
    CHECK_HAS (e, "No such file");
    free (e);
    unsetenv ("CARDSYNC_DEVICE_FRONT_DOOR_PASSWORD");
}

TEST (missing_secret_only_when_needed)
{
    unsetenv ("CARDSYNC_CARDSKIPPER_PASSWORD");
    unsetenv ("CARDSYNC_DEVICE_DOOR1_PASSWORD");
    char *errors = NULL;
    cs_config_t *cfg = load_text (MINIMAL, CS_SECRETS_CARDSKIPPER, &errors);
    CHECK (cfg == NULL);
    CHECK_HAS (errors, "cardsync.ini:1: [cardskipper] password_file: no password: set "
                       "CARDSYNC_CARDSKIPPER_PASSWORD in the environment or password_file");
    CHECK_LACKS (errors, "DOOR1");
    free (errors);
    errors = NULL;
    cfg = load_text (MINIMAL, CS_SECRETS_DEVICES, &errors);
    CHECK (cfg == NULL);
    CHECK_HAS (errors, "cardsync.ini:6: [device door1] password_file: no password: set "
                       "CARDSYNC_DEVICE_DOOR1_PASSWORD");
    free (errors);
}

TEST (device_names_sharing_a_variable)
{
    char *e = errors_of (with ("[device door-1]\nurl = http://127.0.0.1:1\nusername = a\n"
                               "[device door_1]\nurl = http://127.0.0.1:2\nusername = a\n"), 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:12: [device door_1]: devices 'door-1' and 'door_1' would share "
                  "CARDSYNC_DEVICE_DOOR_1_PASSWORD");
    free (e);
}

TEST (pipeline_endpoints)
{
    char long_dir [120];
    memset (long_dir, 'd', sizeof long_dir - 1);
    long_dir [sizeof long_dir - 1] = 0;
    char text [2048];
    snprintf (text, sizeof text, "%s[pipeline]\nrun_dir = /%s\npusher_in = udp://x\n"
              "auditor_in = tcp://10.0.0.2:5555\nlog_level = loud\n", MINIMAL, long_dir);
    char *e = errors_of (text, 0);
    REQUIRE (e);
    CHECK_HAS (e, "[pipeline] differ_in: the socket path");
    CHECK_HAS (e, "is longer than 107 bytes; use a shorter run_dir");
    CHECK_HAS (e, "cardsync.ini:11: [pipeline] pusher_in: 'udp://x' must be ipc://PATH or tcp://HOST:PORT");
    CHECK_HAS (e, "cardsync.ini:12: [pipeline] auditor_in: crosses hosts unencrypted");
    CHECK_HAS (e, "cardsync.ini:13: [pipeline] log_level: must be debug, info, warn or error");
    free (e);

    char *errors = NULL;
    cs_config_t *cfg = load_text (with ("[pipeline]\nrun_dir = run\nstate_dir = /var/x\n"
                                        "auditor_pub = tcp://127.0.0.1:7000\n"), 0, &errors);
    REQUIRE (cfg);
    /* relative paths are relative to the config file's directory */
    char expect [512];
    snprintf (expect, sizeof expect, "ipc://%s/run/differ.in", cs_test_dir ());
    CHECK_STR (cfg->pipeline.differ_in, expect);
    CHECK_STR (cfg->pipeline.auditor_pub, "tcp://127.0.0.1:7000");
    cs_config_destroy (&cfg);
}

TEST (sync_and_device_details)
{
    const char *map = cs_test_write ("map.csv", "email,employeeNo\na@b.se,1001\n");
    (void) map;
    char *errors = NULL;
    cs_config_t *cfg = load_text (with ("door_right = 1,3\nplan_template = 7\nverify = no\n"
                                        "timezone = America/Sao_Paulo\n"
                                        "[sync]\nmatch = member_id, map\nidentity_map = map.csv\n"
                                        "tag_field = name\ncreate_missing = yes\n"), 0, &errors);
    if (errors)
        printf ("%s", errors);
    REQUIRE (cfg);
    CHECK_STR (cfg->devices [0].door_right, "1,3");
    CHECK_INT (cfg->devices [0].plan_template, 7);
    CHECK_INT (cfg->devices [0].verify, 0);
    CHECK_INT (cfg->sync.match_count, 2);
    CHECK_INT (cfg->sync.match [0], CS_MATCH_MEMBER_ID);
    CHECK_INT (cfg->sync.create_missing, 1);
    CHECK_STR (cfg->sync.tag_field, "name");
    CHECK_HAS (cfg->sync.identity_map, "/map.csv");
    cs_config_destroy (&cfg);

    char *e = errors_of (with ("door_right = 1,,3\nca_file = nowhere.pem\n"
                               "[sync]\nmatch = tag, tag\nidentity_map = map.csv\n"
                               "tag_field = email\n"), 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:9: [device door1] door_right: must be door numbers");
    CHECK_HAS (e, "cardsync.ini:10: [device door1] ca_file: cannot use");
    CHECK_HAS (e, "cardsync.ini:12: [sync] match: 'tag' is listed twice");
    CHECK_HAS (e, "cardsync.ini:13: [sync] identity_map: is set but match does not include 'map'");
    CHECK_HAS (e, "cardsync.ini:14: [sync] tag_field: must be PersonInfoExtends or name");
    free (e);
}

TEST (notify_section)
{
    char *e = errors_of (with ("[notify]\nto = ops@club.example\n"), 0);
    CHECK_HAS (e, "[notify] smtp_url: required when from or to is set");
    free (e);
    e = errors_of (with ("[notify]\nsmtp_url = http://mail\nfrom = x\n"), 0);
    CHECK_HAS (e, "cardsync.ini:10: [notify] smtp_url: must start with smtp:// or smtps://");
    free (e);
    e = errors_of (with ("[notify]\nsmtp_url = smtp://127.0.0.1:2525\nfrom = not-an-address\n"
                         "to = a@club.example, b@@club\n"), 0);
    CHECK_HAS (e, "cardsync.ini:11: [notify] from: 'not-an-address': e-mail address without '@'");
    CHECK_HAS (e, "cardsync.ini:12: [notify] to: 'b@@club': e-mail address with more than one '@'");
    free (e);
    char *errors = NULL;
    cs_config_t *cfg = load_text (with ("[notify]\nsmtp_url = smtp://127.0.0.1:2525\n"
                                        "from = Cardsync@Club.example\n"
                                        "to = a@club.example, B@club.example\n"
                                        "batch_interval = 1m\n"), CS_SECRETS_ALL, &errors);
    /* needs the device password (CS_SECRETS_ALL); the smtp one only with a username */
    CHECK (cfg == NULL);
    free (errors);
    errors = NULL;
    cfg = load_text (with ("[notify]\nsmtp_url = smtp://127.0.0.1:2525\n"
                           "from = Cardsync@Club.example\nto = a@club.example, B@club.example\n"
                           "batch_interval = 1m\n"), CS_SECRETS_SMTP, &errors);
    REQUIRE (cfg);
    CHECK_STR (cfg->notify.from, "cardsync@club.example");
    CHECK_INT (cfg->notify.to_count, 2);
    CHECK_STR (cfg->notify.to [1], "b@club.example");
    CHECK_INT (cfg->notify.batch_interval, 60);
    cs_config_destroy (&cfg);
}

TEST (unreadable_file)
{
    char *errors = NULL;
    cs_config_t *cfg = cs_config_load ("/nonexistent/cardsync.ini", 0, &errors);
    CHECK (cfg == NULL);
    CHECK_HAS (errors, "/nonexistent/cardsync.ini: cannot read the config file: No such file");
    free (errors);
}

TEST (comments_bom_and_colon_separator)
{
    char *errors = NULL;
    cs_config_t *cfg = load_text ("\xEF\xBB\xBF; a comment\n# another\n[cardskipper]\n"
                                  "url = https://x.example ; inline comment\n"
                                  "username: colon@club.example\norganisation_ids = 7\n"
                                  "[device d]\nurl = http://127.0.0.1:1\nusername = a\n",
                                  0, &errors);
    if (errors)
        printf ("%s", errors);
    REQUIRE (cfg);
    CHECK_STR (cfg->cardskipper.url, "https://x.example");
    CHECK_STR (cfg->cardskipper.username, "colon@club.example");
    cs_config_destroy (&cfg);
}

/* [web]: where the window listens, which names it answers to, and what it
 * needs off loopback (a login; TLS or allow_plain_http). */
TEST (web_defaults_to_loopback_without_a_login)
{
    char *errors = NULL;
    cs_config_t *cfg = load_text (MINIMAL, 0, &errors);
    REQUIRE (cfg);
    CHECK_STR (cfg->web.address, "127.0.0.1");
    CHECK_INT (cfg->web.port, 8480);
    CHECK_INT (cfg->web.loopback, 1);
    CHECK (cfg->web.username == NULL);
    CHECK_INT (cfg->web.allowed_count, 3);
    CHECK_STR (cfg->web.allowed_hosts [0], "localhost");
    CHECK_STR (cfg->web.allowed_hosts [2], "[::1]");
    cs_config_destroy (&cfg);
}

TEST (web_listen_forms)
{
    static const struct { const char *listen; const char *address; int port, loopback, v6; } cases [] = {
        { "127.0.0.1:9000", "127.0.0.1", 9000, 1, 0 },
        { "localhost:9001", "127.0.0.1", 9001, 1, 0 },
        { "[::1]:9002", "::1", 9002, 1, 1 },
        { "127.8.9.10:9003", "127.8.9.10", 9003, 1, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char text [256];
        snprintf (text, sizeof text, "[web]\nlisten = %s\n", cases [i].listen);
        char *errors = NULL;
        cs_config_t *cfg = load_text (with (text), 0, &errors);
        REQUIRE (cfg);
        CHECK_STR (cfg->web.address, cases [i].address);
        CHECK_INT (cfg->web.port, cases [i].port);
        CHECK_INT (cfg->web.loopback, cases [i].loopback);
        CHECK_INT (cfg->web.family == AF_INET6, cases [i].v6);
        cs_config_destroy (&cfg);
    }
}

TEST (web_refuses_what_it_cannot_do_safely)
{
    static const struct { const char *section; const char *error; } cases [] = {
        { "listen = 8480", "must be ADDRESS:PORT" },
        { "listen = club.example:8480", "must be ADDRESS:PORT" },
        { "listen = 127.0.0.1:70000", "must be ADDRESS:PORT" },
        { "listen = 0.0.0.0:8480", "0.0.0.0:8480 is not loopback: the window needs a login there" },
        { "listen = 192.168.1.5:8480\nusername = ops", "set cert_file = and key_file = (TLS), or allow_plain_http = true" },
        { "allowed_hosts = http://club.example", "'http://club.example' is not a host name" },
        { "allowed_hosts = club.example:8480", "'club.example:8480' is not a host name" },
        { "cert_file = /etc/hostname", "cert_file and key_file go together" },
        { "allow_plain_http = maybe", "must be true or false" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char text [256];
        snprintf (text, sizeof text, "[web]\n%s\n", cases [i].section);
        char *errors = errors_of (with (text), 0);
        CHECK_HAS (errors, cases [i].error);
        free (errors);
    }
}

TEST (web_off_loopback_with_a_login_and_plain_http_allowed)
{
    unsetenv ("CARDSYNC_WEB_PASSWORD");
    const char *text = with ("[web]\nlisten = 0.0.0.0:8480\nusername = ops\nallow_plain_http = true\n"
                             "allowed_hosts = Door-PC.club.example, 192.168.1.5\n");
    char *errors = NULL;
    cs_config_t *cfg = load_text (text, 0, &errors);       /* the other programs need no password */
    REQUIRE (cfg);
    CHECK_INT (cfg->web.loopback, 0);
    CHECK_INT (cfg->web.allowed_count, 2);
    CHECK_STR (cfg->web.allowed_hosts [0], "door-pc.club.example");
    cs_config_destroy (&cfg);
    errors = errors_of (text, CS_SECRETS_WEB);              /* serve does */
    CHECK_HAS (errors, "CARDSYNC_WEB_PASSWORD");
    free (errors);
    setenv ("CARDSYNC_WEB_PASSWORD", "pw-1", 1);
    cfg = load_text (text, CS_SECRETS_WEB, &errors);
    REQUIRE (cfg);
    CHECK_STR (cfg->web.password, "pw-1");
    cs_config_destroy (&cfg);
    unsetenv ("CARDSYNC_WEB_PASSWORD");
}

/* Several buildings: which pusher writes to which device, as small worlds. */
static const char *SITES =
    "[device hall]\nurl = http://127.0.0.1:1\nusername = a\n"
    "[device north-door]\nurl = http://127.0.0.1:2\nusername = a\nsite = north\n"
    "[device south-door]\nurl = http://127.0.0.1:3\nusername = a\nsite = south\n"
    "[site north]\nendpoint = tcp://127.0.0.1:5561\n"
    "[site south]\nendpoint = ipc:///run/cardsync-south/pusher.in\n";

TEST (sites_route_each_device_to_one_pusher)
{
    char text [4096];
    snprintf (text, sizeof text, "%s%s", MINIMAL, SITES);
    char *errors = NULL;
    cs_config_t *cfg = load_text (text, 0, &errors);
    REQUIRE (cfg);
    CHECK_INT (cfg->site_count, 2);
    CHECK_STR (cfg->sites [0].name, "north");
    CHECK_STR (cfg->sites [0].endpoint, "tcp://127.0.0.1:5561");
    CHECK (cfg->sites [0].server_key == NULL);
    static const struct { const char *device; int site; } world [] = {
        { "door1", -1 },          /* no site: the local pusher */
        { "hall", -1 },
        { "north-door", 0 },
        { "south-door", 1 },
        { "nowhere", -1 },        /* not configured: the local pusher says it does not know it */
    };
    for (size_t i = 0; i < sizeof world / sizeof world [0]; i++)
        CHECK_INT (cs_config_site_index (cfg, world [i].device), world [i].site);
    /* this host's pusher (no [pipeline] site): the devices without a site */
    CHECK (cs_config_serves (cfg, cs_config_device (cfg, "door1")));
    CHECK (cs_config_serves (cfg, cs_config_device (cfg, "hall")));
    CHECK (!cs_config_serves (cfg, cs_config_device (cfg, "north-door")));
    CHECK (!cs_config_serves (cfg, cs_config_device (cfg, "south-door")));
    CHECK (cfg->pipeline.site == NULL);
    cs_config_destroy (&cfg);

    /* the north host: its pusher serves north's devices only, and binds north's endpoint */
    snprintf (text, sizeof text, "%s%s[pipeline]\nsite = north\n", MINIMAL, SITES);
    cfg = load_text (text, 0, &errors);
    REQUIRE (cfg);
    CHECK_STR (cfg->pipeline.site, "north");
    CHECK_STR (cfg->pipeline.pusher_in, "tcp://127.0.0.1:5561");
    CHECK (!cs_config_serves (cfg, cs_config_device (cfg, "door1")));
    CHECK (cs_config_serves (cfg, cs_config_device (cfg, "north-door")));
    CHECK (!cs_config_serves (cfg, cs_config_device (cfg, "south-door")));
    cs_config_destroy (&cfg);

    /* an explicit pusher_in wins (binding all addresses, say) */
    snprintf (text, sizeof text, "%s%s[pipeline]\nsite = north\npusher_in = tcp://127.0.0.1:6000\n",
              MINIMAL, SITES);
    cfg = load_text (text, 0, &errors);
    REQUIRE (cfg);
    CHECK_STR (cfg->pipeline.pusher_in, "tcp://127.0.0.1:6000");
    cs_config_destroy (&cfg);
}

TEST (a_site_pusher_needs_only_its_own_devices_passwords)
{
    unsetenv ("CARDSYNC_DEVICE_DOOR1_PASSWORD");
    unsetenv ("CARDSYNC_DEVICE_HALL_PASSWORD");
    unsetenv ("CARDSYNC_DEVICE_SOUTH_DOOR_PASSWORD");
    setenv ("CARDSYNC_DEVICE_NORTH_DOOR_PASSWORD", "n", 1);
    char text [4096];
    snprintf (text, sizeof text, "%s%s[pipeline]\nsite = north\n", MINIMAL, SITES);
    char *errors = NULL;
    cs_config_t *cfg = load_text (text, CS_SECRETS_DEVICES, &errors);
    REQUIRE (cfg);
    CHECK_STR (cs_config_device (cfg, "north-door")->password, "n");
    cs_config_destroy (&cfg);
    /* the central host's pusher needs door1's and hall's, not north's or south's */
    snprintf (text, sizeof text, "%s%s", MINIMAL, SITES);
    char *e = errors_of (text, CS_SECRETS_DEVICES);
    REQUIRE (e);
    CHECK_HAS (e, "[device door1] password_file: no password");
    CHECK_HAS (e, "[device hall] password_file: no password");
    CHECK_LACKS (e, "SOUTH_DOOR");
    free (e);
    unsetenv ("CARDSYNC_DEVICE_NORTH_DOOR_PASSWORD");
}

TEST (site_mistakes)
{
    char *e = errors_of (with ("[device far]\nurl = http://127.0.0.1:2\nusername = a\nsite = west\n"
                               "[site]\nendpoint = tcp://127.0.0.1:1\n"
                               "[site north]\n"
                               "[site south]\nendpoint = tcp://10.1.2.3:5561\n"
                               "[site east]\nendpoint = tcp://127.0.0.1:5561\nserver_key = short\n"
                               "[site North]\nendpoint = tcp://127.0.0.1:5562\n"
                               "[pipeline]\nsite = nowhere\n"), 0);
    REQUIRE (e);
    CHECK_HAS (e, "cardsync.ini:12: [device far] site: names no [site west] section");
    CHECK_HAS (e, "cardsync.ini:13: [site]: a site section needs a name: [site north]");
    CHECK_HAS (e, "[site north] endpoint: required: the endpoint that site's pusher binds");
    CHECK_HAS (e, "[site south] endpoint: crosses hosts unencrypted; set [pipeline] curve_cert");
    CHECK_HAS (e, "[site east] server_key: must be a 40-character Z85 public key");
    CHECK_HAS (e, "[site North]: site names are 1 to 32 characters of a-z");
    CHECK_HAS (e, "[pipeline] site: names no [site nowhere] section");
    free (e);

    /* across hosts with CURVE: the site pusher's public key is required */
    const char *cert = cs_test_write ("host.cert_secret", "curve\n");
    char text [4096];
    snprintf (text, sizeof text, "%s[site south]\nendpoint = tcp://10.1.2.3:5561\n"
              "[pipeline]\ncurve_cert = %s\ncurve_server_key = rq:rM>}U?@Lns47E1%%kR.o@n%%FcmmsL/@{H8]yf7\n",
              MINIMAL, cert);
    e = errors_of (text, 0);
    REQUIRE (e);
    CHECK_HAS (e, "[site south] server_key: required with curve_cert: the public key of that "
                  "site pusher's certificate");
    free (e);
    snprintf (text, sizeof text, "%s[site south]\nendpoint = tcp://10.1.2.3:5561\n"
              "server_key = rq:rM>}U?@Lns47E1%%kR.o@n%%FcmmsL/@{H8]yf7\n"
              "[pipeline]\ncurve_cert = %s\ncurve_server_key = rq:rM>}U?@Lns47E1%%kR.o@n%%FcmmsL/@{H8]yf7\n",
              MINIMAL, cert);
    char *errors = NULL;
    cs_config_t *cfg = load_text (text, 0, &errors);
    CHECK (cfg != NULL);
    if (!cfg)
        printf ("%s", errors);
    free (errors);
    cs_config_destroy (&cfg);
}
