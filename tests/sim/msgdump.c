/* msgdump: a test tool that stands in for a pipeline stage. It binds a PULL
 * socket and prints every message it receives as one JSON line, so a test can
 * drive one program alone and read what it sent.
 *
 *   msgdump --bind ENDPOINT [--until TYPE] [--count N] [--timeout SECONDS] [--quiet 1]
 *   msgdump --send ENDPOINT < lines      (one JSON message a line, PUSH-connected)
 *   msgdump --ask ENDPOINT < lines       (requests on a DEALER; prints each answer)
 *   msgdump --blast ENDPOINT --size N    (one frame of N bytes of garbage, PUSH-connected)
 *
 * Exits 0 after --until's message type (or --count messages), 1 on timeout.
 * --quiet 1 decodes but prints nothing (a sink as fast as a real stage). */
#include "common/zmq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
    const char *endpoint = NULL, *until = NULL, *send_to = NULL, *ask = NULL, *blast = NULL;
    long long size = 0;
    long count = -1, timeout = 30;
    int quiet = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp (argv [i], "--bind")) endpoint = argv [i + 1];
        else if (!strcmp (argv [i], "--until")) until = argv [i + 1];
        else if (!strcmp (argv [i], "--send")) send_to = argv [i + 1];
        else if (!strcmp (argv [i], "--ask")) ask = argv [i + 1];
        else if (!strcmp (argv [i], "--blast")) blast = argv [i + 1];
        else if (!strcmp (argv [i], "--size")) size = strtoll (argv [i + 1], NULL, 10);
        else if (!strcmp (argv [i], "--count")) count = strtol (argv [i + 1], NULL, 10);
        else if (!strcmp (argv [i], "--timeout")) timeout = strtol (argv [i + 1], NULL, 10);
        else if (!strcmp (argv [i], "--quiet")) quiet = !strcmp (argv [i + 1], "1");
    }
    if (blast && size > 0) {
        /* raw, past cs_zmq: a frame no message can be */
        void *ctx = zmq_ctx_new ();
        void *out = zmq_socket (ctx, ZMQ_PUSH);
        char *junk = malloc ((size_t) size);
        int linger = 5000;
        zmq_setsockopt (out, ZMQ_LINGER, &linger, sizeof linger);
        int rc = junk && zmq_connect (out, blast) == 0 ? 0 : 69;
        if (rc == 0) {
            memset (junk, 0xc1, (size_t) size);     /* 0xc1: never valid msgpack */
            rc = zmq_send (out, junk, (size_t) size, 0) == (int) size ? 0 : 1;
        }
        free (junk);
        zmq_close (out);
        zmq_ctx_term (ctx);
        return rc;
    }
    if (send_to || ask) {
        char error [512];
        cs_zmq_t *z = cs_zmq_new (NULL, error, sizeof error);
        zsock_t *out = z ? cs_zmq_connect (z, ask ? ZMQ_DEALER : ZMQ_PUSH, ask ? ask : send_to, 0,
                                           error, sizeof error) : NULL;
        if (!out) {
            fprintf (stderr, "msgdump: %s\n", error);
            return 69;
        }
        char line [70000];
        int rc = 0;
        while (fgets (line, sizeof line, stdin)) {
            if (line [0] == '\n' || line [0] == '#')
                continue;
            cs_msg_error_t err;
            cs_msg_t *m = cs_msg_from_json (line, &err);
            if (!m || cs_zmq_send (out, m, &err) != 0) {
                fprintf (stderr, "msgdump: %s\n", err.text);
                rc = 65;
            }
            cs_msg_destroy (&m);
            /* the answers to a request, until one says no more follow */
            zsock_set_rcvtimeo (out, (int) timeout * 1000);
            while (ask && rc == 0) {
                cs_msg_t *a = cs_zmq_recv (out, &err);
                if (!a) {
                    fprintf (stderr, "msgdump: no answer: %s\n", err.code ? err.text : "timed out");
                    rc = 1;
                    break;
                }
                char *json = cs_msg_to_json (a);
                printf ("%s\n", json);
                free (json);
                int more = cs_msg_bool (a, CS_F_MORE);
                cs_msg_destroy (&a);
                if (!more)
                    break;
            }
            fflush (stdout);
        }
        zsock_destroy (&out);
        cs_zmq_destroy (&z);
        return rc;
    }
    if (!endpoint) {
        fprintf (stderr, "usage: msgdump --bind ENDPOINT [--until TYPE] [--count N] [--timeout S]\n");
        return 64;
    }
    char error [512];
    cs_zmq_t *z = cs_zmq_new (NULL, error, sizeof error);
    zsock_t *in = z ? cs_zmq_bind (z, ZMQ_PULL, endpoint, 0, error, sizeof error) : NULL;
    if (!in) {
        fprintf (stderr, "msgdump: %s\n", error);
        return 69;
    }
    setvbuf (stdout, NULL, _IOLBF, 0);
    zpoller_t *poller = zpoller_new (in, NULL);
    int64_t deadline = zclock_mono () + timeout * 1000;
    int rc = 1;
    long seen = 0;
    while (!cs_zmq_interrupted ()) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 || !zpoller_wait (poller, (int) left))
            break;
        cs_msg_error_t err;
        cs_msg_t *m = cs_zmq_recv (in, &err);
        if (!m) {
            printf ("{\"bad\":\"%s\"}\n", err.text);
            continue;
        }
        if (!quiet) {
            char *text = cs_msg_to_json (m);
            printf ("%s\n", text);
            free (text);
        }
        int done = (until && !strcmp (cs_msg_type_name (cs_msg_type (m)), until))
                   || (count > 0 && ++seen >= count);
        cs_msg_destroy (&m);
        if (done) {
            rc = 0;
            break;
        }
    }
    zpoller_destroy (&poller);
    zsock_destroy (&in);
    cs_zmq_destroy (&z);
    return rc;
}
