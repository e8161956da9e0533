/* isapi-sim: local stand-ins for Hikvision access-control terminals
 * (shared/specs/hikvision-isapi.md §12), one process serving several devices,
 * each on its own port, for tests, benchmarks and the demo.
 *
 *   isapi-sim --device door1:0 --device door2:0:old [--control-port N]
 *             [--port-file F] [--user U] [--password P] [--seed S]
 *
 * Each device speaks ISAPI: Digest auth (MD5, qop=auth, realm = model) that
 * challenges before the body is read, userCheck 401 bodies, lockout after
 * repeated bad logins, the UserInfo endpoints with the spec's validation and
 * error bodies. The control port (JSON) seeds users, reads state and
 * statistics and sets faults; see scripts/isapi-ctl. */
#include "simhttp.h"
#include "common/date.h"

#include <gnutls/crypto.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEVICES 32
#define MAX_CLIENTS 32
#define MAX_NONCES 256

typedef struct {
    char value [40];            /* 32 hex digits */
    int64_t issued;             /* ms, monotonic */
} nonce_t;

typedef struct {
    char ip [64];
    int failures;               /* consecutive bad logins */
    int64_t locked_until;       /* ms, monotonic */
} client_t;

typedef struct {
    /* the profile */
    char name [33];
    char model [64];
    char firmware [32];
    char user [64];
    char password [64];
    int page_cap;               /* results per Search page */
    int strict_page;            /* maxResults above the cap: 400 instead of a silent cap */
    int errors_200;             /* errors as HTTP 200 + statusCode (else 4xx) */
    int capacity;               /* maxRecordNum */
    int alnum_only;             /* employeeNo: letters and digits only */
    int strict_search_id;       /* searchID: <= 16 chars, no '-' */
    int lockout_attempts;
    int lockout_s;
    char timezone [64];
    /* faults */
    int latency_ms;
    int max_concurrent;         /* 0 = no limit; extra requests get 401 without a challenge */
    double busy_rate;           /* share of requests answered deviceBusy */
    double error_rate;          /* share answered 500/503 */
    int down;                   /* not listening: connection refused */
    int nonce_lifetime_s;
    int close_unless_keepalive; /* Connection: close unless the request asked for keep-alive */
    int storm_s;                /* after a reboot: 401 without a challenge this long */
    int garble_writes;          /* the next N writes: HTTP 200 with a body cut short, nothing changed */
    int endless_pages;          /* a scan never ends: every page MORE, past the persons made-up ones */
    int64_t storm_until;        /* ms, monotonic */
    /* state */
    json_t *users;              /* full records, in insertion order */
    json_t *by_no;              /* employeeNo -> the same records: lookups on big devices */
    client_t clients [MAX_CLIENTS];
    nonce_t nonces [MAX_NONCES];    /* the nonces handed out, a ring */
    int next_nonce;
    json_t *stats;
    int active;                 /* requests in flight */
    int64_t idle_since_us;      /* when the last request in flight was answered, 0 if never */
    int64_t *gaps;              /* idle gaps, microseconds: answer's end to the next request */
    size_t gap_count;
    int64_t idle_us, over_us;   /* idle gaps summed; time answering beyond latency_ms, summed */
    int64_t answered;           /* requests answered since the stats were reset */
    sim_rng_t rng;
    sim_server_t srv;
    uint16_t port;
    struct _sim_t *sim;
} device_t;

typedef struct _sim_t {
    pthread_mutex_t lock;       /* guards every device's state */
    device_t devices [MAX_DEVICES];
    int device_count;
    sim_server_t control;
    uint64_t seed;
} sim_t;

/* --- the profiles ---------------------------------------------------------- */

static void
profile (device_t *d, const char *name)
{
    snprintf (d->model, sizeof d->model, "DS-K1T342MFX-E1");
    snprintf (d->firmware, sizeof d->firmware, "V4.38.0 build 240425");
    d->page_cap = 30;
    d->strict_page = 0;
    d->errors_200 = 0;
    d->capacity = 1500;
    d->alnum_only = 1;
    d->strict_search_id = 1;
    d->lockout_attempts = 5;
    d->lockout_s = 1800;
    snprintf (d->timezone, sizeof d->timezone, "CST-1:00:00DST01:00:00,M3.5.0/02:00:00,M10.5.0/03:00:00");
    if (name && !strcmp (name, "old")) {
        /* older firmware: 10 per page with an error above, errors as HTTP 200 */
        snprintf (d->model, sizeof d->model, "DS-K1T8003MF");
        snprintf (d->firmware, sizeof d->firmware, "V1.3.37 build 210311");
        d->page_cap = 10;
        d->strict_page = 1;
        d->capacity = 3000;
    }
}

/* --- statistics ------------------------------------------------------------ */

static void
stat_add (device_t *d, const char *group, const char *key, json_int_t by)
{
    json_t *g = group ? json_object_get (d->stats, group) : d->stats;
    if (!g) {
        g = json_object ();
        json_object_set_new (d->stats, group, g);
    }
    json_t *v = json_object_get (g, key);
    json_object_set_new (g, key, json_integer ((v ? json_integer_value (v) : 0) + by));
}

#define MAX_GAPS 65536

