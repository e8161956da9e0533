#include "harness.h"
#include "common/date.h"

static cs_day_t
day (const char *text)
{
    cs_day_t d = 0;
    if (cs_day_parse (text, &d) != 0)
        cs_test_fail (__FILE__, __LINE__, "test date '%s' does not parse", text);
    return d;
}

static const char *
fmt (cs_day_t d)
{
    static char buf [4][CS_DAY_LEN];
    static int next;
    char *out = buf [next++ % 4];
    cs_day_format (d, out);
    return out;
}

TEST (day_arithmetic)
{
    cs_day_t d;
    CHECK (cs_day_from_ymd (1970, 1, 1, &d) == 0 && d == 0);
    CHECK (cs_day_from_ymd (2000, 3, 1, &d) == 0 && d == 11017);
    CHECK (cs_day_from_ymd (1969, 12, 31, &d) == 0 && d == -1);
    CHECK_STR (fmt (day ("2024-02-29") + 1), "2024-03-01");
    CHECK_STR (fmt (day ("2023-02-28") + 1), "2023-03-01");
    CHECK_STR (fmt (day ("2025-12-31") + 1), "2026-01-01");
    CHECK_STR (fmt (day ("2100-02-28") + 1), "2100-03-01");   /* not a leap year */
    CHECK_STR (fmt (day ("2000-02-28") + 1), "2000-02-29");   /* a leap year */
    /* every day from 1900 to 2100 round-trips */
    cs_day_t from = day ("1900-01-01"), to = day ("2100-12-31");
    int bad = 0;
    for (cs_day_t x = from; x <= to; x++) {
        int y, m, dd;
        cs_day_t back;
        cs_day_to_ymd (x, &y, &m, &dd);
        if (cs_day_from_ymd (y, m, dd, &back) != 0 || back != x)
            bad++;
    }
    CHECK_INT (bad, 0);
}

TEST (impossible_days)
{
    cs_day_t d;
    CHECK (cs_day_from_ymd (2023, 2, 29, &d) == -1);
    CHECK (cs_day_from_ymd (2025, 4, 31, &d) == -1);
    CHECK (cs_day_from_ymd (2025, 13, 1, &d) == -1);
    CHECK (cs_day_from_ymd (2025, 0, 1, &d) == -1);
    CHECK (cs_day_from_ymd (2025, 1, 0, &d) == -1);
    CHECK (cs_day_from_ymd (0, 1, 1, &d) == -1);
    CHECK (cs_day_from_ymd (10000, 1, 1, &d) == -1);
    CHECK (cs_day_parse ("2025-1-01", &d) == -1);
    CHECK (cs_day_parse ("2025-01-01T00:00:00", &d) == -1);
    CHECK (cs_day_parse ("", &d) == -1);
    CHECK (cs_day_parse (NULL, &d) == -1);
    CHECK (cs_day_parse ("+025-01-01", &d) == -1);
}

TEST (cardskipper_forms)
{
    static const char *ok [] = {
        "2025-12-31", "2025-12-31T00:00:00", "2025-12-31T23:59:59",
        "2025-12-31T00:00:00.0000000", "2025-12-31T00:00:00Z", "2025-12-31T00:00:00+01:00",
        "2025-12-31T00:00:00.123-05:30", "2025-12-31 00:00:00", " 2025-12-31 ",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cs_day_t d = 0;
        const char *why = NULL;
        int rc = cs_date_parse_cardskipper (ok [i], &d, &why);
        if (rc != 0 || d != day ("2025-12-31"))
            cs_test_fail (__FILE__, __LINE__, "'%s': rc %d (%s)", ok [i], rc, why ? why : "");
    }
    /* .NET's "no date" and "forever" are dates too */
    cs_day_t d;
    CHECK (cs_date_parse_cardskipper ("0001-01-01T00:00:00", &d, NULL) == 0);
    CHECK (cs_date_parse_cardskipper ("9999-12-31T23:59:59.9999999", &d, NULL) == 0);
}

