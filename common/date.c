#include "common/date.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int
is_leap (int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month (int y, int m)
{
    static const int days [] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap (y) ? 29 : days [m - 1];
}

/* Howard Hinnant's days_from_civil. */
int
cs_day_from_ymd (int y, int m, int d, cs_day_t *out)
{
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > days_in_month (y, m))
        return -1;
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *out = (cs_day_t) (era * 146097 + doe - 719468);
    return 0;
}

void
cs_day_to_ymd (cs_day_t day, int *year, int *month, int *mday)
{
    int z = day + 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int y = yoe + era * 400;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    int d = doy - (153 * mp + 2) / 5 + 1;
    int m = mp + (mp < 10 ? 3 : -9);
    *year = y + (m <= 2);
    *month = m;
    *mday = d;
}

/* The fields are in range by construction; the wide buffer only quiets the
 * compiler's worst case for %d. */
static void
format_fields (char *out, size_t size, int y, int mo, int d, int h, int mi, int s, int with_time)
{
    char wide [96];
    if (with_time)
        snprintf (wide, sizeof wide, "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, h, mi, s);
    else
        snprintf (wide, sizeof wide, "%04d-%02d-%02d", y, mo, d);
    size_t n = strlen (wide) < size ? strlen (wide) : size - 1;
    memcpy (out, wide, n);
    out [n] = 0;
}

void
cs_day_format (cs_day_t day, char out [CS_DAY_LEN])
{
    int y, m, d;
    cs_day_to_ymd (day, &y, &m, &d);
    format_fields (out, CS_DAY_LEN, y, m, d, 0, 0, 0, 0);
}

/* n decimal digits at p, no sign, no spaces. */
static int
digits (const char *p, int n, int *value)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p [i] < '0' || p [i] > '9')
            return -1;
        v = v * 10 + (p [i] - '0');
    }
    *value = v;
    return 0;
}

static int
parse_ymd (const char *p, cs_day_t *out)
{
    int y, m, d;
    if (digits (p, 4, &y) || p [4] != '-' || digits (p + 5, 2, &m) || p [7] != '-'
        || digits (p + 8, 2, &d))
        return -1;
    return cs_day_from_ymd (y, m, d, out);
}

int
cs_day_parse (const char *text, cs_day_t *out)
{
    if (!text || strlen (text) != 10)
        return -1;
    return parse_ymd (text, out);
}

static int
parse_hms (const char *p, int *h, int *mi, int *s)
{
    if (digits (p, 2, h) || p [2] != ':' || digits (p + 3, 2, mi) || p [5] != ':'
        || digits (p + 6, 2, s))
        return -1;
    return *h <= 23 && *mi <= 59 && *s <= 59 ? 0 : -1;
}

int
cs_date_parse_cardskipper (const char *text, cs_day_t *out, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!text || !*text) {
        *why = "empty date";
        return -1;
    }
    /* Leading and trailing blanks are tolerated; nothing else is. */
    while (*text == ' ' || *text == '\t')
        text++;
    size_t len = strlen (text);
    while (len && (text [len - 1] == ' ' || text [len - 1] == '\t'))
        len--;
    if (len < 10 || parse_ymd (text, out) != 0) {
        *why = "not a date (expected YYYY-MM-DD)";
        return -1;
    }
    if (len == 10)
        return 0;
    const char *p = text + 10;
    const char *end = text + len;
    int h, mi, s;
    if ((*p != 'T' && *p != ' ') || end - p < 9 || parse_hms (p + 1, &h, &mi, &s) != 0) {
        *why = "bad time after the date (expected THH:MM:SS)";
        return -1;
    }
    p += 9;
    if (p < end && *p == '.') {
        const char *q = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == q || p - q > 9) {
            *why = "bad fraction of a second";
            return -1;
        }
    }
    if (p < end && *p == 'Z')
        p++;
    else if (p < end && (*p == '+' || *p == '-')) {
        int oh, om;
        if (end - p < 6 || digits (p + 1, 2, &oh) || p [3] != ':' || digits (p + 4, 2, &om)
            || oh > 14 || om > 59) {
            *why = "bad time zone offset (expected +HH:MM)";
            return -1;
        }
        p += 6;
    }
    if (p != end) {
        *why = "trailing characters after the date";
        return -1;
    }
    return 0;
}