static int
by_value (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

/* The median idle gap, in ms (0 if none). */
static double
gap_median_ms (device_t *d)
{
    if (!d->gap_count)
        return 0;
    int64_t *sorted = malloc (d->gap_count * sizeof *sorted);
    if (!sorted)
        return 0;
    memcpy (sorted, d->gaps, d->gap_count * sizeof *sorted);
    qsort (sorted, d->gap_count, sizeof *sorted, by_value);
    double median = (double) sorted [d->gap_count / 2] / 1000.0;
    free (sorted);
    return median;
}

static void
stats_reset (device_t *d)
{
    d->gap_count = 0;
    d->idle_since_us = 0;
    d->idle_us = d->over_us = d->answered = 0;
    json_decref (d->stats);
    d->stats = json_pack ("{s:{}, s:{}, s:{}, s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
                          "requests", "status", "writes_by_op", "writes", 0, "bad_logins", 0,
                          "lockouts", 0, "challenges", 0, "max_concurrency", 0,
                          "busy_injected", 0, "errors_injected", 0);
}

/* --- responses ------------------------------------------------------------- */

typedef struct {
    unsigned http;              /* the status for the 4xx style */
    int code;                   /* statusCode */
    const char *string;         /* statusString */
    const char *sub;            /* subStatusCode */
    long long error_code;       /* errorCode */
    char msg [512];             /* errorMsg */
} isapi_err_t;

static void
set_err (isapi_err_t *e, unsigned http, int code, const char *string, const char *sub,
         long long error_code, const char *msg)
{
    e->http = http;
    e->code = code;
    e->string = string;
    e->sub = sub;
    e->error_code = error_code;
    snprintf (e->msg, sizeof e->msg, "%s", msg);
}

#define BLURB "1. The message has only URL and no message body, 2. The required node exists " \
    "without parameters. 3. Exceeding the parameter range limit: the parameter content of " \
    "the node is wrong."

static void err_bad_json_format (isapi_err_t *e, const char *msg)
{ set_err (e, 400, 5, "Invalid Format", "badJsonFormat", 1342177282LL, msg); }
static void err_bad_parameters (isapi_err_t *e, const char *node)
{ set_err (e, 400, 6, "Invalid Content", "badParameters", 1610612737LL, node); }
static void err_lack (isapi_err_t *e, const char *node)
{ set_err (e, 400, 6, "Invalid Content", "MessageParametersLack", 1610612761LL, node); }
static void
err_bad_content (isapi_err_t *e, const char *node)
{
    char msg [400];
    snprintf (msg, sizeof msg, "%s%s", BLURB, node);
    set_err (e, 400, 6, "Invalid Content", "badJsonContent", 1610612759LL, msg);
}

static sim_step_t
reply_error (device_t *d, struct MHD_Connection *conn, const char *url, const isapi_err_t *e,
             int close)
{
    unsigned status = d->errors_200 ? 200 : e->http;
    json_t *j = json_pack ("{s:s, s:i, s:s, s:s, s:I, s:s}", "requestURL", url, "statusCode",
                           e->code, "statusString", e->string, "subStatusCode", e->sub,
                           "errorCode", (json_int_t) e->error_code, "errorMsg", e->msg);
    char key [16];
    snprintf (key, sizeof key, "%u", status);
    pthread_mutex_lock (&d->sim->lock);
    stat_add (d, "status", key, 1);
    stat_add (d, "sub_status", e->sub, 1);
    pthread_mutex_unlock (&d->sim->lock);
    return sim_reply_json (conn, status, j, close);
}

static sim_step_t
reply_ok (device_t *d, struct MHD_Connection *conn, const char *url, int close)
{
    pthread_mutex_lock (&d->sim->lock);
    stat_add (d, "status", "200", 1);
    pthread_mutex_unlock (&d->sim->lock);
    return sim_reply_json (conn, 200, json_pack ("{s:s, s:i, s:s, s:s}", "requestURL", url,
                                             "statusCode", 1, "statusString", "OK",
                                             "subStatusCode", "ok"), close);
}

static sim_step_t
reply_xml (device_t *d, struct MHD_Connection *conn, unsigned status, const char *xml, int close)
{
    char key [16];
    snprintf (key, sizeof key, "%u", status);
    pthread_mutex_lock (&d->sim->lock);
    stat_add (d, "status", key, 1);
    pthread_mutex_unlock (&d->sim->lock);
    return close ? sim_reply (conn, status, "application/xml; charset=\"UTF-8\"", xml, strlen (xml),
                              "Connection", "close", NULL)
                 : sim_reply (conn, status, "application/xml; charset=\"UTF-8\"", xml, strlen (xml),
                              NULL);
}

/* --- Digest (RFC 2617, MD5, qop=auth), as the devices do it -------------- */

static void
md5_hex (const char *text, char out [33])
{
    unsigned char digest [16];
    gnutls_hash_fast (GNUTLS_DIG_MD5, text, strlen (text), digest);
    for (int i = 0; i < 16; i++)
        snprintf (out + 2 * i, 3, "%02x", digest [i]);
}

/* A fresh nonce, remembered with its time (caller holds the lock). */
static const char *
new_nonce (device_t *d)
{
    nonce_t *n = &d->nonces [d->next_nonce++ % MAX_NONCES];
    snprintf (n->value, sizeof n->value, "%016llx%016llx",
              (unsigned long long) sim_rng_next (&d->rng),
              (unsigned long long) sim_rng_next (&d->rng));
    n->issued = sim_now_ms ();
    return n->value;
}

/* The value of key in a Digest header's parameter list, quoted or not. */
static int
digest_param (const char *header, const char *key, char *out, size_t size)
{
    size_t klen = strlen (key);
    const char *p = header;
    while ((p = strcasestr (p, key)) != NULL) {
        int at_start = p == header || p [-1] == ' ' || p [-1] == ',';
        const char *q = p + klen;
        while (*q == ' ')
            q++;
        if (!at_start || *q != '=') {
            p += klen;
            continue;
        }
        q++;
        while (*q == ' ')
            q++;
        size_t n = 0;
        if (*q == '"') {
            for (q++; *q && *q != '"' && n + 1 < size; q++)
                out [n++] = *q;
        }
        else
            for (; *q && *q != ',' && *q != ' ' && n + 1 < size; q++)
                out [n++] = *q;
        out [n] = 0;
        return 0;
    }
    return -1;
}

typedef enum { AUTH_OK, AUTH_BAD, AUTH_STALE } auth_t;

static auth_t
check_digest (device_t *d, const char *header, const char *method, const char *url)
{
    char user [128], realm [128], nonce [64], uri [2048], response [64], qop [16], nc [16],
         cnonce [128];
    if (digest_param (header, "username", user, sizeof user) || digest_param (header, "realm", realm, sizeof realm)
        || digest_param (header, "nonce", nonce, sizeof nonce) || digest_param (header, "uri", uri, sizeof uri)
        || digest_param (header, "response", response, sizeof response))
        return AUTH_BAD;
    int with_qop = digest_param (header, "qop", qop, sizeof qop) == 0;
    if (with_qop && (strcmp (qop, "auth") || digest_param (header, "nc", nc, sizeof nc)
                     || digest_param (header, "cnonce", cnonce, sizeof cnonce)))
        return AUTH_BAD;
    size_t path_len = strcspn (uri, "?");
    if (path_len != strlen (url) || strncmp (uri, url, path_len) != 0)
        return AUTH_BAD;
    pthread_mutex_lock (&d->sim->lock);
    int64_t issued = -1;
    for (int i = 0; i < MAX_NONCES; i++)
        if (!strcmp (d->nonces [i].value, nonce))
            issued = d->nonces [i].issued;
    int lifetime = d->nonce_lifetime_s;
    char password [64];
    snprintf (password, sizeof password, "%s", d->password);
    int user_ok = !strcmp (user, d->user) && !strcmp (realm, d->model);
    pthread_mutex_unlock (&d->sim->lock);
    if (issued < 0 || (lifetime > 0 && sim_now_ms () - issued > (int64_t) lifetime * 1000))
        return AUTH_STALE;
    char text [4096], ha1 [33], ha2 [33], expect [33];
    snprintf (text, sizeof text, "%s:%s:%s", user, realm, password);
    md5_hex (text, ha1);
    snprintf (text, sizeof text, "%s:%s", method, uri);
    md5_hex (text, ha2);
    if (with_qop)
        snprintf (text, sizeof text, "%s:%s:%s:%s:%s:%s", ha1, nonce, nc, cnonce, qop, ha2);
    else
        snprintf (text, sizeof text, "%s:%s:%s", ha1, nonce, ha2);
    md5_hex (text, expect);
    return user_ok && !strcasecmp (expect, response) ? AUTH_OK : AUTH_BAD;
}

/* A 401 with a Digest challenge and a userCheck body (or the JSON given). */
static sim_step_t
challenge (device_t *d, struct MHD_Connection *conn, int retry, int locked, int unlock_s,
           int stale, const char *json_body)
{
    char body [1024];
    const char *ctype = "application/xml; charset=\"UTF-8\"";
    if (json_body) {
        snprintf (body, sizeof body, "%s", json_body);
        ctype = "application/json; charset=\"UTF-8\"";
    }
    else
        snprintf (body, sizeof body,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<userCheck version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n"
                  "<statusValue>401</statusValue>\n<statusString>Unauthorized</statusString>\n"
                  "<isDefaultPassword>false</isDefaultPassword>\n"
                  "<isRiskPassword>false</isRiskPassword>\n<isActivated>true</isActivated>\n"
                  "<lockStatus>%s</lockStatus>\n<unlockTime>%d</unlockTime>\n"
                  "<retryLoginTime>%d</retryLoginTime>\n</userCheck>\n",
                  locked ? "lock" : "unlock", unlock_s, retry);
    char header [512];
    pthread_mutex_lock (&d->sim->lock);
    snprintf (header, sizeof header, "Digest qop=\"auth\", realm=\"%s\", nonce=\"%s\", stale=\"%s\"",
              d->model, new_nonce (d), stale ? "TRUE" : "FALSE");
    stat_add (d, NULL, "challenges", 1);
    stat_add (d, "status", "401", 1);
    pthread_mutex_unlock (&d->sim->lock);
    return sim_reply (conn, 401, ctype, body, strlen (body), "WWW-Authenticate", header, NULL);
}

/* A 401 without a challenge: what busy or rebooting firmware sends. */
static sim_step_t
unauthorized_plain (device_t *d, struct MHD_Connection *conn)
{
    pthread_mutex_lock (&d->sim->lock);
    stat_add (d, "status", "401", 1);
    stat_add (d, NULL, "plain_401", 1);
    pthread_mutex_unlock (&d->sim->lock);
    const char *html = "<!DOCTYPE html><html><head><title>Document Error: Unauthorized</title>"
                       "</head><body><h2>Access Error: 401 -- Unauthorized</h2></body></html>";
    return sim_reply (conn, 401, "text/html", html, strlen (html), NULL);
}

/* --- users ----------------------------------------------------------------- */

/* The person with this employeeNo (and where it is, if index is given). */
static json_t *
find_user (device_t *d, const char *no, size_t *index)
{
    json_t *found = json_object_get (d->by_no, no);
    if (!found || !index)
        return found;
    size_t i;
    json_t *u;
    json_array_foreach (d->users, i, u)
        if (u == found)
            *index = i;
    return found;
}

static void
add_user (device_t *d, json_t *u)
{
    json_object_set (d->by_no, json_string_value (json_object_get (u, "employeeNo")), u);
    json_array_append_new (d->users, u);
}

static void
remove_user (device_t *d, size_t index)
{
    json_t *u = json_array_get (d->users, index);
    json_object_del (d->by_no, json_string_value (json_object_get (u, "employeeNo")));
    json_array_remove (d->users, index);
}

static void
clear_users (device_t *d)
{
    json_object_clear (d->by_no);
    json_array_clear (d->users);
}

static json_t *
default_user (const char *no)
{
    return json_pack ("{s:s, s:s, s:s, s:b, s:{s:b, s:s, s:s, s:s}, s:s, s:s, s:s, "
                      "s:[{s:i, s:s}], s:i, s:i, s:b, s:s, s:i, s:i, s:i, s:[{s:s}]}",
                      "employeeNo", no, "name", "", "userType", "normal",
                      "closeDelayEnabled", 0,
                      "Valid", "enable", 1, "beginTime", "2000-01-01T00:00:00",
                      "endTime", "2037-12-31T23:59:59", "timeType", "local",
                      "belongGroup", "", "password", "", "doorRight", "1",
                      "RightPlan", "doorNo", 1, "planTemplateNo", "1",
                      "maxOpenDoorTime", 0, "openDoorTime", 0, "localUIRight", 0,
                      "gender", "unknown", "numOfCard", 0, "numOfFP", 0, "numOfFace", 0,
                      "PersonInfoExtends", "value", "");
}

static size_t
utf8_chars (const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char) *s & 0xC0) != 0x80;
    return n;
}

