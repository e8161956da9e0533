#include "auditor/ctl.h"
#include "common/zmq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cs_msg_t *
cs_ctl_request (const char *op)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_REQUEST);
    if (m && cs_msg_set_str (m, CS_F_OP, op) != 0)
        cs_msg_destroy (&m);
    return m;
}

/* Appends the rows of part to whole's. */
static void
join_rows (json_t *whole, json_t *part)
{
    json_t *rows = json_object_get (whole, "rows");
    json_t *more = json_object_get (part, "rows");
    if (json_is_array (rows) && json_is_array (more))
        json_array_extend (rows, more);
}

cs_ctl_rc_t
cs_ctl_ask (const cs_config_t *cfg, cs_msg_t *req, int timeout_ms, json_t **body, char *err,
            size_t err_size)
{
    *body = NULL;
    char error [512];
    const char *ep = cfg->pipeline.differ_ctl;
    cs_zmq_t *zmq = cs_zmq_new (&cfg->pipeline, error, sizeof error);
    zsock_t *sock = zmq ? cs_zmq_connect (zmq, ZMQ_DEALER, ep, 0, error, sizeof error) : NULL;
    if (!sock) {
        snprintf (err, err_size, "%s", error);
        cs_zmq_destroy (&zmq);
        return CS_CTL_BROKEN;
    }
    /* an id of our own, so that a late answer to an earlier asker is not ours */
    int64_t id = (zclock_time () << 16 ^ getpid ()) & INT64_MAX;
    cs_msg_set_int (req, CS_F_REQ, id);
    cs_ctl_rc_t rc = CS_CTL_SILENT;
    /* a running differ accepts the connection at once; nothing listening, no wait */
    zmq_pollitem_t out = { zsock_resolve (sock), 0, ZMQ_POLLOUT, 0 };
    if (zmq_poll (&out, 1, CS_CTL_CONNECT_MS) != 1 || cs_zmq_try_send (sock, req, NULL) != 0)
        rc = CS_CTL_SILENT;
    else {
        int64_t deadline = zclock_mono () + timeout_ms;
        zpoller_t *poller = zpoller_new (sock, NULL);
        for (;;) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0 || cs_zmq_interrupted ())
                break;
            if (!zpoller_wait (poller, (int) left))
                continue;
            cs_msg_error_t e;
            cs_msg_t *a = cs_zmq_try_recv (sock, &e);
            if (!a) {
                if (e.code == CS_MSG_E_NONE)
                    continue;
                snprintf (err, err_size, "the differ's answer makes no sense: %s", e.text);
                rc = CS_CTL_BROKEN;
                break;
            }
            if (cs_msg_type (a) != CS_MSG_ANSWER || cs_msg_int (a, CS_F_REQ) != id) {
                cs_msg_destroy (&a);
                continue;           /* not ours */
            }
            if (!cs_msg_bool (a, CS_F_OK)) {
                snprintf (err, err_size, "the differ refused: %s",
                          cs_msg_str (a, CS_F_ERROR) ? cs_msg_str (a, CS_F_ERROR) : "no reason given");
                rc = CS_CTL_REFUSED;
                cs_msg_destroy (&a);
                break;
            }
            json_t *part = cs_msg_doc (a, CS_F_BODY);
            if (!*body)
                *body = part ? json_incref (part) : json_object ();
            else if (part)
                join_rows (*body, part);
            int more = cs_msg_bool (a, CS_F_MORE);
            cs_msg_destroy (&a);
            if (!more) {
                rc = CS_CTL_OK;
                break;
            }
        }
        zpoller_destroy (&poller);
    }
    if (rc == CS_CTL_SILENT)
        snprintf (err, err_size, "the differ is not answering on %s; is it running? "
                  "(supervisorctl status cardsync:)", ep);
    if (rc != CS_CTL_OK) {
        json_decref (*body);
        *body = NULL;
    }
    zsock_set_linger (sock, 0);
    zsock_destroy (&sock);
    cs_zmq_destroy (&zmq);
    return rc;
}
