/* cs_msg: every message between the four programs (design §2), and its
 * msgpack codec.
 *
 * A message is one msgpack map per ZeroMQ frame with short string keys,
 * always "v" (schema version) and "t" (type). Each type has its required and
 * optional fields; decoding is strict: wrong types, missing or unknown keys,
 * duplicate keys, oversized strings or arrays, bad UTF-8, malformed times and
 * trailing bytes are all rejected with a code and a message.
 *
 *   member       producer -> differ   one Cardskipper member and its role periods
 *   cycle_begin  producer -> differ   an export starts
 *   cycle_end    producer -> differ   it ended: ok, full, count, error
 *   scan_begin   pusher   -> differ   a device's user list follows
 *   scan_user    pusher   -> differ   one person on the device
 *   scan_skip    pusher   -> differ   a person of the list that cannot be used, and why
 *   scan_end     pusher   -> differ   the list is complete (ok) or not, and the capacity
 *   command      differ   -> pusher   set a person's validity, create one, or scan
 *   result       pusher   -> differ   what became of a command
 *   health       pusher   -> differ   a device's reachability and credentials
 *   event        differ   -> auditor  one audited event, with its outbox seq
 *   ack          auditor  -> differ   every event up to seq is stored
 *   heartbeat    producer, pusher, auditor -> differ   a stage is alive, and its counters
 *                                     since it started (body, for status and /metrics)
 *   request      operator -> differ   on differ.ctl: status, failed, held, unmatched,
 *                                     orphans, member, replay, approve (op)
 *   answer       differ   -> operator the answer: ok or err, and a body (a document);
 *                                     a long list comes in several, all but the last
 *                                     with more = true
 */
#ifndef CS_MSG_H
#define CS_MSG_H

#include <stddef.h>
#include <stdint.h>

#define CS_MSG_VERSION 1
#define CS_MSG_MAX_SIZE 65536     /* bytes in one encoded message */
#define CS_MSG_MAX_ROLES 256      /* role periods in one member */
#define CS_MSG_MAX_IDS 1000       /* ids in one replay request */

typedef struct _cs_msg_t cs_msg_t;
struct json_t;

typedef enum {
    CS_MSG_MEMBER = 1,
    CS_MSG_CYCLE_BEGIN,
    CS_MSG_CYCLE_END,
    CS_MSG_SCAN_BEGIN,
    CS_MSG_SCAN_USER,
    CS_MSG_SCAN_END,
    CS_MSG_COMMAND,
    CS_MSG_RESULT,
    CS_MSG_HEALTH,
    CS_MSG_EVENT,
    CS_MSG_ACK,
    CS_MSG_SCAN_SKIP,
    CS_MSG_HEARTBEAT,
    CS_MSG_REQUEST,
    CS_MSG_ANSWER,
    CS_MSG_TYPE_COUNT
} cs_msg_type_t;

/* The fields; the comment gives the key and the kind of value. */
typedef enum {
    CS_F_CYCLE = 0,     /* c      uint   export cycle id */
    CS_F_FULL,          /* full   bool   a full export (not ChangedAt) */
    CS_F_OK,            /* ok     bool */
    CS_F_COUNT,         /* n      uint   members or users sent */
    CS_F_ERROR,         /* err    str    why a cycle or scan failed */
    CS_F_ORG,           /* org    int    Cardskipper organisation id */
    CS_F_MID,           /* mid    int    OrganisationMemberId */
    CS_F_EMAIL,         /* email  str    as Cardskipper gave it, or normalised */
    CS_F_FIRST,         /* fn     str    first name */
    CS_F_LAST,          /* ln     str    last name */
    CS_F_INACTIVE,      /* inact  bool   Member/@Inactive */
    CS_F_DEV,           /* dev    str    device name */
    CS_F_SCAN,          /* scan   uint   scan id */
    CS_F_EMPNO,         /* no     str    employeeNo */
    CS_F_NAME,          /* name   str    the person's name on the device */
    CS_F_TAG,           /* tag    str    PersonInfoExtends[0].value */
    CS_F_ENABLE,        /* en     bool   Valid.enable */
    CS_F_BEGIN,         /* begin  time   Valid.beginTime */
    CS_F_END,           /* end    time   Valid.endTime */
    CS_F_ID,            /* id     uint   command id */
    CS_F_OP,            /* op     str    set, create, scan */
    CS_F_CLASS,         /* class  str    outcome class: ok, transient, permanent, auth ... */
    CS_F_HTTP,          /* http   int    HTTP status */
    CS_F_CODE,          /* code   int    ISAPI statusCode */
    CS_F_SUB,           /* sub    str    ISAPI subStatusCode */
    CS_F_MSG,           /* msg    str    the device's own words, or a description */
    CS_F_TRIES,         /* tries  uint   attempts made */
    CS_F_SEQ,           /* seq    uint   outbox sequence number */
    CS_F_TS,            /* ts     uint   milliseconds since 1970 */
    CS_F_KIND,          /* kind   str    event kind: applied, failed, unmatched ... */
    CS_F_STATE,         /* state  str    device health: ok, down, auth, locked ... */
    CS_F_UNTIL,         /* until  uint   paused until (ms since 1970) */
    CS_F_PREV_BEGIN,    /* pb     time   the validity before a change */
    CS_F_PREV_END,      /* pe     time */
    CS_F_ALL,           /* all    bool   replay every failed target */
    CS_F_REQ,           /* req    uint   an operator's request id (replay, approve) */
    CS_F_ROLES,         /* roles  [[role int, start day, end day], ...] */
    CS_F_IDS,           /* ids    [uint, ...]; an audit_gap event: [first, last] */
    CS_F_CAP,           /* cap    uint   persons a device can hold (maxRecordNum) */
    CS_F_RULE,          /* rule   str    how a person is tied: tag, map, member_id, created */
    CS_F_BODY,          /* body   doc    an answer: maps, arrays, strings, integers, booleans */
    CS_F_MORE,          /* more   bool   more answers to this request follow */
    CS_F_STAGE,         /* stage  str    producer, pusher, auditor */
    CS_F_SITE,          /* site   str    the [site NAME] a pusher serves (none: the local one) */
    CS_F_COUNT_FIELDS
} cs_field_t;