static int
valid_time (const char *t)
{
    return t && cs_time_valid (t);
}

/* Checks a UserInfo body for a write; 0, or -1 with the device's error. */
static int
validate_user (device_t *d, json_t *ui, isapi_err_t *e)
{
    if (!json_is_object (ui)) {
        err_lack (e, "UserInfo");
        return -1;
    }
    json_t *no = json_object_get (ui, "employeeNo");
    if (!no) {
        err_lack (e, "employeeNo");
        return -1;
    }
    const char *s = json_string_value (no);
    if (!s || !*s || strlen (s) > 32) {
        err_bad_content (e, "employeeNo");
        return -1;
    }
    if (d->alnum_only)
        for (const char *c = s; *c; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))) {
                err_bad_content (e, "employeeNo");
                return -1;
            }
    json_t *name = json_object_get (ui, "name");
    if (name && !json_is_string (name)) {
        err_bad_parameters (e, "name");
        return -1;
    }
    if (name && utf8_chars (json_string_value (name)) > 128) {
        set_err (e, 400, 6, "Invalid Content", "nameIsOverlong", 1610612765LL, "name");
        return -1;
    }
    json_t *type = json_object_get (ui, "userType");
    if (!type) {
        err_lack (e, "userType");
        return -1;
    }
    const char *t = json_string_value (type);
    if (!t || (strcmp (t, "normal") && strcmp (t, "visitor") && strcmp (t, "blackList"))) {
        err_bad_parameters (e, "userType");
        return -1;
    }
    json_t *valid = json_object_get (ui, "Valid");
    if (!json_is_object (valid)) {
        err_lack (e, "Valid");
        return -1;
    }
    json_t *enable = json_object_get (valid, "enable");
    if (enable && !json_is_boolean (enable)) {
        err_bad_parameters (e, "enable");
        return -1;
    }
    const char *begin = json_string_value (json_object_get (valid, "beginTime"));
    const char *end = json_string_value (json_object_get (valid, "endTime"));
    if (!begin || !end) {
        err_lack (e, begin ? "endTime" : "beginTime");
        return -1;
    }
    if (!valid_time (begin) || !valid_time (end)) {
        set_err (e, 400, 6, "Invalid Content", "timeFormatError", 1610612801LL,
                 valid_time (begin) ? "endTime" : "beginTime");
        return -1;
    }
    if (strcmp (begin, CS_TIME_MIN) < 0 || strcmp (end, CS_TIME_MAX) > 0
        || strcmp (begin, CS_TIME_MAX) > 0 || strcmp (end, CS_TIME_MIN) < 0) {
        set_err (e, 400, 6, "Invalid Content", "beyondARGSRangeLimit", 1610612773LL,
                 strcmp (begin, CS_TIME_MIN) < 0 || strcmp (begin, CS_TIME_MAX) > 0
                 ? "beginTime" : "endTime");
        return -1;
    }
    if (strcmp (end, begin) < 0) {
        set_err (e, 400, 4, "Invalid Operation", "invalidOperation", 1073741830LL,
                 "invalidOperation");
        return -1;
    }
    const char *tt = json_string_value (json_object_get (valid, "timeType"));
    if (json_object_get (valid, "timeType") && (!tt || strcmp (tt, "local"))) {
        err_bad_parameters (e, "timeType");
        return -1;
    }
    json_t *ext = json_object_get (ui, "PersonInfoExtends");
    if (ext) {
        if (!json_is_array (ext) || json_array_size (ext) > 1) {
            err_bad_parameters (e, "PersonInfoExtends");
            return -1;
        }
        json_t *first = json_array_get (ext, 0);
        const char *v = first ? json_string_value (json_object_get (first, "value")) : "";
        if (first && (!v || strlen (v) > 64)) {
            set_err (e, 400, 6, "Invalid Content", "beyondARGSRangeLimit", 1610612773LL,
                     "PersonInfoExtends");
            return -1;
        }
    }
    json_t *door = json_object_get (ui, "doorRight");
    if (door && !json_is_string (door)) {
        err_bad_parameters (e, "doorRight");
        return -1;
    }
    const char *gender = json_string_value (json_object_get (ui, "gender"));
    if (json_object_get (ui, "gender")
        && (!gender || (strcmp (gender, "male") && strcmp (gender, "female")
                        && strcmp (gender, "unknown")))) {
        err_bad_parameters (e, "gender");
        return -1;
    }
    return 0;
}

/* Copies the writable fields of ui over stored (Valid and lists replaced whole). */
static void
merge_user (json_t *stored, json_t *ui)
{
    static const char *writable [] = {
        "name", "userType", "closeDelayEnabled", "Valid", "belongGroup", "password",
        "doorRight", "RightPlan", "maxOpenDoorTime", "localUIRight", "gender",
        "PersonInfoExtends", "userVerifyMode", NULL,
    };
    for (int i = 0; writable [i]; i++) {
        json_t *v = json_object_get (ui, writable [i]);
        if (v)
            json_object_set_new (stored, writable [i], json_deep_copy (v));
    }
    json_t *valid = json_object_get (stored, "Valid");
    if (!json_object_get (valid, "timeType"))
        json_object_set_new (valid, "timeType", json_string ("local"));
    if (!json_object_get (valid, "enable"))
        json_object_set_new (valid, "enable", json_true ());
}

/* --- the endpoints --------------------------------------------------------- */

typedef enum { OP_RECORD, OP_MODIFY, OP_SETUP } write_op_t;

