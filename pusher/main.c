/* cardsync-pusher: applies the differ's commands to the Hikvision devices over
 * ISAPI. One queue per device, at most max_inflight requests to each, every
 * device at once (libcurl multi), Digest over kept-alive connections, retries
 * with backoff for what is worth retrying, and a pause - never a retry loop -
 * when a device refuses the credentials. */
#include "common/cli.h"
#include "common/log.h"
#include "common/sd.h"
#include "common/zmq.h"
#include "pusher/isapi.h"

#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POOL 8
#define MAX_SOCKETS (2 * MAX_POOL)          /* a device's open connections, for quick_acks */
#define AUTH_PAUSE_MS (30 * 60 * 1000)    /* one login attempt per half hour at most */
#define BODY_MAX (4 * 1024 * 1024)
#define MAX_PAGES 10000                   /* a scan gives up here (300,000 persons at 30 a page) */
#define MAX_BATCH 30                      /* employeeNos in one search (EmployeeNoList maxSize) */

static const cs_cli_option_t s_options [] = {
    { "check", 0, "reach each device, log in once, read capabilities and counts; print a "
                  "verdict" },
    { NULL, 0, NULL },
};

static const cs_cli_spec_t s_spec = {
    .program = "cardsync-pusher",
    .summary = "Applies changes to the Hikvision devices over ISAPI, with retries.",
    .options = s_options,
    .more_help = "Each device is scanned at start and every [sync] scan_interval. A wrong\n"
                 "password pauses that device (one login attempt per half hour), so the\n"
                 "device never locks the account.\n\n"
                 "example: cardsync-pusher --config /etc/cardsync/cardsync.ini --check",
};

/* T_READ reads the records of several T_SET tasks in one search (the read of
 * their read-modify-write); each then writes on its own. */
typedef enum { T_SCAN, T_SET, T_CREATE, T_PROBE, T_READ } task_kind_t;

typedef struct task_s {
    task_kind_t kind;
    uint64_t id;                /* the differ's command id (0 for scans and probes) */
    char no [33];               /* employeeNo */
    char *email;                /* "" if not given (malloc'd: thousands of tasks may wait) */
    char *name;                 /* create: the person's name, as the differ resolved it */
    char *tag;                  /* create: the e-mail tag to store, NULL for none */
    char begin [20];
    char end [20];
    int step;                   /* which request of the task is next */
    int attempts;
    int64_t first_try;          /* mono ms */
    int64_t not_before;         /* mono ms */
    uint64_t scan;              /* scan id */
    int64_t capacity;           /* scan: maxRecordNum, read first (0: not told) */
    int position;
    int pages;
    size_t count;
    struct {                    /* scan: employeeNos already sent, as 64-bit hashes */
        uint64_t *slots;        /* open addressing; 0 is empty */
        size_t cap, count;
    } seen;
    char *modify;               /* set: the Modify body, made from the person as read (a
                                 * string: a tenth of the parsed record's memory) */
    int wrote;                  /* set: a write was needed */
    struct task_s *batch;       /* read: the set tasks it reads for */
    size_t batch_size;
    struct task_s *next;
} task_t;

typedef struct {
    const cs_device_config_t *cfg;
    CURL *pool [MAX_POOL];      /* one handle per request in flight: keeps the connection and the Digest nonce */
    int busy [MAX_POOL];
    curl_socket_t sockets [MAX_SOCKETS];    /* its open connections (CURL_SOCKET_BAD: none) */
    int inflight;
    task_t *queue;              /* waiting tasks, oldest first */
    int64_t paused_until;       /* mono ms, 0 if not paused */
    int page_size;
    int batch_reads;            /* several employeeNos in one search (off if the device refuses) */
    task_t *running [MAX_POOL]; /* the task of each request in flight */
    char health [16];
    int64_t next_scan;
    uint64_t scan_seq;
    struct {                    /* since the pusher started: its heartbeat's counters */
        int64_t applied;        /* writes the device took */
        int64_t unchanged;      /* commands the device already held: no write */
        int64_t failed;         /* commands given up (the failed queue) */
        int64_t retried;        /* requests tried again after a transient failure */
        int64_t requests;       /* HTTP requests sent */
        int64_t scans_ok, scans_failed;
    } count;
} device_t;

typedef struct {
    device_t *dev;
    task_t *task;
    int slot;
    char *body_out;
    struct curl_slist *headers;
    char *resp;
    size_t len;
    size_t cap;
    int challenged;             /* the response carried WWW-Authenticate */
    char errbuf [CURL_ERROR_SIZE];
} xfer_t;

typedef struct {
    const cs_config_t *cfg;
    cs_log_t *log;
    CURLM *multi;
    device_t *devices;
    size_t device_count;
    zsock_t *in;                /* commands from the differ */
    zsock_t *out;               /* results, scans and health to the differ */
    int stopping;
    uint64_t started;           /* requests started so far */
} pusher_t;

/* --- sending to the differ ---------------------------------------------- */

static void
send_msg (pusher_t *p, cs_msg_t *m)
{
    cs_msg_error_t err;
    if (cs_zmq_send (p->out, m, &err) != 0 && err.code != CS_MSG_E_NONE)
        cs_log (p->log, CS_LOG_ERROR, "send_failed", "type", cs_msg_type_name (cs_msg_type (m)),
                "error", err.text, NULL);
    cs_msg_destroy (&m);
}

static void
set_health (pusher_t *p, device_t *d, const char *state, const char *msg, int64_t until_wall)
{
    if (!strcmp (d->health, state))
        return;
    snprintf (d->health, sizeof d->health, "%s", state);
    cs_log (p->log, cs_health_parse (state) != CS_HEALTH_OK ? CS_LOG_WARN : CS_LOG_INFO, "device_health",
            "device", d->cfg->name, "state", state, "msg", msg, NULL);
    cs_msg_t *m = cs_msg_new (CS_MSG_HEALTH);
    cs_msg_set_str (m, CS_F_DEV, d->cfg->name);
    cs_msg_set_str (m, CS_F_STATE, state);
    if (msg)
        cs_msg_set_str (m, CS_F_MSG, msg);
    if (until_wall)
        cs_msg_set_int (m, CS_F_UNTIL, until_wall);
    cs_msg_set_int (m, CS_F_TS, zclock_time ());
    send_msg (p, m);
}

