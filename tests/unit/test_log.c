#include "harness.h"
#include "common/log.h"

/* The lines fn writes, as one string (the caller frees). */
__attribute__ ((noinline)) static char *
capture (void (*fn) (cs_log_t *))
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    cs_log_t *log = cs_log_new ("pusher", out);
    fn (log);
    cs_log_destroy (&log);
    fclose (out);
    return text;
}

static int
one_line (const char *text)
{
    const char *nl = strchr (text, '\n');
    return nl && nl [1] == 0;
}

static void
write_basic (cs_log_t *log)
{
    cs_log (log, CS_LOG_INFO, "applied", "email", "a@b.se", "device", "door1", NULL);
}

TEST (line_shape)
{
    char *text = capture (write_basic);
    REQUIRE (text);
    /* ts=2026-11-22T07:30:00.123Z */
    CHECK (strncmp (text, "ts=", 3) == 0);
    CHECK (strlen (text) > 27 && text [13] == 'T' && text [26] == 'Z' && text [22] == '.');
    CHECK_HAS (text, "Z level=info stage=pusher event=applied email=a@b.se device=door1\n");
    CHECK (one_line (text));   /* one line */
    free (text);
}

static void
write_quoting (cs_log_t *log)
{
    cs_log (log, CS_LOG_WARN, "failed", "msg", "device said \"no\"\nnext=line", "empty", "",
            "nul", NULL, "eq", "a=b", "tab", "x\ty", "utf8", "Åsa Öberg-Ståhl", "bell", "\a",
            "bad key!", "v", NULL);
}

TEST (quoting)
{
    char *text = capture (write_quoting);
    CHECK_HAS (text, "level=warn");
    CHECK_HAS (text, " msg=\"device said \\\"no\\\"\\nnext=line\"");
    CHECK_HAS (text, " empty=\"\"");
    CHECK_HAS (text, " nul=\"\"");
    CHECK_HAS (text, " eq=\"a=b\"");
    CHECK_HAS (text, " tab=\"x\\ty\"");
    CHECK_HAS (text, " utf8=\"Åsa Öberg-Ståhl\"");
    CHECK_HAS (text, " bell=\"\\u0007\"");
    CHECK_HAS (text, " bad_key_=v");
    CHECK (one_line (text));
    free (text);
}

static void
write_secrets (cs_log_t *log)
{
    cs_log_add_secret (log, "hunter2");
    cs_log_add_secret (log, "hunter2-long");
    cs_log_add_secret (log, "");
    cs_log (log, CS_LOG_ERROR, "login", "url", "http://admin:hunter2@10.0.0.1/", "x",
            "hunter2-longhunter2", NULL);
    cs_logf (log, CS_LOG_ERROR, "curl", "password %s rejected (%d)", "hunter2", 401);
}

TEST (secrets_never_printed)
{
    char *text = capture (write_secrets);
    CHECK_LACKS (text, "hunter2");
    CHECK_HAS (text, "url=http://admin:[redacted]@10.0.0.1/");
    CHECK_HAS (text, "x=[redacted][redacted]");
    CHECK_HAS (text, "event=curl msg=\"password [redacted] rejected (401)\"");
    free (text);
}

static void
write_levels (cs_log_t *log)
{
    cs_log (log, CS_LOG_DEBUG, "hidden", NULL);
    cs_log_set_level (log, CS_LOG_WARN);
    cs_log (log, CS_LOG_INFO, "hidden_too", NULL);
    cs_log (log, CS_LOG_ERROR, "shown", NULL);
    cs_log_set_level (log, CS_LOG_DEBUG);
    cs_log (log, CS_LOG_DEBUG, "shown_debug", NULL);
}

TEST (levels)
{
    char *text = capture (write_levels);
    CHECK_LACKS (text, "hidden");
    CHECK_HAS (text, "level=error stage=pusher event=shown\n");
    CHECK_HAS (text, "level=debug stage=pusher event=shown_debug\n");
    free (text);
    CHECK_INT (cs_log_level_parse ("warn"), CS_LOG_WARN);
    CHECK_INT (cs_log_level_parse ("loud"), -1);
    CHECK_INT (cs_log_level_parse (NULL), -1);
}

static void
write_huge (cs_log_t *log)
{
    char *big = malloc (20000);
    memset (big, 'x', 19999);
    big [19999] = 0;
    cs_log (log, CS_LOG_INFO, "huge", "v", big, "after", "y", NULL);
    free (big);
    cs_log (log, CS_LOG_INFO, "next", NULL);
}

TEST (overlong_values_stay_one_line)
{
    char *text = capture (write_huge);
    char *nl = strchr (text, '\n');
    REQUIRE (nl);
    CHECK_HAS (nl + 1, "event=next\n");
    CHECK (nl - text < 9000);
    free (text);
}

TEST (destroy_is_null_safe)
{
    cs_log_t *log = NULL;
    cs_log_destroy (&log);
    cs_log_destroy (NULL);
    cs_log (NULL, CS_LOG_ERROR, "nothing", NULL);
}
