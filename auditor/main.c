/* cardsync-auditor: records every event the differ sends in audit.db, exactly
 * once, acknowledges them, and publishes them live for `tail`. */
#include "auditor/commands.h"
#include "auditor/notify.h"
#include "auditor/store.h"
#include "auditor/tail.h"
#include "auditor/web.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/sd.h"
#include "common/zmq.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BATCH 250                 /* events a transaction: few enough to keep the heap small */

static const cs_cli_spec_t s_spec = {
    .program = "cardsync-auditor",
    .summary = "Records every event, streams it to operators, and serves the operator commands.",
    .usage = "[--config FILE] [options] [COMMAND ...]",
    .more_help = "Without a command it runs the auditor. Commands:\n"
                 "  tail [-f] [-n N] [--since SEQ|TIME] [--json] [--email E] [--device D] [--type T]\n"
                 "        the audit, then with -f the live stream\n"
                 "  failed [--json]          the failed queue, with the device's own words\n"
                 "  replay (--all | ID... | --email E | --device D)\n"
                 "        send the current desired state of failed targets again\n"
                 "  status [--json]          the one health verdict (exit 0 all well, 1 attention)\n"
                 "  history EMAIL            everything the audit holds about one member\n"
                 "  member (EMAIL | --org N --id M)  one member and the persons tied to it\n"
                 "  unmatched [--csv|--json] entitled members with no person on a device\n"
                 "  orphans [--csv|--json]   persons still admitted whom no entitled member ties\n"
                 "  held [--json]            the revocations a tripped guard holds back\n"
                 "  approve [--yes]          show what a tripped guard holds back; send it once confirmed\n"
                 "  serve                    the operator's window: pages, JSON under /api/, /metrics ([web])\n\n"
                 "All but tail and history ask the differ on its control socket ([pipeline]\n"
                 "differ_ctl) and say so when it does not answer.\n\n"
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
    cs_notify_t *notify;        /* NULL without [notify] smtp_url, webhook or healthcheck */
    zsock_t *in;                /* events from the differ */
    zsock_t *acks;              /* acks to the differ */
    zsock_t *pub;               /* the live stream */
    int64_t acked;              /* the last contiguous seq acknowledged */
    char path [4200];           /* audit.db */
    dev_t dev;                  /* the file audit.db was when opened */
    ino_t ino;
    int burst;                  /* a batch of a burst was stored: trim the heap once it is over */
    int64_t stored;             /* events stored since the start (its heartbeat's counters) */
    int64_t store_failed;       /* batches that could not be stored */
} auditor_t;

static json_t *
counters (void *arg)
{
    auditor_t *a = arg;
    return json_pack ("{s:I, s:I}", "events_stored", (json_int_t) a->stored,
                      "store_failures", (json_int_t) a->store_failed);
}

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

/* Opens audit.db (again), noting which file it is. */
static int
open_audit (auditor_t *a, char *error, size_t error_size)
{
    cs_notify_destroy (&a->notify);
    cs_audit_destroy (&a->audit);
    a->audit = cs_audit_open (a->path, error, error_size);
    struct stat st;
    if (!a->audit || stat (a->path, &st) != 0)
        return -1;
    a->dev = st.st_dev;
    a->ino = st.st_ino;
    a->notify = cs_notify_new (&a->cfg->notify, cs_audit_db (a->audit), a->log);
    return 0;
}

/* audit.db removed or replaced under us: what we write would exist nowhere.
 * Reopen it and tell the differ how far it really holds (it sends again what
 * its outbox has, and names the rest in an audit_gap event). */