static void
send_result (pusher_t *p, device_t *d, task_t *t, const cs_outcome_t *o)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_RESULT);
    cs_msg_set_int (m, CS_F_ID, (int64_t) t->id);
    cs_msg_set_str (m, CS_F_DEV, d->cfg->name);
    cs_msg_set_bool (m, CS_F_OK, o->cls == CS_CLASS_OK);
    cs_msg_set_str (m, CS_F_CLASS, cs_class_name (o->cls));
    cs_msg_set_str (m, CS_F_EMPNO, t->no);
    if (o->http)
        cs_msg_set_int (m, CS_F_HTTP, o->http);
    if (o->code)
        cs_msg_set_int (m, CS_F_CODE, o->code);
    if (o->sub [0])
        cs_msg_set_str (m, CS_F_SUB, o->sub);
    if (o->msg [0])
        cs_msg_set_str (m, CS_F_MSG, o->msg);
    cs_msg_set_int (m, CS_F_TRIES, t->attempts + 1);
    if (o->cls == CS_CLASS_OK) {
        cs_msg_set_str (m, CS_F_BEGIN, t->begin);
        cs_msg_set_str (m, CS_F_END, t->end);
    }
    cs_msg_set_int (m, CS_F_TS, zclock_time ());
    if (o->cls != CS_CLASS_OK)
        d->count.failed++;
    else if (t->wrote)
        d->count.applied++;
    else
        d->count.unchanged++;
    char id [32], tries [16];
    snprintf (id, sizeof id, "%llu", (unsigned long long) t->id);
    snprintf (tries, sizeof tries, "%d", t->attempts + 1);
    cs_log (p->log, o->cls == CS_CLASS_OK ? CS_LOG_INFO : CS_LOG_WARN,
            o->cls == CS_CLASS_OK ? (t->wrote ? "applied" : "already_applied") : "failed",
            "id", id, "device", d->cfg->name, "employee_no", t->no, "email", t->email,
            "begin", t->begin, "end", t->end, "class", cs_class_name (o->cls),
            "tries", tries, "msg", o->cls == CS_CLASS_OK ? NULL : o->msg, NULL);
    send_msg (p, m);
}

static void
send_scan_end (pusher_t *p, device_t *d, task_t *t, int ok, const char *error)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_SCAN_END);
    cs_msg_set_str (m, CS_F_DEV, d->cfg->name);
    cs_msg_set_int (m, CS_F_SCAN, (int64_t) t->scan);
    cs_msg_set_bool (m, CS_F_OK, ok);
    cs_msg_set_int (m, CS_F_COUNT, (int64_t) t->count);
    if (error)
        cs_msg_set_str (m, CS_F_ERROR, error);
    if (t->capacity > 0)
        cs_msg_set_int (m, CS_F_CAP, t->capacity);
    cs_msg_set_int (m, CS_F_TS, zclock_time ());
    if (ok)
        d->count.scans_ok++;
    else
        d->count.scans_failed++;
    char n [32];
    snprintf (n, sizeof n, "%zu", t->count);
    cs_log (p->log, ok ? CS_LOG_INFO : CS_LOG_WARN, "scan_end", "device", d->cfg->name,
            "ok", ok ? "true" : "false", "users", n, "error", error, NULL);
    send_msg (p, m);
}

/* The heartbeat's counters: each device's, since the pusher started. */
static json_t *
counters (void *arg)
{
    pusher_t *p = arg;
    json_t *devices = json_object ();
    for (size_t i = 0; i < p->device_count; i++) {
        device_t *d = &p->devices [i];
        json_object_set_new (devices, d->cfg->name,
                             json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                                        "applied", (json_int_t) d->count.applied,
                                        "unchanged", (json_int_t) d->count.unchanged,
                                        "failed", (json_int_t) d->count.failed,
                                        "retried", (json_int_t) d->count.retried,
                                        "requests", (json_int_t) d->count.requests,
                                        "scans_ok", (json_int_t) d->count.scans_ok,
                                        "scans_failed", (json_int_t) d->count.scans_failed));
    }
    return json_pack ("{s:o}", "devices", devices);
}

/* --- tasks and queues ----------------------------------------------------- */

static task_t *
task_new (task_kind_t kind)
{
    task_t *t = calloc (1, sizeof *t);
    if (t) {
        t->kind = kind;
        t->first_try = zclock_mono ();
    }
    return t;
}

static void
task_free (task_t *t)
{
    if (!t)
        return;
    while (t->batch) {
        task_t *member = t->batch;
        t->batch = member->next;
        task_free (member);
    }
    free (t->seen.slots);
    free (t->modify);
    free (t->email);
    free (t->name);
    free (t->tag);
    free (t);
}

static void
enqueue (device_t *d, task_t *t, int front)
{
    if (front || !d->queue) {
        t->next = d->queue;
        d->queue = t;
        return;
    }
    task_t *last = d->queue;
    while (last->next)
        last = last->next;
    t->next = NULL;
    last->next = t;
}

static int
scan_pending (device_t *d)
{
    for (task_t *t = d->queue; t; t = t->next)
        if (t->kind == T_SCAN)
            return 1;
    return 0;
}

static void
queue_scan (device_t *d)
{
    if (scan_pending (d))
        return;
    task_t *t = task_new (T_SCAN);
    if (!t)
        return;
    t->scan = ++d->scan_seq;
    enqueue (d, t, 0);
}

/* --- transfers ------------------------------------------------------------- */

static size_t
on_body (char *data, size_t size, size_t count, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * count;
    if (x->len + n > BODY_MAX)
        return 0;
    if (x->len + n + 1 > x->cap) {
        size_t cap = (x->len + n + 1) * 2;
        char *grown = realloc (x->resp, cap);
        if (!grown)
            return 0;
        x->resp = grown;
        x->cap = cap;
    }
    memcpy (x->resp + x->len, data, n);
    x->len += n;
    x->resp [x->len] = 0;
    return n;
}

static size_t
on_header (char *data, size_t size, size_t count, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * count;
    if (n > 17 && !strncasecmp (data, "WWW-Authenticate:", 17))
        x->challenged = 1;
    if (n > 5 && !strncmp (data, "HTTP/", 5))
        x->challenged = 0;      /* a new response: only its own headers count */
    return n;
}

