#include "auditor/metrics.h"
#include "common/text.h"
#include "common/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A metric's HELP and TYPE lines. */
static void
head (cs_text_t *t, const char *name, const char *type, const char *help)
{
    cs_text_put (t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric of one sample, without labels. */
static void
single (cs_text_t *t, const char *name, const char *type, const char *help, long long value)
{
    head (t, name, type, help);
    cs_text_put (t, "%s %lld\n", name, value);
}

/* A label value as the format wants it: \\, \" and \n escaped. */
static void
label_value (const char *v, char *out, size_t size)
{
    size_t o = 0;
    for (; v && *v && o + 3 < size; v++) {
        if (*v == '\\' || *v == '"') {
            out [o++] = '\\';
            out [o++] = *v;
        }
        else if (*v == '\n') {
            out [o++] = '\\';
            out [o++] = 'n';
        }
        else
            out [o++] = *v;
    }
    out [o] = 0;
}

static long long
num (const json_t *obj, const char *key)
{
    return (long long) json_integer_value (json_object_get (obj, key));
}

static const char *
str_of (const json_t *o, const char *key)
{
    const char *v = json_string_value (json_object_get (o, key));
    return v ? v : "";
}

/* A stage's labels: stage="pusher", and site="north" for a site's pusher. */
static const char *
stage_labels (const json_t *st, char *out, size_t size)
{
    const char *site = str_of (st, "site");
    snprintf (out, size, "stage=\"%s\"%s%s%s", str_of (st, "name"), *site ? ",site=\"" : "", site,
              *site ? "\"" : "");
    return out;
}

static const json_t *
stage (const json_t *status, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach (json_object_get (status, "stages"), i, s) {
        const char *n = json_string_value (json_object_get (s, "name"));
        if (n && !strcmp (n, name))
            return s;
    }
    return NULL;
}

/* One sample per device of the device's key (under sub, if not NULL). */
static void
per_device (cs_text_t *t, const json_t *status, const char *metric, const char *sub, const char *key,
            const char *extra_label)
{
    size_t i;
    json_t *d;
    json_array_foreach (json_object_get (status, "devices"), i, d) {
        const json_t *from = sub ? json_object_get (d, sub) : d;
        json_t *v = json_object_get (from, key);
        if (!json_is_integer (v))
            continue;
        char dev [200];
        label_value (json_string_value (json_object_get (d, "name")), dev, sizeof dev);
        cs_text_put (t, "%s{device=\"%s\"%s} %lld\n", metric, dev, extra_label ? extra_label : "",
             (long long) json_integer_value (v));
    }
}

char *
cs_metrics_text (const json_t *status)
{
    cs_text_t t = { NULL, 0, 0, 0 };
    single (&t, "cardsync_differ_up", "gauge", "1 when the differ answered this scrape, 0 when it did not.",
            status ? 1 : 0);
    if (!status)
        goto done;

    /* the programs, as status lists them; a site's pusher with its site */
    json_t *stages = json_object_get (status, "stages"), *st;
    size_t k;
    char labels [160];
    head (&t, "cardsync_stage_up", "gauge", "1 when the program's heartbeat is recent (three heartbeat intervals).");
    json_array_foreach (stages, k, st)
        cs_text_put (&t, "cardsync_stage_up{%s} %d\n", stage_labels (st, labels, sizeof labels),
                     json_is_true (json_object_get (st, "alive")) ? 1 : 0);
    head (&t, "cardsync_last_heartbeat_timestamp_seconds", "gauge", "When each program's last heartbeat came (Unix time).");
    json_array_foreach (stages, k, st) {
        json_t *ts = json_object_get (st, "last_heartbeat_ts");
        if (json_is_integer (ts))
            cs_text_put (&t, "cardsync_last_heartbeat_timestamp_seconds{%s} %lld\n",
                         stage_labels (st, labels, sizeof labels), (long long) json_integer_value (ts));
    }
    single (&t, "cardsync_healthy", "gauge", "1 when status says all is well, 0 when something needs attention.",
            (long long) (json_array_size (json_object_get (status, "attention")) ? 0 : 1));
    single (&t, "cardsync_attention", "gauge", "How many things status says need attention.",
            (long long) (json_array_size (json_object_get (status, "attention"))));

    /* Cardskipper */
    const json_t *producer = json_object_get (stage (status, "producer"), "counters");
    if (producer) {
        head (&t, "cardsync_exports_total", "counter", "Cardskipper export cycles since the producer started, by result.");
        cs_text_put (&t, "cardsync_exports_total{result=\"ok\"} %lld\n", num (producer, "exports_ok"));
        cs_text_put (&t, "cardsync_exports_total{result=\"failed\"} %lld\n", num (producer, "exports_failed"));
        single (&t, "cardsync_export_members_total", "counter", "Members the producer read from exports since it started.",
                num (producer, "members_sent"));
        single (&t, "cardsync_export_bytes_total", "counter", "Export bytes the producer read since it started.",
                num (producer, "bytes"));
    }
    const json_t *exp = json_object_get (status, "last_export");
    if (json_is_integer (json_object_get (exp, "last_good_ts"))) {
        single (&t, "cardsync_last_good_export_timestamp_seconds", "gauge", "When the last good export was taken (Unix time).",
                num (exp, "last_good_ts"));
    }
    single (&t, "cardsync_members", "gauge", "Members the differ holds from the exports.",
            num (status, "members"));
    single (&t, "cardsync_members_with_email", "gauge", "Members with a usable e-mail address.",
            num (status, "members_with_email"));

    /* the persons tied to members, by state */
    const json_t *targets = json_object_get (status, "targets");
    head (&t, "cardsync_targets", "gauge", "Persons tied to members on the doors, by sync state.");
    static const char *const states [] = { "in_sync", "pending", "failed", "held", NULL };
    for (int i = 0; states [i]; i++)
        cs_text_put (&t, "cardsync_targets{state=\"%s\"} %lld\n", states [i], num (targets, states [i]));
    single (&t, "cardsync_unmatched", "gauge", "Entitled members with no person on a door (member and door pairs).",
            num (targets, "unmatched"));
    single (&t, "cardsync_failed_queue", "gauge", "Targets in the failed queue (replay them).",
            num (targets, "failed"));
    single (&t, "cardsync_guard_held", "gauge", "Revocations the guard holds back (0: the guard is clear).",
            num (status, "guard_held"));
    single (&t, "cardsync_outbox_events", "gauge", "Events the audit has not acknowledged yet (the outbox lag).",
            num (status, "outbox"));

    /* the doors */
    head (&t, "cardsync_device_health", "gauge", "Each door's health: 1 for the state it is in, 0 for the others.");
    size_t i;
    json_t *d;
    json_array_foreach (json_object_get (status, "devices"), i, d) {
        char dev [200];
        label_value (json_string_value (json_object_get (d, "name")), dev, sizeof dev);
        const char *now = json_string_value (json_object_get (d, "health"));
        for (int h = 0; h < CS_HEALTH_COUNT; h++) {
            const char *state = cs_health_name ((cs_health_t) h);
            cs_text_put (&t, "cardsync_device_health{device=\"%s\",state=\"%s\"} %d\n", dev, state,
                 now && !strcmp (now, state));
        }
    }
    head (&t, "cardsync_device_persons", "gauge", "Persons on each door, as its last scan and writes left them.");
    per_device (&t, status, "cardsync_device_persons", NULL, "persons", NULL);
    head (&t, "cardsync_device_persons_managed", "gauge", "Persons on each door tied to members (cardsync manages their validity).");
    per_device (&t, status, "cardsync_device_persons_managed", NULL, "managed", NULL);
    head (&t, "cardsync_device_capacity", "gauge", "Persons each door can hold (maxRecordNum).");
    per_device (&t, status, "cardsync_device_capacity", NULL, "capacity", NULL);
    head (&t, "cardsync_last_scan_timestamp_seconds", "gauge", "When each door was last scanned completely (Unix time).");
    per_device (&t, status, "cardsync_last_scan_timestamp_seconds", NULL, "last_scan_ts", NULL);
    head (&t, "cardsync_writes_total", "counter", "Commands the pusher finished since it started, per door: applied "
          "(written), unchanged (the door already held it), failed (given up).");
    per_device (&t, status, "cardsync_writes_total", "counters", "applied", ",result=\"applied\"");
    per_device (&t, status, "cardsync_writes_total", "counters", "unchanged", ",result=\"unchanged\"");
    per_device (&t, status, "cardsync_writes_total", "counters", "failed", ",result=\"failed\"");
    head (&t, "cardsync_write_retries_total", "counter", "Requests tried again after a transient failure, per door.");
    per_device (&t, status, "cardsync_write_retries_total", "counters", "retried", NULL);
    head (&t, "cardsync_device_requests_total", "counter", "HTTP requests the pusher sent to each door since it started.");
    per_device (&t, status, "cardsync_device_requests_total", "counters", "requests", NULL);
    head (&t, "cardsync_scans_total", "counter", "Door scans since the pusher started, by result.");
    per_device (&t, status, "cardsync_scans_total", "counters", "scans_ok", ",result=\"ok\"");
    per_device (&t, status, "cardsync_scans_total", "counters", "scans_failed", ",result=\"failed\"");

    /* the audit */
    const json_t *auditor = json_object_get (stage (status, "auditor"), "counters");
    if (auditor) {
        single (&t, "cardsync_audit_events_total", "counter", "Events the auditor stored since it started.",
                num (auditor, "events_stored"));
        single (&t, "cardsync_audit_store_failures_total", "counter", "Batches of events the auditor could not store.",
                num (auditor, "store_failures"));
    }
done:
    return cs_text_take (&t);
}