static sim_step_t
handle_write (device_t *d, struct MHD_Connection *conn, const char *url, json_t *body,
              write_op_t op, int close)
{
    isapi_err_t e;
    json_t *ui = json_object_get (body, "UserInfo");
    pthread_mutex_lock (&d->sim->lock);
    stat_add (d, NULL, "write_attempts", 1);
    if (validate_user (d, ui, &e) != 0) {
        pthread_mutex_unlock (&d->sim->lock);
        return reply_error (d, conn, url, &e, close);
    }
    const char *no = json_string_value (json_object_get (ui, "employeeNo"));
    json_t *stored = find_user (d, no, NULL);
    const char *op_name = op == OP_RECORD ? "record" : op == OP_MODIFY ? "modify" : "setup";
    int rc = 0;
    if (op == OP_SETUP && json_is_true (json_object_get (ui, "deleteUser"))) {
        size_t index;
        if (stored && find_user (d, no, &index))
            remove_user (d, index);
        op_name = "setup_delete";
    }
    else if (op == OP_RECORD && stored) {
        set_err (&e, 400, 6, "Invalid Content", "employeeNoAlreadyExist", 1610637344LL, "checkUser");
        rc = -1;
    }
    else if (op == OP_MODIFY && !stored && !json_is_true (json_object_get (ui, "addUser"))) {
        set_err (&e, 400, 6, "Invalid Content", "employeeNoNotExist", 1610637343LL, "employeeNo");
        rc = -1;
    }
    else if (!stored && (int) json_array_size (d->users) >= d->capacity) {
        set_err (&e, 400, 6, "Invalid Content", "deviceUserFull", 1610641408LL, "deviceUserFull");
        rc = -1;
    }
    else {
        if (!stored) {
            stored = default_user (no);
            add_user (d, stored);
        }
        merge_user (stored, ui);
    }
    if (rc == 0) {
        stat_add (d, NULL, "writes", 1);
        stat_add (d, "writes_by_op", op_name, 1);
    }
    pthread_mutex_unlock (&d->sim->lock);
    return rc == 0 ? reply_ok (d, conn, url, close) : reply_error (d, conn, url, &e, close);
}

static sim_step_t
handle_delete (device_t *d, struct MHD_Connection *conn, const char *url, json_t *body, int close)
{
    isapi_err_t e;
    json_t *cond = json_object_get (body, "UserInfoDelCond");
    if (!json_is_object (cond)) {
        err_lack (&e, "UserInfoDelCond");
        return reply_error (d, conn, url, &e, close);
    }
    json_t *list = json_object_get (cond, "EmployeeNoList");
    if (list && (!json_is_array (list) || json_array_size (list) > 30)) {
        err_bad_parameters (&e, "EmployeeNoList");
        return reply_error (d, conn, url, &e, close);
    }
    pthread_mutex_lock (&d->sim->lock);
    if (!list)                   /* no list: every person goes (as on real devices) */
        clear_users (d);
    else {
        size_t i;
        json_t *item;
        json_array_foreach (list, i, item) {
            const char *no = json_string_value (json_object_get (item, "employeeNo"));
            size_t at;
            if (no && find_user (d, no, &at))
                remove_user (d, at);
        }
    }
    stat_add (d, NULL, "writes", 1);
    stat_add (d, "writes_by_op", "delete", 1);
    pthread_mutex_unlock (&d->sim->lock);
    return reply_ok (d, conn, url, close);
}

static int
fuzzy_match (const char *name, const char *needle)
{
    return !needle || !*needle || (name && strcasestr (name, needle));
}

static sim_step_t
handle_search (device_t *d, struct MHD_Connection *conn, const char *url, json_t *body, int close)
{
    isapi_err_t e;
    json_t *cond = json_object_get (body, "UserInfoSearchCond");
    if (!json_is_object (cond)) {
        err_lack (&e, "UserInfoSearchCond");
        return reply_error (d, conn, url, &e, close);
    }
    json_t *sid = json_object_get (cond, "searchID");
    json_t *pos = json_object_get (cond, "searchResultPosition");
    json_t *max = json_object_get (cond, "maxResults");
    if (!sid || !pos || !max) {
        err_lack (&e, !sid ? "searchID" : !pos ? "searchResultPosition" : "maxResults");
        return reply_error (d, conn, url, &e, close);
    }
    const char *search_id = json_string_value (sid);
    if (!search_id || !*search_id || strlen (search_id) > 36
        || (d->strict_search_id && (strlen (search_id) > 16 || strchr (search_id, '-')))) {
        err_bad_parameters (&e, "searchID");
        return reply_error (d, conn, url, &e, close);
    }
    if (!json_is_integer (pos) || json_integer_value (pos) < 0) {
        err_bad_parameters (&e, "searchResultPosition");
        return reply_error (d, conn, url, &e, close);
    }
    if (!json_is_integer (max) || json_integer_value (max) < 1) {
        err_bad_parameters (&e, "maxResults");
        return reply_error (d, conn, url, &e, close);
    }
    json_int_t want = json_integer_value (max);
    if (want > d->page_cap) {
        if (d->strict_page) {
            err_bad_parameters (&e, "maxResults");
            return reply_error (d, conn, url, &e, close);
        }
        want = d->page_cap;       /* silently, as the documentation says */
    }
    json_t *list = json_object_get (cond, "EmployeeNoList");
    if (list && (!json_is_array (list) || json_array_size (list) > 30)) {
        err_bad_parameters (&e, "EmployeeNoList");
        return reply_error (d, conn, url, &e, close);
    }
    const char *fuzzy = json_string_value (json_object_get (cond, "fuzzySearch"));

    pthread_mutex_lock (&d->sim->lock);
    json_t *matches = json_array ();
    size_t i;
    json_t *u;
    const char *wanted [30];
    size_t nwanted = 0;
    size_t w;
    json_t *item;
    json_array_foreach (list, w, item) {
        const char *no = json_string_value (json_object_get (item, "employeeNo"));
        wanted [nwanted++] = no ? no : "";
    }
    if (!nwanted && !fuzzy) {           /* every person: a plain page (big devices) */
        json_int_t first = json_integer_value (pos);
        for (json_int_t at = first; at < first + want && at < (json_int_t) json_array_size (d->users); at++)
            json_array_append (matches, json_array_get (d->users, (size_t) at));
    }
    else
        json_array_foreach (d->users, i, u) {
            const char *no = json_string_value (json_object_get (u, "employeeNo"));
            int in_list = nwanted == 0;
            for (w = 0; w < nwanted && !in_list; w++)
                in_list = !strcmp (wanted [w], no);
            if (in_list && fuzzy_match (json_string_value (json_object_get (u, "name")), fuzzy))
                json_array_append (matches, u);
        }
    json_int_t everyone = (json_int_t) json_array_size (d->users);
    pthread_mutex_unlock (&d->sim->lock);
    int plain = !nwanted && !fuzzy;       /* matches holds just the page */
    json_int_t total = plain ? everyone : (json_int_t) json_array_size (matches);
    json_int_t start = json_integer_value (pos);
    json_int_t from = plain ? 0 : start;
    json_t *page = json_array ();
    for (json_int_t k = from; k < (json_int_t) json_array_size (matches) && k < from + want; k++)
        json_array_append_new (page, json_deep_copy (json_array_get (matches, (size_t) k)));
    json_decref (matches);
    pthread_mutex_lock (&d->sim->lock);
    int endless = d->endless_pages && plain;
    pthread_mutex_unlock (&d->sim->lock);
    for (json_int_t k = (json_int_t) json_array_size (page); endless && k < want; k++) {
        char no [32];
        snprintf (no, sizeof no, "G%lld", (long long) (start + k));
        json_array_append_new (page, json_pack ("{s:s, s:s, s:s, s:{s:b, s:s, s:s, s:s}}", "employeeNo", no,
                                                "name", "Ghost", "userType", "normal", "Valid", "enable", 1,
                                                "beginTime", "2020-01-01T00:00:00", "endTime",
                                                "2030-12-31T23:59:59", "timeType", "local"));
    }
    json_int_t n = (json_int_t) json_array_size (page);
    if (endless)
        total = start + n + want;
    const char *status = n == 0 ? "NO MATCH" : start + n < total ? "MORE" : "OK";
    json_t *result = json_pack ("{s:s, s:s, s:I, s:I}", "searchID", search_id,
                                "responseStatusStrg", status, "numOfMatches", n,
                                "totalMatches", total);
    if (n)
        json_object_set_new (result, "UserInfo", page);
    else
        json_decref (page);
    pthread_mutex_lock (&d->sim->lock);
    stat_add (d, "status", "200", 1);
    pthread_mutex_unlock (&d->sim->lock);
    return sim_reply_json (conn, 200, json_pack ("{s:o}", "UserInfoSearch", result), close);
}