static CURL *
new_handle (const cs_device_config_t *cfg)
{
    CURL *c = curl_easy_init ();
    if (!c)
        return NULL;
    curl_easy_setopt (c, CURLOPT_HTTPAUTH, (long) CURLAUTH_DIGEST);
    curl_easy_setopt (c, CURLOPT_USERNAME, cfg->username);
    curl_easy_setopt (c, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt (c, CURLOPT_TIMEOUT, (long) cfg->timeout);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (c, CURLOPT_SSL_VERIFYPEER, cfg->verify ? 1L : 0L);
    curl_easy_setopt (c, CURLOPT_SSL_VERIFYHOST, cfg->verify ? 2L : 0L);
    if (cfg->ca_file)
        curl_easy_setopt (c, CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->pinned_pubkey)
        curl_easy_setopt (c, CURLOPT_PINNEDPUBLICKEY, cfg->pinned_pubkey);
    curl_easy_setopt (c, CURLOPT_USERAGENT, "cardsync/" CARDSYNC_VERSION);
    /* the receive buffer each handle keeps: answers are small (a page of
     * persons is a few reads of this), and twenty doors keep forty handles */
    curl_easy_setopt (c, CURLOPT_BUFFERSIZE, 4096L);
    return c;
}

/* Asks the kernel to ACK at once what arrives on a device's connections
 * while it has requests in flight. Linux delays an ACK by up to 40 ms on a
 * connection it deems interactive, as a kept-alive one is; a device that
 * writes an answer's head and body in two segments with Nagle on (many
 * embedded web servers do) holds the body until the head is ACKed, so every
 * request would wait for the delayed ACK. TCP_QUICKACK is not sticky (the
 * kernel leaves quick-ACK mode as it goes), so it is set again after each
 * round of transfers: after a request went out, and after a head was read
 * (which also sends at once an ACK the kernel was holding back). The sockets
 * are known from libcurl's open and close callbacks: CURLINFO_ACTIVESOCKET
 * gives none while a transfer runs. */
static curl_socket_t
open_socket (void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    device_t *d = arg;
    (void) purpose;
    curl_socket_t fd = socket (a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    for (int i = 0; fd != CURL_SOCKET_BAD && i < MAX_SOCKETS; i++)
        if (d->sockets [i] == CURL_SOCKET_BAD) {
            d->sockets [i] = fd;
            break;
        }
    return fd;
}

static int
close_socket (void *arg, curl_socket_t fd)
{
    device_t *d = arg;
    for (int i = 0; i < MAX_SOCKETS; i++)
        if (d->sockets [i] == fd)
            d->sockets [i] = CURL_SOCKET_BAD;
    return close (fd);
}

static void
quick_acks (pusher_t *p)
{
    int one = 1;
    for (size_t i = 0; i < p->device_count; i++) {
        device_t *d = &p->devices [i];
        for (int k = 0; d->inflight && k < MAX_SOCKETS; k++)
            if (d->sockets [k] != CURL_SOCKET_BAD)
                setsockopt (d->sockets [k], IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
}

/* Points handle c at base + path, its answer going into x. */
static void
aim (CURL *c, const char *base, const char *path, xfer_t *x)
{
    char url [1200];
    snprintf (url, sizeof url, "%s%s", base, path);
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt (c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt (c, CURLOPT_ERRORBUFFER, x->errbuf);
}

/* Starts the next request of task t on a free handle of d. */
static int
start_request (pusher_t *p, device_t *d, task_t *t)
{
    int slot = -1;
    for (int i = 0; i < d->cfg->max_inflight && slot < 0; i++)
        if (!d->busy [i])
            slot = i;
    if (slot < 0)
        return -1;
    if (!d->pool [slot]) {
        if (!(d->pool [slot] = new_handle (d->cfg)))
            return -1;
        curl_easy_setopt (d->pool [slot], CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt (d->pool [slot], CURLOPT_OPENSOCKETDATA, d);
        curl_easy_setopt (d->pool [slot], CURLOPT_CLOSESOCKETFUNCTION, close_socket);
        curl_easy_setopt (d->pool [slot], CURLOPT_CLOSESOCKETDATA, d);
    }
    xfer_t *x = calloc (1, sizeof *x);
    if (!x)
        return -1;
    x->dev = d;
    x->task = t;
    x->slot = slot;
    const char *method = "POST", *path = "/ISAPI/AccessControl/UserInfo/Search?format=json";
    switch (t->kind) {
        case T_PROBE:
            method = "GET";
            path = "/ISAPI/System/deviceInfo";
            break;
        case T_SCAN: {
            if (t->step == 0) {     /* first the device's capacity */
                method = "GET";
                path = "/ISAPI/AccessControl/UserInfo/capabilities?format=json";
                break;
            }
            char sid [24];
            snprintf (sid, sizeof sid, "cs%llu", (unsigned long long) (t->scan % 1000000));
            x->body_out = cs_isapi_search_body (sid, t->position, d->page_size);
            break;
        }
        case T_READ: {
            const char *nos [MAX_BATCH];
            size_t n = 0;
            for (task_t *m = t->batch; m && n < MAX_BATCH; m = m->next)
                nos [n++] = m->no;
            x->body_out = cs_isapi_search_list_body ("cs1", (int) n, nos, n);
            break;
        }
        case T_SET:
            method = "PUT";     /* its read is a T_READ */
            path = "/ISAPI/AccessControl/UserInfo/Modify?format=json";
            x->body_out = t->modify ? strdup (t->modify) : NULL;
            break;
        case T_CREATE: {
            path = "/ISAPI/AccessControl/UserInfo/Record?format=json";
            x->body_out = cs_isapi_record_body (t->no, t->name, t->tag, t->begin, t->end,
                                                d->cfg->door_right, d->cfg->plan_template);
            break;
        }
    }
    CURL *c = d->pool [slot];
    aim (c, d->cfg->url, path, x);
    curl_easy_setopt (c, CURLOPT_PRIVATE, x);
    x->headers = curl_slist_append (NULL, "Content-Type: application/json");
    x->headers = curl_slist_append (x->headers, "Connection: keep-alive");
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, x->headers);
    if (!strcmp (method, "GET")) {
        curl_easy_setopt (c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, NULL);
    }
    else {
        curl_easy_setopt (c, CURLOPT_POSTFIELDS, x->body_out ? x->body_out : "");
        curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, strcmp (method, "POST") ? method : NULL);
    }
    d->busy [slot] = 1;
    d->running [slot] = t;
    d->inflight++;
    p->started++;
    d->count.requests++;
    curl_multi_add_handle (p->multi, c);
    return 0;
}

static void
xfer_free (xfer_t *x)
{
    free (x->body_out);
    curl_slist_free_all (x->headers);
    free (x->resp);
    free (x);
}

/* The task failed for good (or the pusher gives up on it). */
static void
task_failed (pusher_t *p, device_t *d, task_t *t, const cs_outcome_t *o)
{
    while (t->batch) {          /* a read: each of its tasks failed */
        task_t *m = t->batch;
        t->batch = m->next;
        m->next = NULL;
        task_failed (p, d, m, o);
    }
    if (t->kind == T_SCAN)
        send_scan_end (p, d, t, 0, o->msg);
    else if (t->kind != T_PROBE)
        send_result (p, d, t, o);
    task_free (t);
}

static void
retry_later (pusher_t *p, device_t *d, task_t *t, const cs_outcome_t *o)
{
    int64_t now = zclock_mono ();
    if (now - t->first_try > (int64_t) p->cfg->sync.max_retry_age * 1000 || p->stopping) {
        cs_outcome_t gave_up = *o;
        gave_up.json = NULL;
        if (!p->stopping)
            snprintf (gave_up.msg, sizeof gave_up.msg, "gave up after %d tries over %d s: %.400s",
                      t->attempts + 1, (int) ((now - t->first_try) / 1000), o->msg);
        if (p->stopping && t->kind != T_SCAN) {
            task_free (t);          /* the differ re-sends it after its lease */
            return;
        }
        task_failed (p, d, t, &gave_up);
        return;
    }
    t->attempts++;
    d->count.retried++;
    int64_t backoff = 1000LL << (t->attempts < 6 ? t->attempts : 6);   /* 2 s .. 64 s */
    backoff += (int64_t) (zclock_mono () % 1000);                      /* jitter */
    t->not_before = now + backoff;
    char tries [16], wait [32];
    snprintf (tries, sizeof tries, "%d", t->attempts);
    snprintf (wait, sizeof wait, "%.1f", (double) backoff / 1000.0);
    cs_log (p->log, CS_LOG_INFO, "retry", "device", d->cfg->name, "employee_no",
            t->no, "tries", tries, "in_s", wait, "msg", o->msg, NULL);
    enqueue (d, t, 1);
}

/* Adds employeeNo to the scan's seen set: 1 if it is new there, 0 if it was
 * seen already (a device that repeats a page). Hashes, not strings: a scan of
 * a 100,000-person device stays small; two numbers of 64 bits colliding among
 * a device's persons is not a practical concern. Out of memory counts as new. */
static int
seen_add (task_t *t, const char *no)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *c = (const unsigned char *) no; *c; c++)
        h = (h ^ *c) * 1099511628211ULL;
    if (h == 0)
        h = 1;
    if ((t->seen.count + 1) * 2 > t->seen.cap) {
        size_t cap = t->seen.cap ? t->seen.cap * 2 : 1024;
        uint64_t *slots = calloc (cap, sizeof *slots);
        if (!slots)
            return 1;
        for (size_t i = 0; i < t->seen.cap; i++)
            if (t->seen.slots [i]) {
                size_t j = t->seen.slots [i] & (cap - 1);
                while (slots [j])
                    j = (j + 1) & (cap - 1);
                slots [j] = t->seen.slots [i];
            }
        free (t->seen.slots);
        t->seen.slots = slots;
        t->seen.cap = cap;
    }
    size_t j = h & (t->seen.cap - 1);
    while (t->seen.slots [j]) {
        if (t->seen.slots [j] == h)
            return 0;
        j = (j + 1) & (t->seen.cap - 1);
    }
    t->seen.slots [j] = h;
    t->seen.count++;
    return 1;
}

/* Tells the differ of a person the scan cannot use (an employeeNo that is
 * empty, longer than 32 bytes or not UTF-8). */
static void
scan_skip (pusher_t *p, device_t *d, task_t *t, const char *no, const char *name)
{
    char shown [48], why [200];
    size_t len = strlen (no);
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < sizeof shown; i++)
        shown [k++] = no [i] >= 0x20 && no [i] < 0x7f ? no [i] : '?';
    shown [k] = 0;
    snprintf (why, sizeof why, "employeeNo '%s%s' (%zu bytes) cannot be used: it must be 1 to 32 "
              "bytes of UTF-8; this person is skipped", shown, k < len ? "..." : "", len);
    cs_msg_t *m = cs_msg_new (CS_MSG_SCAN_SKIP);
    cs_msg_set_str (m, CS_F_DEV, d->cfg->name);
    cs_msg_set_int (m, CS_F_SCAN, (int64_t) t->scan);
    cs_msg_set_str (m, CS_F_MSG, why);
    if (name)
        cs_msg_set_str (m, CS_F_NAME, name);        /* dropped if unusable */
    send_msg (p, m);
}

static void
scan_page (pusher_t *p, device_t *d, task_t *t, cs_outcome_t *o)
{
    cs_search_page_t page;
    if (cs_isapi_search_page (o->json, &page) != 0) {
        cs_outcome_t bad = { .cls = CS_CLASS_INVALID, .http = o->http };
        snprintf (bad.msg, sizeof bad.msg, "a Search answer without UserInfoSearch");
        task_failed (p, d, t, &bad);
        return;
    }
    if (t->position == 0 && t->pages == 0) {
        cs_msg_t *b = cs_msg_new (CS_MSG_SCAN_BEGIN);
        cs_msg_set_str (b, CS_F_DEV, d->cfg->name);
        cs_msg_set_int (b, CS_F_SCAN, (int64_t) t->scan);
        cs_msg_set_int (b, CS_F_TS, zclock_time ());
        send_msg (p, b);
        free (t->seen.slots);
        memset (&t->seen, 0, sizeof t->seen);
    }
    t->pages++;
    size_t i;
    json_t *u;
    int fresh = 0;
    json_array_foreach (page.users, i, u) {
        cs_search_person_t person;
        if (cs_isapi_search_person (u, &person) != 0 || !seen_add (t, person.no))
            continue;
        fresh++;
        cs_msg_t *m = cs_msg_new (CS_MSG_SCAN_USER);
        cs_msg_set_str (m, CS_F_DEV, d->cfg->name);
        cs_msg_set_int (m, CS_F_SCAN, (int64_t) t->scan);
        if (cs_msg_set_str (m, CS_F_EMPNO, person.no) != 0) {
            /* a number cardsync cannot address: this person is skipped, the
             * rest of the scan counts */
            cs_msg_destroy (&m);
            scan_skip (p, d, t, person.no, person.name);
            continue;
        }
        if (person.name)
            cs_msg_set_str (m, CS_F_NAME, person.name);
        if (person.tag)
            cs_msg_set_str (m, CS_F_TAG, person.tag);
        if (person.has_valid) {
            cs_msg_set_bool (m, CS_F_ENABLE, person.enable);
            if (person.begin)
                cs_msg_set_str (m, CS_F_BEGIN, person.begin);   /* ignored if not a naive local time */
            if (person.end)
                cs_msg_set_str (m, CS_F_END, person.end);
        }
        send_msg (p, m);
        t->count++;
    }
    json_int_t n = page.matches;
    int more = page.more && n > 0 && fresh > 0;
    /* a list longer than the device says it can hold (a tenth and a page more)
     * is a device paging without end, not its persons */
    int64_t room = t->capacity > 0 ? t->capacity + t->capacity / 10 + 30 : 0;
    if (more && room && (int64_t) t->count > room) {
        char why [200];
        snprintf (why, sizeof why, "the device's list goes on past %zu persons although it holds at most "
                  "%lld (maxRecordNum): the scan is stopped and counts for nothing", t->count,
                  (long long) t->capacity);
        send_scan_end (p, d, t, 0, why);
        task_free (t);
        return;
    }
    if (more && t->pages >= MAX_PAGES) {
        /* never a truncated list taken for the whole device */
        char why [128];
        snprintf (why, sizeof why, "the device still had more after %d pages (%zu persons)",
                  t->pages, t->count);
        send_scan_end (p, d, t, 0, why);
        task_free (t);
        return;
    }
    if (!more) {
        send_scan_end (p, d, t, 1, NULL);
        task_free (t);
        return;
    }
    t->position += (int) n;
    enqueue (d, t, 1);
}

/* The tasks of a read go back to the front of the queue, in their order. */
static void
unbatch (device_t *d, task_t *t)
{
    task_t *rest = d->queue, **tail = &t->batch;
    while (*tail)
        tail = &(*tail)->next;
    *tail = rest;
    d->queue = t->batch;
    t->batch = NULL;
    task_free (t);
}

/* The records a read brought: each task writes, is already so, or is not on
 * the device. */
static void
read_done (pusher_t *p, device_t *d, task_t *t, cs_outcome_t *o)
{
    cs_search_page_t page;
    cs_isapi_search_page (o->json, &page);  /* not a Search answer: nobody in it */
    int partial = page.more;                /* the device cut the page short */
    if (partial && page.matches > 0 && page.matches < d->page_size)
        d->page_size = (int) page.matches;
    task_t *again = NULL, **again_tail = &again;
    while (t->batch) {
        task_t *m = t->batch;
        t->batch = m->next;
        m->next = NULL;
        json_t *u = NULL, *each;
        cs_search_person_t person;
        size_t i;
        json_array_foreach (page.users, i, each)
            if (cs_isapi_search_person (each, &person) == 0 && !strcmp (person.no, m->no))
                u = each;
        if (!u && partial) {
            *again_tail = m;                    /* not in this page: read again */
            again_tail = &m->next;
            continue;
        }
        if (!u) {
            cs_outcome_t gone = { .cls = CS_CLASS_NOT_FOUND, .http = o->http };
            snprintf (gone.sub, sizeof gone.sub, "employeeNoNotExist");
            snprintf (gone.msg, sizeof gone.msg, "person %s is not on the device", m->no);
            send_result (p, d, m, &gone);
            task_free (m);
            continue;
        }
        cs_isapi_search_person (u, &person);
        if (person.enable && person.begin && person.end
            && !strcmp (person.begin, m->begin) && !strcmp (person.end, m->end)) {
            send_result (p, d, m, o);           /* already so: no write */
            task_free (m);
            continue;
        }
        free (m->modify);                       /* read again after a failed write */
        m->modify = cs_isapi_modify_body (u, m->begin, m->end);
        m->step = 1;
        m->wrote = 1;
        *again_tail = m;                        /* its write comes next */
        again_tail = &m->next;
    }
    *again_tail = d->queue;
    d->queue = again;
    task_free (t);
}

static void
finish_xfer (pusher_t *p, xfer_t *x, CURLcode rc)
{
    device_t *d = x->dev;
    task_t *t = x->task;
    long http = 0;
    curl_easy_getinfo (d->pool [x->slot], CURLINFO_RESPONSE_CODE, &http);
    curl_multi_remove_handle (p->multi, d->pool [x->slot]);
    d->busy [x->slot] = 0;
    d->running [x->slot] = NULL;
    d->inflight--;
    cs_outcome_t o;
    cs_isapi_classify (rc == CURLE_OK ? NULL : (x->errbuf [0] ? x->errbuf : curl_easy_strerror (rc)),
                       http, x->resp, x->len, x->challenged, &o);
    int64_t now = zclock_mono ();
    if (t->kind == T_SCAN && t->step == 0 && o.cls != CS_CLASS_AUTH && o.cls != CS_CLASS_LOCKED
        && o.cls != CS_CLASS_TRANSIENT) {
        /* the capacity, if the device tells it; the scan goes on either way */
        json_t *cap = json_object_get (json_object_get (o.json, "UserInfo"), "maxRecordNum");
        t->capacity = o.cls == CS_CLASS_OK && json_is_integer (cap) ? json_integer_value (cap) : 0;
        t->step = 1;
        if (o.cls == CS_CLASS_OK)
            set_health (p, d, cs_health_name (CS_HEALTH_OK), NULL, 0);
        enqueue (d, t, 1);
        cs_outcome_clear (&o);
        xfer_free (x);
        return;
    }
    switch (o.cls) {
        case CS_CLASS_AUTH:
        case CS_CLASS_LOCKED: {
            int64_t pause = o.cls == CS_CLASS_LOCKED ? ((int64_t) o.unlock_s + 30) * 1000 : AUTH_PAUSE_MS;
            d->paused_until = now + pause;
            set_health (p, d, cs_health_name (o.cls == CS_CLASS_LOCKED ? CS_HEALTH_LOCKED : CS_HEALTH_AUTH), o.msg,
                        zclock_time () + pause);
            if (t->kind == T_READ)
                unbatch (d, t);
            else
                enqueue (d, t, 1);  /* it runs again after the pause */
            break;
        }
        case CS_CLASS_TRANSIENT:
            if (rc != CURLE_OK)
                set_health (p, d, cs_health_name (CS_HEALTH_DOWN), o.msg, 0);
            if (t->kind == T_READ) {
                while (t->batch) {
                    task_t *m = t->batch;
                    t->batch = m->next;
                    m->next = NULL;
                    retry_later (p, d, m, &o);
                }
                task_free (t);
            }
            else
                retry_later (p, d, t, &o);
            break;
        case CS_CLASS_OK:
            set_health (p, d, cs_health_name (CS_HEALTH_OK), NULL, 0);
            if (t->kind == T_PROBE)
                task_free (t);
            else if (t->kind == T_SCAN)
                scan_page (p, d, t, &o);
            else if (t->kind == T_CREATE) {
                t->wrote = 1;
                send_result (p, d, t, &o);
                task_free (t);
            }
            else if (t->kind == T_READ)
                read_done (p, d, t, &o);
            else {
                send_result (p, d, t, &o);
                task_free (t);
            }
            break;
        case CS_CLASS_EXISTS:
            if (t->kind == T_CREATE) {          /* already there: set it instead */
                t->kind = T_SET;
                t->step = 0;
                enqueue (d, t, 1);
                break;
            }
            task_failed (p, d, t, &o);
            break;
        case CS_CLASS_INVALID:
            if ((t->kind == T_SCAN || t->kind == T_READ) && d->page_size > 10 && strstr (o.msg, "maxResults")) {
                d->page_size = 10;              /* old firmware: 10 a page */
                if (t->kind == T_READ)
                    unbatch (d, t);
                else
                    enqueue (d, t, 1);
                break;
            }
            if (t->kind == T_READ && t->batch_size > 1) {
                /* a device that takes one employeeNo a search: read one at a time */
                d->batch_reads = 0;
                cs_log (p->log, CS_LOG_WARN, "batch_reads_off", "device", d->cfg->name, "msg", o.msg, NULL);
                unbatch (d, t);
                break;
            }
            task_failed (p, d, t, &o);
            break;
        default:
            task_failed (p, d, t, &o);
            break;
    }
    cs_outcome_clear (&o);
    xfer_free (x);
}

/* A read for first and the next ready set tasks still to be read (taken from
 * *rest on), as many as one search returns; NULL if out of memory (first is
 * back in the queue). */
static task_t *
gather_read (device_t *d, task_t *first, task_t **rest, int64_t now)
{
    task_t *r = task_new (T_READ);
    if (!r) {
        enqueue (d, first, 1);
        return NULL;
    }
    size_t cap = d->batch_reads ? (size_t) d->page_size : 1;
    if (cap > MAX_BATCH)
        cap = MAX_BATCH;
    r->batch = first;
    r->batch_size = 1;
    task_t *tail = first;
    while (*rest && r->batch_size < cap) {
        task_t *t = *rest;
        if (t->kind == T_SET && t->step == 0 && t->not_before <= now) {
            *rest = t->next;
            t->next = NULL;
            tail->next = t;
            tail = t;
            r->batch_size++;
        }
        else
            rest = &t->next;
    }
    return r;
}

/* Starts what each device may start now. */
static void
pump (pusher_t *p)
{
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < p->device_count; i++) {
        device_t *d = &p->devices [i];
        if (d->paused_until > now || p->stopping)
            continue;
        task_t **link = &d->queue;
        while (*link && d->inflight < d->cfg->max_inflight) {
            task_t *t = *link;
            if (t->not_before > now) {
                link = &t->next;
                continue;
            }
            *link = t->next;
            t->next = NULL;
            if (t->kind == T_SET && t->step == 0 && !(t = gather_read (d, t, link, now)))
                break;
            if (start_request (p, d, t) != 0) {
                if (t->kind == T_READ)
                    unbatch (d, t);
                else
                    enqueue (d, t, 1);
                break;
            }
        }
    }
}

