/* The window's Host check: only the names in allowed_hosts, with or without
 * a port, in any case; nothing that merely contains one of them. */
#include "harness.h"
#include "auditor/web.h"

TEST (host_check)
{
    char *names [] = { "localhost", "127.0.0.1", "[::1]", "club.example" };
    cs_web_config_t web = { .allowed_hosts = names, .allowed_count = 4 };
    static const struct { const char *host; int allowed; } cases [] = {
        { "localhost", 1 }, { "LocalHost:8480", 1 }, { "127.0.0.1:8480", 1 }, { "[::1]:8480", 1 },
        { "[::1]", 1 }, { "club.example", 1 }, { "club.example.", 1 }, { "club.example:443", 1 },
        { "evil.example", 0 }, { "localhost.evil.example", 0 }, { "127.0.0.1.nip.io", 0 },
        { "club.example@evil.example", 0 }, { "club.example:80x", 0 }, { "", 0 }, { NULL, 0 },
        { "[::1", 0 }, { "::1", 0 }, { "[::1]x", 0 }, { "[::2]:8480", 0 }, { ":8480", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        if (cs_web_host_allowed (&web, cases [i].host) != cases [i].allowed)
            cs_test_fail (__FILE__, __LINE__, "Host '%s': %s, expected %s", cases [i].host ? cases [i].host : "(none)",
                          cases [i].allowed ? "refused" : "allowed", cases [i].allowed ? "allowed" : "refused");
}

/* /metrics from a status answer: the exact samples, each family with its
 * HELP and TYPE; a silent differ gives only cardsync_differ_up 0. */
#include "auditor/metrics.h"

static int
has_line (const char *text, const char *line)
{
    size_t n = strlen (line);
    for (const char *p = text; p && *p; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
        if (!strncmp (p, line, n) && (p [n] == '\n' || p [n] == 0))
            return 1;
    return 0;
}

TEST (metrics_of_a_silent_differ)
{
    char *text = cs_metrics_text (NULL);
    REQUIRE (text);
    CHECK_STR (text, "# HELP cardsync_differ_up 1 when the differ answered this scrape, 0 when it did not.\n"
                     "# TYPE cardsync_differ_up gauge\ncardsync_differ_up 0\n");
    free (text);
}

TEST (metrics_of_a_status)
{
    json_error_t e;
    json_t *status = json_loads (
        "{\"stages\": [{\"name\": \"producer\", \"alive\": true, \"last_heartbeat_ts\": 1790000000,"
        "               \"counters\": {\"exports_ok\": 3, \"exports_failed\": 1, \"members_sent\": 900, \"bytes\": 4096}},"
        "              {\"name\": \"pusher\", \"alive\": false},"
        "              {\"name\": \"auditor\", \"alive\": true, \"counters\": {\"events_stored\": 77, \"store_failures\": 0}}],"
        " \"last_export\": {\"last_good_ts\": 1789999000},"
        " \"members\": 300, \"members_with_email\": 290,"
        " \"targets\": {\"in_sync\": 250, \"pending\": 2, \"failed\": 1, \"held\": 0, \"unmatched\": 12},"
        " \"guard_held\": 0, \"outbox\": 4,"
        " \"devices\": [{\"name\": \"door1\", \"health\": \"ok\", \"persons\": 260, \"managed\": 253, \"capacity\": 3000,"
        "               \"last_scan_ts\": 1789998000, \"counters\": {\"applied\": 5, \"unchanged\": 7, \"failed\": 1,"
        "               \"retried\": 2, \"requests\": 40, \"scans_ok\": 2, \"scans_failed\": 0}},"
        "              {\"name\": \"do\\\"or2\", \"health\": \"down\", \"persons\": 0, \"managed\": 0}],"
        " \"attention\": [\"the pusher is silent\"]}", 0, &e);
    REQUIRE (status);
    char *text = cs_metrics_text (status);
    REQUIRE (text);
    static const char *const want [] = {
        "cardsync_differ_up 1",
        "cardsync_stage_up{stage=\"producer\"} 1",
        "cardsync_stage_up{stage=\"pusher\"} 0",
        "cardsync_last_heartbeat_timestamp_seconds{stage=\"producer\"} 1790000000",
        "cardsync_healthy 0",
        "cardsync_attention 1",
        "# TYPE cardsync_exports_total counter",
        "cardsync_exports_total{result=\"ok\"} 3",
        "cardsync_exports_total{result=\"failed\"} 1",
        "cardsync_export_members_total 900",
        "cardsync_last_good_export_timestamp_seconds 1789999000",
        "cardsync_members 300",
        "cardsync_targets{state=\"in_sync\"} 250",
        "cardsync_targets{state=\"pending\"} 2",
        "cardsync_unmatched 12",
        "cardsync_failed_queue 1",
        "cardsync_guard_held 0",
        "cardsync_outbox_events 4",
        "cardsync_device_health{device=\"door1\",state=\"ok\"} 1",
        "cardsync_device_health{device=\"door1\",state=\"down\"} 0",
        "cardsync_device_health{device=\"do\\\"or2\",state=\"down\"} 1",
        "cardsync_device_persons{device=\"door1\"} 260",
        "cardsync_device_persons_managed{device=\"door1\"} 253",
        "cardsync_device_capacity{device=\"door1\"} 3000",
        "cardsync_last_scan_timestamp_seconds{device=\"door1\"} 1789998000",
        "cardsync_writes_total{device=\"door1\",result=\"applied\"} 5",
        "cardsync_writes_total{device=\"door1\",result=\"unchanged\"} 7",
        "cardsync_writes_total{device=\"door1\",result=\"failed\"} 1",
        "cardsync_write_retries_total{device=\"door1\"} 2",
        "cardsync_device_requests_total{device=\"door1\"} 40",
        "cardsync_scans_total{device=\"door1\",result=\"ok\"} 2",
        "cardsync_audit_events_total 77",
        NULL };
    for (int i = 0; want [i]; i++)
        if (!has_line (text, want [i]))
            cs_test_fail (__FILE__, __LINE__, "no line '%s' in:\n%s", want [i], text);
    CHECK (!strstr (text, "cardsync_writes_total{device=\"do\\\"or2\""));   /* no counters: no samples */
    CHECK (!strstr (text, "cardsync_device_capacity{device=\"do\\\"or2\""));
    free (text);
    json_decref (status);
}

/* Pages: what comes from the data is escaped; every form carries the token. */
#include "auditor/pages.h"

TEST (pages_escape_and_carry_the_token)
{
    json_t *member = json_loads ("{\"rows\": [{\"org\": 1, \"member_id\": 2, \"first\": \"<script>x</script>\","
                                 " \"last\": \"O'Neil & \\\"Co\\\"\", \"email\": \"a@b.se\", \"roles\": \"3:2026-01-01:2026-12-31\","
                                 " \"persons\": [{\"device\": \"door1\", \"employee_no\": \"7\", \"rule\": \"tag\","
                                 " \"via\": \"a@b.se\", \"sync\": \"in_sync\", \"begin\": \"b\", \"end\": \"2026-12-31T23:59:59\"}]}]}",
                                 0, NULL);
    REQUIRE (member);
    char *html = cs_page_member ("a@b.se", member, NULL, NULL);
    REQUIRE (html);
    CHECK (!strstr (html, "<script>x"));
    CHECK (strstr (html, "&lt;script&gt;x&lt;/script&gt;") != NULL);
    CHECK (strstr (html, "O&#39;Neil &amp; &quot;Co&quot;") != NULL);
    CHECK (strstr (html, "<td class=\"end\">2026-12-31T23:59:59</td>") != NULL);
    free (html);
    json_decref (member);

    json_t *failed = json_loads ("{\"rows\": [{\"id\": 41, \"email\": \"a@b.se\", \"device\": \"door1\", \"msg\": \"<i>\"},"
                                 " {\"id\": 42, \"email\": \"c@d.se\", \"device\": \"door2\"}]}", 0, NULL);
    cs_page_ctx_t ctx = { "tok123", "Replayed: 1" };
    html = cs_page_failed (failed, &ctx, NULL);
    REQUIRE (html);
    int forms = 0, tokens = 0;
    for (const char *p = html; (p = strstr (p, "<form")); p++)
        forms++;
    for (const char *p = html; (p = strstr (p, "name=\"csrf\" value=\"tok123\"")); p++)
        tokens++;
    CHECK_INT (forms, 3);           /* replay all, and one per row */
    CHECK_INT (tokens, 3);
    CHECK (strstr (html, "&lt;i&gt;") && !strstr (html, "<i>"));
    CHECK (strstr (html, "id=\"flash\">Replayed: 1<") != NULL);
    free (html);
    json_decref (failed);

    html = cs_page_overview (NULL, "the differ is not answering");
    REQUIRE (html);
    CHECK (strstr (html, "id=\"error\">the differ is not answering<") != NULL);
    free (html);
}
