/* cs_date: calendar days, Cardskipper dates, validity spans and ISAPI local times.
 *
 * A day is a count of days since 1970-01-01 (negative before). Cardskipper gives
 * calendar dates; devices want naive local times ("2025-11-01T23:59:59") in their
 * own time zone, within 2000-01-01T00:00:00 .. 2037-12-31T23:59:59. */
#ifndef CS_DATE_H
#define CS_DATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef int32_t cs_day_t;

#define CS_TIME_MIN "2000-01-01T00:00:00"
#define CS_TIME_MAX "2037-12-31T23:59:59"
#define CS_DAY_LEN 11       /* "YYYY-MM-DD" + NUL */
#define CS_TIME_LEN 20      /* "YYYY-MM-DDTHH:MM:SS" + NUL */

/* 0 and *out set, or -1 if the date does not exist (years 1..9999). */
int cs_day_from_ymd (int year, int month, int day, cs_day_t *out);
void cs_day_to_ymd (cs_day_t day, int *year, int *month, int *mday);
void cs_day_format (cs_day_t day, char out [CS_DAY_LEN]);

/* Strict "YYYY-MM-DD". */
int cs_day_parse (const char *text, cs_day_t *out);

/* A Cardskipper date in any of its forms: "2025-12-31", "2025-12-31T00:00:00",
 * "2025-12-31 00:00:00", with a fraction (".0000000"), "Z" or "+01:00". The calendar
 * date is the first ten characters; the rest is checked but ignored. On error
 * returns -1 and sets *why (a static string) when why is not NULL. */
int cs_date_parse_cardskipper (const char *text, cs_day_t *out, const char **why);

/* A role period, both ends inclusive. */
typedef struct {
    cs_day_t start;
    cs_day_t end;
} cs_period_t;

/* A validity span: valid == 0 means the member is not entitled to enter. */
typedef struct {
    int valid;
    cs_day_t begin;
    cs_day_t end;
} cs_span_t;

/* The validity rule: drop periods whose end is before their start, merge the
 * rest into spans (overlapping, adjacent, or separated by a gap of at most one
 * day), then take the span containing today, else the nearest future span,
 * else none. periods is not modified. Returns -1 only when out of memory. */
int cs_date_span (const cs_period_t *periods, size_t count, cs_day_t today, cs_span_t *out);

/* The span as device times: begin at 00:00:00, end at 23:59:59, clamped to the
 * device range. Returns -1 (and leaves the outputs empty) when the span lies
 * wholly outside the range, so it cannot be represented on a device. */
int cs_date_span_times (const cs_span_t *span, char begin [CS_TIME_LEN], char end [CS_TIME_LEN]);

/* Strict "YYYY-MM-DDTHH:MM:SS" with a real date and time. */
int cs_time_valid (const char *text);

/* Is tz a time zone this machine knows ("Europe/Stockholm")? An empty name or
 * NULL means the host's own zone and is valid. */
int cs_tz_valid (const char *tz);

/* The instant t as naive local time in tz ("" or NULL: the host's zone). */
int cs_time_local (time_t t, const char *tz, char out [CS_TIME_LEN]);

/* The calendar day of instant t in tz. */
int cs_day_local (time_t t, const char *tz, cs_day_t *out);

#define CS_TIME_TEXT_LEN 32
/* The instant ms (since 1970) as this host's local "YYYY-MM-DD HH:MM:SS",
 * for people (status, mails, the audit's lists). */
void cs_time_text (int64_t ms, char out [CS_TIME_TEXT_LEN]);

/* The instant of a naive local time in tz. A time skipped by a DST change
 * moves forward by the change; a repeated one takes its first occurrence. */
int cs_time_to_utc (const char *local, const char *tz, time_t *out);

#endif