TEST (cardskipper_garbage)
{
    static const struct { const char *text, *why; } bad [] = {
        { "", "empty date" },
        { "31/12/2025", "not a date" },
        { "2025-02-30", "not a date" },
        { "2023-02-29T00:00:00", "not a date" },
        { "2025-12-31T", "bad time" },
        { "2025-12-31T24:00:00", "bad time" },
        { "2025-12-31T12:60:00", "bad time" },
        { "2025-12-31T00:00", "bad time" },
        { "2025-12-31T00:00:00.", "bad fraction" },
        { "2025-12-31T00:00:00.1234567890", "bad fraction" },
        { "2025-12-31T00:00:00+1", "bad time zone" },
        { "2025-12-31T00:00:00+25:00", "bad time zone" },
        { "2025-12-31T00:00:00ZZ", "trailing" },
        { "2025-12-31x", "bad time" },
        { "2025-12-31T00:00:00 junk", "trailing" },
        { "20251231", "not a date" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cs_day_t d;
        const char *why = "";
        if (cs_date_parse_cardskipper (bad [i].text, &d, &why) != -1)
            cs_test_fail (__FILE__, __LINE__, "'%s' accepted", bad [i].text);
        else if (!strstr (why, bad [i].why))
            cs_test_fail (__FILE__, __LINE__, "'%s': reason '%s', expected '%s'", bad [i].text,
                          why, bad [i].why);
    }
    cs_day_t d;
    CHECK (cs_date_parse_cardskipper (NULL, &d, NULL) == -1);
}

static cs_span_t
span_of (const char *periods [][2], size_t n, const char *today)
{
    cs_period_t p [16];
    for (size_t i = 0; i < n; i++) {
        p [i].start = day (periods [i][0]);
        p [i].end = day (periods [i][1]);
    }
    cs_span_t s;
    if (cs_date_span (p, n, day (today), &s) != 0)
        cs_test_fail (__FILE__, __LINE__, "cs_date_span failed");
    return s;
}

#define SPAN(periods, today) span_of (periods, sizeof periods / sizeof *periods, today)

TEST (span_current_role)
{
    const char *p [][2] = { { "2025-01-01", "2025-10-01" } };
    cs_span_t s = SPAN (p, "2025-06-15");
    CHECK (s.valid);
    CHECK_STR (fmt (s.begin), "2025-01-01");
    CHECK_STR (fmt (s.end), "2025-10-01");
    /* end == today is still valid; the day after is not */
    CHECK (SPAN (p, "2025-10-01").valid);
    CHECK (!SPAN (p, "2025-10-02").valid);
    CHECK (SPAN (p, "2025-01-01").valid);
}

TEST (span_renewal_bought_in_advance)
{
    /* the seeds' renewal: a second role starting the day after the first ends */
    const char *p [][2] = { { "2025-11-02", "2025-12-01" }, { "2025-01-01", "2025-11-01" } };
    cs_span_t s = SPAN (p, "2025-10-20");
    CHECK (s.valid);
    CHECK_STR (fmt (s.begin), "2025-01-01");
    CHECK_STR (fmt (s.end), "2025-12-01");
}

TEST (span_gap_rule)
{
    /* one free day between the roles still joins them */
    const char *one [][2] = { { "2025-01-01", "2025-03-10" }, { "2025-03-12", "2025-06-30" } };
    cs_span_t s = SPAN (one, "2025-02-01");
    CHECK_STR (fmt (s.end), "2025-06-30");
    /* two free days do not: today's span ends at the first role */
    const char *two [][2] = { { "2025-01-01", "2025-03-10" }, { "2025-03-13", "2025-06-30" } };
    s = SPAN (two, "2025-02-01");
    CHECK_STR (fmt (s.end), "2025-03-10");
    /* ... and in the gap, the nearest future span applies */
    s = SPAN (two, "2025-03-11");
    CHECK (s.valid);
    CHECK_STR (fmt (s.begin), "2025-03-13");
    /* overlapping and nested roles merge */
    const char *nested [][2] = { { "2025-01-01", "2025-12-31" }, { "2025-03-01", "2025-04-01" },
                                 { "2025-12-01", "2026-02-28" } };
    s = SPAN (nested, "2025-03-15");
    CHECK_STR (fmt (s.begin), "2025-01-01");
    CHECK_STR (fmt (s.end), "2026-02-28");
}

TEST (span_future_expired_and_bad)
{
    const char *future [][2] = { { "2026-05-01", "2026-12-31" }, { "2027-01-10", "2027-12-31" },
                                 { "2024-01-01", "2024-12-31" } };
    cs_span_t s = SPAN (future, "2025-06-01");
    CHECK (s.valid);
    CHECK_STR (fmt (s.begin), "2026-05-01");     /* the nearest future span */
    CHECK_STR (fmt (s.end), "2026-12-31");
    const char *expired [][2] = { { "2024-01-01", "2024-12-31" } };
    CHECK (!SPAN (expired, "2025-06-01").valid);
    /* end before start is never valid, and does not bridge other roles */
    const char *backwards [][2] = { { "2019-05-16", "2015-05-15" } };
    CHECK (!SPAN (backwards, "2017-01-01").valid);
    const char *bridge [][2] = { { "2025-01-01", "2025-01-31" }, { "2025-02-01", "2025-01-01" },
                                 { "2025-03-01", "2025-03-31" } };
    s = SPAN (bridge, "2025-01-15");
    CHECK_STR (fmt (s.end), "2025-01-31");
    cs_span_t none;
    CHECK (cs_date_span (NULL, 0, 0, &none) == 0 && !none.valid);
}

TEST (span_leap_day)
{
    const char *p [][2] = { { "2024-02-01", "2024-02-28" }, { "2024-03-01", "2024-03-31" } };
    /* 2024-02-29 is the one free day between them: joined */
    cs_span_t s = SPAN (p, "2024-02-29");
    CHECK (s.valid);
    CHECK_STR (fmt (s.end), "2024-03-31");
}

TEST (device_times_and_clamping)
{
    char b [CS_TIME_LEN], e [CS_TIME_LEN];
    cs_span_t s = { 1, day ("2025-01-01"), day ("2025-11-01") };
    CHECK (cs_date_span_times (&s, b, e) == 0);
    CHECK_STR (b, "2025-01-01T00:00:00");
    CHECK_STR (e, "2025-11-01T23:59:59");
    s = (cs_span_t) { 1, day ("1995-06-01"), day ("2099-01-01") };
    CHECK (cs_date_span_times (&s, b, e) == 0);
    CHECK_STR (b, CS_TIME_MIN);
    CHECK_STR (e, CS_TIME_MAX);
    cs_day_t ancient, forever;
    cs_date_parse_cardskipper ("0001-01-01T00:00:00", &ancient, NULL);
    cs_date_parse_cardskipper ("9999-12-31T00:00:00", &forever, NULL);
    s = (cs_span_t) { 1, ancient, forever };
    CHECK (cs_date_span_times (&s, b, e) == 0);
    CHECK_STR (b, CS_TIME_MIN);
    CHECK_STR (e, CS_TIME_MAX);
    /* wholly outside the device range: cannot be represented */
    s = (cs_span_t) { 1, day ("2038-01-01"), day ("2040-01-01") };
    CHECK (cs_date_span_times (&s, b, e) == -1);
    CHECK_STR (b, "");
    s = (cs_span_t) { 0, 0, 0 };
    CHECK (cs_date_span_times (&s, b, e) == -1);
}

TEST (time_strings)
{
    CHECK (cs_time_valid ("2025-11-01T23:59:59"));
    CHECK (!cs_time_valid ("2025-11-01 23:59:59"));
    CHECK (!cs_time_valid ("2025-11-01T23:59:59Z"));
    CHECK (!cs_time_valid ("2025-11-31T00:00:00"));
    CHECK (!cs_time_valid ("2025-11-01T24:00:00"));
    CHECK (!cs_time_valid (NULL));
}

TEST (time_zones)
{
    CHECK (cs_tz_valid ("Europe/Stockholm"));
    CHECK (cs_tz_valid ("UTC"));
    CHECK (cs_tz_valid (""));
    CHECK (cs_tz_valid (NULL));
    CHECK (!cs_tz_valid ("Mars/Olympus"));
    CHECK (!cs_tz_valid ("../../etc/passwd"));
    CHECK (!cs_tz_valid ("/etc/localtime"));
    CHECK (!cs_tz_valid ("Europe"));            /* a directory, not a zone */
    char out [CS_TIME_LEN];
    CHECK (cs_time_local (0, "Mars/Olympus", out) == -1);
}

TEST (local_time_across_dst)
{
    char out [CS_TIME_LEN];
    /* Stockholm springs forward at 01:00 UTC on 2025-03-30 */
    CHECK (cs_time_local (1743296399, "Europe/Stockholm", out) == 0);   /* 00:59:59Z */
    CHECK_STR (out, "2025-03-30T01:59:59");
    CHECK (cs_time_local (1743296400, "Europe/Stockholm", out) == 0);   /* 01:00:00Z */
    CHECK_STR (out, "2025-03-30T03:00:00");
    /* and falls back at 01:00 UTC on 2025-10-26 */
    CHECK (cs_time_local (1761440400, "Europe/Stockholm", out) == 0);
    CHECK_STR (out, "2025-10-26T02:00:00");
    CHECK (cs_time_local (1761440400, "UTC", out) == 0);
    CHECK_STR (out, "2025-10-26T01:00:00");
    /* the caller's TZ is left as it was */
    setenv ("TZ", "Asia/Tokyo", 1);
    CHECK (cs_time_local (0, "Europe/Stockholm", out) == 0);
    CHECK_STR (out, "1970-01-01T01:00:00");
    CHECK_STR (getenv ("TZ"), "Asia/Tokyo");
    CHECK (cs_time_local (0, "", out) == 0);
    CHECK_STR (out, "1970-01-01T09:00:00");                              /* the host's zone */
}

TEST (today_depends_on_zone)
{
    cs_day_t d;
    /* 2025-06-30T22:30:00Z is already July 1st in Stockholm, still June 30th in New York */
    time_t t = 1751322600;
    CHECK (cs_day_local (t, "Europe/Stockholm", &d) == 0);
    CHECK_STR (fmt (d), "2025-07-01");
    CHECK (cs_day_local (t, "America/New_York", &d) == 0);
    CHECK_STR (fmt (d), "2025-06-30");
}

TEST (local_to_utc)
{
    time_t t;
    CHECK (cs_time_to_utc ("2025-11-01T23:59:59", "Europe/Stockholm", &t) == 0);
    CHECK_INT (t, 1762037999);                      /* 22:59:59Z, CET */
    CHECK (cs_time_to_utc ("2025-07-01T00:00:00", "Europe/Stockholm", &t) == 0);
    CHECK_INT (t, 1751320800);                      /* 22:00:00Z the day before, CEST */
    /* a skipped hour moves forward: 02:30 does not exist on 2025-03-30 */
    CHECK (cs_time_to_utc ("2025-03-30T02:30:00", "Europe/Stockholm", &t) == 0);
    CHECK_INT (t, 1743298200);                      /* 01:30Z = 03:30 CEST */
    /* a repeated hour takes its first occurrence (CEST) */
    CHECK (cs_time_to_utc ("2025-10-26T02:30:00", "Europe/Stockholm", &t) == 0);
    CHECK_INT (t, 1761438600);                      /* 00:30Z */
    /* midnight skipped (Sao Paulo, 2018-11-04): begins at 01:00 local */
    CHECK (cs_time_to_utc ("2018-11-04T00:00:00", "America/Sao_Paulo", &t) == 0);
    char out [CS_TIME_LEN];
    cs_time_local (t, "America/Sao_Paulo", out);
    CHECK_STR (out, "2018-11-04T01:00:00");
    CHECK (cs_time_to_utc ("2025-11-01 23:59:59", "UTC", &t) == -1);
    CHECK (cs_time_to_utc ("2025-11-01T23:59:59", "Nowhere/Land", &t) == -1);
}
