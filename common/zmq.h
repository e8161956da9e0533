/* cs_zmq: the sockets between the four programs.
 *
 * Every socket gets an explicit linger and high-water mark; ipc:// sockets live
 * in a run_dir of mode 0700; tcp:// sockets use CURVE when the config names a
 * certificate (the binding side is the server, authenticated by zauth).
 * Messages travel as one cs_msg per frame. SIGINT and SIGTERM set
 * zsys_interrupted (czmq's handler): main loops check cs_zmq_interrupted. */
#ifndef CS_ZMQ_H
#define CS_ZMQ_H

#include "common/config.h"
#include "common/log.h"
#include "common/msg.h"
#include "common/vocab.h"

#include <czmq.h>
#include <jansson.h>

typedef struct _cs_zmq_t cs_zmq_t;
typedef struct _cs_refusals_t cs_refusals_t;

#define CS_ZMQ_LINGER_MS 2000     /* unsent messages get this long at close */
#define CS_ZMQ_HWM 10000          /* messages queued per socket; a full queue makes the
                                   * sender wait (backpressure: the outbox, the export or
                                   * the device keeps the rest, not memory) */

/* Sets up czmq (signal handling included) for the pipeline described by pl. */
cs_zmq_t *cs_zmq_new (const cs_pipeline_config_t *pl, char *error, size_t error_size);
void cs_zmq_destroy (cs_zmq_t **self_p);

/* A socket of type (ZMQ_PUSH, ZMQ_PULL, ZMQ_PUB, ZMQ_SUB; ZMQ_ROUTER and, with
 * ZMQ_IMMEDIATE, ZMQ_DEALER for the control socket) bound to, or connected
 * to, endpoint. hwm 0 means CS_ZMQ_HWM. A peer that sends a frame larger than
 * CS_MSG_MAX_SIZE is disconnected (ZMQ_MAXMSGSIZE). NULL with the reason in
 * error. */
zsock_t *cs_zmq_bind (cs_zmq_t *self, int type, const char *endpoint, int hwm, char *error,
                      size_t error_size);
zsock_t *cs_zmq_connect (cs_zmq_t *self, int type, const char *endpoint, int hwm, char *error,
                         size_t error_size);
/* Like cs_zmq_connect, to a CURVE server whose public key is server_key (NULL:
 * [pipeline] curve_server_key): the differ to a site's pusher. */
zsock_t *cs_zmq_connect_to (cs_zmq_t *self, int type, const char *endpoint, const char *server_key,
                            int hwm, cs_refusals_t **refusals, char *error, size_t error_size);
/* Like cs_zmq_bind, with *refusals watching it (see below) from before the
 * bind, so that no refusal goes unseen. */
zsock_t *cs_zmq_bind_watched (cs_zmq_t *self, int type, const char *endpoint, int hwm,
                              cs_refusals_t **refusals, char *error, size_t error_size);

/* CURVE refusals on a tcp socket, either way: on a bound socket, peers whose
 * key zauth refused (not in curve_clients_dir); on a connected one, the other
 * end refusing this host's key. Made by cs_zmq_bind_watched and
 * cs_zmq_connect_to (NULL when the socket uses no CURVE). A peer that keeps
 * trying is refused every few hundred ms: the first is logged, then at most
 * one line a minute with the count. */
void cs_refusals_destroy (cs_refusals_t **self_p);
/* What to poll (a zactor). */
void *cs_refusals_sock (cs_refusals_t *self);
/* Takes one report and, when due, logs it: event=peer_refused (bound) or
 * refused_by_peer (connected), with the endpoint and how many since the
 * last such line. */
void cs_refused (cs_log_t *log, cs_refusals_t *self);

#define CS_ZMQ_TCP_HEARTBEAT_MS 5000    /* across hosts: a silent connection is */
#define CS_ZMQ_TCP_DEAD_MS 15000        /*   given up after this, and made anew */

/* Creates dir (and its parents) if need be and makes it private (0700).
 * Refuses a directory owned by another user. */
int cs_zmq_private_dir (const char *dir, char *error, size_t error_size);

/* Sends m as one frame, waiting while the peer's queue is full (or no peer
 * is there); -1 if it does not encode, the socket refuses, or SIGINT or
 * SIGTERM arrives meanwhile (error->text says which). */
int cs_zmq_send (zsock_t *sock, const cs_msg_t *m, cs_msg_error_t *error);

/* Like cs_zmq_send without waiting: 1 when the queue is full (nothing sent;
 * the peer is slow or absent), 0 when sent, -1 on error. */
int cs_zmq_try_send (zsock_t *sock, const cs_msg_t *m, cs_msg_error_t *error);

/* Receives one frame and decodes it; NULL on interrupt or a bad message
 * (error->code tells which: CS_MSG_E_NONE for an interrupt). A message of
 * several frames is a bad message. */
cs_msg_t *cs_zmq_recv (zsock_t *sock, cs_msg_error_t *error);

/* Like cs_zmq_recv without waiting: NULL with error->code CS_MSG_E_NONE when
 * nothing is waiting. Cheaper than asking ZMQ_EVENTS before each message. */
cs_msg_t *cs_zmq_try_recv (zsock_t *sock, cs_msg_error_t *error);

/* A stage's counters since it started, as a JSON object for its heartbeat's
 * body (a new reference, or NULL): what /metrics shows. */
typedef json_t *(cs_counters_fn) (void *arg);

/* A stage's heartbeat to the differ, every [pipeline] heartbeat_interval,
 * with its counters when it has any. */
typedef struct {
    zsock_t *sock;              /* to differ.in */
    cs_stage_t stage;
    const char *site;           /* a pusher's [pipeline] site, or NULL */
    int64_t interval_ms;
    int64_t next;               /* monotonic ms */
    cs_counters_fn *counters;
    void *arg;
} cs_beat_t;

void cs_beat_init (cs_beat_t *self, zsock_t *sock, cs_stage_t stage, int interval_s);
/* Each heartbeat carries fn (arg)'s counters. */
void cs_beat_counters (cs_beat_t *self, cs_counters_fn *fn, void *arg);
/* Sends a heartbeat when one is due; never waits (a full queue skips one). */
void cs_beat (cs_beat_t *self);

/* Group commit, for a program that stores what it receives: after a take
 * that was not full, the next one waits until CS_GROUP_MS after it, so that
 * what arrives meanwhile (it waits in the socket) shares one transaction and
 * one fsync instead of one each. A full take (a burst) goes on at once. Adds
 * at most CS_GROUP_MS to a message's way; a crash meanwhile loses nothing
 * that the socket would not have lost. */
#define CS_GROUP_MS 10
typedef struct {
    int64_t last;               /* monotonic ms of the last take */
    int full;                   /* it took all it could */
} cs_group_t;

/* Before a take: sleeps what is left of the group window. */
void cs_group_wait (cs_group_t *self);
/* After a take of count messages out of at most max. */
void cs_group_took (cs_group_t *self, size_t count, size_t max);

/* True once SIGINT or SIGTERM has arrived. */
int cs_zmq_interrupted (void);

#endif
