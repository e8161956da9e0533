/* The health verdict as small worlds: a healthy pipeline, then one thing
 * wrong at a time, each with the exact lines status shows (and no others).
 * A world starts from "all well" and changes what it names. */
#include "harness.h"
#include "differ/verdict.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S 1000LL
#define NOW (1800000000LL * S)          /* 2027-01-15 08:00:00 UTC */

static cs_verdict_device_t s_devices [2];

/* Everything well: every stage beat a second ago, a good export a minute
 * ago, both doors scanned ten minutes ago, half full, nothing waiting. */
static cs_verdict_facts_t
healthy (void)
{
    setenv ("TZ", "UTC", 1);
    tzset ();
    static const cs_verdict_device_t d [2] = {
        { "door1", "ok", NULL, 1, NOW - 600 * S, 100, 200 },
        { "door2", "ok", "", 1, NOW - 600 * S, 10, 0 },
    };
    memcpy (s_devices, d, sizeof d);
    cs_verdict_facts_t f = {
        .now_ms = NOW, .started_ms = NOW - 3600 * S, .heartbeat_interval = 5,
        .beat_ms = { NOW - S, NOW - S, NOW - S }, .db_error = "", .outbox = 0, .acked_ms = NOW - 3600 * S,
        .disk_known = 1, .disk_free = 10LL << 30, .disk_percent = 50, .state_dir = "/var/lib/cardsync",
        .export_ok_ms = NOW - 60 * S, .export_alert_after = 3600,
        .scan_interval = 3600, .devices = s_devices, .device_count = 2,
    };
    return f;
}

typedef struct {
    char text [4000];
} lines_t;

static void
collect (void *arg, const char *line)
{
    lines_t *l = arg;
    size_t n = strlen (l->text);
    snprintf (l->text + n, sizeof l->text - n, "%s\n", line);
}

static void
expect (const cs_verdict_facts_t *f, const char *want)
{
    lines_t got = { "" };
    size_t n = cs_verdict (f, collect, &got);
    CHECK_STR (got.text, want);
    size_t lines = 0;
    for (const char *p = want; *p; p++)
        lines += *p == '\n';
    CHECK_INT (n, lines);
}

#define WORLD(name, change, want) \
    TEST (name) { cs_verdict_facts_t f = healthy (); change; expect (&f, want); }

WORLD (all_well, (void) 0, "")

/* stages */
WORLD (a_stage_silent_three_heartbeats_is_named,
       f.beat_ms [CS_STAGE_PUSHER] = NOW - 16 * S,
       "the pusher is silent: no heartbeat for 16 s (is it running?)\n")
WORLD (a_stage_late_by_less_than_three_heartbeats_is_not,
       f.beat_ms [CS_STAGE_PUSHER] = NOW - 15 * S, "")
WORLD (a_stage_never_heard_is_named_once_the_differ_has_waited,
       f.beat_ms [CS_STAGE_AUDITOR] = 0; f.started_ms = NOW - 600 * S,
       "the auditor is silent: no heartbeat since the differ started 10 min ago (is it running?)\n")
WORLD (just_after_the_differ_starts_nobody_is_silent_yet,
       f.beat_ms [0] = f.beat_ms [1] = f.beat_ms [2] = 0; f.started_ms = NOW - 10 * S, "")
/* sites: each site's pusher is heard on its own */
static const cs_verdict_site_t s_north_alive [] = { { "north", "tcp://10.213.0.2:5561", NOW - S } };
static const cs_verdict_site_t s_north_silent [] = { { "north", "tcp://10.213.0.2:5561", NOW - 35 * S } };
static const cs_verdict_site_t s_north_never [] = { { "north", "tcp://10.213.0.2:5561", 0 } };
WORLD (a_site_pusher_heard_is_well,
       f.sites = s_north_alive; f.site_count = 1, "")
WORLD (a_silent_site_pusher_is_named_with_its_endpoint,
       f.sites = s_north_silent; f.site_count = 1,
       "the pusher at site north (tcp://10.213.0.2:5561) is silent: no heartbeat for 35 s (is it "
       "running, and is the network to it up? its devices' changes wait meanwhile)\n")
WORLD (a_site_pusher_never_heard_is_named_once_the_differ_has_waited,
       f.sites = s_north_never; f.site_count = 1; f.started_ms = NOW - 600 * S,
       "the pusher at site north (tcp://10.213.0.2:5561) is silent: no heartbeat since the differ "
       "started 10 min ago (is it running, and is the network to it up? its devices' changes wait "
       "meanwhile)\n")
WORLD (a_silent_site_pusher_is_not_the_local_one,
       f.sites = s_north_silent; f.site_count = 1; f.beat_ms [CS_STAGE_PUSHER] = NOW - S,
       "the pusher at site north (tcp://10.213.0.2:5561) is silent: no heartbeat for 35 s (is it "
       "running, and is the network to it up? its devices' changes wait meanwhile)\n")
WORLD (no_local_pusher_is_missed_when_every_device_is_at_a_site,
       f.sites = s_north_alive; f.site_count = 1; f.no_local_pusher = 1;
       f.beat_ms [CS_STAGE_PUSHER] = 0, "")
