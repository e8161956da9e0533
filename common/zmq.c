#include "common/zmq.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _cs_zmq_t {
    const cs_pipeline_config_t *pl;   /* endpoints and keys (not owned) */
    zcert_t *cert;                    /* this host's certificate, or NULL */
    zactor_t *auth;                   /* zauth, started with the first CURVE server */
};

int
cs_zmq_private_dir (const char *dir, char *error, size_t error_size)
{
    char path [4096];
    if (snprintf (path, sizeof path, "%s", dir) >= (int) sizeof path) {
        snprintf (error, error_size, "%s: path too long", dir);
        return -1;
    }
    /* parents as usual, the directory itself private */
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (path, 0755) != 0 && errno != EEXIST) {
            snprintf (error, error_size, "cannot create %s: %s", path, strerror (errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir (path, 0700) != 0 && errno != EEXIST) {
        snprintf (error, error_size, "cannot create %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (stat (path, &st) != 0 || !S_ISDIR (st.st_mode)) {
        snprintf (error, error_size, "%s is not a directory", path);
        return -1;
    }
    if (st.st_uid != geteuid ()) {
        snprintf (error, error_size, "%s belongs to uid %u, not to this user (uid %u)", path,
                  (unsigned) st.st_uid, (unsigned) geteuid ());
        return -1;
    }
    if ((st.st_mode & 0777) != 0700 && chmod (path, 0700) != 0) {
        snprintf (error, error_size, "cannot make %s private: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

cs_zmq_t *
cs_zmq_new (const cs_pipeline_config_t *pl, char *error, size_t error_size)
{
    zsys_init ();
    zsys_catch_interrupts ();
    cs_zmq_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->pl = pl;
    if (pl && pl->curve_cert) {
        self->cert = zcert_load (pl->curve_cert);
        if (!self->cert) {
            snprintf (error, error_size, "[pipeline] curve_cert: cannot load a certificate "
                      "from %s", pl->curve_cert);
            free (self);
            return NULL;
        }
    }
    return self;
}

void
cs_zmq_destroy (cs_zmq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_zmq_t *self = *self_p;
    zactor_destroy (&self->auth);
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

static int
is_tcp (const char *endpoint)
{
    return strncmp (endpoint, "tcp://", 6) == 0;
}

static zsock_t *
new_socket (int type, int hwm)
{
    zsock_t *sock = zsock_new (type);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, CS_ZMQ_LINGER_MS);
    zsock_set_sndhwm (sock, hwm ? hwm : CS_ZMQ_HWM);
    zsock_set_rcvhwm (sock, hwm ? hwm : CS_ZMQ_HWM);
    /* a peer that sends more than one message can be is cut off before the
     * frame is read into memory */
    zsock_set_maxmsgsize (sock, CS_MSG_MAX_SIZE);
    return sock;
}

/* Across hosts a cable can be cut without a word: ZMTP heartbeats notice, and
 * the connection is made anew once the way is back. */
static void
tcp_options (zsock_t *sock, const char *endpoint, int connecting)
{
    if (!is_tcp (endpoint))
        return;
    zsock_set_heartbeat_ivl (sock, CS_ZMQ_TCP_HEARTBEAT_MS);
    zsock_set_heartbeat_timeout (sock, CS_ZMQ_TCP_DEAD_MS);
    if (connecting)
        zsock_set_connect_timeout (sock, CS_ZMQ_TCP_HEARTBEAT_MS);
}

struct _cs_refusals_t {
    zactor_t *monitor;          /* czmq's zmonitor on the socket */
    int bound;                  /* the socket binds: the refused are its peers */
    int64_t logged;             /* when the last line went (mono ms); 0: never */
    int64_t count;              /* refusals since */
};

/* Watches sock (CURVE over tcp) for refusals; NULL if it cannot. */
static cs_refusals_t *
refusals_new (zsock_t *sock, int bound)
{
    cs_refusals_t *self = calloc (1, sizeof *self);
    if (self) {
        self->bound = bound;
        self->monitor = zactor_new (zmonitor, sock);
    }
    if (!self || !self->monitor) {
        free (self);
        return NULL;
    }
    zstr_sendx (self->monitor, "LISTEN", "HANDSHAKE_FAILED_AUTH", NULL);
    zstr_sendx (self->monitor, "START", NULL);
    zsock_wait (self->monitor);
    return self;
}

zsock_t *
cs_zmq_bind (cs_zmq_t *self, int type, const char *endpoint, int hwm, char *error,
             size_t error_size)
{
    return cs_zmq_bind_watched (self, type, endpoint, hwm, NULL, error, error_size);
}

zsock_t *
cs_zmq_bind_watched (cs_zmq_t *self, int type, const char *endpoint, int hwm,
                     cs_refusals_t **refusals, char *error, size_t error_size)
{
    if (strncmp (endpoint, "ipc://", 6) == 0) {
        char dir [4096];
        snprintf (dir, sizeof dir, "%s", endpoint + 6);
        char *slash = strrchr (dir, '/');
        if (slash && slash != dir) {
            *slash = 0;
            if (cs_zmq_private_dir (dir, error, error_size) != 0)
                return NULL;
        }
    }
    zsock_t *sock = new_socket (type, hwm);
    if (!sock) {
        snprintf (error, error_size, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        return NULL;
    }
    if (self->cert && is_tcp (endpoint)) {
        if (!self->auth) {
            self->auth = zactor_new (zauth, NULL);
            const char *dir = self->pl->curve_clients_dir ? self->pl->curve_clients_dir
                                                          : CURVE_ALLOW_ANY;
            if (!self->auth || zstr_sendx (self->auth, "CURVE", dir, NULL) != 0
                || zsock_wait (self->auth) != 0) {
                snprintf (error, error_size, "cannot start CURVE authentication");
                zsock_destroy (&sock);
                return NULL;
            }
        }
        zcert_apply (self->cert, sock);
        zsock_set_curve_server (sock, 1);
        zsock_set_zap_domain (sock, "cardsync");
        if (refusals)
            *refusals = refusals_new (sock, 1);
    }
    tcp_options (sock, endpoint, 0);
    if (zsock_bind (sock, "%s", endpoint) < 0) {
        snprintf (error, error_size, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        if (refusals)
            cs_refusals_destroy (refusals);
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

zsock_t *
cs_zmq_connect (cs_zmq_t *self, int type, const char *endpoint, int hwm, char *error,
                size_t error_size)
{
    return cs_zmq_connect_to (self, type, endpoint, NULL, hwm, NULL, error, error_size);
}

zsock_t *
cs_zmq_connect_to (cs_zmq_t *self, int type, const char *endpoint, const char *server_key,
                   int hwm, cs_refusals_t **refusals, char *error, size_t error_size)
{
    zsock_t *sock = new_socket (type, hwm);
    if (!sock) {
        snprintf (error, error_size, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        return NULL;
    }
    if (self->cert && is_tcp (endpoint)) {
        zcert_apply (self->cert, sock);
        zsock_set_curve_serverkey (sock, server_key ? server_key : self->pl->curve_server_key);
        if (refusals)
            *refusals = refusals_new (sock, 0);
    }
    tcp_options (sock, endpoint, 1);
    /* a request waits for a peer rather than queueing for nobody: an asker
     * can tell at once that nothing listens */
    if (type == ZMQ_DEALER)
        zsock_set_immediate (sock, 1);
    if (zsock_connect (sock, "%s", endpoint) < 0) {
        snprintf (error, error_size, "cannot connect to %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        if (refusals)
            cs_refusals_destroy (refusals);
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

void
cs_refusals_destroy (cs_refusals_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zactor_destroy (&(*self_p)->monitor);
    free (*self_p);
    *self_p = NULL;
}

void *
cs_refusals_sock (cs_refusals_t *self)
{
    return self->monitor;
}

void
cs_refused (cs_log_t *log, cs_refusals_t *self)
{
    char where [256];
    /* zmonitor reports: the event's name, its value, the endpoint */
    char *name = NULL, *value = NULL, *address = NULL;
    if (zstr_recvx (self->monitor, &name, &value, &address, NULL) < 0)
        return;
    int refused = name && strcmp (name, "HANDSHAKE_FAILED_AUTH") == 0;
    snprintf (where, sizeof where, "%s", address ? address : "");
    zstr_free (&name);
    zstr_free (&value);
    zstr_free (&address);
    self->count += refused;
    int64_t now = zclock_mono ();
    if (!self->count || (self->logged && now - self->logged < 60000))
        return;                 /* counted for the next line */
    char times [32];
    snprintf (times, sizeof times, "%lld", (long long) self->count);
    if (self->bound)
        cs_log (log, CS_LOG_WARN, "peer_refused", "socket", where, "times", times, "reason",
                "its CURVE key is not in [pipeline] curve_clients_dir (a host not trusted, or a "
                "certificate not yet copied there)", NULL);
    else
        cs_log (log, CS_LOG_ERROR, "refused_by_peer", "socket", where, "times", times, "reason",
                "the other end does not trust this host's CURVE key: copy this host's NAME.cert "
                "(the public half of [pipeline] curve_cert) into its curve_clients_dir", NULL);
    self->count = 0;
    self->logged = now;
}

/* Sends m as one frame: without waiting (1 when the queue is full), or
 * waiting while it is full (backpressure), but not past SIGINT or SIGTERM:
 * the signal may have gone to any thread (czmq's actors run their own), so
 * the wait is in steps of a second that look at zsys_interrupted. */
static int
send_frame (zsock_t *sock, const cs_msg_t *m, cs_msg_error_t *error, int wait)
{
    cs_msg_error_t dummy;
    if (!error)
        error = &dummy;
    memset (error, 0, sizeof *error);
    uint8_t *data;
    size_t size;
    if (cs_msg_encode (m, &data, &size, error) != 0)
        return -1;
    zframe_t *frame = zframe_new (data, size);
    free (data);
    if (!frame)
        return -1;
    while (zframe_send (&frame, sock, ZFRAME_DONTWAIT) != 0) {
        int full = zmq_errno () == EAGAIN;
        if (!full || !wait || zsys_interrupted) {
            if (full && wait)
                snprintf (error->text, sizeof error->text, "interrupted while the peer's queue was full");
            else if (!full)
                snprintf (error->text, sizeof error->text, "%s", zmq_strerror (zmq_errno ()));
            zframe_destroy (&frame);
            return full && !wait ? 1 : -1;
        }
        zmq_pollitem_t out = { zsock_resolve (sock), 0, ZMQ_POLLOUT, 0 };
        zmq_poll (&out, 1, 1000);
    }
    return 0;
}

int
cs_zmq_send (zsock_t *sock, const cs_msg_t *m, cs_msg_error_t *error)
{
    return send_frame (sock, m, error, 1) == 0 ? 0 : -1;
}

int
cs_zmq_try_send (zsock_t *sock, const cs_msg_t *m, cs_msg_error_t *error)
{
    return send_frame (sock, m, error, 0);
}

cs_msg_t *
cs_zmq_recv (zsock_t *sock, cs_msg_error_t *error)
{
    cs_msg_error_t dummy;
    if (!error)
        error = &dummy;
    memset (error, 0, sizeof *error);
    zframe_t *frame = zframe_recv (sock);
    if (!frame)
        return NULL;
    int more = zframe_more (frame);
    cs_msg_t *m = NULL;
    if (more) {
        error->code = CS_MSG_E_TRAILING;
        snprintf (error->text, sizeof error->text, "a message of more than one frame");
        /* drop the rest of it */
        while (zsock_rcvmore (sock)) {
            zframe_t *rest = zframe_recv (sock);
            if (!rest)
                break;
            zframe_destroy (&rest);
        }
    }
    else
        m = cs_msg_decode (zframe_data (frame), zframe_size (frame), error);
    zframe_destroy (&frame);
    return m;
}

cs_msg_t *
cs_zmq_try_recv (zsock_t *sock, cs_msg_error_t *error)
{
    cs_msg_error_t dummy;
    if (!error)
        error = &dummy;
    memset (error, 0, sizeof *error);
    void *handle = zsock_resolve (sock);
    zmq_msg_t part;
    zmq_msg_init (&part);
    if (zmq_msg_recv (&part, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&part);
        return NULL;
    }
    cs_msg_t *m = NULL;
    if (zmq_msg_more (&part)) {
        error->code = CS_MSG_E_TRAILING;
        snprintf (error->text, sizeof error->text, "a message of more than one frame");
        /* the rest is there already: the parts of a message arrive together */
        while (zmq_msg_more (&part)) {
            zmq_msg_close (&part);
            zmq_msg_init (&part);
            if (zmq_msg_recv (&part, handle, ZMQ_DONTWAIT) < 0)
                break;
        }
    }
    else
        m = cs_msg_decode (zmq_msg_data (&part), zmq_msg_size (&part), error);
    zmq_msg_close (&part);
    return m;
}

void
cs_beat_init (cs_beat_t *self, zsock_t *sock, cs_stage_t stage, int interval_s)
{
    self->sock = sock;
    self->stage = stage;
    self->interval_ms = (int64_t) interval_s * 1000;
    self->site = NULL;
    self->next = 0;             /* the first goes at once */
    self->counters = NULL;
    self->arg = NULL;
}

void
cs_beat (cs_beat_t *self)
{
    int64_t now = zclock_mono ();
    if (!self->sock || now < self->next)
        return;
    self->next = now + self->interval_ms;
    cs_msg_t *m = cs_msg_new (CS_MSG_HEARTBEAT);
    cs_msg_set_str (m, CS_F_STAGE, cs_stage_name (self->stage));
    if (self->site)
        cs_msg_set_str (m, CS_F_SITE, self->site);
    cs_msg_set_int (m, CS_F_TS, zclock_time ());
    json_t *counters = self->counters ? self->counters (self->arg) : NULL;
    if (counters)
        cs_msg_set_doc (m, CS_F_BODY, counters);
    json_decref (counters);
    cs_zmq_try_send (self->sock, m, NULL);
    cs_msg_destroy (&m);
}

void
cs_beat_counters (cs_beat_t *self, cs_counters_fn *fn, void *arg)
{
    self->counters = fn;
    self->arg = arg;
}

int
cs_zmq_interrupted (void)
{
    return zsys_interrupted != 0;
}

void
cs_group_wait (cs_group_t *self)
{
    int64_t left = self->last + CS_GROUP_MS - zclock_mono ();
    if (!self->full && left > 0)
        zclock_sleep ((int) left);
}

void
cs_group_took (cs_group_t *self, size_t count, size_t max)
{
    self->last = zclock_mono ();
    self->full = count >= max;
}