static device_t *
find_device (pusher_t *p, const char *name)
{
    for (size_t i = 0; i < p->device_count; i++)
        if (!strcmp (p->devices [i].cfg->name, name))
            return &p->devices [i];
    return NULL;
}

static int
known_command (device_t *d, uint64_t id)
{
    for (task_t *t = d->queue; t; t = t->next)
        if (t->id == id)
            return 1;
    for (int i = 0; i < MAX_POOL; i++)
        for (task_t *t = d->running [i]; t; t = t == d->running [i] ? t->batch : t->next)
            if (t->id == id && t->kind != T_READ)
                return 1;
    return 0;
}

static void
take_command (pusher_t *p, cs_msg_t *m)
{
    if (cs_msg_type (m) != CS_MSG_COMMAND) {
        cs_log (p->log, CS_LOG_WARN, "unexpected_message", "type",
                cs_msg_type_name (cs_msg_type (m)), NULL);
        return;
    }
    const char *dev = cs_msg_str (m, CS_F_DEV), *op = cs_msg_str (m, CS_F_OP);
    device_t *d = find_device (p, dev);
    if (!d) {
        cs_log (p->log, CS_LOG_WARN, "unknown_device", "device", dev, NULL);
        return;
    }
    int which = cs_op_parse (op);
    if (which == CS_OP_SCAN) {
        queue_scan (d);
        return;
    }
    if (which < 0) {
        cs_log (p->log, CS_LOG_WARN, "unknown_op", "op", op, NULL);
        return;
    }
    uint64_t id = (uint64_t) cs_msg_int (m, CS_F_ID);
    if (known_command (d, id))
        return;                 /* a re-sent command already queued */
    task_kind_t kind = which == CS_OP_CREATE ? T_CREATE : T_SET;
    const char *no = cs_msg_str (m, CS_F_EMPNO), *b = cs_msg_str (m, CS_F_BEGIN),
               *e = cs_msg_str (m, CS_F_END);
    if (!no || !b || !e) {
        cs_log (p->log, CS_LOG_WARN, "incomplete_command", "op", op, NULL);
        return;
    }
    task_t *t = task_new (kind);
    if (!t)
        return;
    t->id = id;
    snprintf (t->no, sizeof t->no, "%s", no);
    snprintf (t->begin, sizeof t->begin, "%s", b);
    snprintf (t->end, sizeof t->end, "%s", e);
    t->email = strdup (cs_msg_str (m, CS_F_EMAIL) ? cs_msg_str (m, CS_F_EMAIL) : "");
    t->name = strdup (cs_msg_str (m, CS_F_NAME) ? cs_msg_str (m, CS_F_NAME) : "");
    t->tag = cs_msg_str (m, CS_F_TAG) ? strdup (cs_msg_str (m, CS_F_TAG)) : NULL;
    if (!t->email || !t->name || (cs_msg_str (m, CS_F_TAG) && !t->tag)) {
        task_free (t);
        return;
    }
    enqueue (d, t, 0);
}

