/* cardsync-auditor: records every event the differ sends in audit.db, exactly
 * once, acknowledges them, and publishes them live for `tail`. */
#include "auditor/commands.h"
#include "auditor/notify.h"
#include "auditor/store.h"
#include "auditor/tail.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/zmq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1000

static const cs_cli_spec_t s_spec = {
    .program = "cardsync-auditor",
    .summary = "Records every event, streams it to operators, and serves the operator commands.",
    .usage = "[--config FILE] [options] [tail|failed|replay|status|history|approve ...]",
    .more_help = "Without a command it runs the auditor. Commands:\n"
                 "  tail [-f] [-n N] [--since SEQ|TIME] [--json] [--email E] [--device D] [--type T]\n"
                 "        the audit, then with -f the live stream\n"
                 "  failed [--json]          the failed queue, with the device's own words\n"
                 "  replay (--all | ID... | --email E | --device D)\n"
                 "        send the current desired state of failed targets again\n"
                 "  status                   last export, targets by state, devices, guard\n"
                 "  history EMAIL            everything the audit holds about one member\n"
                 "  approve [--yes]          show what a tripped guard holds back; send it once confirmed\n\n"
                 "With [notify] smtp_url set, it mails a digest of new failures, a tripped\n"
                 "guard, a paused device and failing exports, at most once per batch_interval.\n\n"
                 "audit.db lives in [pipeline] state_dir; its tables event, sync_history and\n"
                 "sync_errors can be read with sqlite3 while the auditor runs.\n\n"
                 "example: cardsync-auditor --config /etc/cardsync/cardsync.ini tail -f",
};

typedef struct {
    const cs_config_t *cfg;
    cs_log_t *log;
    cs_audit_t *audit;
    cs_notify_t *notify;        /* NULL without [notify] smtp_url */
    zsock_t *in;                /* events from the differ */
    zsock_t *acks;              /* acks to the differ */
    zsock_t *pub;               /* the live stream */
    int64_t acked;              /* the last contiguous seq acknowledged */
} auditor_t;

static void
send_ack (auditor_t *a)
{
    int64_t c = cs_audit_contiguous (a->audit);
    cs_msg_t *m = cs_msg_new (CS_MSG_ACK);
    cs_msg_set_int (m, CS_F_SEQ, c);
    cs_zmq_send (a->acks, m, NULL);
    cs_msg_destroy (&m);
    a->acked = c;
}

/* Takes what is waiting (up to BATCH), stores it in one transaction, then
 * publishes the new events and acknowledges. */
static void
drain (auditor_t *a)
{
    cs_msg_t *batch [BATCH];
    int inserted [BATCH];
    size_t n = 0;
    while (n < BATCH) {
        cs_msg_error_t err;
        cs_msg_t *m = cs_zmq_try_recv (a->in, &err);
        if (!m) {
            if (err.code == CS_MSG_E_NONE)
                break;          /* nothing more waiting */
            cs_log (a->log, CS_LOG_WARN, "bad_message", "error", err.text, NULL);
            continue;
        }
        if (cs_msg_type (m) != CS_MSG_EVENT) {
            cs_log (a->log, CS_LOG_WARN, "unexpected_message", "type",
                    cs_msg_type_name (cs_msg_type (m)), NULL);
            cs_msg_destroy (&m);
            continue;
        }
        batch [n++] = m;
    }
    if (n == 0)
        return;
    if (cs_audit_store (a->audit, batch, n, inserted) != 0)
        /* nothing acknowledged: the differ sends them again */
        cs_log (a->log, CS_LOG_ERROR, "store_failed", "error", cs_audit_errmsg (a->audit), NULL);
    else {
        for (size_t i = 0; i < n; i++)
            if (inserted [i])
                cs_zmq_send (a->pub, batch [i], NULL);
        send_ack (a);
    }
    for (size_t i = 0; i < n; i++)
        cs_msg_destroy (&batch [i]);
}

