/* cardsync-differ: keeps the desired state (members) and the actual state
 * (device persons), and sends the commands that close the difference. The
 * only owner of sync state; every change is one SQLite transaction with the
 * event that tells of it. */
#include "common/cli.h"
#include "common/log.h"
#include "common/sd.h"
#include "common/zmq.h"
#include "differ/control.h"
#include "differ/rebuild.h"
#include "differ/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BATCH 2000
#define RESEND_MS 5000          /* events not acknowledged this long are sent again */
#define AHEAD 1000              /* events sent beyond the last acknowledged one: what waits
                                 * in the auditor's socket (its memory), four of its batches */
#define REPLAN_MS (10 * 60 * 1000)

static const cs_cli_option_t s_options [] = {
    { "dry-run", 0, "plan and audit, but send no commands to the devices" },
    { "rebuild", 0, "with the group stopped: move a damaged state.db aside and rebuild its ties "
                    "from the audit" },
    { "make-cert", 1, "write a host's CURVE certificate to VALUE.cert (public) and "
                      "VALUE.cert_secret (mode 0600), then exit" },
    { NULL, 0, NULL },
};

static const cs_cli_spec_t s_spec = {
    .program = "cardsync-differ",
    .summary = "Keeps the desired and actual state and sends the changes the devices need.",
    .options = s_options,
    .more_help = "state.db lives in [pipeline] state_dir. A full export that would revoke more\n"
                 "than the guard allows revokes nothing until an operator approves.\n\n"
                 "state.db is checked at start and after a failed write; a damaged one stops all\n"
                 "syncing (status says so) until it is rebuilt: stop the group, run\n"
                 "cardsync-differ --rebuild with the same --config, start the group.\n\n"
                 "Across hosts ([site NAME], tcp://), every host has a certificate:\n"
                 "cardsync-differ --make-cert /etc/cardsync/keys/north; [pipeline] curve_cert\n"
                 "names NAME.cert_secret, the peers' curve_clients_dir holds NAME.cert.\n\n"
                 "example: cardsync-differ --config /etc/cardsync/cardsync.ini --dry-run",
};

typedef struct {
    const cs_config_t *cfg;
    cs_log_t *log;
    cs_state_t *state;
    zsock_t *in;
    zsock_t **pushers;          /* [0] the local pusher, [1 + i] site i's (cfg->sites) */
    cs_refusals_t **refusals;   /* CURVE refusals: [0] on in, [1 + i] on pushers [i] (or NULL) */
    zsock_t *auditor;
    int64_t sent_seq;           /* events sent up to here */
    int64_t progress_at;        /* when the acked seq last moved (mono ms) */
    int64_t acked_seen;
    cs_live_t live;             /* what status tells beyond state.db */
} differ_t;

/* Sends each command to its device's pusher (the site's, or the local one)
 * while that pusher's queue has room, never waiting: a stopped or cut-off
 * pusher must not stop the differ, nor the other sites. What does not fit
 * goes again when its lease runs out. Frees them all. */
static void
send_commands (differ_t *d, cs_msg_t **msgs, size_t count)
{
    size_t n = 1 + d->cfg->site_count;
    size_t *sent = calloc (2 * n, sizeof *sent), *left = sent ? sent + n : NULL;
    for (size_t i = 0; i < count; i++) {
        size_t to = (size_t) (1 + cs_config_site_index (d->cfg, cs_msg_str (msgs [i], CS_F_DEV)));
        if (sent && !left [to]) {
            int rc = cs_zmq_try_send (d->pushers [to], msgs [i], NULL);
            sent [to] += rc == 0;
            left [to] += rc != 0;
        }
        else if (sent)
            left [to]++;        /* that pusher's queue is full: the rest later */
        cs_msg_destroy (&msgs [i]);
    }
    free (msgs);
    if (!sent)
        cs_log (d->log, CS_LOG_WARN, "pusher_queue_full", "error", "out of memory", "later", "all",
                NULL);
    for (size_t to = 0; sent && to < n; to++) {
        if (!sent [to] && !left [to])
            continue;
        char a [32], b [32];
        snprintf (a, sizeof a, "%zu", sent [to]);
        snprintf (b, sizeof b, "%zu", left [to]);
        const char *site = to ? d->cfg->sites [to - 1].name : "local";
        cs_log (d->log, left [to] ? CS_LOG_WARN : CS_LOG_DEBUG,
                left [to] ? "pusher_queue_full" : "commands_sent", "site", site, "count", a,
                left [to] ? "later" : NULL, b, NULL);
    }
    free (sent);
}