/* One GET on c for --check; fills x and o. */
static void
check_get (CURL *c, const char *base, const char *path, xfer_t *x, cs_outcome_t *o)
{
    free (x->resp);
    memset (x, 0, sizeof *x);
    aim (c, base, path, x);
    CURLcode rc = curl_easy_perform (c);
    long http = 0;
    curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &http);
    cs_isapi_classify (rc == CURLE_OK ? NULL : x->errbuf, http, x->resp, x->len, x->challenged, o);
}

/* An integer at obj.key in a JSON body, or -1. */
static long long
json_number (const char *body, const char *obj, const char *key)
{
    json_t *j = body ? json_loads (body, 0, NULL) : NULL;
    json_t *v = json_object_get (json_object_get (j, obj), key);
    long long n = json_is_integer (v) ? (long long) json_integer_value (v) : -1;
    json_decref (j);
    return n;
}

static const char *
check_fix (cs_class_t cls, const char *device)
{
    static char auth [300];
    char env [128];
    cs_config_device_env (device, env, sizeof env);
    snprintf (auth, sizeof auth, "check the username and the device's password (%s or "
              "password_file); do not retry blindly: the device locks after 5 failures", env);
    return cls == CS_CLASS_AUTH ? auth
         : cls == CS_CLASS_LOCKED ? "wait for the device to unlock, then fix the password"
         : cls == CS_CLASS_TRANSIENT ? "check the url, the network, TLS (ca_file, pinned_pubkey) "
                                     "and that the device is on"
         : "the account needs the access-control (person management) right; see the device's answer";
}