static json_t *
capabilities_json (const device_t *d)
{
    return json_pack (
        "{s:{s:{s:s}, s:{s:{s:i, s:i}, s:{s:i, s:{s:i, s:i}}, s:{s:i, s:i}}, s:{s:i, s:i}, "
        "s:{s:i, s:i}, s:{s:s}, s:{s:s, s:{s:i, s:i}, s:{s:i, s:i}, s:s, s:s, s:{s:s}}, "
        "s:{s:i, s:i}, s:i, s:{s:s}, s:{s:i, s:{s:i, s:i}}}}",
        "UserInfo",
        "supportFunction", "@opt", "post,delete,put,get,setUp",
        "UserInfoSearchCond", "maxResults", "@min", 1, "@max", d->page_cap,
        "EmployeeNoList", "maxSize", 30, "employeeNo", "@min", 1, "@max", 32,
        "fuzzySearch", "@min", 0, "@max", 128,
        "employeeNo", "@min", 1, "@max", 32,
        "name", "@min", 0, "@max", 128,
        "userType", "@opt", "normal,visitor,blackList",
        "Valid", "enable", "true,false", "beginTime", "@min", 1, "@max", 32,
        "endTime", "@min", 1, "@max", 32, "timeRangeBegin", CS_TIME_MIN,
        "timeRangeEnd", CS_TIME_MAX, "timeType", "@opt", "local",
        "doorRight", "@min", 1, "@max", 1,
        "maxRecordNum", d->capacity,
        "gender", "@opt", "male,female,unknown",
        "PersonInfoExtends", "maxSize", 1, "value", "@min", 0, "@max", 64);
}

static int
has_format_json (struct MHD_Connection *conn)
{
    const char *f = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "format");
    return f && !strcmp (f, "json");
}

static sim_step_t
route (device_t *d, struct MHD_Connection *conn, const char *method, const char *url,
       sim_req_t *req, int close)
{
    isapi_err_t e;
    char xml [2048];
    char shown [1100];           /* requestURL, as devices echo it */
    snprintf (shown, sizeof shown, "%s%s", url, has_format_json (conn) ? "?format=json" : "");
    int get = !strcmp (method, "GET"), post = !strcmp (method, "POST"), put = !strcmp (method, "PUT");
    if (!strcmp (url, "/ISAPI/System/deviceInfo") && get) {
        snprintf (xml, sizeof xml,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<DeviceInfo version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n"
                  "<deviceName>%s</deviceName>\n<deviceID>255</deviceID>\n<model>%s</model>\n"
                  "<serialNumber>%s20240102SIM%s</serialNumber>\n"
                  "<macAddress>40:24:b2:e7:46:04</macAddress>\n"
                  "<firmwareVersion>%.*s</firmwareVersion>\n"
                  "<firmwareReleasedDate>%s</firmwareReleasedDate>\n<deviceType>ACS</deviceType>\n"
                  "<subDeviceType>accessControlTerminal</subDeviceType>\n<marketType>1</marketType>\n"
                  "</DeviceInfo>\n", d->name, d->model, d->model, d->name,
                  (int) strcspn (d->firmware, " "), d->firmware,
                  strchr (d->firmware, ' ') ? strchr (d->firmware, ' ') + 1 : "");
        return reply_xml (d, conn, 200, xml, close);
    }
    if (!strcmp (url, "/ISAPI/System/time") && get) {
        char local [CS_TIME_LEN];
        cs_time_local (time (NULL), "Europe/Stockholm", local);
        snprintf (xml, sizeof xml,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<Time version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n"
                  "<timeMode>NTP</timeMode>\n<localTime>%s+01:00</localTime>\n"
                  "<timeZone>%s</timeZone>\n</Time>\n", local, d->timezone);
        return reply_xml (d, conn, 200, xml, close);
    }
    if (!strcmp (url, "/ISAPI/AccessControl/capabilities") && get) {
        snprintf (xml, sizeof xml,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<AccessControl version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n"
                  "<isSupportUserInfo>true</isSupportUserInfo>\n"
                  "<EmployeeNoInfo><employeeNo min=\"1\" max=\"32\"/>"
                  "<characterType opt=\"any\"/></EmployeeNoInfo>\n"
                  "<isSupportCardInfo>true</isSupportCardInfo>\n"
                  "<isSupportUserInfoDetailDelete>true</isSupportUserInfoDetailDelete>\n"
                  "<isSupportAcsEvent>true</isSupportAcsEvent>\n</AccessControl>\n");
        return reply_xml (d, conn, 200, xml, close);
    }
    const char *base = "/ISAPI/AccessControl/UserInfo/";
    if (strncmp (url, base, strlen (base)) != 0) {
        snprintf (xml, sizeof xml,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<ResponseStatus version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n"
                  "<requestURL>%s</requestURL>\n<statusCode>4</statusCode>\n"
                  "<statusString>Invalid Operation</statusString>\n"
                  "<subStatusCode>notSupport</subStatusCode>\n</ResponseStatus>\n", url);
        return reply_xml (d, conn, 404, xml, close);
    }
    const char *what = url + strlen (base);
    int is_search = !strcmp (what, "Search"), is_record = !strcmp (what, "Record");
    int is_modify = !strcmp (what, "Modify"), is_setup = !strcmp (what, "SetUp");
    int is_delete = !strcmp (what, "Delete"), is_count = !strcmp (what, "Count");
    int is_caps = !strcmp (what, "capabilities");
    if (!(is_search || is_record || is_modify || is_setup || is_delete || is_count || is_caps)) {
        set_err (&e, 404, 4, "Invalid Operation", "notSupport", 1073741825LL, "notSupport");
        return reply_error (d, conn, shown, &e, close);
    }
    if (is_search && get) {          /* GET on Search: a plain 404 */
        snprintf (xml, sizeof xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ResponseStatus>"
                  "<statusCode>4</statusCode><subStatusCode>notSupport</subStatusCode>"
                  "</ResponseStatus>\n");
        return reply_xml (d, conn, 404, xml, close);
    }
    int method_ok = ((is_count || is_caps) && get) || ((is_search || is_record) && post)
                    || ((is_modify || is_setup || is_delete) && put);
    if (!method_ok) {
        set_err (&e, 403, 4, "Invalid Operation", "methodNotAllowed", 1073741828LL,
                 "methodNotAllowed");
        return reply_error (d, conn, shown, &e, close);
    }
    if (!has_format_json (conn)) {
        err_bad_json_format (&e, "format=json is required");
        return reply_error (d, conn, shown, &e, close);
    }
    if (is_caps) {
        pthread_mutex_lock (&d->sim->lock);
        stat_add (d, "status", "200", 1);
        json_t *caps = capabilities_json (d);
        pthread_mutex_unlock (&d->sim->lock);
        return sim_reply_json (conn, 200, caps, close);
    }
    if (is_count) {
        pthread_mutex_lock (&d->sim->lock);
        stat_add (d, "status", "200", 1);
        json_int_t n = (json_int_t) json_array_size (d->users);
        pthread_mutex_unlock (&d->sim->lock);
        return sim_reply_json (conn, 200, json_pack ("{s:{s:I, s:i, s:i, s:i}}", "UserInfoCount",
                                                 "userNumber", n, "bindFaceUserNumber", 0,
                                                 "bindFingerprintUserNumber", 0,
                                                 "bindCardUserNumber", 0), close);
    }
    if (req->too_big || req->len == 0) {
        err_bad_content (&e, "");
        return reply_error (d, conn, shown, &e, close);
    }
    json_error_t jerr;
    json_t *body = json_loadb (req->body, req->len, 0, &jerr);
    if (!json_is_object (body)) {
        json_decref (body);
        err_bad_json_format (&e, "badJsonFormat");
        return reply_error (d, conn, shown, &e, close);
    }
    if (is_modify || is_record || is_setup) {
        pthread_mutex_lock (&d->sim->lock);
        int garble = d->garble_writes > 0;
        if (garble) {
            d->garble_writes--;
            stat_add (d, NULL, "garbled", 1);
        }
        pthread_mutex_unlock (&d->sim->lock);
        if (garble) {
            static const char cut [] = "{\"statusCode\": 1, \"statusStr";
            json_decref (body);
            return sim_reply (conn, 200, "application/json", cut, strlen (cut), NULL);
        }
    }
    sim_step_t step;
    if (is_search)
        step = handle_search (d, conn, shown, body, close);
    else if (is_delete)
        step = handle_delete (d, conn, shown, body, close);
    else
        step = handle_write (d, conn, shown, body, is_record ? OP_RECORD : is_modify ? OP_MODIFY
                                                                                    : OP_SETUP,
                             close);
    json_decref (body);
    return step;
}

