/* cardsync-producer: polls Cardskipper's member export and streams the
 * members to the differ, each export framed by cycle_begin / cycle_end. */
#include "common/cli.h"
#include "common/date.h"
#include "common/email.h"
#include "common/log.h"
#include "common/sd.h"
#include "common/zmq.h"
#include "producer/export.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const cs_cli_option_t s_options [] = {
    { "once", 0, "run one full export, then exit (0 ok, 75 temporary failure, "
                 "77 credentials, 65 bad data)" },
    { "check", 0, "reach Cardskipper, log in, count each organisation's members; print a "
                  "verdict" },
    { NULL, 0, NULL },
};

static const cs_cli_spec_t s_spec = {
    .program = "cardsync-producer",
    .summary = "Polls Cardskipper's member export and streams the members to the differ.",
    .options = s_options,
    .more_help = "A full export runs at start and every [cardskipper] full_interval; an\n"
                 "incremental one (ChangedAt) every poll_interval. A failed, truncated or\n"
                 "malformed export ends its cycle with ok=false: the differ then changes nothing.\n\n"
                 "example: cardsync-producer --config /etc/cardsync/cardsync.ini --check",
};

typedef struct {
    const cs_config_t *cfg;
    cs_log_t *log;
    zsock_t *out;               /* to the differ; NULL with --check */
    uint64_t cycle;
    size_t sent;                /* members sent in this cycle */
    size_t with_email;          /* for --check */
    cs_beat_t beat;             /* to the differ, also while an export downloads */
    struct {                    /* since the producer started: its heartbeat's counters */
        int64_t ok, failed;     /* export cycles */
        int64_t members;        /* members sent */
        int64_t bytes;          /* export bytes read */
    } count;
} producer_t;

static json_t *
counters (void *arg)
{
    producer_t *p = arg;
    return json_pack ("{s:I, s:I, s:I, s:I}", "exports_ok", (json_int_t) p->count.ok,
                      "exports_failed", (json_int_t) p->count.failed,
                      "members_sent", (json_int_t) p->count.members, "bytes", (json_int_t) p->count.bytes);
}

static int
send_member (void *arg, const cs_member_t *m)
{
    producer_t *p = arg;
    cs_beat (&p->beat);
    cs_sd_alive (NULL);
    if (!m)
        return 0;               /* only a tick: the export is under way */
    p->with_email += m->email != NULL;
    if (!p->out) {
        p->sent++;
        return 0;
    }
    cs_msg_t *msg = cs_msg_new (CS_MSG_MEMBER);
    if (!msg)
        return -1;
    cs_msg_set_int (msg, CS_F_CYCLE, (int64_t) p->cycle);
    cs_msg_set_int (msg, CS_F_ORG, m->org);
    if (m->omid)
        cs_msg_set_int (msg, CS_F_MID, m->omid);
    /* fields too long or not UTF-8 for the message are left out, and said so */
    if (m->email && cs_msg_set_str (msg, CS_F_EMAIL, m->email) != 0) {
        char id [32];
        snprintf (id, sizeof id, "%lld", (long long) m->omid);
        cs_log (p->log, CS_LOG_WARN, "member_email_unusable", "member_id", id,
                "reason", "longer than 512 bytes or not UTF-8", NULL);
    }
    if (m->first)
        cs_msg_set_str (msg, CS_F_FIRST, m->first);
    if (m->last)
        cs_msg_set_str (msg, CS_F_LAST, m->last);
    cs_msg_set_bool (msg, CS_F_INACTIVE, m->inactive);
    for (size_t i = 0; i < m->role_count; i++)
        cs_msg_add_role (msg, m->roles [i].role, m->roles [i].start, m->roles [i].end);
    cs_msg_error_t err;
    int rc = cs_zmq_send (p->out, msg, &err);
    cs_msg_destroy (&msg);
    if (rc == 0)
        p->sent++;
    return rc;
}

static int64_t
now_ms (void)
{
    return zclock_time ();
}

static void
send_frame (producer_t *p, cs_msg_type_t type, int full, int ok, const char *error)
{
    cs_msg_t *msg = cs_msg_new (type);
    cs_msg_set_int (msg, CS_F_CYCLE, (int64_t) p->cycle);
    cs_msg_set_bool (msg, CS_F_FULL, full);
    cs_msg_set_int (msg, CS_F_TS, now_ms ());
    if (type == CS_MSG_CYCLE_END) {
        cs_msg_set_bool (msg, CS_F_OK, ok);
        cs_msg_set_int (msg, CS_F_COUNT, (int64_t) p->sent);
        if (error) {
            char clipped [1024];
            snprintf (clipped, sizeof clipped, "%s", error);
            cs_msg_set_str (msg, CS_F_ERROR, clipped);
        }
    }
    cs_zmq_send (p->out, msg, NULL);
    cs_msg_destroy (&msg);
}

/* One cycle over every configured organisation; *http is the last answer's
 * HTTP status (0 if there was none). */