static int
check_devices (pusher_t *p)
{
    /* deviceInfo first: it proves the login with one attempt; the rest
     * reuse the same connection and Digest nonce */
    int failures = 0;
    for (size_t i = 0; i < p->device_count; i++) {
        device_t *d = &p->devices [i];
        CURL *c = new_handle (d->cfg);
        xfer_t x;
        memset (&x, 0, sizeof x);
        cs_outcome_t o;
        check_get (c, d->cfg->url, "/ISAPI/System/deviceInfo", &x, &o);
        if (o.cls == CS_CLASS_OK) {
            char model [64] = "?", fw [64] = "?";
            const char *m = x.resp ? strstr (x.resp, "<model>") : NULL;
            if (m)
                snprintf (model, sizeof model, "%.*s", (int) strcspn (m + 7, "<"), m + 7);
            const char *f = x.resp ? strstr (x.resp, "<firmwareVersion>") : NULL;
            if (f)
                snprintf (fw, sizeof fw, "%.*s", (int) strcspn (f + 17, "<"), f + 17);
            printf ("device %s at %s: reached, logged in (%s, firmware %s)\n", d->cfg->name,
                    d->cfg->url, model, fw);
            cs_outcome_clear (&o);
            check_get (c, d->cfg->url, "/ISAPI/AccessControl/UserInfo/capabilities?format=json", &x, &o);
            long long cap = o.cls == CS_CLASS_OK ? json_number (x.resp, "UserInfo", "maxRecordNum") : -1;
            if (o.cls != CS_CLASS_OK) {
                failures++;
                printf ("  person capabilities: FAILED: %s\n  fix: %s\n", o.msg, check_fix (o.cls, d->cfg->name));
            }
            cs_outcome_clear (&o);
            check_get (c, d->cfg->url, "/ISAPI/AccessControl/UserInfo/Count?format=json", &x, &o);
            long long users = o.cls == CS_CLASS_OK ? json_number (x.resp, "UserInfoCount", "userNumber") : -1;
            if (o.cls != CS_CLASS_OK) {
                failures++;
                printf ("  person count: FAILED: %s\n  fix: %s\n", o.msg, check_fix (o.cls, d->cfg->name));
            }
            else if (cap > 0)
                printf ("  persons: %lld of %lld (%lld%% of the device's capacity)\n", users, cap,
                        users * 100 / cap);
            else
                printf ("  persons: %lld (capacity not reported)\n", users);
        }
        else {
            failures++;
            printf ("device %s at %s: FAILED: %s\n  fix: %s\n", d->cfg->name, d->cfg->url, o.msg,
                    check_fix (o.cls, d->cfg->name));
        }
        cs_outcome_clear (&o);
        free (x.resp);
        curl_easy_cleanup (c);
    }
    printf ("verdict: %s\n", failures ? "FAILED" : "OK");
    return failures ? EX_UNAVAILABLE : 0;
}