WORLD (a_local_pusher_is_missed_while_a_device_has_no_site,
       f.sites = s_north_alive; f.site_count = 1; f.beat_ms [CS_STAGE_PUSHER] = NOW - 16 * S,
       "the pusher is silent: no heartbeat for 16 s (is it running?)\n")

WORLD (every_stage_stopped_names_all_three,
       f.beat_ms [0] = f.beat_ms [1] = f.beat_ms [2] = NOW - 3 * 3600 * S,
       "the producer is silent: no heartbeat for 3 h (is it running?)\n"
       "the pusher is silent: no heartbeat for 3 h (is it running?)\n"
       "the auditor is silent: no heartbeat for 3 h (is it running?)\n")

/* state.db, the audit, the disk */
WORLD (state_db_unwritable,
       f.db_error = "disk I/O error",
       "state.db cannot be written: disk I/O error; nothing is synced until it can\n")
WORLD (the_audit_not_acknowledging_for_a_minute,
       f.outbox = 42; f.acked_ms = NOW - 61 * S,
       "the audit has acknowledged nothing for 61 s: 42 events wait in the outbox\n")
WORLD (events_waiting_less_than_a_minute_are_normal,
       f.outbox = 42; f.acked_ms = NOW - 59 * S, "")
WORLD (an_old_acknowledgement_with_nothing_waiting_is_normal,
       f.outbox = 0; f.acked_ms = NOW - 3600 * S, "")
WORLD (a_stretch_of_the_audit_lost_today,
       f.gap_ms = NOW - 3600 * S,
       "the audit lost events it cannot get back (2027-01-15 07:00:00; see cardsync-auditor tail --type audit_gap)\n")
WORLD (a_stretch_lost_more_than_a_day_ago_is_no_longer_shown,
       f.gap_ms = NOW - 86401 * S, "")
WORLD (less_than_200_mb_free,
       f.disk_free = 150LL << 20; f.disk_percent = 40,
       "the file system of /var/lib/cardsync has 150 MB (40 %) free\n")
WORLD (less_than_5_percent_free,
       f.disk_free = 900LL << 20; f.disk_percent = 4,
       "the file system of /var/lib/cardsync has 900 MB (4 %) free\n")
WORLD (an_unknown_disk_is_not_judged,
       f.disk_known = 0; f.disk_free = 0; f.disk_percent = 0, "")

/* exports */
WORLD (no_good_export_yet,
       f.export_ok_ms = 0, "no good export has arrived yet\n")
WORLD (no_good_export_for_export_alert_after,
       f.export_ok_ms = NOW - 3601 * S,
       "no good export since 2027-01-15 06:59:59 (export_alert_after is 3600 s)\n")
WORLD (the_last_export_ignored_but_a_good_one_recent,
       f.export_ignored = 1; f.export_msg = "an empty full export while members are known: ignored",
       "the last export was ignored: an empty full export while members are known: ignored\n")

/* the sync */
WORLD (failed_targets,
       f.failed = 2, "2 failed targets (cardsync-auditor failed; then replay)\n")
WORLD (one_failed_target,
       f.failed = 1, "1 failed target (cardsync-auditor failed; then replay)\n")
WORLD (the_guard_tripped,
       f.guard_held = 90, "the guard holds back 90 revocations (cardsync-auditor approve)\n")
WORLD (rebuilt_and_waiting,
       f.rebuilt = 1,
       "state.db was rebuilt: nothing is planned until a full export and a complete scan of every device have arrived\n")

/* devices */
WORLD (a_device_with_no_word_from_the_pusher,
       s_devices [1].health = NULL, "device door2: no word from the pusher yet\n")
WORLD (a_device_down_says_the_pushers_words,
       s_devices [0].health = "down"; s_devices [0].msg = "connect: refused",
       "device door1: down: connect: refused\n")
WORLD (a_device_never_scanned,
       s_devices [1].scanned = 0; s_devices [1].scan_ms = 0,
       "device door2 has not been scanned yet: nothing is synced to it\n")
WORLD (a_device_not_scanned_for_twice_scan_interval,
       s_devices [0].scan_ms = NOW - 7201 * S,
       "device door1: no good scan since 2027-01-15 05:59:59 (scan_interval is 3600 s)\n")
WORLD (a_scan_just_under_twice_scan_interval_is_fine,
       s_devices [0].scan_ms = NOW - 7200 * S, "")
WORLD (a_device_95_percent_full,
       s_devices [0].persons = 190, "device door1 is 95% full (190 of 200 persons)\n")
WORLD (a_device_of_unknown_capacity_is_never_full,
       s_devices [1].persons = 100000, "")

/* several at once, in a fixed order: pipeline, exports, sync, devices */
WORLD (everything_wrong_in_order,
       f.beat_ms [CS_STAGE_PRODUCER] = NOW - 60 * S; f.export_ok_ms = 0; f.failed = 1;
       s_devices [1].health = "locked"; s_devices [1].msg = "unlocks 09:00",
       "the producer is silent: no heartbeat for 60 s (is it running?)\n"
       "no good export has arrived yet\n"
       "1 failed target (cardsync-auditor failed; then replay)\n"
       "device door2: locked: unlocks 09:00\n")