static cs_export_status_t
run_cycle (producer_t *p, int full, const char *changed_at, long *http)
{
    const cs_cardskipper_config_t *cs = &p->cfg->cardskipper;
    p->cycle = (uint64_t) now_ms ();
    p->sent = 0;
    int64_t started = zclock_mono ();
    send_frame (p, CS_MSG_CYCLE_BEGIN, full, 0, NULL);
    cs_export_result_t r;
    memset (&r, 0, sizeof r);
    size_t bytes = 0;
    for (size_t i = 0; i < cs->organisation_count; i++) {
        cs_export_run (cs, cs->organisation_ids [i], full ? NULL : changed_at, send_member, p, &r);
        bytes += r.bytes;
        if (r.status != CS_EXPORT_OK)
            break;
    }
    int ok = r.status == CS_EXPORT_OK;
    send_frame (p, CS_MSG_CYCLE_END, full, ok, ok ? NULL : r.error);
    if (ok)
        p->count.ok++;
    else
        p->count.failed++;
    p->count.members += (int64_t) p->sent;
    p->count.bytes += (int64_t) bytes;
    char members [32], secs [32], size [32], cycle [32];
    snprintf (members, sizeof members, "%zu", p->sent);
    snprintf (secs, sizeof secs, "%.3f", (double) (zclock_mono () - started) / 1000.0);
    snprintf (size, sizeof size, "%zu", bytes);
    snprintf (cycle, sizeof cycle, "%llu", (unsigned long long) p->cycle);
    cs_log (p->log, ok ? CS_LOG_INFO : CS_LOG_ERROR, "cycle_end", "cycle", cycle,
            "full", full ? "true" : "false", "ok", ok ? "true" : "false", "members", members,
            "bytes", size, "seconds", secs, "changed_at", full ? "" : changed_at,
            "error", ok ? NULL : r.error, NULL);
    *http = r.http_status;
    return r.status;
}

static int
check (producer_t *p)
{
    const cs_cardskipper_config_t *cs = &p->cfg->cardskipper;
    char orgs [2048];
    cs_export_result_t r;
    cs_export_info (cs, orgs, sizeof orgs, &r);
    printf ("Cardskipper at %s as %s\n", cs->url, cs->username);
    if (r.status != CS_EXPORT_OK) {
        printf ("  organisation info: FAILED: %s\n", r.error);
        printf ("verdict: FAILED - %s\n",
                r.status == CS_EXPORT_AUTH
                ? (r.http_status == 401 ? "check the username and CARDSYNC_CARDSKIPPER_PASSWORD"
                                        : "ask Cardskipper support to grant the account the API right")
                : r.status == CS_EXPORT_TRANSIENT ? "the service cannot be reached; check the url "
                                                    "and the network, then try again"
                : "see the error above");
        return r.status == CS_EXPORT_AUTH ? EX_NOPERM : EX_UNAVAILABLE;
    }
    printf ("  logged in; organisations: %s\n", orgs[0] ? orgs : "(none)");
    int failures = 0;
    for (size_t i = 0; i < cs->organisation_count; i++) {
        p->sent = p->with_email = 0;
        cs_export_run (cs, cs->organisation_ids [i], NULL, send_member, p, &r);
        if (r.status == CS_EXPORT_OK)
            printf ("  organisation %lld: %zu members in the export, %zu with an e-mail\n",
                    (long long) cs->organisation_ids [i], p->sent, p->with_email);
        else {
            printf ("  organisation %lld: FAILED: %s\n", (long long) cs->organisation_ids [i],
                    r.error);
            failures++;
        }
    }
    printf ("verdict: %s\n", failures ? "FAILED - see the organisations above" : "OK");
    return failures ? EX_UNAVAILABLE : 0;
}

/* ChangedAt: the start of the last good cycle, a few minutes early, as
 * Swedish local time (the server's). */
static void
changed_since (time_t t, char out [CS_TIME_LEN])
{
    if (cs_time_local (t - 300, "Europe/Stockholm", out) != 0)
        cs_time_local (t - 300, "", out);
}

static int
sleep_until (producer_t *p, int64_t deadline)
{
    while (!cs_zmq_interrupted ()) {
        cs_beat (&p->beat);
        cs_sd_alive (NULL);
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return 0;
        zclock_sleep ((int) (left < 200 ? left : 200));
    }
    return -1;
}