static void
flush (differ_t *d)
{
    cs_msg_t **msgs = NULL;
    size_t count = 0;
    if (cs_state_due_commands (d->state, zclock_time (), &msgs, &count) == 0 && count)
        send_commands (d, msgs, count);
    else
        free (msgs);
    int64_t acked = cs_state_acked (d->state);
    int64_t now = zclock_mono ();
    if (acked != d->acked_seen || cs_state_last_seq (d->state) == acked) {
        d->acked_seen = acked;
        d->progress_at = now;
        d->live.acked_ms = zclock_time ();  /* acknowledged, or nothing waits */
    }
    if (d->sent_seq < acked)
        d->sent_seq = acked;
    if (d->sent_seq > acked && now - d->progress_at > RESEND_MS) {
        d->sent_seq = acked;     /* the auditor missed some: from the last acknowledged on */
        d->progress_at = now;
    }
    /* a window ahead of the acknowledgements: the outbox holds the rest */
    while (d->sent_seq - acked < AHEAD) {
        msgs = NULL;
        count = 0;
        if (cs_state_events_after (d->state, d->sent_seq, 1000, &msgs, &count) != 0 || count == 0) {
            free (msgs);
            break;
        }
        int64_t last = d->sent_seq;
        size_t sent = 0;
        for (; sent < count; sent++) {
            if (cs_zmq_try_send (d->auditor, msgs [sent], NULL) != 0)
                break;          /* the auditor's queue is full: later */
            last = cs_msg_int (msgs [sent], CS_F_SEQ);
        }
        for (size_t i = 0; i < count; i++)
            cs_msg_destroy (&msgs [i]);
        free (msgs);
        d->sent_seq = last;
        if (sent < count)
            break;
    }
}

/* state.db is damaged: say so once, with the way out; nothing more is synced. */
static void
damaged (differ_t *d, const char *path, const char *why)
{
    d->live.damaged = 1;
    snprintf (d->live.db_error, sizeof d->live.db_error, "%s is damaged (%s); nothing is synced until "
              "it is rebuilt: stop the group, run cardsync-differ --rebuild, start the group", path, why);
    cs_log (d->log, CS_LOG_ERROR, "state_damaged", "db", path, "error", why, "way_out",
            "stop the group; cardsync-differ --rebuild; start the group", NULL);
}

/* --make-cert NAME: a new CURVE certificate, its public half to hand out, its
 * secret half private to this host. */
static int
make_cert (const char *name)
{
    char secret [4200];
    snprintf (secret, sizeof secret, "%s.cert_secret", name);
    struct stat st;
    if (stat (secret, &st) == 0) {
        fprintf (stderr, "cardsync-differ: %s exists; remove it first to make a new one (the "
                 "peers that trust its public key would need the new one)\n", secret);
        return EX_CANTCREAT;
    }
    zcert_t *cert = zcert_new ();
    char path [4200];
    snprintf (path, sizeof path, "%s.cert", name);
    const char *base = strrchr (name, '/');
    if (cert) {
        zcert_set_meta (cert, "name", "%s", base ? base + 1 : name);
        zcert_set_meta (cert, "made-by", "cardsync-differ %s", CARDSYNC_VERSION);
    }
    errno = 0;
    int rc = cert ? zcert_save (cert, path) : -1;
    if (rc != 0)
        fprintf (stderr, "cardsync-differ: cannot write %s and %s: %s\n", path, secret,
                 errno ? strerror (errno) : "out of memory");
    else
        printf ("wrote %s (public: into curve_clients_dir on the hosts it talks to)\n"
                "and %s (secret, 0600: [pipeline] curve_cert on this host only)\n"
                "public key: %s (server_key / curve_server_key where this host binds)\n",
                path, secret, zcert_public_txt (cert));
    zcert_destroy (&cert);
    return rc == 0 ? 0 : EX_CANTCREAT;
}

/* A heartbeat is noted and goes no further; an ack is the auditor's too. */
static int
heartbeat (differ_t *d, const cs_msg_t *m)
{
    int stage = -1;
    if (cs_msg_type (m) == CS_MSG_HEARTBEAT) {
        stage = cs_stage_parse (cs_msg_str (m, CS_F_STAGE));
        if (stage < 0)
            cs_log (d->log, CS_LOG_WARN, "bad_message", "error", "a heartbeat from an unknown stage",
                    "stage", cs_msg_str (m, CS_F_STAGE), NULL);
    }
    else if (cs_msg_type (m) == CS_MSG_ACK)
        stage = CS_STAGE_AUDITOR;
    /* a site's pusher: kept apart from the local one */
    const char *site = cs_msg_type (m) == CS_MSG_HEARTBEAT ? cs_msg_str (m, CS_F_SITE) : NULL;
    int64_t *beat = stage >= 0 ? &d->live.beat_ms [stage] : NULL;
    json_t **kept = stage >= 0 ? &d->live.counters [stage] : NULL;
    if (site && *site) {
        beat = NULL;
        kept = NULL;
        for (size_t i = 0; i < d->live.site_count; i++)
            if (stage == CS_STAGE_PUSHER && strcmp (d->cfg->sites [i].name, site) == 0) {
                beat = &d->live.site_beat_ms [i];
                kept = &d->live.site_counters [i];
            }
        if (!beat)
            cs_log (d->log, CS_LOG_WARN, "bad_message", "error", "a heartbeat from a site this "
                    "config does not name (is [pipeline] site the same on both hosts?)", "stage",
                    cs_msg_str (m, CS_F_STAGE), "site", site, NULL);
    }
    if (beat)
        *beat = zclock_time ();
    json_t *counters = cs_msg_type (m) == CS_MSG_HEARTBEAT ? cs_msg_doc (m, CS_F_BODY) : NULL;
    if (kept && json_is_object (counters)) {
        json_decref (*kept);
        *kept = json_incref (counters);
    }
    return cs_msg_type (m) == CS_MSG_HEARTBEAT;
}

