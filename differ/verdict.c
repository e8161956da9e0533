#include "differ/verdict.h"
#include "common/date.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    void (*say) (void *arg, const char *line);
    void *arg;
    size_t count;
} out_t;

static void
need (out_t *o, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
need (out_t *o, const char *fmt, ...)
{
    char line [600];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    o->say (o->arg, line);
    o->count++;
}

static void
ago (int64_t ms, char out [32])
{
    int64_t s = ms / 1000;
    if (s < 120)
        snprintf (out, 32, "%lld s", (long long) s);
    else if (s < 7200)
        snprintf (out, 32, "%lld min", (long long) (s / 60));
    else
        snprintf (out, 32, "%lld h", (long long) (s / 3600));
}

static void
pipeline (const cs_verdict_facts_t *f, out_t *o)
{
    int64_t silent_after = 3LL * f->heartbeat_interval * 1000;
    for (int i = 0; i < CS_STAGE_COUNT; i++) {
        int64_t last = f->beat_ms [i];
        char a [32];
        if ((last && f->now_ms - last <= silent_after) || f->now_ms - f->started_ms <= silent_after
            || (i == CS_STAGE_PUSHER && f->no_local_pusher))
            continue;           /* alive, too soon to tell, or not needed */
        ago (f->now_ms - (last ? last : f->started_ms), a);
        if (last)
            need (o, "the %s is silent: no heartbeat for %s (is it running?)", cs_stage_name ((cs_stage_t) i), a);
        else
            need (o, "the %s is silent: no heartbeat since the differ started %s ago (is it running?)",
                  cs_stage_name ((cs_stage_t) i), a);
    }
    for (size_t i = 0; i < f->site_count; i++) {
        const cs_verdict_site_t *site = &f->sites [i];
        int64_t last = site->beat_ms;
        char a [32];
        if ((last && f->now_ms - last <= silent_after) || f->now_ms - f->started_ms <= silent_after)
            continue;
        ago (f->now_ms - (last ? last : f->started_ms), a);
        need (o, "the pusher at site %s (%s) is silent: no heartbeat %s %s%s (is it running, and "
              "is the network to it up? its devices' changes wait meanwhile)", site->name,
              site->endpoint, last ? "for" : "since the differ started", a, last ? "" : " ago");
    }
    if (f->db_error && *f->db_error)
        need (o, "state.db cannot be written: %s; nothing is synced until it can", f->db_error);
    if (f->outbox > 0 && f->now_ms - f->acked_ms > CS_VERDICT_ACK_LAG_MS) {
        char a [32];
        ago (f->now_ms - f->acked_ms, a);
        need (o, "the audit has acknowledged nothing for %s: %lld event%s wait in the outbox", a,
              (long long) f->outbox, f->outbox == 1 ? "" : "s");
    }
    if (f->gap_ms && f->now_ms - f->gap_ms < CS_VERDICT_GAP_SHOWN_MS) {
        char w [CS_TIME_TEXT_LEN];
        cs_time_text (f->gap_ms, w);
        need (o, "the audit lost events it cannot get back (%s; see cardsync-auditor tail --type audit_gap)", w);
    }
    if (f->disk_known && (f->disk_free < CS_VERDICT_DISK_MIN_BYTES || f->disk_percent < CS_VERDICT_DISK_MIN_PERCENT))
        need (o, "the file system of %s has %lld MB (%d %%) free", f->state_dir ? f->state_dir : "state_dir",
              (long long) (f->disk_free >> 20), f->disk_percent);
}

static void
exports (const cs_verdict_facts_t *f, out_t *o)
{
    if (f->export_ignored)
        need (o, "the last export was ignored: %s", f->export_msg ? f->export_msg : "");
    if (!f->export_ok_ms)
        need (o, "no good export has arrived yet");
    else if (f->now_ms - f->export_ok_ms > (int64_t) f->export_alert_after * 1000) {
        char w [CS_TIME_TEXT_LEN];
        cs_time_text (f->export_ok_ms, w);
        need (o, "no good export since %s (export_alert_after is %d s)", w, f->export_alert_after);
    }
}

static void
sync_state (const cs_verdict_facts_t *f, out_t *o)
{
    if (f->failed)
        need (o, "%lld failed target%s (cardsync-auditor failed; then replay)", (long long) f->failed,
              f->failed == 1 ? "" : "s");
    if (f->guard_held)
        need (o, "the guard holds back %lld revocations (cardsync-auditor approve)", (long long) f->guard_held);
    if (f->rebuilt)
        need (o, "state.db was rebuilt: nothing is planned until a full export and a complete scan of "
              "every device have arrived");
}

static void
devices (const cs_verdict_facts_t *f, out_t *o)
{
    int64_t stale_after = 2LL * f->scan_interval * 1000;
    for (size_t i = 0; i < f->device_count; i++) {
        const cs_verdict_device_t *d = &f->devices [i];
        const char *msg = d->msg && *d->msg ? d->msg : NULL;
        if (!d->health)
            need (o, "device %s: no word from the pusher yet", d->name);
        else if (strcmp (d->health, "ok"))
            need (o, "device %s: %s%s%s", d->name, d->health, msg ? ": " : "", msg ? msg : "");
        if (!d->scanned)
            need (o, "device %s has not been scanned yet: nothing is synced to it", d->name);
        else if (f->now_ms - d->scan_ms > stale_after) {
            char w [CS_TIME_TEXT_LEN];
            cs_time_text (d->scan_ms, w);
            need (o, "device %s: no good scan since %s (scan_interval is %d s)", d->name,
                  d->scan_ms ? w : "before this version", f->scan_interval);
        }
        if (d->capacity > 0 && d->persons * 100 >= d->capacity * CS_VERDICT_FULL_PERCENT)
            need (o, "device %s is %lld%% full (%lld of %lld persons)", d->name,
                  (long long) (d->persons * 100 / d->capacity), (long long) d->persons, (long long) d->capacity);
    }
}

size_t
cs_verdict (const cs_verdict_facts_t *f, void (*say) (void *arg, const char *line), void *arg)
{
    out_t o = { say, arg, 0 };
    pipeline (f, &o);
    exports (f, &o);
    sync_state (f, &o);
    devices (f, &o);
    return o.count;
}
