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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 2000
#define RESEND_MS 5000          /* events not acknowledged this long are sent again */
#define AHEAD 1000              /* events sent beyond the last acknowledged one: what waits
                                 * in the auditor's socket (its memory), four of its batches */
#define REPLAN_MS (10 * 60 * 1000)

static const cs_cli_option_t s_options [] = {
    { "dry-run", 0, "plan and audit, but send no commands to the devices" },
    { "rebuild", 0, "with the group stopped: move a damaged state.db aside and rebuild its ties "
                    "from the audit" },
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
                 "example: cardsync-differ --config /etc/cardsync/cardsync.ini --dry-run",
};

typedef struct {
    cs_log_t *log;
    cs_state_t *state;
    zsock_t *in;
    zsock_t *pusher;
    zsock_t *auditor;
    int64_t sent_seq;           /* events sent up to here */
    int64_t progress_at;        /* when the acked seq last moved (mono ms) */
    int64_t acked_seen;
    cs_live_t live;             /* what status tells beyond state.db */
} differ_t;

/* Sends the messages while the peer's queue has room, never waiting: a
 * stopped auditor or pusher must not stop the differ. Frees them all; returns
 * how many went out. */
static size_t
send_some (zsock_t *to, cs_msg_t **msgs, size_t count)
{
    size_t sent = 0;
    int full = 0;
    for (size_t i = 0; i < count; i++) {
        if (!full) {
            int rc = cs_zmq_try_send (to, msgs [i], NULL);
            sent += rc == 0;
            full = rc == 1;
        }
        cs_msg_destroy (&msgs [i]);
    }
    free (msgs);
    return sent;
}

static void
flush (differ_t *d)
{
    cs_msg_t **msgs = NULL;
    size_t count = 0;
    if (cs_state_due_commands (d->state, zclock_time (), &msgs, &count) == 0 && count) {
        /* what does not fit now goes again when its lease runs out */
        size_t sent = send_some (d->pusher, msgs, count);
        char n [32];
        snprintf (n, sizeof n, "%zu", sent);
        cs_log (d->log, sent < count ? CS_LOG_WARN : CS_LOG_DEBUG,
                sent < count ? "pusher_queue_full" : "commands_sent", "count", n, NULL);
    }
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
    if (stage >= 0)
        d->live.beat_ms [stage] = zclock_time ();
    json_t *counters = cs_msg_type (m) == CS_MSG_HEARTBEAT ? cs_msg_doc (m, CS_F_BODY) : NULL;
    if (stage >= 0 && json_is_object (counters)) {
        json_decref (d->live.counters [stage]);
        d->live.counters [stage] = json_incref (counters);
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
    cs_config_t *cfg = cs_cli_config (&s_spec, &cli, 0, &rc);
    if (rc >= 0) {
        cs_config_destroy (&cfg);
        return rc;
    }
    differ_t d;
    memset (&d, 0, sizeof d);
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
    if (zmq)
        d.in = cs_zmq_bind (zmq, ZMQ_PULL, cfg->pipeline.differ_in, 0, error, sizeof error);
    if (d.in)
        d.pusher = cs_zmq_connect (zmq, ZMQ_PUSH, cfg->pipeline.pusher_in, 0, error, sizeof error);
    if (d.pusher)
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
    zsock_destroy (&d.in);
    zsock_destroy (&d.pusher);
    zsock_destroy (&d.auditor);
    cs_zmq_destroy (&zmq);
    cs_state_destroy (&d.state);
    for (int i = 0; i < CS_STAGE_COUNT; i++)
        json_decref (d.live.counters [i]);
    cs_log_destroy (&d.log);
    cs_config_destroy (&cfg);
    return rc;
}