int
main (int argc, char **argv)
{
    cs_cli_t cli;
    cs_cli_lean_memory ();
    int rc = cs_cli_parse (&s_spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    cs_config_t *cfg = cs_cli_config (&s_spec, &cli, CS_SECRETS_CARDSKIPPER, &rc);
    if (rc >= 0) {
        cs_config_destroy (&cfg);
        return rc;
    }
    curl_global_init (CURL_GLOBAL_DEFAULT);
    xmlInitParser ();
    producer_t p;
    memset (&p, 0, sizeof p);
    p.cfg = cfg;
    p.log = cs_cli_log (&s_spec, cfg);
    char error [512];
    cs_zmq_t *zmq = cs_zmq_new (&cfg->pipeline, error, sizeof error);
    if (!zmq) {
        fprintf (stderr, "cardsync-producer: %s\n", error);
        rc = EX_CONFIG;
        goto done;
    }
    if (cs_cli_value (&s_spec, &cli, "check")) {
        rc = check (&p);
        goto done;
    }
    p.out = cs_zmq_connect (zmq, ZMQ_PUSH, cfg->pipeline.differ_in, 0, error, sizeof error);
    if (!p.out) {
        cs_log (p.log, CS_LOG_ERROR, "start_failed", "error", error, NULL);
        rc = EX_UNAVAILABLE;
        goto done;
    }
    cs_beat_init (&p.beat, p.out, CS_STAGE_PRODUCER, cfg->pipeline.heartbeat_interval);
    cs_beat_counters (&p.beat, counters, &p);
    cs_log (p.log, CS_LOG_INFO, "started", "url", cfg->cardskipper.url,
            "differ", cfg->pipeline.differ_in, NULL);
    if (cs_cli_value (&s_spec, &cli, "once")) {
        long http = 0;
        cs_export_status_t st = run_cycle (&p, 1, NULL, &http);
        rc = st == CS_EXPORT_OK ? 0 : st == CS_EXPORT_AUTH ? EX_NOPERM
           : st == CS_EXPORT_FAILED ? EX_DATAERR : EX_TEMPFAIL;
        goto done;
    }

    const cs_cardskipper_config_t *cs = &cfg->cardskipper;
    int64_t next_full = zclock_mono ();
    int64_t next_poll = next_full + (int64_t) cs->poll_interval * 1000;
    int64_t backoff = 5000;
    int64_t auth_wait = 0;            /* after a refused login: the wait, doubling; 0 none */
    time_t last_good = 0;             /* wall-clock start of the last good cycle */
    cs_sd_ready ("producer: connected to the differ");
    while (!cs_zmq_interrupted ()) {
        int full = next_full <= next_poll || !last_good;
        if (sleep_until (&p, full ? next_full : next_poll) != 0)
            break;
        time_t start = time (NULL);
        char since [CS_TIME_LEN];
        changed_since (last_good, since);
        long http = 0;
        cs_export_status_t st = run_cycle (&p, full, since, &http);
        int64_t now = zclock_mono ();
        if (st == CS_EXPORT_OK) {
            last_good = start;
            backoff = 5000;
            auth_wait = 0;
            if (full)
                next_full = now + (int64_t) cs->full_interval * 1000;
            next_poll = now + (int64_t) cs->poll_interval * 1000;
        }
        else if (st == CS_EXPORT_INTERRUPTED)
            break;
        else if (st == CS_EXPORT_AUTH) {
            /* credentials are not hammered: after a refused login no export of
             * either kind for auth_retry_min, then twice that, up to an hour
             * (and never sooner than the poll would come anyway) */
            int64_t least = (int64_t) cs->auth_retry_min * 1000;
            auth_wait = auth_wait ? auth_wait * 2 : least;
            if (auth_wait > 3600 * 1000)
                auth_wait = 3600 * 1000;
            int64_t wait = auth_wait > (int64_t) cs->poll_interval * 1000 ? auth_wait
                                                                          : (int64_t) cs->poll_interval * 1000;
            char in [32], status [16];
            snprintf (in, sizeof in, "%lld", (long long) (wait / 1000));
            snprintf (status, sizeof status, "%ld", http);
            cs_log (p.log, CS_LOG_ERROR, "login_refused", "http", status, "next_try_in_s", in, "msg",
                    http == 403
                    ? "Cardskipper refused the call (403): the account lacks the API right for this "
                      "call or organisation; ask Cardskipper support to grant it. Trying again "
                      "later, less and less often"
                    : "Cardskipper refused the login (401): check username and "
                      "CARDSYNC_CARDSKIPPER_PASSWORD (or password_file); trying again later, "
                      "less and less often", NULL);
            if (next_full < now + wait)
                next_full = now + wait;
            if (next_poll < now + wait)
                next_poll = now + wait;
        }
        else {
            /* other failures back off, never past the cycle's own interval */
            int64_t interval = (int64_t) (full ? cs->full_interval : cs->poll_interval) * 1000;
            int64_t cap = interval < 300000 ? interval : 300000;
            int64_t wait = backoff < cap ? backoff : cap;
            if (backoff < cap)
                backoff *= 2;
            if (full)
                next_full = now + wait;
            else
                next_poll = now + wait;
        }
    }
    cs_sd_stopping ();
    cs_log (p.log, CS_LOG_INFO, "stopped", NULL);
    rc = 0;
done:
    zsock_destroy (&p.out);
    cs_zmq_destroy (&zmq);
    cs_log_destroy (&p.log);
    cs_config_destroy (&cfg);
    xmlCleanupParser ();
    curl_global_cleanup ();
    return rc;
}