static client_t *
client_of (device_t *d, const char *ip)
{
    client_t *free_slot = NULL;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (!strcmp (d->clients [i].ip, ip))
            return &d->clients [i];
        if (!free_slot && !d->clients [i].ip [0])
            free_slot = &d->clients [i];
    }
    if (!free_slot)
        free_slot = &d->clients [0];
    memset (free_slot, 0, sizeof *free_slot);
    snprintf (free_slot->ip, sizeof free_slot->ip, "%s", ip);
    return free_slot;
}

static sim_step_t
device_handler (void *cls, struct MHD_Connection *conn, const char *method, const char *url,
                sim_req_t *req, int complete)
{
    device_t *d = cls;
    sim_t *sim = d->sim;
    const char *conn_hdr = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Connection");
    int close = d->close_unless_keepalive && !(conn_hdr && strcasestr (conn_hdr, "keep-alive"));
    if (complete) {
        pthread_mutex_lock (&sim->lock);
        double busy = d->busy_rate, error = d->error_rate;
        double roll = sim_rng_real (&d->rng);
        int five = sim_rng_below (&d->rng, 2) ? 503 : 500;
        if (roll < busy)
            stat_add (d, NULL, "busy_injected", 1);
        else if (roll < busy + error)
            stat_add (d, NULL, "errors_injected", 1);
        pthread_mutex_unlock (&sim->lock);
        if (roll < busy) {
            isapi_err_t e;
            set_err (&e, 503, 2, "Device Busy", "deviceBusy", 536870916LL, "deviceBusy");
            return reply_error (d, conn, url, &e, close);
        }
        if (roll < busy + error) {
            char page [256];
            snprintf (page, sizeof page, "<html><body><h1>%d %s</h1></body></html>", five,
                      five == 500 ? "Internal Server Error" : "Service Unavailable");
            pthread_mutex_lock (&sim->lock);
            char key [16];
            snprintf (key, sizeof key, "%d", five);
            stat_add (d, "status", key, 1);
            pthread_mutex_unlock (&sim->lock);
            return sim_reply (conn, (unsigned) five, "text/html", page, strlen (page), NULL);
        }
        return route (d, conn, method, url, req, close);
    }

    /* the headers are in: count, limit, delay, authenticate */
    char key [320];
    snprintf (key, sizeof key, "%s %s", method, url);
    const char *agent = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
    pthread_mutex_lock (&sim->lock);
    stat_add (d, "requests", key, 1);
    stat_add (d, "user_agents", agent ? agent : "(none)", 1);
    if (d->active == 0 && d->idle_since_us && d->gap_count < MAX_GAPS
        && (d->gaps || (d->gaps = malloc (MAX_GAPS * sizeof *d->gaps)))) {
        d->gaps [d->gap_count++] = sim_now_us () - d->idle_since_us;
        d->idle_us += d->gaps [d->gap_count - 1];
    }
    d->active++;
    req->counted = 1;
    req->start_us = sim_now_us ();
    if (d->active > json_integer_value (json_object_get (d->stats, "max_concurrency")))
        json_object_set_new (d->stats, "max_concurrency", json_integer (d->active));
    int over = d->max_concurrent && d->active > d->max_concurrent;
    int storm = d->storm_until > sim_now_ms ();
    int latency = d->latency_ms;
    pthread_mutex_unlock (&sim->lock);
    sim_reply_after_ms (latency);      /* the device answers latency after the request */
    if (over || storm)
        return unauthorized_plain (d, conn);

    char ip [64];
    sim_client_ip (conn, ip, sizeof ip);
    pthread_mutex_lock (&sim->lock);
    client_t *client = client_of (d, ip);
    int64_t now = sim_now_ms ();
    int locked = client->locked_until > now;
    int unlock_s = locked ? (int) ((client->locked_until - now + 999) / 1000) : 0;
    int retry = d->lockout_attempts - client->failures;
    pthread_mutex_unlock (&sim->lock);

    if (locked)
        return challenge (d, conn, 0, 1, unlock_s, 0, NULL);
    const char *auth = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncasecmp (auth, "Digest ", 7) != 0)
        return challenge (d, conn, retry, 0, 0, 0, NULL);
    auth_t verdict = check_digest (d, auth + 7, method, url);
    if (verdict == AUTH_OK) {
        pthread_mutex_lock (&sim->lock);
        client->failures = 0;
        pthread_mutex_unlock (&sim->lock);
        return SIM_CONTINUE;
    }
    if (verdict == AUTH_STALE) {
        /* a retired nonce: refused until the client takes the new one */
        return challenge (d, conn, retry, 0, 0, 1,
                          "{\"statusCode\":4,\"statusString\":\"Invalid Operation\","
                          "\"subStatusCode\":\"invalidOperation\",\"errorCode\":1073741830}");
    }
    pthread_mutex_lock (&sim->lock);
    client->failures++;
    stat_add (d, NULL, "bad_logins", 1);
    retry = d->lockout_attempts - client->failures;
    if (retry <= 0) {
        client->locked_until = now + (int64_t) d->lockout_s * 1000;
        client->failures = 0;
        stat_add (d, NULL, "lockouts", 1);
        unlock_s = d->lockout_s;
        locked = 1;
        retry = 0;
    }
    pthread_mutex_unlock (&sim->lock);
    return challenge (d, conn, retry, locked, unlock_s, 0, NULL);
}

static void
device_done (void *cls, sim_req_t *req)
{
    device_t *d = cls;
    if (!req->counted)
        return;
    pthread_mutex_lock (&d->sim->lock);
    int64_t now = sim_now_us ();
    d->over_us += now - req->start_us - (int64_t) d->latency_ms * 1000;
    d->answered++;
    if (--d->active == 0)
        d->idle_since_us = now;
    pthread_mutex_unlock (&d->sim->lock);
}

/* --- the control port ------------------------------------------------------ */

static device_t *
find_device (sim_t *sim, const char *name, size_t len)
{
    for (int i = 0; i < sim->device_count; i++)
        if (strlen (sim->devices [i].name) == len && !strncmp (sim->devices [i].name, name, len))
            return &sim->devices [i];
    return NULL;
}

static json_t *
faults_json (const device_t *d)
{
    return json_pack ("{s:s, s:s, s:i, s:b, s:b, s:i, s:b, s:b, s:i, s:i, s:i, s:i, s:f, s:f, "
                      "s:b, s:i, s:b, s:i, s:s, s:i, s:b}",
                      "model", d->model, "firmware", d->firmware, "page_cap", d->page_cap,
                      "strict_page", d->strict_page, "errors_200", d->errors_200,
                      "capacity", d->capacity, "alnum_only", d->alnum_only,
                      "strict_search_id", d->strict_search_id,
                      "lockout_attempts", d->lockout_attempts, "lockout_s", d->lockout_s,
                      "latency_ms", d->latency_ms, "max_concurrent", d->max_concurrent,
                      "busy_rate", d->busy_rate, "error_rate", d->error_rate, "down", d->down,
                      "nonce_lifetime_s", d->nonce_lifetime_s,
                      "close_unless_keepalive", d->close_unless_keepalive, "storm_s", d->storm_s,
                      "user", d->user, "garble_writes", d->garble_writes, "endless_pages", d->endless_pages);
}

typedef struct {
    device_t *d;
    int seconds;
} reboot_t;

static void *
reboot_thread (void *arg)
{
    reboot_t *r = arg;
    sim_sleep_ms ((int64_t) r->seconds * 1000);
    device_t *d = r->d;
    free (r);
    pthread_mutex_lock (&d->sim->lock);
    int still_down = d->down;
    d->down = 0;
    d->storm_until = sim_now_ms () + (int64_t) d->storm_s * 1000;
    pthread_mutex_unlock (&d->sim->lock);
    if (still_down)
        sim_listen (&d->srv, d->port, d->sim->seed);
    return NULL;
}