int
main (int argc, char **argv)
{
    cs_cli_t cli;
    cs_cli_lean_memory ();
    int rc = cs_cli_parse (&s_spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    if (cs_cli_value (&s_spec, &cli, "make-cert"))
        return make_cert (cs_cli_value (&s_spec, &cli, "make-cert"));
    cs_config_t *cfg = cs_cli_config (&s_spec, &cli, 0, &rc);
    if (rc >= 0) {
        cs_config_destroy (&cfg);
        return rc;
    }
    differ_t d;
    memset (&d, 0, sizeof d);
    d.cfg = cfg;
    d.log = cs_cli_log (&s_spec, cfg);
    int dry_run = cs_cli_value (&s_spec, &cli, "dry-run") != NULL;
    char error [512] = "", path [4200];
    cs_zmq_t *zmq = NULL;
    zpoller_t *poller = NULL;
    cs_control_t *control = NULL;
    rc = EX_UNAVAILABLE;
    if (cs_zmq_private_dir (cfg->pipeline.state_dir, error, sizeof error) != 0) {
        cs_log (d.log, CS_LOG_ERROR, "start_failed", "error", error, NULL);
        goto done;
    }
    snprintf (path, sizeof path, "%s/state.db", cfg->pipeline.state_dir);
    if (cs_cli_value (&s_spec, &cli, "rebuild")) {
        char msg [1200];
        rc = cs_rebuild (cfg, d.log, msg, sizeof msg);
        fprintf (rc ? stderr : stdout, "cardsync-differ: %s\n", msg);
        goto done;
    }
    char why [300];
    if (cs_state_check (path, why, sizeof why) == 1)
        damaged (&d, path, why);
    else
        d.state = cs_state_open (path, cfg, d.log, dry_run, error, sizeof error);
    zmq = d.state || d.live.damaged ? cs_zmq_new (&cfg->pipeline, error, sizeof error) : NULL;
    d.refusals = calloc (2 + cfg->site_count, sizeof *d.refusals);
    if (zmq && !d.refusals)
        snprintf (error, sizeof error, "out of memory");
    else if (zmq)
        d.in = cs_zmq_bind_watched (zmq, ZMQ_PULL, cfg->pipeline.differ_in, 0, &d.refusals [0],
                                    error, sizeof error);
    /* one command socket per pusher: the local one, then each site's */
    d.pushers = d.in ? calloc (1 + cfg->site_count, sizeof *d.pushers) : NULL;
    d.live.site_count = cfg->site_count;
    d.live.site_beat_ms = calloc (cfg->site_count + 1, sizeof *d.live.site_beat_ms);
    d.live.site_counters = calloc (cfg->site_count + 1, sizeof *d.live.site_counters);
    int connected = d.pushers && d.live.site_beat_ms && d.live.site_counters;
    if (!connected && d.in)
        snprintf (error, sizeof error, "out of memory");
    for (size_t i = 0; connected && i <= cfg->site_count; i++) {
        const cs_site_config_t *site = i ? &cfg->sites [i - 1] : NULL;
        d.pushers [i] = cs_zmq_connect_to (zmq, ZMQ_PUSH, site ? site->endpoint : cfg->pipeline.pusher_in,
                                           site ? site->server_key : NULL, 0, &d.refusals [1 + i],
                                           error, sizeof error);
        connected = d.pushers [i] != NULL;
    }
    if (connected)
        d.auditor = cs_zmq_connect (zmq, ZMQ_PUSH, cfg->pipeline.auditor_in, 0, error, sizeof error);
    if (d.auditor)
        control = cs_control_new (zmq, cfg, d.state, &d.live, error, sizeof error);
    if (!control) {
        cs_log (d.log, CS_LOG_ERROR, "start_failed", "error", error, NULL);
        goto done;
    }
    cs_log (d.log, CS_LOG_INFO, "started", "db", path, "dry_run", dry_run ? "true" : "false", NULL);
    cs_sd_ready (d.live.damaged ? d.live.db_error : "differ: state.db open, sockets bound");
    d.sent_seq = d.state ? cs_state_acked (d.state) : 0;
    d.progress_at = zclock_mono ();
    d.live.started_ms = d.live.acked_ms = zclock_time ();
    poller = zpoller_new (d.in, cs_control_sock (control), NULL);
    for (size_t i = 0; i < 2 + cfg->site_count; i++)
        if (d.refusals [i])
            zpoller_add (poller, cs_refusals_sock (d.refusals [i]));
    int64_t next_replan = zclock_mono () + REPLAN_MS;
    cs_group_t group = { 0, 0 };
    if (!d.live.damaged)
        flush (&d);
    while (!cs_zmq_interrupted ()) {
        if (cs_sd_due ()) {
            char summary [400];
            if (d.live.damaged)
                snprintf (summary, sizeof summary, "%s", d.live.db_error);
            else
                snprintf (summary, sizeof summary, "events up to %lld acknowledged by the audit%s%s",
                          (long long) d.acked_seen, d.live.db_error [0] ? "; state.db: " : "", d.live.db_error);
            cs_sd_alive (summary);
        }
        zsock_t *which = zpoller_wait (poller, 1000);
        if (zpoller_terminated (poller))
            break;
        if (which == cs_control_sock (control))
            cs_control_handle (control);
        else if (which && which != d.in) {
            for (size_t i = 0; i < 2 + cfg->site_count; i++)
                if (d.refusals [i] && which == cs_refusals_sock (d.refusals [i]))
                    cs_refused (d.log, d.refusals [i]);
        }
        else if (which) {
            cs_msg_t *batch [BATCH];
            size_t n = 0;
            cs_group_wait (&group);
            while (n < BATCH) {
                cs_msg_error_t err;
                cs_msg_t *m = cs_zmq_try_recv (d.in, &err);
                if (m && (heartbeat (&d, m) || d.live.damaged))
                    cs_msg_destroy (&m);        /* noted, or nowhere to put it */
                else if (m)
                    batch [n++] = m;
                else if (err.code != CS_MSG_E_NONE)
                    cs_log (d.log, CS_LOG_WARN, "bad_message", "error", err.text, NULL);
                else
                    break;      /* nothing more waiting */
            }
            if (n && cs_state_apply (d.state, batch, n) != 0) {
                snprintf (d.live.db_error, sizeof d.live.db_error, "%s", cs_state_errmsg (d.state));
                cs_log (d.log, CS_LOG_ERROR, "state_write_failed", "error", d.live.db_error, NULL);
                if (cs_state_check (path, why, sizeof why) == 1)
                    damaged (&d, path, why);
            }
            else if (n)
                d.live.db_error [0] = 0;
            if (n)
                cs_group_took (&group, n, BATCH);
            for (size_t i = 0; i < n; i++)
                cs_msg_destroy (&batch [i]);
        }
        if (d.live.damaged)
            continue;
        if (zclock_mono () >= next_replan) {
            if (cs_state_replan (d.state) != 0) {
                snprintf (d.live.db_error, sizeof d.live.db_error, "%s", cs_state_errmsg (d.state));
                cs_log (d.log, CS_LOG_ERROR, "plan_failed", "error", d.live.db_error, NULL);
            }
            next_replan = zclock_mono () + REPLAN_MS;
        }
        flush (&d);
    }
    cs_sd_stopping ();
    cs_log (d.log, CS_LOG_INFO, "stopped", NULL);
    rc = 0;
done:
    if (rc != 0 && error [0] && !control)
        fprintf (stderr, "cardsync-differ: %s\n", error);
    zpoller_destroy (&poller);
    cs_control_destroy (&control);
    for (size_t i = 0; d.refusals && i < 2 + cfg->site_count; i++)
        cs_refusals_destroy (&d.refusals [i]);
    free (d.refusals);
    zsock_destroy (&d.in);
    for (size_t i = 0; d.pushers && i <= cfg->site_count; i++)
        zsock_destroy (&d.pushers [i]);
    free (d.pushers);
    zsock_destroy (&d.auditor);
    cs_zmq_destroy (&zmq);
    cs_state_destroy (&d.state);
    for (int i = 0; i < CS_STAGE_COUNT; i++)
        json_decref (d.live.counters [i]);
    for (size_t i = 0; d.live.site_counters && i < d.live.site_count; i++)
        json_decref (d.live.site_counters [i]);
    free (d.live.site_counters);
    free (d.live.site_beat_ms);
    cs_log_destroy (&d.log);
    cs_config_destroy (&cfg);
    return rc;
}