typedef enum {
    CS_MSG_E_NONE = 0,
    CS_MSG_E_TRUNCATED,     /* ends inside a value */
    CS_MSG_E_TRAILING,      /* bytes after the map */
    CS_MSG_E_TOO_BIG,       /* more than CS_MSG_MAX_SIZE bytes */
    CS_MSG_E_NOT_MAP,       /* the top level is not a map */
    CS_MSG_E_BAD_KEY,       /* a key that is not a short string */
    CS_MSG_E_UNKNOWN_KEY,   /* a key this message type does not have */
    CS_MSG_E_DUP_KEY,       /* a key given twice */
    CS_MSG_E_WRONG_TYPE,    /* a value of the wrong msgpack type */
    CS_MSG_E_TOO_LONG,      /* a string or array over its limit */
    CS_MSG_E_BAD_VALUE,     /* out of range, bad UTF-8, malformed time */
    CS_MSG_E_MISSING,       /* a required key is absent */
    CS_MSG_E_VERSION,       /* a schema version this build does not speak */
    CS_MSG_E_UNKNOWN_TYPE,  /* "t" names no message type */
    CS_MSG_E_NOMEM
} cs_msg_errcode_t;

typedef struct {
    cs_msg_errcode_t code;
    char text [160];         /* which key and why */
} cs_msg_error_t;

typedef struct {
    int64_t role;            /* Cardskipper role id */
    char start [11];         /* "YYYY-MM-DD" */
    char end [11];
} cs_msg_role_t;

cs_msg_t *cs_msg_new (cs_msg_type_t type);
void cs_msg_destroy (cs_msg_t **self_p);

cs_msg_type_t cs_msg_type (const cs_msg_t *self);
/* "member", "cycle_end", ...; NULL for an unknown type. */
const char *cs_msg_type_name (cs_msg_type_t type);
const char *cs_msg_field_key (cs_field_t field);

/* Setters return -1 if the field does not belong to this type, has another
 * kind, or the value breaks its limit (too long, bad UTF-8, bad time). */
int cs_msg_set_int (cs_msg_t *self, cs_field_t field, int64_t value);
int cs_msg_set_bool (cs_msg_t *self, cs_field_t field, int value);
int cs_msg_set_str (cs_msg_t *self, cs_field_t field, const char *value);
int cs_msg_add_role (cs_msg_t *self, int64_t role, const char *start, const char *end);
int cs_msg_add_id (cs_msg_t *self, uint64_t id);
/* A document field holds a reference to value (a jansson object or array
 * of objects, arrays, strings, integers, booleans and null, at most 6 deep). */
int cs_msg_set_doc (cs_msg_t *self, cs_field_t field, struct json_t *value);
struct json_t *cs_msg_doc (const cs_msg_t *self, cs_field_t field);   /* borrowed; NULL if absent */

int cs_msg_has (const cs_msg_t *self, cs_field_t field);
int64_t cs_msg_int (const cs_msg_t *self, cs_field_t field);      /* 0 if absent */
int cs_msg_bool (const cs_msg_t *self, cs_field_t field);         /* 0 if absent */
const char *cs_msg_str (const cs_msg_t *self, cs_field_t field);  /* NULL if absent */
size_t cs_msg_role_count (const cs_msg_t *self);
const cs_msg_role_t *cs_msg_role (const cs_msg_t *self, size_t index);
size_t cs_msg_id_count (const cs_msg_t *self);
uint64_t cs_msg_id (const cs_msg_t *self, size_t index);

/* Encodes into a new buffer (the caller frees). Fails (-1, with error set)
 * when a required field is missing. */
int cs_msg_encode (const cs_msg_t *self, uint8_t **data_p, size_t *size_p, cs_msg_error_t *error);

/* Decodes one message; NULL with error set when the bytes are not one valid
 * message. */
cs_msg_t *cs_msg_decode (const uint8_t *data, size_t size, cs_msg_error_t *error);

const char *cs_msg_strerror (cs_msg_errcode_t code);

/* The message as a JSON object with the wire's keys ("t" first), for logs,
 * tools and `auditor tail --json`. The caller frees the text. */
char *cs_msg_to_json (const cs_msg_t *self);

/* The reverse, for tools and tests: a JSON object with "t" and the wire's
 * keys. NULL with error set when it does not make a valid message. */
cs_msg_t *cs_msg_from_json (const char *text, cs_msg_error_t *error);

#endif