/* Applies the given knobs; starting or stopping the listener happens outside the lock. */
static int
apply_faults (device_t *d, json_t *j, char *why, size_t why_size)
{
    sim_t *sim = d->sim;
    int want_down = -1, reboot = 0;
    pthread_mutex_lock (&sim->lock);
    const char *key;
    json_t *v;
    if (json_is_true (json_object_get (j, "reset"))) {
        char model [64];
        snprintf (model, sizeof model, "%s", d->strict_page ? "old" : "default");
        profile (d, model);
        d->latency_ms = d->max_concurrent = d->nonce_lifetime_s = d->storm_s = d->garble_writes = 0;
        d->endless_pages = 0;
        d->busy_rate = d->error_rate = 0;
        d->close_unless_keepalive = 0;
        memset (d->clients, 0, sizeof d->clients);
        if (d->down)
            want_down = 0;
    }
    json_object_foreach (j, key, v) {
        int is_int = json_is_integer (v), is_bool = json_is_boolean (v);
        int ival = (int) json_integer_value (v);
        if (!strcmp (key, "reset"))
            continue;
        else if (!strcmp (key, "latency_ms") && is_int) d->latency_ms = ival;
        else if (!strcmp (key, "max_concurrent") && is_int) d->max_concurrent = ival;
        else if (!strcmp (key, "busy_rate") && json_is_number (v)) d->busy_rate = json_number_value (v);
        else if (!strcmp (key, "error_rate") && json_is_number (v)) d->error_rate = json_number_value (v);
        else if (!strcmp (key, "nonce_lifetime_s") && is_int) d->nonce_lifetime_s = ival;
        else if (!strcmp (key, "capacity") && is_int) d->capacity = ival;
        else if (!strcmp (key, "page_cap") && is_int && ival > 0) d->page_cap = ival;
        else if (!strcmp (key, "strict_page") && is_bool) d->strict_page = json_is_true (v);
        else if (!strcmp (key, "errors_200") && is_bool) d->errors_200 = json_is_true (v);
        else if (!strcmp (key, "alnum_only") && is_bool) d->alnum_only = json_is_true (v);
        else if (!strcmp (key, "strict_search_id") && is_bool) d->strict_search_id = json_is_true (v);
        else if (!strcmp (key, "lockout_attempts") && is_int && ival > 0) d->lockout_attempts = ival;
        else if (!strcmp (key, "lockout_s") && is_int) d->lockout_s = ival;
        else if (!strcmp (key, "close_unless_keepalive") && is_bool)
            d->close_unless_keepalive = json_is_true (v);
        else if (!strcmp (key, "storm_s") && is_int) d->storm_s = ival;
        else if (!strcmp (key, "garble_writes") && is_int) d->garble_writes = ival;
        else if (!strcmp (key, "endless_pages") && is_bool) d->endless_pages = json_is_true (v);
        else if (!strcmp (key, "password") && json_is_string (v))
            snprintf (d->password, sizeof d->password, "%s", json_string_value (v));
        else if (!strcmp (key, "down") && is_bool) want_down = json_is_true (v);
        else if (!strcmp (key, "reboot_s") && is_int) reboot = ival;
        else {
            pthread_mutex_unlock (&sim->lock);
            snprintf (why, why_size, "unknown fault or wrong type: %s", key);
            return -1;
        }
    }
    if (reboot > 0)
        want_down = 1;
    int was_down = d->down;
    if (want_down >= 0)
        d->down = want_down;
    pthread_mutex_unlock (&sim->lock);
    if (want_down == 1 && !was_down)
        sim_stop (&d->srv);
    if (want_down == 0 && was_down && sim_listen (&d->srv, d->port, sim->seed) != 0) {
        snprintf (why, why_size, "cannot listen on port %u again", d->port);
        return -1;
    }
    if (reboot > 0) {
        reboot_t *r = malloc (sizeof *r);
        pthread_t t;
        if (r) {
            r->d = d;
            r->seconds = reboot;
            if (pthread_create (&t, NULL, reboot_thread, r) == 0)
                pthread_detach (t);
            else
                free (r);
        }
    }
    return 0;
}

/* Users given to the control port: defaults filled in, no write validation,
 * so tests can seed what a real installer would have left behind. */
static int
seed_users (device_t *d, json_t *list, int replace, char *why, size_t why_size)
{
    if (!json_is_array (list)) {
        snprintf (why, why_size, "expected a JSON array of UserInfo objects");
        return -1;
    }
    size_t i;
    json_t *u;
    json_array_foreach (list, i, u) {
        const char *no = json_string_value (json_object_get (u, "employeeNo"));
        if (!no || !*no) {
            snprintf (why, why_size, "user %zu has no employeeNo", i);
            return -1;
        }
    }
    pthread_mutex_lock (&d->sim->lock);
    if (replace)
        clear_users (d);
    json_array_foreach (list, i, u) {
        const char *no = json_string_value (json_object_get (u, "employeeNo"));
        json_t *stored = find_user (d, no, NULL);
        if (!stored) {
            stored = default_user (no);
            add_user (d, stored);
        }
        merge_user (stored, u);
        /* read-only counters may be seeded too */
        static const char *ro [] = { "numOfCard", "numOfFP", "numOfFace", "openDoorTime", NULL };
        for (int k = 0; ro [k]; k++)
            if (json_object_get (u, ro [k]))
                json_object_set (stored, ro [k], json_object_get (u, ro [k]));
    }
    pthread_mutex_unlock (&d->sim->lock);
    return 0;
}

static sim_step_t
control_handler (void *cls, struct MHD_Connection *conn, const char *method, const char *url,
                 sim_req_t *req, int complete)
{
    sim_t *sim = cls;
    if (!complete)
        return SIM_CONTINUE;
    json_t *body = NULL;
    if (req->len) {
        json_error_t err;
        body = json_loadb (req->body, req->len, 0, &err);
        if (!body)
            return sim_control_error (conn, 400, err.text);
    }
    sim_step_t step;
    char why [256];
    if (!strcmp (url, "/health"))
        step = sim_reply_json (conn, 200, json_pack ("{s:s}", "status", "ok"), 0);
    else if (!strcmp (url, "/devices")) {
        json_t *list = json_array ();
        pthread_mutex_lock (&sim->lock);
        for (int i = 0; i < sim->device_count; i++) {
            device_t *d = &sim->devices [i];
            json_array_append_new (list, json_pack ("{s:s, s:i, s:s, s:I, s:b}", "name", d->name,
                                                    "port", d->port, "model", d->model,
                                                    "users", (json_int_t) json_array_size (d->users),
                                                    "down", d->down));
        }
        pthread_mutex_unlock (&sim->lock);
        step = sim_reply_json (conn, 200, list, 0);
    }
    else if (!strncmp (url, "/devices/", 9)) {
        const char *name = url + 9;
        const char *slash = strchr (name, '/');
        size_t len = slash ? (size_t) (slash - name) : strlen (name);
        const char *rest = slash ? slash : "";
        device_t *d = find_device (sim, name, len);
        if (!d)
            step = sim_control_error (conn, 404, "no such device");
        else if (!strcmp (rest, "") || !strcmp (rest, "/faults")) {
            int rc = 0;
            if (!strcmp (method, "POST") && body)
                rc = apply_faults (d, body, why, sizeof why);
            if (rc != 0)
                step = sim_control_error (conn, 400, why);
            else {
                pthread_mutex_lock (&sim->lock);
                json_t *f = faults_json (d);
                pthread_mutex_unlock (&sim->lock);
                step = sim_reply_json (conn, 200, f, 0);
            }
        }
        else if (!strcmp (rest, "/stats") && !strcmp (method, "GET")) {
            pthread_mutex_lock (&sim->lock);
            json_t *copy = json_deep_copy (d->stats);
            json_object_set_new (copy, "users", json_integer ((json_int_t) json_array_size (d->users)));
            json_object_set_new (copy, "in_flight", json_integer (d->active));
            json_object_set_new (copy, "idle_gap_median_ms", json_real (gap_median_ms (d)));
            json_object_set_new (copy, "idle_gaps", json_integer ((json_int_t) d->gap_count));
            /* where a request's time goes besides latency_ms: waiting for the
             * client (idle) and the simulator's own answering (over) */
            json_object_set_new (copy, "idle_total_ms", json_real ((double) d->idle_us / 1000.0));
            json_object_set_new (copy, "answer_over_latency_mean_ms",
                                 json_real (d->answered ? (double) d->over_us / 1000.0 / (double) d->answered : 0));
            pthread_mutex_unlock (&sim->lock);
            step = sim_reply_json (conn, 200, copy, 0);
        }
        else if (!strcmp (rest, "/stats/reset") && !strcmp (method, "POST")) {
            pthread_mutex_lock (&sim->lock);
            stats_reset (d);
            pthread_mutex_unlock (&sim->lock);
            step = sim_reply_json (conn, 200, json_pack ("{s:b}", "ok", 1), 0);
        }
        else if (!strcmp (rest, "/unlock") && !strcmp (method, "POST")) {
            pthread_mutex_lock (&sim->lock);
            memset (d->clients, 0, sizeof d->clients);
            pthread_mutex_unlock (&sim->lock);
            step = sim_reply_json (conn, 200, json_pack ("{s:b}", "ok", 1), 0);
        }
        else if (!strcmp (rest, "/users") && !strcmp (method, "GET")) {
            pthread_mutex_lock (&sim->lock);
            json_t *copy = json_deep_copy (d->users);
            pthread_mutex_unlock (&sim->lock);
            step = sim_reply_json (conn, 200, copy, 0);
        }
        else if (!strcmp (rest, "/users") && (!strcmp (method, "POST") || !strcmp (method, "PUT"))) {
            if (seed_users (d, body, !strcmp (method, "PUT"), why, sizeof why) != 0)
                step = sim_control_error (conn, 400, why);
            else {
                pthread_mutex_lock (&sim->lock);
                json_int_t n = (json_int_t) json_array_size (d->users);
                pthread_mutex_unlock (&sim->lock);
                step = sim_reply_json (conn, 200, json_pack ("{s:I}", "users", n), 0);
            }
        }
        else if (!strncmp (rest, "/users/", 7)) {
            const char *no = rest + 7;
            pthread_mutex_lock (&sim->lock);
            size_t at;
            json_t *u = find_user (d, no, &at);
            json_t *copy = NULL;
            if (u && !strcmp (method, "PUT") && json_is_object (body))
                merge_user (u, body);          /* a change by hand, e.g. drift */
            if (u && !strcmp (method, "DELETE"))
                remove_user (d, at);
            else if (u)
                copy = json_deep_copy (u);
            pthread_mutex_unlock (&sim->lock);
            if (!u)
                step = sim_control_error (conn, 404, "no such user");
            else if (!copy)
                step = sim_reply_json (conn, 200, json_pack ("{s:b}", "deleted", 1), 0);
            else
                step = sim_reply_json (conn, 200, copy, 0);
        }
        else
            step = sim_control_error (conn, 404, "unknown control path");
    }
    else
        step = sim_control_error (conn, 404, "unknown control path");
    json_decref (body);
    return step;
}