static void
watch_file (auditor_t *a)
{
    struct stat st;
    if (a->audit && stat (a->path, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino)
        return;
    char error [512] = "", seq [32] = "";
    int rc = open_audit (a, error, sizeof error);
    if (rc == 0)
        snprintf (seq, sizeof seq, "%lld", (long long) cs_audit_contiguous (a->audit));
    cs_log (a->log, rc == 0 ? CS_LOG_WARN : CS_LOG_ERROR, "audit_db_replaced", "db", a->path,
            "contiguous", seq, "error", error, "msg", rc == 0 ? "audit.db was removed or replaced: "
            "reopened; the differ sends again what it still has" : "cannot reopen audit.db", NULL);
    if (rc == 0)
        send_ack (a);
}

/* Takes what is waiting (up to BATCH), stores it in one transaction, then
 * publishes the new events and acknowledges. */
static size_t
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
        if (cs_msg_type (m) == CS_MSG_EVENT && cs_event_kind_parse (cs_msg_str (m, CS_F_KIND)) < 0) {
            /* not stored, not acknowledged: the outbox keeps it, and status shows the lag */
            cs_log (a->log, CS_LOG_ERROR, "bad_message", "error", "an event of a kind this auditor "
                    "does not know", "kind", cs_msg_str (m, CS_F_KIND), NULL);
            cs_msg_destroy (&m);
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
        return 0;
    if (cs_audit_store (a->audit, batch, n, inserted) != 0) {
        /* nothing acknowledged: the differ sends them again */
        cs_log (a->log, CS_LOG_ERROR, "store_failed", "error", cs_audit_errmsg (a->audit), NULL);
        a->store_failed++;
    }
    else {
        for (size_t i = 0; i < n; i++)
            if (inserted [i]) {
                cs_zmq_send (a->pub, batch [i], NULL);
                a->stored++;
            }
        send_ack (a);
    }
    for (size_t i = 0; i < n; i++)
        cs_msg_destroy (&batch [i]);
    /* a burst's messages are freed all over the heap: once it is over (a
     * batch that is not full), hand the whole free pages back, so that a burst
     * does not stay the daemon's size */
    if (n >= BATCH / 4)
        a->burst = 1;
    if (n < BATCH && a->burst) {
        malloc_trim (0);
        a->burst = 0;
    }
    return n;
}

int
main (int argc, char **argv)
{
    cs_cli_t cli;
    cs_cli_lean_memory ();
    int rc = cs_cli_parse (&s_spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    /* a command's help needs no config */
    int help = cli.arg_count > 1 && (!strcmp (cli.args [1], "--help") || !strcmp (cli.args [1], "-h"));
    int serve = cli.arg_count > 0 && !strcmp (cli.args [0], "serve");
    cs_config_t *cfg = help ? NULL : cs_cli_config (&s_spec, &cli, CS_SECRETS_SMTP | (serve ? CS_SECRETS_WEB : 0), &rc);
    if (!help && rc >= 0) {
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
        else if (!strcmp (cmd, "held")) rc = cs_cmd_held (cfg, n, rest);
        else if (!strcmp (cmd, "unmatched")) rc = cs_cmd_unmatched (cfg, n, rest);
        else if (!strcmp (cmd, "orphans")) rc = cs_cmd_orphans (cfg, n, rest);
        else if (!strcmp (cmd, "member")) rc = cs_cmd_member (cfg, n, rest);
        else if (!strcmp (cmd, "serve")) {
            cs_log_t *log = cfg ? cs_cli_log (&s_spec, cfg) : NULL;     /* none for --help */
            rc = cs_web_serve (cfg, log, n, rest);
            cs_log_destroy (&log);
        }
        else if (help) {
            fprintf (stderr, "cardsync-auditor: '%s' is not a command; see --help\n", cmd);
            rc = EX_USAGE;
        }
        else {
            fprintf (stderr, "cardsync-auditor: '%s' is not a command (tail, failed, status, "
                     "history, member, unmatched, orphans, held, replay, approve, serve); see --help\n", cmd);
            rc = EX_USAGE;
        }
        cs_config_destroy (&cfg);
        return rc;
    }
    auditor_t a;
    memset (&a, 0, sizeof a);
    a.cfg = cfg;
    a.log = cs_cli_log (&s_spec, cfg);
    char error [512];
    cs_zmq_t *zmq = NULL;
    zpoller_t *poller = NULL;
    rc = EX_UNAVAILABLE;
    if (cs_zmq_private_dir (cfg->pipeline.state_dir, error, sizeof error) != 0) {
        cs_log (a.log, CS_LOG_ERROR, "start_failed", "error", error, NULL);
        goto done;
    }
    snprintf (a.path, sizeof a.path, "%s/audit.db", cfg->pipeline.state_dir);
    zmq = open_audit (&a, error, sizeof error) == 0 ? cs_zmq_new (&cfg->pipeline, error, sizeof error) : NULL;
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
    char seq [32];
    snprintf (seq, sizeof seq, "%lld", (long long) cs_audit_contiguous (a.audit));
    cs_log (a.log, CS_LOG_INFO, "started", "db", a.path, "contiguous", seq, NULL);
    send_ack (&a);              /* tells a restarted differ where to resume */
    cs_sd_ready ("auditor: audit.db open, sockets bound");
    malloc_trim (0);            /* what opening and checking audit.db left behind */
    poller = zpoller_new (a.in, NULL);
    int64_t next_expire = zclock_mono ();
    cs_group_t group = { 0, 0 };
    cs_beat_t beat;
    cs_beat_init (&beat, a.acks, CS_STAGE_AUDITOR, cfg->pipeline.heartbeat_interval);
    cs_beat_counters (&beat, counters, &a);
    while (!cs_zmq_interrupted ()) {
        cs_beat (&beat);
        if (cs_sd_due ()) {
            char summary [80];
            snprintf (summary, sizeof summary, "events up to %lld stored", (long long) a.acked);
            cs_sd_alive (summary);
        }
        watch_file (&a);
        if (!a.audit) {
            zclock_sleep (1000);        /* events wait in the socket, and then in the outbox */
            continue;
        }
        /* an alert under way moves on at each turn */
        zsock_t *which = zpoller_wait (poller, cs_notify_busy (a.notify) ? 20 : 1000);
        if (zpoller_terminated (poller))
            break;
        if (which) {
            cs_group_wait (&group);
            size_t n = drain (&a);
            if (n)
                cs_group_took (&group, n, BATCH);
        }
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
    cs_sd_stopping ();
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