int
main (int argc, char **argv)
{
    cs_cli_t cli;
    cs_cli_lean_memory ();
    int rc = cs_cli_parse (&s_spec, argc, argv, &cli);
    if (rc >= 0)
        return rc;
    cs_config_t *cfg = cs_cli_config (&s_spec, &cli, CS_SECRETS_DEVICES, &rc);
    if (rc >= 0) {
        cs_config_destroy (&cfg);
        return rc;
    }
    curl_global_init (CURL_GLOBAL_DEFAULT);
    pusher_t p;
    memset (&p, 0, sizeof p);
    p.cfg = cfg;
    p.log = cs_cli_log (&s_spec, cfg);
    /* this host's pusher writes to its own site's devices only ([pipeline] site) */
    p.devices = calloc (cfg->device_count + 1, sizeof *p.devices);
    for (size_t i = 0; i < cfg->device_count && p.devices; i++)
        if (cs_config_serves (cfg, &cfg->devices [i]))
            p.devices [p.device_count++].cfg = &cfg->devices [i];
    for (size_t i = 0; i < p.device_count; i++) {
        p.devices [i].page_size = 30;
        p.devices [i].batch_reads = 1;
        for (int k = 0; k < MAX_SOCKETS; k++)
            p.devices [i].sockets [k] = CURL_SOCKET_BAD;
        snprintf (p.devices [i].health, sizeof p.devices [i].health, "%s", cs_health_name (CS_HEALTH_UNKNOWN));
    }
    char error [512];
    cs_zmq_t *zmq = NULL;
    cs_refusals_t *refusals [2] = { NULL, NULL };  /* CURVE refusals on in, on out */
    if (cs_cli_value (&s_spec, &cli, "check")) {
        rc = check_devices (&p);
        goto done;
    }
    zmq = cs_zmq_new (&cfg->pipeline, error, sizeof error);
    if (zmq)
        p.in = cs_zmq_bind_watched (zmq, ZMQ_PULL, cfg->pipeline.pusher_in, 0, &refusals [0],
                                    error, sizeof error);
    if (p.in)
        p.out = cs_zmq_connect_to (zmq, ZMQ_PUSH, cfg->pipeline.differ_in, NULL, 0, &refusals [1],
                                   error, sizeof error);
    p.multi = curl_multi_init ();
    if (!p.out || !p.multi) {
        cs_log (p.log, CS_LOG_ERROR, "start_failed", "error", error, NULL);
        rc = EX_UNAVAILABLE;
        goto done;
    }
    cs_log (p.log, CS_LOG_INFO, "started", "commands", cfg->pipeline.pusher_in, "site",
            cfg->pipeline.site ? cfg->pipeline.site : "local", NULL);
    if (p.device_count == 0)
        cs_log (p.log, CS_LOG_WARN, "no_devices", "site", cfg->pipeline.site ? cfg->pipeline.site : "local",
                "msg", "no [device NAME] has this host's site ([pipeline] site); nothing to write to",
                NULL);
    for (size_t i = 0; i < p.device_count; i++) {
        queue_scan (&p.devices [i]);
        p.devices [i].next_scan = zclock_mono () + (int64_t) cfg->sync.scan_interval * 1000;
    }
    int64_t stop_by = 0;
    cs_beat_t beat;
    cs_beat_init (&beat, p.out, CS_STAGE_PUSHER, cfg->pipeline.heartbeat_interval);
    cs_beat_counters (&beat, counters, &p);
    beat.site = cfg->pipeline.site;
    cs_sd_ready ("pusher: sockets bound");
    while (1) {
        cs_beat (&beat);
        if (cs_sd_due ()) {
            /* STATUS=: each device's health and the requests in flight */
            char summary [300];
            size_t len = 0;
            summary [0] = 0;
            for (size_t i = 0; i < p.device_count && len + 60 < sizeof summary; i++)
                len += (size_t) snprintf (summary + len, sizeof summary - len, "%s%s %s, %d in flight",
                                          i ? "; " : "", p.devices [i].cfg->name,
                                          p.devices [i].health [0] ? p.devices [i].health : "unknown",
                                          p.devices [i].inflight);
            cs_sd_alive (summary);
        }
        if (cs_zmq_interrupted () && !p.stopping) {
            p.stopping = 1;
            stop_by = zclock_mono () + 4000;    /* in-flight requests get this long */
            cs_log (p.log, CS_LOG_INFO, "stopping", NULL);
        }
        int busy = 0;
        for (size_t i = 0; i < p.device_count; i++)
            busy += p.devices [i].inflight;
        if (p.stopping && (busy == 0 || zclock_mono () > stop_by))
            break;
        /* commands: drain the socket completely (its fd is edge-triggered) */
        while (!p.stopping) {
            cs_msg_error_t err;
            cs_msg_t *m = cs_zmq_try_recv (p.in, &err);
            if (m)
                take_command (&p, m);
            else if (err.code != CS_MSG_E_NONE)
                cs_log (p.log, CS_LOG_WARN, "bad_message", "error", err.text, NULL);
            else
                break;
            cs_msg_destroy (&m);
        }
        int64_t now = zclock_mono ();
        for (size_t i = 0; i < p.device_count; i++)
            if (now >= p.devices [i].next_scan) {
                queue_scan (&p.devices [i]);
                p.devices [i].next_scan = now + (int64_t) cfg->sync.scan_interval * 1000;
            }
        /* transfers: until nothing new was started, so that what pump starts
         * goes out now, and what ends is seen before sleeping */
        uint64_t started;
        do {
            pump (&p);
            started = p.started;
            int running;
            curl_multi_perform (p.multi, &running);
            CURLMsg *msg;
            int left;
            while ((msg = curl_multi_info_read (p.multi, &left)) != NULL)
                if (msg->msg == CURLMSG_DONE) {
                    xfer_t *x = NULL;
                    curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
                    finish_xfer (&p, x, msg->data.result);
                }
            pump (&p);
        } while (p.started != started);
        quick_acks (&p);
        /* sleep until a transfer, a command or the next due task */
        int64_t wake = 1000;
        for (size_t i = 0; i < p.device_count; i++)
            for (task_t *t = p.devices [i].queue; t; t = t->next)
                if (t->not_before > now && t->not_before - now < wake)
                    wake = t->not_before - now;
        struct curl_waitfd zfd [3] = { { .fd = zsock_fd (p.in), .events = CURL_WAIT_POLLIN } };
        unsigned nfd = 1;
        for (int k = 0; k < 2; k++)
            if (refusals [k])
                zfd [nfd++] = (struct curl_waitfd) { .fd = zsock_fd (cs_refusals_sock (refusals [k])),
                                                     .events = CURL_WAIT_POLLIN };
        if (!(zsock_events (p.in) & ZMQ_POLLIN))
            curl_multi_poll (p.multi, zfd, nfd, (int) (wake > 0 ? wake : 1), NULL);
        for (int k = 0; k < 2; k++)
            while (refusals [k] && (zsock_events (cs_refusals_sock (refusals [k])) & ZMQ_POLLIN))
                cs_refused (p.log, refusals [k]);
    }
    cs_sd_stopping ();
    cs_log (p.log, CS_LOG_INFO, "stopped", NULL);
    rc = 0;
done:
    for (size_t i = 0; i < p.device_count; i++) {
        device_t *d = &p.devices [i];
        while (d->queue) {
            task_t *t = d->queue;
            d->queue = t->next;
            task_free (t);
        }
        for (int k = 0; k < MAX_POOL; k++) {
            if (d->pool [k]) {
                xfer_t *x = NULL;
                curl_easy_getinfo (d->pool [k], CURLINFO_PRIVATE, (char **) &x);
                if (d->busy [k] && x) {
                    curl_multi_remove_handle (p.multi, d->pool [k]);
                    task_free (x->task);
                    xfer_free (x);
                }
                curl_easy_cleanup (d->pool [k]);
            }
        }
    }
    if (p.multi)
        curl_multi_cleanup (p.multi);
    free (p.devices);
    cs_refusals_destroy (&refusals [0]);
    cs_refusals_destroy (&refusals [1]);
    zsock_destroy (&p.in);
    zsock_destroy (&p.out);
    cs_zmq_destroy (&zmq);
    cs_log_destroy (&p.log);
    cs_config_destroy (&cfg);
    curl_global_cleanup ();
    return rc;
}