int
main (int argc, char **argv)
{
    cs_cli_t cli;
    int rc = cs_cli_parse (&s_spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    cs_config_t *cfg = cs_cli_config (&s_spec, &cli, CS_SECRETS_SMTP, &rc);
    if (rc >= 0) {
        cs_config_destroy (&cfg);
        return rc;
    }
    if (cli.arg_count > 0) {
        const char *cmd = cli.args [0];
        int n = cli.arg_count - 1;
        const char **rest = cli.args + 1;
        if (!strcmp (cmd, "tail")) rc = cs_tail_run (cfg, n, rest);
        else if (!strcmp (cmd, "failed")) rc = cs_cmd_failed (cfg, n, rest);
        else if (!strcmp (cmd, "status")) rc = cs_cmd_status (cfg, n, rest);
        else if (!strcmp (cmd, "history")) rc = cs_cmd_history (cfg, n, rest);
        else if (!strcmp (cmd, "replay")) rc = cs_cmd_replay (cfg, n, rest);
        else if (!strcmp (cmd, "approve")) rc = cs_cmd_approve (cfg, n, rest);
        else {
            fprintf (stderr, "cardsync-auditor: '%s' is not a command (tail, failed, status, "
                     "history, replay, approve); see --help\n", cmd);
            rc = EX_USAGE;
        }
        cs_config_destroy (&cfg);
        return rc;
    }
    auditor_t a;
    memset (&a, 0, sizeof a);
    a.cfg = cfg;
    a.log = cs_cli_log (&s_spec, cfg);
    char error [512], path [4200];
    cs_zmq_t *zmq = NULL;
    zpoller_t *poller = NULL;
    rc = EX_UNAVAILABLE;
    if (cs_zmq_private_dir (cfg->pipeline.state_dir, error, sizeof error) != 0) {
        cs_log (a.log, CS_LOG_ERROR, "start_failed", "error", error, NULL);
        goto done;
    }
    snprintf (path, sizeof path, "%s/audit.db", cfg->pipeline.state_dir);
    a.audit = cs_audit_open (path, error, sizeof error);
    zmq = a.audit ? cs_zmq_new (&cfg->pipeline, error, sizeof error) : NULL;
    if (zmq)
        a.in = cs_zmq_bind (zmq, ZMQ_PULL, cfg->pipeline.auditor_in, 0, error, sizeof error);
    if (a.in)
        a.pub = cs_zmq_bind (zmq, ZMQ_PUB, cfg->pipeline.auditor_pub, 0, error, sizeof error);
    if (a.pub)
        a.acks = cs_zmq_connect (zmq, ZMQ_PUSH, cfg->pipeline.differ_in, 0, error, sizeof error);
    if (!a.acks) {
        cs_log (a.log, CS_LOG_ERROR, "start_failed", "error", error, NULL);
        goto done;
    }
    a.notify = cs_notify_new (&cfg->notify, cs_audit_db (a.audit), a.log);
    char seq [32];
    snprintf (seq, sizeof seq, "%lld", (long long) cs_audit_contiguous (a.audit));
    cs_log (a.log, CS_LOG_INFO, "started", "db", path, "contiguous", seq, NULL);
    send_ack (&a);              /* tells a restarted differ where to resume */
    poller = zpoller_new (a.in, NULL);
    int64_t next_expire = zclock_mono ();
    while (!cs_zmq_interrupted ()) {
        zsock_t *which = zpoller_wait (poller, 1000);
        if (zpoller_terminated (poller))
            break;
        if (which)
            drain (&a);
        else if (a.acked != cs_audit_contiguous (a.audit))
            send_ack (&a);
        cs_notify_tick (a.notify, zclock_time ());
        if (zclock_mono () >= next_expire) {
            long gone = cs_audit_expire (a.audit, cfg->auditor.retention_days, zclock_time ());
            if (gone > 0) {
                char n [32];
                snprintf (n, sizeof n, "%ld", gone);
                cs_log (a.log, CS_LOG_INFO, "expired", "events", n, NULL);
            }
            next_expire = zclock_mono () + 3600 * 1000;
        }
    }
    cs_log (a.log, CS_LOG_INFO, "stopped", NULL);
    rc = 0;
done:
    zpoller_destroy (&poller);
    zsock_destroy (&a.in);
    zsock_destroy (&a.pub);
    zsock_destroy (&a.acks);
    cs_zmq_destroy (&zmq);
    cs_notify_destroy (&a.notify);
    cs_audit_destroy (&a.audit);
    cs_log_destroy (&a.log);
    cs_config_destroy (&cfg);
    return rc;
}