/* --- main ------------------------------------------------------------------ */

static volatile sig_atomic_t s_stop;

static void
on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
usage (void)
{
    printf ("usage: isapi-sim --device NAME:PORT[:PROFILE] ... [options]\n"
            "Local Hikvision access-control terminals for tests (127.0.0.1 only).\n\n"
            "  --device NAME:PORT[:PROFILE]  a device; PORT 0 = any free port; PROFILE is\n"
            "                     default (DS-K1T342MFX-E1: 30 a page, errors as 4xx) or\n"
            "                     old (DS-K1T8003MF: 10 a page, 400 above that)\n"
            "  --control-port N   the control port (default 0: any free port)\n"
            "  --port-file F      write each device's port, then the control port, one a line\n"
            "  --user U           login of every device (default admin)\n"
            "  --password P       password of every device (default Passw0rd)\n"
            "  --seed S           seed for injected faults (default 1)\n\n"
            "example: isapi-sim --device door1:8081 --device door2:8082:old --control-port 8090\n");
}

int
main (int argc, char **argv)
{
    static sim_t sim;
    pthread_mutex_init (&sim.lock, NULL);
    /* a device answers latency_ms after a request, not up to 50 us later (the
     * default timer slack); the connection threads inherit this */
    prctl (PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    sim.seed = 1;
    long control_port = 0;
    const char *port_file = NULL, *user = "admin", *password = "Passw0rd";
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        const char *v = i + 1 < argc ? argv [i + 1] : NULL;
        if (!strcmp (a, "--help") || !strcmp (a, "-h")) { usage (); return 0; }
        if (!v) { fprintf (stderr, "isapi-sim: %s needs a value\n", a); return 64; }
        i++;
        if (!strcmp (a, "--device")) {
            if (sim.device_count == MAX_DEVICES) {
                fprintf (stderr, "isapi-sim: at most %d devices\n", MAX_DEVICES);
                return 64;
            }
            device_t *d = &sim.devices [sim.device_count++];
            char spec [128];
            snprintf (spec, sizeof spec, "%s", v);
            char *port = strchr (spec, ':');
            char *prof = port ? strchr (port + 1, ':') : NULL;
            if (port) *port++ = 0;
            if (prof) *prof++ = 0;
            if (!*spec || strlen (spec) > 32 || (prof && strcmp (prof, "default") && strcmp (prof, "old"))) {
                fprintf (stderr, "isapi-sim: --device NAME:PORT[:default|old], not '%s'\n", v);
                return 64;
            }
            snprintf (d->name, sizeof d->name, "%s", spec);
            d->port = (uint16_t) (port ? strtol (port, NULL, 10) : 0);
            profile (d, prof);
        }
        else if (!strcmp (a, "--control-port")) control_port = strtol (v, NULL, 10);
        else if (!strcmp (a, "--port-file")) port_file = v;
        else if (!strcmp (a, "--user")) user = v;
        else if (!strcmp (a, "--password")) password = v;
        else if (!strcmp (a, "--seed")) sim.seed = strtoull (v, NULL, 10);
        else { fprintf (stderr, "isapi-sim: unknown option %s\n", a); return 64; }
    }
    if (sim.device_count == 0) {
        fprintf (stderr, "isapi-sim: give at least one --device NAME:PORT\n");
        return 64;
    }
    signal (SIGPIPE, SIG_IGN);
    signal (SIGINT, on_signal);
    signal (SIGTERM, on_signal);
    uint16_t ports [MAX_DEVICES + 1];
    for (int i = 0; i < sim.device_count; i++) {
        device_t *d = &sim.devices [i];
        d->sim = &sim;
        snprintf (d->user, sizeof d->user, "%s", user);
        snprintf (d->password, sizeof d->password, "%s", password);
        d->users = json_array ();
        d->by_no = json_object ();
        stats_reset (d);
        sim_rng_seed (&d->rng, sim.seed + (uint64_t) i * 7919);
        d->srv = (sim_server_t) { device_handler, device_done, d, NULL, 0 };
        if (sim_listen (&d->srv, d->port, sim.seed + (uint64_t) i) != 0) {
            fprintf (stderr, "isapi-sim: %s: cannot listen on 127.0.0.1:%u\n", d->name, d->port);
            return 69;
        }
        d->port = d->srv.port;
        ports [i] = d->port;
        printf ("isapi-sim: %s http://127.0.0.1:%u (%s %s)\n", d->name, d->port, d->model,
                d->firmware);
    }
    sim.control = (sim_server_t) { control_handler, NULL, &sim, NULL, 0 };
    if (sim_listen (&sim.control, (uint16_t) control_port, sim.seed + 99) != 0) {
        fprintf (stderr, "isapi-sim: cannot listen on control port %ld\n", control_port);
        return 69;
    }
    ports [sim.device_count] = sim.control.port;
    printf ("isapi-sim: control http://127.0.0.1:%u\n", sim.control.port);
    fflush (stdout);
    if (port_file && sim_write_port_file (port_file, ports, (size_t) sim.device_count + 1) != 0) {
        fprintf (stderr, "isapi-sim: cannot write %s\n", port_file);
        return 73;
    }
    while (!s_stop)
        pause ();
    sim_stop (&sim.control);
    for (int i = 0; i < sim.device_count; i++) {
        sim_stop (&sim.devices [i].srv);
        json_decref (sim.devices [i].users);
        json_decref (sim.devices [i].by_no);
        json_decref (sim.devices [i].stats);
        free (sim.devices [i].gaps);
    }
    return 0;
}