static int
compare_periods (const void *a, const void *b)
{
    const cs_period_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

int
cs_date_span (const cs_period_t *periods, size_t count, cs_day_t today, cs_span_t *out)
{
    memset (out, 0, sizeof *out);
    if (count == 0)
        return 0;
    cs_period_t *sorted = malloc (count * sizeof *sorted);
    if (!sorted)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (periods [i].end >= periods [i].start)
            sorted [n++] = periods [i];
    qsort (sorted, n, sizeof *sorted, compare_periods);

    int have_future = 0;
    cs_span_t future = { 0, 0, 0 };
    size_t i = 0;
    while (i < n) {
        cs_span_t span = { 1, sorted [i].start, sorted [i].end };
        /* A gap of at most one day joins: end 10th, start 12th. */
        for (i++; i < n && (int64_t) sorted [i].start <= (int64_t) span.end + 2; i++)
            if (sorted [i].end > span.end)
                span.end = sorted [i].end;
        if (span.begin <= today && today <= span.end) {
            *out = span;
            free (sorted);
            return 0;
        }
        if (span.begin > today && !have_future) {
            future = span;       /* spans come in order: the first is the nearest */
            have_future = 1;
        }
    }
    free (sorted);
    if (have_future)
        *out = future;
    return 0;
}

int
cs_date_span_times (const cs_span_t *span, char begin [CS_TIME_LEN], char end [CS_TIME_LEN])
{
    begin [0] = end [0] = 0;
    if (!span->valid)
        return -1;
    cs_day_t lo, hi;
    cs_day_from_ymd (2000, 1, 1, &lo);
    cs_day_from_ymd (2037, 12, 31, &hi);
    if (span->end < lo || span->begin > hi)
        return -1;
    char day [CS_DAY_LEN];
    cs_day_format (span->begin < lo ? lo : span->begin, day);
    snprintf (begin, CS_TIME_LEN, "%sT00:00:00", day);
    cs_day_format (span->end > hi ? hi : span->end, day);
    snprintf (end, CS_TIME_LEN, "%sT23:59:59", day);
    return 0;
}

int
cs_time_valid (const char *text)
{
    cs_day_t day;
    int h, mi, s;
    return text && strlen (text) == 19 && parse_ymd (text, &day) == 0 && text [10] == 'T'
           && parse_hms (text + 11, &h, &mi, &s) == 0;
}

int
cs_tz_valid (const char *tz)
{
    if (!tz || !*tz)
        return 1;
    if (tz [0] == '/' || tz [0] == ':' || strstr (tz, "..") || strlen (tz) > 64)
        return 0;
    for (const char *p = tz; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '/' || *p == '_' || *p == '-' || *p == '+'))
            return 0;
    const char *dir = getenv ("TZDIR");
    char path [256];
    snprintf (path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

/* The C library converts only in the zone named by TZ, so switch it for the
 * call and put it back. The programs are single-threaded. */
typedef struct {
    char *saved;        /* the previous TZ, or NULL if it was unset */
    int switched;       /* TZ was changed */
} tz_guard_t;

static int
tz_enter (tz_guard_t *guard, const char *tz)
{
    guard->saved = NULL;
    guard->switched = 0;
    if (!tz || !*tz)
        return 0;
    if (!cs_tz_valid (tz))
        return -1;
    const char *old = getenv ("TZ");
    if (old && !(guard->saved = strdup (old)))
        return -1;
    if (setenv ("TZ", tz, 1) != 0) {
        free (guard->saved);
        return -1;
    }
    guard->switched = 1;
    tzset ();
    return 0;
}

static void
tz_leave (tz_guard_t *guard)
{
    if (!guard->switched)
        return;
    if (guard->saved)
        setenv ("TZ", guard->saved, 1);
    else
        unsetenv ("TZ");
    free (guard->saved);
    tzset ();
}

static int
local_tm (time_t t, const char *tz, struct tm *tm)
{
    tz_guard_t guard;
    if (tz_enter (&guard, tz) != 0)
        return -1;
    int rc = localtime_r (&t, tm) ? 0 : -1;
    tz_leave (&guard);
    return rc;
}

int
cs_time_local (time_t t, const char *tz, char out [CS_TIME_LEN])
{
    struct tm tm;
    out [0] = 0;
    if (local_tm (t, tz, &tm) != 0 || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return -1;
    format_fields (out, CS_TIME_LEN, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, 1);
    return 0;
}

int
cs_day_local (time_t t, const char *tz, cs_day_t *out)
{
    struct tm tm;
    if (local_tm (t, tz, &tm) != 0)
        return -1;
    return cs_day_from_ymd (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, out);
}

int
cs_time_to_utc (const char *local, const char *tz, time_t *out)
{
    if (!cs_time_valid (local))
        return -1;
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    int y = 0, mo = 0, d = 0;
    digits (local, 4, &y);
    digits (local + 5, 2, &mo);
    digits (local + 8, 2, &d);
    parse_hms (local + 11, &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tz_guard_t guard;
    if (tz_enter (&guard, tz) != 0)
        return -1;
    /* Read the wall time with each of the zone's offsets. One that reads back
     * as the same wall time is real; with two (a repeated hour) the earlier
     * wins. With none (a skipped hour) take the later reading, which moves
     * the time forward by the change. */
    time_t best = (time_t) -1, latest = (time_t) -1;
    for (int dst = 0; dst <= 1; dst++) {
        struct tm try = tm;
        try.tm_isdst = dst;
        time_t t = mktime (&try);
        if (t == (time_t) -1)
            continue;
        if (latest == (time_t) -1 || t > latest)
            latest = t;
        struct tm back;
        localtime_r (&t, &back);
        if (back.tm_hour == tm.tm_hour && back.tm_min == tm.tm_min && back.tm_mday == tm.tm_mday
            && (best == (time_t) -1 || t < best))
            best = t;
    }
    if (best == (time_t) -1)
        best = latest;
    tz_leave (&guard);
    if (best == (time_t) -1)
        return -1;
    *out = best;
    return 0;
}

void
cs_time_text (int64_t ms, char out [CS_TIME_TEXT_LEN])
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    strftime (out, CS_TIME_TEXT_LEN, "%Y-%m-%d %H:%M:%S", &tm);
}
