#include "harness.h"
#include "common/zmq.h"

#include <signal.h>
#include <sys/stat.h>

static cs_pipeline_config_t
pipeline (void)
{
    cs_pipeline_config_t pl;
    memset (&pl, 0, sizeof pl);
    pl.run_dir = (char *) cs_test_dir ();
    return pl;
}

static cs_msg_t *
ack (int64_t seq)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_ACK);
    cs_msg_set_int (m, CS_F_SEQ, seq);
    return m;
}

TEST (private_dir)
{
    char dir [512], error [256];
    snprintf (dir, sizeof dir, "%s/a/b/run", cs_test_dir ());
    CHECK (cs_zmq_private_dir (dir, error, sizeof error) == 0);
    struct stat st;
    REQUIRE (stat (dir, &st) == 0);
    CHECK_INT (st.st_mode & 0777, 0700);
    chmod (dir, 0755);
    CHECK (cs_zmq_private_dir (dir, error, sizeof error) == 0);
    stat (dir, &st);
    CHECK_INT (st.st_mode & 0777, 0700);
    const char *file = cs_test_write ("plain", "x");
    CHECK (cs_zmq_private_dir (file, error, sizeof error) == -1);
    CHECK_HAS (error, "is not a directory");
}

TEST (push_pull_over_ipc)
{
    cs_pipeline_config_t pl = pipeline ();
    char error [256], endpoint [512];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/run/differ.in", cs_test_dir ());
    cs_zmq_t *z = cs_zmq_new (&pl, error, sizeof error);
    REQUIRE (z);
    zsock_t *pull = cs_zmq_bind (z, ZMQ_PULL, endpoint, 0, error, sizeof error);
    REQUIRE (pull);
    zsock_t *push = cs_zmq_connect (z, ZMQ_PUSH, endpoint, 10, error, sizeof error);
    REQUIRE (push);
    CHECK_INT (zsock_linger (push), CS_ZMQ_LINGER_MS);
    CHECK_INT (zsock_sndhwm (push), 10);
    CHECK_INT (zsock_rcvhwm (pull), CS_ZMQ_HWM);
    /* the socket's directory was made private */
    char dir [512];
    snprintf (dir, sizeof dir, "%s/run", cs_test_dir ());
    struct stat st;
    REQUIRE (stat (dir, &st) == 0);
    CHECK_INT (st.st_mode & 0777, 0700);

    for (int i = 1; i <= 100; i++) {
        cs_msg_t *m = ack (i);
        CHECK (cs_zmq_send (push, m, NULL) == 0);
        cs_msg_destroy (&m);
    }
    for (int i = 1; i <= 100; i++) {
        cs_msg_error_t err;
        cs_msg_t *m = cs_zmq_recv (pull, &err);
        REQUIRE (m);
        CHECK_INT (cs_msg_int (m, CS_F_SEQ), i);
        cs_msg_destroy (&m);
    }
    /* an unencodable message is not sent */
    cs_msg_t *incomplete = cs_msg_new (CS_MSG_ACK);
    cs_msg_error_t err;
    CHECK (cs_zmq_send (push, incomplete, &err) == -1);
    CHECK_INT (err.code, CS_MSG_E_MISSING);
    cs_msg_destroy (&incomplete);
    /* garbage and multi-frame messages are refused with a reason */
    zstr_send (push, "hello");
    cs_msg_t *bad = cs_zmq_recv (pull, &err);
    CHECK (bad == NULL);
    CHECK_INT (err.code, CS_MSG_E_NOT_MAP);
    zstr_sendx (push, "a", "b", NULL);
    bad = cs_zmq_recv (pull, &err);
    CHECK (bad == NULL);
    CHECK_INT (err.code, CS_MSG_E_TRAILING);
    /* and the socket still works afterwards */
    cs_msg_t *m = ack (7);
    cs_zmq_send (push, m, NULL);
    cs_msg_destroy (&m);
    m = cs_zmq_recv (pull, NULL);
    CHECK (m && cs_msg_int (m, CS_F_SEQ) == 7);
    cs_msg_destroy (&m);

    /* without waiting: nothing, then what was sent, bad messages said so */
    CHECK (cs_zmq_try_recv (pull, &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_NONE);
    zstr_sendx (push, "a", "b", "c", NULL);
    zstr_send (push, "hello");
    for (int i = 1; i <= 3; i++) {
        m = ack (i);
        cs_zmq_send (push, m, NULL);
        cs_msg_destroy (&m);
    }
    zclock_sleep (100);
    CHECK (cs_zmq_try_recv (pull, &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_TRAILING);
    CHECK (cs_zmq_try_recv (pull, &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_NOT_MAP);
    for (int i = 1; i <= 3; i++) {
        m = cs_zmq_try_recv (pull, &err);
        CHECK (m && cs_msg_int (m, CS_F_SEQ) == i);
        cs_msg_destroy (&m);
    }
    CHECK (cs_zmq_try_recv (pull, &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_NONE);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    cs_zmq_destroy (&z);
    CHECK (z == NULL);
}

TEST (bind_errors_name_the_endpoint)
{
    cs_pipeline_config_t pl = pipeline ();
    char error [256];
    cs_zmq_t *z = cs_zmq_new (&pl, error, sizeof error);
    REQUIRE (z);
    zsock_t *a = cs_zmq_bind (z, ZMQ_PULL, "tcp://127.0.0.1:*", 0, error, sizeof error);
    REQUIRE (a);
    char taken [128];
    snprintf (taken, sizeof taken, "%s", zsock_endpoint (a));
    zsock_t *b = cs_zmq_bind (z, ZMQ_PULL, taken, 0, error, sizeof error);
    CHECK (b == NULL);
    CHECK_HAS (error, "cannot bind tcp://127.0.0.1:");
    CHECK_HAS (error, "in use");
    zsock_destroy (&a);
    cs_zmq_destroy (&z);
}

TEST (curve_between_hosts)
{
    char error [256];
    zcert_t *cert = zcert_new ();
    char path [512];
    snprintf (path, sizeof path, "%s/host.cert", cs_test_dir ());
    REQUIRE (zcert_save (cert, path) == 0);
    cs_pipeline_config_t pl = pipeline ();
    pl.curve_cert = path;                 /* zcert_load reads path_secret */
    char secret [600];
    snprintf (secret, sizeof secret, "%s_secret", path);
    pl.curve_cert = secret;
    pl.curve_server_key = (char *) zcert_public_txt (cert);
    cs_zmq_t *z = cs_zmq_new (&pl, error, sizeof error);
    REQUIRE (z);
    zsock_t *pull = cs_zmq_bind (z, ZMQ_PULL, "tcp://127.0.0.1:*", 0, error, sizeof error);
    REQUIRE (pull);
    CHECK_INT (zsock_mechanism (pull), ZMQ_CURVE);
    char endpoint [128];
    snprintf (endpoint, sizeof endpoint, "%s", zsock_endpoint (pull));
    zsock_t *push = cs_zmq_connect (z, ZMQ_PUSH, endpoint, 0, error, sizeof error);
    REQUIRE (push);
    CHECK_INT (zsock_mechanism (push), ZMQ_CURVE);
    cs_msg_t *m = ack (1);
    CHECK (cs_zmq_send (push, m, NULL) == 0);
    cs_msg_destroy (&m);
    zsock_set_rcvtimeo (pull, 5000);
    m = cs_zmq_recv (pull, NULL);
    CHECK (m && cs_msg_int (m, CS_F_SEQ) == 1);
    cs_msg_destroy (&m);

    /* the control socket across hosts: a request and its answer, both under CURVE */
    zsock_t *ctl = cs_zmq_bind (z, ZMQ_ROUTER, "tcp://127.0.0.1:*", 0, error, sizeof error);
    REQUIRE (ctl);
    CHECK_INT (zsock_mechanism (ctl), ZMQ_CURVE);
    char ctl_ep [128];
    snprintf (ctl_ep, sizeof ctl_ep, "%s", zsock_endpoint (ctl));
    zsock_t *asker = cs_zmq_connect (z, ZMQ_DEALER, ctl_ep, 0, error, sizeof error);
    REQUIRE (asker);
    CHECK_INT (zsock_mechanism (asker), ZMQ_CURVE);
    m = cs_msg_new (CS_MSG_REQUEST);
    cs_msg_set_int (m, CS_F_REQ, 9);
    cs_msg_set_str (m, CS_F_OP, "status");
    CHECK (cs_zmq_send (asker, m, NULL) == 0);
    cs_msg_destroy (&m);
    zsock_set_rcvtimeo (ctl, 5000);
    zmsg_t *req = zmsg_recv (ctl);
    REQUIRE (req && zmsg_size (req) == 2);
    zframe_t *who = zmsg_pop (req);
    m = cs_msg_new (CS_MSG_ANSWER);
    cs_msg_set_int (m, CS_F_REQ, 9);
    cs_msg_set_bool (m, CS_F_OK, 1);
    uint8_t *data;
    size_t size;
    REQUIRE (cs_msg_encode (m, &data, &size, NULL) == 0);
    cs_msg_destroy (&m);
    zmsg_t *answer = zmsg_new ();
    zmsg_append (answer, &who);
    zmsg_addmem (answer, data, size);
    free (data);
    CHECK (zmsg_send (&answer, ctl) == 0);
    zmsg_destroy (&req);
    zsock_set_rcvtimeo (asker, 5000);
    m = cs_zmq_recv (asker, NULL);
    CHECK (m && cs_msg_type (m) == CS_MSG_ANSWER && cs_msg_int (m, CS_F_REQ) == 9);
    cs_msg_destroy (&m);
    zsock_destroy (&asker);
    zsock_destroy (&ctl);

    /* a peer expecting another server key gets nothing through */
    zcert_t *other = zcert_new ();
    cs_pipeline_config_t wrong = pl;
    wrong.curve_server_key = (char *) zcert_public_txt (other);
    cs_zmq_t *z2 = cs_zmq_new (&wrong, error, sizeof error);
    REQUIRE (z2);
    zsock_t *intruder = cs_zmq_connect (z2, ZMQ_PUSH, endpoint, 0, error, sizeof error);
    REQUIRE (intruder);
    m = ack (666);
    zsock_set_sndtimeo (intruder, 100);
    cs_zmq_send (intruder, m, NULL);
    cs_msg_destroy (&m);
    zsock_set_rcvtimeo (pull, 500);
    m = cs_zmq_recv (pull, NULL);
    CHECK (m == NULL);
    cs_msg_destroy (&m);
    zsock_set_linger (intruder, 0);
    zsock_destroy (&intruder);
    cs_zmq_destroy (&z2);
    zcert_destroy (&other);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    cs_zmq_destroy (&z);
    zcert_destroy (&cert);
}

TEST (missing_certificate)
{
    cs_pipeline_config_t pl = pipeline ();
    pl.curve_cert = "/nonexistent/host.cert_secret";
    char error [256];
    CHECK (cs_zmq_new (&pl, error, sizeof error) == NULL);
    CHECK_HAS (error, "[pipeline] curve_cert: cannot load a certificate from /nonexistent");
}

TEST (sigterm_stops_the_loop)
{
    cs_pipeline_config_t pl = pipeline ();
    char error [256], endpoint [512];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/in", cs_test_dir ());
    cs_zmq_t *z = cs_zmq_new (&pl, error, sizeof error);
    REQUIRE (z);
    zsock_t *pull = cs_zmq_bind (z, ZMQ_PULL, endpoint, 0, error, sizeof error);
    REQUIRE (pull);
    zpoller_t *poller = zpoller_new (pull, NULL);
    CHECK (!cs_zmq_interrupted ());
    CHECK (zpoller_wait (poller, 10) == NULL && zpoller_expired (poller));
    raise (SIGTERM);                      /* czmq's handler catches it: no death */
    CHECK (cs_zmq_interrupted ());
    CHECK (zpoller_wait (poller, 60000) == NULL);   /* returns at once, not after a minute */
    CHECK (zpoller_terminated (poller));
    zpoller_destroy (&poller);
    zsock_destroy (&pull);
    cs_zmq_destroy (&z);
}

TEST (an_oversized_frame_is_refused_before_it_is_read)
{
    cs_pipeline_config_t pl = pipeline ();
    char error [256], endpoint [512];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/run/big.in", cs_test_dir ());
    cs_zmq_t *z = cs_zmq_new (&pl, error, sizeof error);
    REQUIRE (z);
    zsock_t *pull = cs_zmq_bind (z, ZMQ_PULL, endpoint, 0, error, sizeof error);
    REQUIRE (pull);
    CHECK_INT (zsock_maxmsgsize (pull), CS_MSG_MAX_SIZE);
    /* a foreign sender, without our limits: 4 MB in one frame */
    zsock_t *raw = zsock_new_push (endpoint);
    REQUIRE (raw);
    size_t size = 4 << 20;
    zframe_t *big = zframe_new (NULL, size);
    REQUIRE (big);
    memset (zframe_data (big), 0xc1, size);
    REQUIRE (zframe_send (&big, raw, 0) == 0);
    zpoller_t *poller = zpoller_new (pull, NULL);
    CHECK (zpoller_wait (poller, 500) == NULL);     /* nothing arrives: the peer was cut off */
    zpoller_destroy (&poller);
    zsock_destroy (&raw);
    /* a well-behaved sender still gets through */
    zsock_t *push = cs_zmq_connect (z, ZMQ_PUSH, endpoint, 0, error, sizeof error);
    REQUIRE (push);
    cs_msg_t *m = ack (7);
    CHECK (cs_zmq_send (push, m, NULL) == 0);
    cs_msg_destroy (&m);
    cs_msg_error_t err;
    m = cs_zmq_recv (pull, &err);
    REQUIRE (m);
    CHECK_INT (cs_msg_int (m, CS_F_SEQ), 7);
    cs_msg_destroy (&m);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    cs_zmq_destroy (&z);
}

TEST (try_send_never_waits)
{
    cs_pipeline_config_t pl = pipeline ();
    char error [256], endpoint [512];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/run/nobody.in", cs_test_dir ());
    cs_zmq_t *z = cs_zmq_new (&pl, error, sizeof error);
    REQUIRE (z);
    /* nobody reads: the queue fills, then try_send says so instead of blocking */
    zsock_t *push = cs_zmq_connect (z, ZMQ_PUSH, endpoint, 5, error, sizeof error);
    REQUIRE (push);
    int sent = 0, full = 0;
    for (int i = 0; i < 50 && !full; i++) {
        cs_msg_t *m = ack (i + 1);
        int rc = cs_zmq_try_send (push, m, NULL);
        cs_msg_destroy (&m);
        sent += rc == 0;
        full = rc == 1;
    }
    CHECK (full);
    CHECK (sent >= 5 && sent < 50);
    zsock_set_linger (push, 0);
    zsock_destroy (&push);
    cs_zmq_destroy (&z);
}

/* A program stuck sending to a peer that takes nothing (stopped, or refusing
 * its key) still stops on SIGTERM: the wait looks at zsys_interrupted, which
 * the signal sets whichever thread it reached. */
TEST (a_full_queue_gives_way_to_sigterm)
{
    cs_pipeline_config_t pl = pipeline ();
    char error [256], endpoint [512];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/run/nobody.in", cs_test_dir ());
    cs_zmq_t *z = cs_zmq_new (&pl, error, sizeof error);
    REQUIRE (z);
    zsock_t *push = cs_zmq_connect (z, ZMQ_PUSH, endpoint, 2, error, sizeof error);
    REQUIRE (push);
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++) {   /* fill the queue */
        cs_msg_t *m = ack (i + 1);
        rc = cs_zmq_try_send (push, m, NULL);
        cs_msg_destroy (&m);
    }
    CHECK_INT (rc, 1);
    zsys_interrupted = 1;
    cs_msg_t *m = ack (99);
    cs_msg_error_t err;
    CHECK_INT (cs_zmq_send (push, m, &err), -1);
    CHECK_INT (err.code, CS_MSG_E_NONE);
    CHECK_HAS (err.text, "interrupted while the peer's queue was full");
    cs_msg_destroy (&m);
    zsys_interrupted = 0;
    zsock_set_linger (push, 0);
    zsock_destroy (&push);
    cs_zmq_destroy (&z);
}
