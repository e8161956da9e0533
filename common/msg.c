#include "common/msg.h"
#include "common/date.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_UINT, K_INT, K_BOOL, K_STR, K_TIME, K_ROLES, K_IDS, K_DOC } kind_t;

#define DOC_DEPTH 6             /* maps and arrays inside a document */

typedef struct {
    const char *key;
    kind_t kind;
    size_t max;                 /* bytes for strings, entries for arrays */
} field_info_t;

static const field_info_t s_fields [CS_F_COUNT_FIELDS] = {
    [CS_F_CYCLE]      = { "c", K_UINT, 0 },
    [CS_F_FULL]       = { "full", K_BOOL, 0 },
    [CS_F_OK]         = { "ok", K_BOOL, 0 },
    [CS_F_COUNT]      = { "n", K_UINT, 0 },
    [CS_F_ERROR]      = { "err", K_STR, 1024 },
    [CS_F_ORG]        = { "org", K_INT, 0 },
    [CS_F_MID]        = { "mid", K_INT, 0 },
    [CS_F_EMAIL]      = { "email", K_STR, 512 },
    [CS_F_FIRST]      = { "fn", K_STR, 512 },
    [CS_F_LAST]       = { "ln", K_STR, 512 },
    [CS_F_INACTIVE]   = { "inact", K_BOOL, 0 },
    [CS_F_DEV]        = { "dev", K_STR, 32 },
    [CS_F_SCAN]       = { "scan", K_UINT, 0 },
    [CS_F_EMPNO]      = { "no", K_STR, 32 },
    [CS_F_NAME]       = { "name", K_STR, 512 },
    [CS_F_TAG]        = { "tag", K_STR, 512 },
    [CS_F_ENABLE]     = { "en", K_BOOL, 0 },
    [CS_F_BEGIN]      = { "begin", K_TIME, 19 },
    [CS_F_END]        = { "end", K_TIME, 19 },
    [CS_F_ID]         = { "id", K_UINT, 0 },
    [CS_F_OP]         = { "op", K_STR, 16 },
    [CS_F_CLASS]      = { "class", K_STR, 32 },
    [CS_F_HTTP]       = { "http", K_INT, 0 },
    [CS_F_CODE]       = { "code", K_INT, 0 },
    [CS_F_SUB]        = { "sub", K_STR, 64 },
    [CS_F_MSG]        = { "msg", K_STR, 2048 },
    [CS_F_TRIES]      = { "tries", K_UINT, 0 },
    [CS_F_SEQ]        = { "seq", K_UINT, 0 },
    [CS_F_TS]         = { "ts", K_UINT, 0 },
    [CS_F_KIND]       = { "kind", K_STR, 32 },
    [CS_F_STATE]      = { "state", K_STR, 32 },
    [CS_F_UNTIL]      = { "until", K_UINT, 0 },
    [CS_F_PREV_BEGIN] = { "pb", K_TIME, 19 },
    [CS_F_PREV_END]   = { "pe", K_TIME, 19 },
    [CS_F_ALL]        = { "all", K_BOOL, 0 },
    [CS_F_REQ]        = { "req", K_UINT, 0 },
    [CS_F_ROLES]      = { "roles", K_ROLES, CS_MSG_MAX_ROLES },
    [CS_F_IDS]        = { "ids", K_IDS, CS_MSG_MAX_IDS },
    [CS_F_CAP]        = { "cap", K_UINT, 0 },
    [CS_F_RULE]       = { "rule", K_STR, 16 },
    [CS_F_BODY]       = { "body", K_DOC, 0 },
    [CS_F_MORE]       = { "more", K_BOOL, 0 },
    [CS_F_STAGE]      = { "stage", K_STR, 16 },
    [CS_F_SITE]       = { "site", K_STR, 32 },
};

#define B(f) (UINT64_C (1) << (f))

typedef struct {
    const char *name;
    uint64_t required;
    uint64_t optional;
} type_info_t;

static const type_info_t s_types [CS_MSG_TYPE_COUNT] = {
    [CS_MSG_MEMBER] = { "member", B (CS_F_CYCLE) | B (CS_F_ORG) | B (CS_F_ROLES),
        B (CS_F_MID) | B (CS_F_EMAIL) | B (CS_F_FIRST) | B (CS_F_LAST) | B (CS_F_INACTIVE) },
    [CS_MSG_CYCLE_BEGIN] = { "cycle_begin", B (CS_F_CYCLE) | B (CS_F_FULL), B (CS_F_TS) },
    [CS_MSG_CYCLE_END] = { "cycle_end", B (CS_F_CYCLE) | B (CS_F_FULL) | B (CS_F_OK)
        | B (CS_F_COUNT), B (CS_F_ERROR) | B (CS_F_TS) },
    [CS_MSG_SCAN_BEGIN] = { "scan_begin", B (CS_F_DEV) | B (CS_F_SCAN), B (CS_F_TS) },
    [CS_MSG_SCAN_USER] = { "scan_user", B (CS_F_DEV) | B (CS_F_SCAN) | B (CS_F_EMPNO),
        B (CS_F_NAME) | B (CS_F_TAG) | B (CS_F_ENABLE) | B (CS_F_BEGIN) | B (CS_F_END) },
    [CS_MSG_SCAN_END] = { "scan_end", B (CS_F_DEV) | B (CS_F_SCAN) | B (CS_F_OK) | B (CS_F_COUNT),
        B (CS_F_ERROR) | B (CS_F_TS) | B (CS_F_CAP) },
    [CS_MSG_COMMAND] = { "command", B (CS_F_ID) | B (CS_F_DEV) | B (CS_F_OP),
        B (CS_F_EMPNO) | B (CS_F_EMAIL) | B (CS_F_NAME) | B (CS_F_TAG) | B (CS_F_ENABLE)
        | B (CS_F_BEGIN) | B (CS_F_END) | B (CS_F_TS) },
    [CS_MSG_RESULT] = { "result", B (CS_F_ID) | B (CS_F_DEV) | B (CS_F_OK) | B (CS_F_CLASS),
        B (CS_F_EMPNO) | B (CS_F_HTTP) | B (CS_F_CODE) | B (CS_F_SUB) | B (CS_F_MSG)
        | B (CS_F_TRIES) | B (CS_F_BEGIN) | B (CS_F_END) | B (CS_F_TS) },
    [CS_MSG_HEALTH] = { "health", B (CS_F_DEV) | B (CS_F_STATE),
        B (CS_F_MSG) | B (CS_F_UNTIL) | B (CS_F_TS) | B (CS_F_COUNT) },
    [CS_MSG_EVENT] = { "event", B (CS_F_SEQ) | B (CS_F_TS) | B (CS_F_KIND),
        B (CS_F_EMAIL) | B (CS_F_DEV) | B (CS_F_EMPNO) | B (CS_F_ID) | B (CS_F_MID)
        | B (CS_F_CLASS) | B (CS_F_HTTP) | B (CS_F_CODE) | B (CS_F_SUB) | B (CS_F_MSG)
        | B (CS_F_TRIES) | B (CS_F_BEGIN) | B (CS_F_END) | B (CS_F_PREV_BEGIN)
        | B (CS_F_PREV_END) | B (CS_F_COUNT) | B (CS_F_STATE) | B (CS_F_NAME) | B (CS_F_REQ)
        | B (CS_F_ORG) | B (CS_F_RULE) | B (CS_F_TAG) | B (CS_F_IDS) },
    [CS_MSG_ACK] = { "ack", B (CS_F_SEQ), 0 },
    [CS_MSG_REQUEST] = { "request", B (CS_F_REQ) | B (CS_F_OP),
        B (CS_F_ALL) | B (CS_F_IDS) | B (CS_F_EMAIL) | B (CS_F_DEV) | B (CS_F_COUNT)
        | B (CS_F_ORG) | B (CS_F_MID) },
    [CS_MSG_ANSWER] = { "answer", B (CS_F_REQ) | B (CS_F_OK), B (CS_F_ERROR) | B (CS_F_BODY)
        | B (CS_F_MORE) },
    [CS_MSG_HEARTBEAT] = { "heartbeat", B (CS_F_STAGE), B (CS_F_TS) | B (CS_F_SEQ) | B (CS_F_BODY)
        | B (CS_F_SITE) },
    [CS_MSG_SCAN_SKIP] = { "scan_skip", B (CS_F_DEV) | B (CS_F_SCAN) | B (CS_F_MSG), B (CS_F_NAME) },
};

struct _cs_msg_t {
    cs_msg_type_t type;
    uint64_t present;                       /* a bit per field that is set */
    int64_t num [CS_F_COUNT_FIELDS];        /* uint, int and bool values */
    char *str [CS_F_COUNT_FIELDS];          /* string and time values (owned) */
    cs_msg_role_t *roles;                   /* CS_F_ROLES entries */
    size_t role_count;
    size_t role_cap;
    uint64_t *ids;                          /* CS_F_IDS entries */
    size_t id_count;
    size_t id_cap;
    json_t *doc;                            /* CS_F_BODY (a reference) */
};

cs_msg_t *
cs_msg_new (cs_msg_type_t type)
{
    if (type <= 0 || type >= CS_MSG_TYPE_COUNT)
        return NULL;
    cs_msg_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->type = type;
    /* a required array starts out present and empty */
    self->present = s_types [type].required & (B (CS_F_ROLES) | B (CS_F_IDS));
    return self;
}

void
cs_msg_destroy (cs_msg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_msg_t *self = *self_p;
    for (int i = 0; i < CS_F_COUNT_FIELDS; i++)
        free (self->str [i]);
    free (self->roles);
    free (self->ids);
    json_decref (self->doc);
    free (self);
    *self_p = NULL;
}

cs_msg_type_t
cs_msg_type (const cs_msg_t *self)
{
    return self->type;
}

const char *
cs_msg_type_name (cs_msg_type_t type)
{
    return type > 0 && type < CS_MSG_TYPE_COUNT ? s_types [type].name : NULL;
}

const char *
cs_msg_field_key (cs_field_t field)
{
    return field >= 0 && field < CS_F_COUNT_FIELDS ? s_fields [field].key : NULL;
}

static int
allowed (const cs_msg_t *self, cs_field_t field, kind_t kind)
{
    if (field < 0 || field >= CS_F_COUNT_FIELDS)
        return 0;
    uint64_t all = s_types [self->type].required | s_types [self->type].optional;
    kind_t k = s_fields [field].kind;
    return (all & B (field)) && (k == kind || (kind == K_STR && k == K_TIME));
}

/* Well-formed UTF-8 without NUL, overlongs or surrogates. */
static int
valid_utf8 (const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s [i];
        size_t len;
        uint32_t cp;
        if (c == 0)
            return 0;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s [i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s [i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
            || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static int
check_string (cs_field_t field, const char *value, size_t len)
{
    if (len > s_fields [field].max || !valid_utf8 ((const unsigned char *) value, len))
        return -1;
    if (s_fields [field].kind == K_TIME) {
        char buf [20];
        if (len != 19)
            return -1;
        memcpy (buf, value, 19);
        buf [19] = 0;
        return cs_time_valid (buf) ? 0 : -1;
    }
    return 0;
}

static int
range_ok (cs_field_t field, int64_t value)
{
    kind_t k = s_fields [field].kind;
    if (k == K_UINT)
        return value >= 0;
    if (k == K_BOOL)
        return value == 0 || value == 1;
    return 1;
}

int
cs_msg_set_int (cs_msg_t *self, cs_field_t field, int64_t value)
{
    if (!(allowed (self, field, K_UINT) || allowed (self, field, K_INT)) || !range_ok (field, value))
        return -1;
    self->num [field] = value;
    self->present |= B (field);
    return 0;
}

int
cs_msg_set_bool (cs_msg_t *self, cs_field_t field, int value)
{
    if (!allowed (self, field, K_BOOL))
        return -1;
    self->num [field] = value ? 1 : 0;
    self->present |= B (field);
    return 0;
}

static int
set_str_n (cs_msg_t *self, cs_field_t field, const char *value, size_t len)
{
    if (!value || !allowed (self, field, K_STR) || check_string (field, value, len) != 0)
        return -1;
    char *copy = malloc (len + 1);
    if (!copy)
        return -1;
    memcpy (copy, value, len);
    copy [len] = 0;
    free (self->str [field]);
    self->str [field] = copy;
    self->present |= B (field);
    return 0;
}

int
cs_msg_set_str (cs_msg_t *self, cs_field_t field, const char *value)
{
    return set_str_n (self, field, value, value ? strlen (value) : 0);
}

int
cs_msg_add_role (cs_msg_t *self, int64_t role, const char *start, const char *end)
{
    cs_day_t d;
    if (!allowed (self, CS_F_ROLES, K_ROLES) || self->role_count >= CS_MSG_MAX_ROLES
        || cs_day_parse (start, &d) != 0 || cs_day_parse (end, &d) != 0)
        return -1;
    if (self->role_count == self->role_cap) {
        size_t cap = self->role_cap ? self->role_cap * 2 : 4;
        cs_msg_role_t *grown = realloc (self->roles, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->roles = grown;
        self->role_cap = cap;
    }
    cs_msg_role_t *r = &self->roles [self->role_count++];
    r->role = role;
    memcpy (r->start, start, 11);
    memcpy (r->end, end, 11);
    self->present |= B (CS_F_ROLES);
    return 0;
}

int
cs_msg_add_id (cs_msg_t *self, uint64_t id)
{
    if (!allowed (self, CS_F_IDS, K_IDS) || self->id_count >= CS_MSG_MAX_IDS
        || id > (uint64_t) INT64_MAX)
        return -1;
    if (self->id_count == self->id_cap) {
        size_t cap = self->id_cap ? self->id_cap * 2 : 8;
        uint64_t *grown = realloc (self->ids, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->ids = grown;
        self->id_cap = cap;
    }
    self->ids [self->id_count++] = id;
    self->present |= B (CS_F_IDS);
    return 0;
}

/* A document holds maps with string keys, arrays, strings, integers,
 * booleans and null, at most DOC_DEPTH deep. */
static int
doc_ok (json_t *v, int depth)
{
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof (v)) {
        case JSON_OBJECT:
            if (depth >= DOC_DEPTH)
                return 0;
            json_object_foreach (v, key, item)
                if (!valid_utf8 ((const unsigned char *) key, strlen (key)) || !doc_ok (item, depth + 1))
                    return 0;
            return 1;
        case JSON_ARRAY:
            if (depth >= DOC_DEPTH)
                return 0;
            json_array_foreach (v, i, item)
                if (!doc_ok (item, depth + 1))
                    return 0;
            return 1;
        case JSON_STRING:
            return valid_utf8 ((const unsigned char *) json_string_value (v), json_string_length (v));
        case JSON_INTEGER:
        case JSON_TRUE:
        case JSON_FALSE:
        case JSON_NULL:
            return 1;
        default:
            return 0;           /* no reals */
    }
}

int
cs_msg_set_doc (cs_msg_t *self, cs_field_t field, json_t *value)
{
    if (!value || !allowed (self, field, K_DOC) || !doc_ok (value, 0))
        return -1;
    json_decref (self->doc);
    self->doc = json_incref (value);
    self->present |= B (field);
    return 0;
}

json_t *
cs_msg_doc (const cs_msg_t *self, cs_field_t field)
{
    return cs_msg_has (self, field) && s_fields [field].kind == K_DOC ? self->doc : NULL;
}

int
cs_msg_has (const cs_msg_t *self, cs_field_t field)
{
    return field >= 0 && field < CS_F_COUNT_FIELDS && (self->present & B (field)) != 0;
}

int64_t
cs_msg_int (const cs_msg_t *self, cs_field_t field)
{
    return cs_msg_has (self, field) ? self->num [field] : 0;
}

int
cs_msg_bool (const cs_msg_t *self, cs_field_t field)
{
    return cs_msg_has (self, field) ? (int) self->num [field] : 0;
}

const char *
cs_msg_str (const cs_msg_t *self, cs_field_t field)
{
    return cs_msg_has (self, field) ? self->str [field] : NULL;
}

size_t
cs_msg_role_count (const cs_msg_t *self)
{
    return self->role_count;
}

const cs_msg_role_t *
cs_msg_role (const cs_msg_t *self, size_t index)
{
    return index < self->role_count ? &self->roles [index] : NULL;
}

size_t
cs_msg_id_count (const cs_msg_t *self)
{
    return self->id_count;
}

uint64_t
cs_msg_id (const cs_msg_t *self, size_t index)
{
    return index < self->id_count ? self->ids [index] : 0;
}

static void
set_error (cs_msg_error_t *error, cs_msg_errcode_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
set_error (cs_msg_error_t *error, cs_msg_errcode_t code, const char *fmt, ...)
{
    if (!error)
        return;
    error->code = code;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (error->text, sizeof error->text, fmt, ap);
    va_end (ap);
}

static int
check_required (const cs_msg_t *self, cs_msg_error_t *error)
{
    uint64_t missing = s_types [self->type].required & ~self->present;
    for (int f = 0; f < CS_F_COUNT_FIELDS; f++)
        if (missing & B (f)) {
            set_error (error, CS_MSG_E_MISSING, "%s: required key '%s' is missing",
                       s_types [self->type].name, s_fields [f].key);
            return -1;
        }
    return 0;
}

static void
pack_string (msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str (pk, n);
    msgpack_pack_str_body (pk, s, n);
}

static void
pack_doc (msgpack_packer *pk, json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof (v)) {
        case JSON_OBJECT:
            msgpack_pack_map (pk, json_object_size (v));
            json_object_foreach (v, key, item) {
                pack_string (pk, key, strlen (key));
                pack_doc (pk, item);
            }
            break;
        case JSON_ARRAY:
            msgpack_pack_array (pk, json_array_size (v));
            json_array_foreach (v, i, item)
                pack_doc (pk, item);
            break;
        case JSON_STRING: pack_string (pk, json_string_value (v), json_string_length (v)); break;
        case JSON_INTEGER: msgpack_pack_int64 (pk, json_integer_value (v)); break;
        case JSON_TRUE: msgpack_pack_true (pk); break;
        case JSON_FALSE: msgpack_pack_false (pk); break;
        default: msgpack_pack_nil (pk); break;
    }
}

int
cs_msg_encode (const cs_msg_t *self, uint8_t **data_p, size_t *size_p, cs_msg_error_t *error)
{
    *data_p = NULL;
    *size_p = 0;
    if (check_required (self, error) != 0)
        return -1;
    size_t entries = 2;
    for (int f = 0; f < CS_F_COUNT_FIELDS; f++)
        entries += (self->present & B (f)) != 0;

    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, entries);
    pack_string (&pk, "v", 1);
    msgpack_pack_uint64 (&pk, CS_MSG_VERSION);
    pack_string (&pk, "t", 1);
    pack_string (&pk, s_types [self->type].name, strlen (s_types [self->type].name));
    for (int f = 0; f < CS_F_COUNT_FIELDS; f++) {
        if (!(self->present & B (f)))
            continue;
        pack_string (&pk, s_fields [f].key, strlen (s_fields [f].key));
        switch (s_fields [f].kind) {
            case K_UINT: msgpack_pack_uint64 (&pk, (uint64_t) self->num [f]); break;
            case K_INT: msgpack_pack_int64 (&pk, self->num [f]); break;
            case K_BOOL:
                if (self->num [f]) msgpack_pack_true (&pk); else msgpack_pack_false (&pk);
                break;
            case K_STR:
            case K_TIME: pack_string (&pk, self->str [f], strlen (self->str [f])); break;
            case K_ROLES:
                msgpack_pack_array (&pk, self->role_count);
                for (size_t i = 0; i < self->role_count; i++) {
                    msgpack_pack_array (&pk, 3);
                    msgpack_pack_int64 (&pk, self->roles [i].role);
                    pack_string (&pk, self->roles [i].start, 10);
                    pack_string (&pk, self->roles [i].end, 10);
                }
                break;
            case K_IDS:
                msgpack_pack_array (&pk, self->id_count);
                for (size_t i = 0; i < self->id_count; i++)
                    msgpack_pack_uint64 (&pk, self->ids [i]);
                break;
            case K_DOC: pack_doc (&pk, self->doc); break;
        }
    }
    if (sbuf.size > CS_MSG_MAX_SIZE) {
        set_error (error, CS_MSG_E_TOO_BIG, "%s: %zu bytes, more than %d",
                   s_types [self->type].name, sbuf.size, CS_MSG_MAX_SIZE);
        msgpack_sbuffer_destroy (&sbuf);
        return -1;
    }
    *size_p = sbuf.size;
    *data_p = (uint8_t *) msgpack_sbuffer_release (&sbuf);
    return 0;
}

/* --- decoding ------------------------------------------------------------
 * A small reader over the msgpack wire format, so that every length is
 * checked against the bytes actually there before anything is allocated. */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} cursor_t;

typedef enum { V_NIL, V_BOOL, V_UINT, V_INT, V_STR, V_ARRAY, V_MAP, V_OTHER } vtype_t;

typedef struct {
    vtype_t type;
    uint64_t u;          /* V_UINT, V_BOOL, and the count of V_ARRAY / V_MAP */
    int64_t i;           /* V_INT (negative only) */
    const char *s;       /* V_STR bytes (not NUL-terminated) */
    size_t len;          /* V_STR length */
} value_t;

static int
take (cursor_t *c, size_t n, const uint8_t **out)
{
    if ((size_t) (c->end - c->p) < n)
        return -1;
    *out = c->p;
    c->p += n;
    return 0;
}

static uint64_t
be (const uint8_t *b, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | b [i];
    return v;
}

/* Reads one value's header (a string's bytes too). Returns -1 if truncated. */
static int
read_value (cursor_t *c, value_t *v)
{
    const uint8_t *b;
    if (take (c, 1, &b))
        return -1;
    uint8_t tag = b [0];
    memset (v, 0, sizeof *v);
    size_t n = 0;
    if (tag <= 0x7f) { v->type = V_UINT; v->u = tag; return 0; }
    if (tag >= 0xe0) { v->type = V_INT; v->i = (int8_t) tag; return 0; }
    if ((tag & 0xf0) == 0x80) { v->type = V_MAP; v->u = tag & 0x0f; return 0; }
    if ((tag & 0xf0) == 0x90) { v->type = V_ARRAY; v->u = tag & 0x0f; return 0; }
    if ((tag & 0xe0) == 0xa0) { v->type = V_STR; n = tag & 0x1f; goto str; }
    switch (tag) {
        case 0xc0: v->type = V_NIL; return 0;
        case 0xc2: v->type = V_BOOL; v->u = 0; return 0;
        case 0xc3: v->type = V_BOOL; v->u = 1; return 0;
        case 0xcc: case 0xcd: case 0xce: case 0xcf: {
            size_t w = (size_t) 1 << (tag - 0xcc);
            if (take (c, w, &b)) return -1;
            v->type = V_UINT; v->u = be (b, w);
            return 0;
        }
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            size_t w = (size_t) 1 << (tag - 0xd0);
            if (take (c, w, &b)) return -1;
            uint64_t raw = be (b, w);
            int64_t s;
            if (w == 1) s = (int8_t) raw;
            else if (w == 2) s = (int16_t) raw;
            else if (w == 4) s = (int32_t) raw;
            else memcpy (&s, &raw, sizeof s);
            if (s >= 0) { v->type = V_UINT; v->u = (uint64_t) s; }
            else { v->type = V_INT; v->i = s; }
            return 0;
        }
        case 0xd9: case 0xda: case 0xdb: {
            size_t w = (size_t) 1 << (tag - 0xd9);
            if (take (c, w, &b)) return -1;
            v->type = V_STR; n = (size_t) be (b, w);
            goto str;
        }
        case 0xdc: case 0xdd: {
            size_t w = tag == 0xdc ? 2 : 4;
            if (take (c, w, &b)) return -1;
            v->type = V_ARRAY; v->u = be (b, w);
            return 0;
        }
        case 0xde: case 0xdf: {
            size_t w = tag == 0xde ? 2 : 4;
            if (take (c, w, &b)) return -1;
            v->type = V_MAP; v->u = be (b, w);
            return 0;
        }
        default:
            v->type = V_OTHER;        /* bin, ext, float: none belong in our messages */
            return 0;
    }
str:
    if (take (c, n, &b))
        return -1;
    v->s = (const char *) b;
    v->len = n;
    return 0;
}

static const char *
vtype_name (vtype_t t)
{
    static const char *names [] = { "nil", "boolean", "integer", "integer", "string", "array",
                                    "map", "binary/float/ext" };
    return names [t];
}

static int
decode_roles (cs_msg_t *m, cursor_t *c, const value_t *arr, cs_msg_error_t *error)
{
    if (arr->u > CS_MSG_MAX_ROLES) {
        set_error (error, CS_MSG_E_TOO_LONG, "roles: %llu entries, at most %d",
                   (unsigned long long) arr->u, CS_MSG_MAX_ROLES);
        return -1;
    }
    m->present |= B (CS_F_ROLES);
    for (uint64_t i = 0; i < arr->u; i++) {
        value_t entry, role, start, end;
        if (read_value (c, &entry)) goto truncated;
        if (entry.type != V_ARRAY || entry.u != 3) {
            set_error (error, CS_MSG_E_WRONG_TYPE, "roles[%llu]: expected [role, start, end]",
                       (unsigned long long) i);
            return -1;
        }
        if (read_value (c, &role) || read_value (c, &start) || read_value (c, &end))
            goto truncated;
        if ((role.type != V_UINT && role.type != V_INT) || start.type != V_STR
            || end.type != V_STR) {
            set_error (error, CS_MSG_E_WRONG_TYPE, "roles[%llu]: expected [integer, string, "
                       "string]", (unsigned long long) i);
            return -1;
        }
        if (role.type == V_UINT && role.u > (uint64_t) INT64_MAX) {
            set_error (error, CS_MSG_E_BAD_VALUE, "roles[%llu]: role id out of range",
                       (unsigned long long) i);
            return -1;
        }
        char s [11], e [11];
        if (start.len != 10 || end.len != 10) {
            set_error (error, CS_MSG_E_BAD_VALUE, "roles[%llu]: dates must be YYYY-MM-DD",
                       (unsigned long long) i);
            return -1;
        }
        memcpy (s, start.s, 10); s [10] = 0;
        memcpy (e, end.s, 10); e [10] = 0;
        if (cs_msg_add_role (m, role.type == V_UINT ? (int64_t) role.u : role.i, s, e) != 0) {
            set_error (error, CS_MSG_E_BAD_VALUE, "roles[%llu]: '%s'..'%s' are not dates",
                       (unsigned long long) i, s, e);
            return -1;
        }
    }
    return 0;
truncated:
    set_error (error, CS_MSG_E_TRUNCATED, "roles: message ends inside the array");
    return -1;
}

static int
decode_ids (cs_msg_t *m, cursor_t *c, const value_t *arr, cs_msg_error_t *error)
{
    if (arr->u > CS_MSG_MAX_IDS) {
        set_error (error, CS_MSG_E_TOO_LONG, "ids: %llu entries, at most %d",
                   (unsigned long long) arr->u, CS_MSG_MAX_IDS);
        return -1;
    }
    m->present |= B (CS_F_IDS);
    for (uint64_t i = 0; i < arr->u; i++) {
        value_t v;
        if (read_value (c, &v)) {
            set_error (error, CS_MSG_E_TRUNCATED, "ids: message ends inside the array");
            return -1;
        }
        if (v.type != V_UINT || v.u > (uint64_t) INT64_MAX) {
            set_error (error, CS_MSG_E_WRONG_TYPE, "ids[%llu]: expected an unsigned integer",
                       (unsigned long long) i);
            return -1;
        }
        if (cs_msg_add_id (m, v.u) != 0) {
            set_error (error, CS_MSG_E_NOMEM, "ids: out of memory");
            return -1;
        }
    }
    return 0;
}

/* Skips a value whose header is v: a document's maps and arrays, at most
 * DOC_DEPTH deep. -1 when truncated or too deep. */
static int
skip_doc (cursor_t *c, const value_t *v, int depth)
{
    if (v->type != V_MAP && v->type != V_ARRAY)
        return v->type == V_OTHER ? -1 : 0;
    if (depth >= DOC_DEPTH || v->u > (uint64_t) (c->end - c->p))
        return -1;
    uint64_t n = v->type == V_MAP ? v->u * 2 : v->u;
    for (uint64_t i = 0; i < n; i++) {
        value_t inner;
        if (read_value (c, &inner) || skip_doc (c, &inner, depth + 1))
            return -1;
    }
    return 0;
}

/* The document whose header is v, read from c (already checked by skip_doc). */
static json_t *
decode_doc (cursor_t *c, const value_t *v, int depth, cs_msg_error_t *error)
{
    json_t *out = NULL;
    switch (v->type) {
        case V_NIL: return json_null ();
        case V_BOOL: return json_boolean (v->u);
        case V_INT: return json_integer (v->i);
        case V_UINT:
            if (v->u > (uint64_t) INT64_MAX)
                break;
            return json_integer ((json_int_t) v->u);
        case V_STR:
            if (!valid_utf8 ((const unsigned char *) v->s, v->len))
                break;
            return json_stringn (v->s, v->len);
        case V_ARRAY:
            out = json_array ();
            for (uint64_t i = 0; out && i < v->u; i++) {
                value_t inner;
                json_t *item = read_value (c, &inner) ? NULL : decode_doc (c, &inner, depth + 1, error);
                if (!item || json_array_append_new (out, item) != 0) {
                    json_decref (out);
                    return NULL;
                }
            }
            return out;
        case V_MAP:
            out = json_object ();
            for (uint64_t i = 0; out && i < v->u; i++) {
                value_t key, inner;
                char name [65];
                if (read_value (c, &key) || key.type != V_STR || key.len == 0 || key.len >= sizeof name
                    || !valid_utf8 ((const unsigned char *) key.s, key.len) || read_value (c, &inner)) {
                    set_error (error, CS_MSG_E_BAD_KEY, "body: a key that is not a short string");
                    json_decref (out);
                    return NULL;
                }
                memcpy (name, key.s, key.len);
                name [key.len] = 0;
                json_t *item = decode_doc (c, &inner, depth + 1, error);
                if (!item || json_object_set_new (out, name, item) != 0) {
                    json_decref (out);
                    return NULL;
                }
            }
            return out;
        default:
            break;
    }
    if (!error->code)
        set_error (error, CS_MSG_E_BAD_VALUE, "body: a value out of range or not UTF-8");
    return NULL;
}

static int
field_by_key (const char *key, size_t len)
{
    for (int f = 0; f < CS_F_COUNT_FIELDS; f++)
        if (strlen (s_fields [f].key) == len && memcmp (s_fields [f].key, key, len) == 0)
            return f;
    return -1;
}

cs_msg_t *
cs_msg_decode (const uint8_t *data, size_t size, cs_msg_error_t *error)
{
    cs_msg_error_t dummy;
    if (!error)
        error = &dummy;
    memset (error, 0, sizeof *error);
    if (size > CS_MSG_MAX_SIZE) {
        set_error (error, CS_MSG_E_TOO_BIG, "%zu bytes, more than %d", size, CS_MSG_MAX_SIZE);
        return NULL;
    }
    cursor_t c = { data, data + size };
    value_t top;
    if (!data || read_value (&c, &top)) {
        set_error (error, CS_MSG_E_TRUNCATED, "empty or truncated message");
        return NULL;
    }
    if (top.type != V_MAP) {
        set_error (error, CS_MSG_E_NOT_MAP, "the message is a %s, not a map",
                   vtype_name (top.type));
        return NULL;
    }
    /* Every entry takes at least two bytes: a count beyond that is a lie. */
    if (top.u > (uint64_t) (c.end - c.p) / 2 || top.u > 2 + CS_F_COUNT_FIELDS) {
        set_error (error, CS_MSG_E_TRUNCATED, "the map claims %llu entries",
                   (unsigned long long) top.u);
        return NULL;
    }

    /* "v" and "t" first, wherever they are: a quick scan of the keys. */
    cs_msg_t *m = NULL;
    int have_v = 0;
    uint64_t version = 0;
    char type_name [32] = "";
    cursor_t scan = c;
    for (uint64_t i = 0; i < top.u; i++) {
        value_t key, val;
        if (read_value (&scan, &key) || read_value (&scan, &val))
            goto truncated;
        if (key.type == V_STR && key.len == 1 && key.s [0] == 'v') {
            if (have_v) {
                set_error (error, CS_MSG_E_DUP_KEY, "key 'v' given twice");
                return NULL;
            }
            have_v = 1;
            if (val.type != V_UINT) {
                set_error (error, CS_MSG_E_WRONG_TYPE, "'v' is a %s, not an unsigned integer",
                           vtype_name (val.type));
                return NULL;
            }
            version = val.u;
        }
        else if (key.type == V_STR && key.len == 1 && key.s [0] == 't') {
            if (type_name [0]) {
                set_error (error, CS_MSG_E_DUP_KEY, "key 't' given twice");
                return NULL;
            }
            if (val.type != V_STR || val.len == 0 || val.len >= sizeof type_name) {
                set_error (error, CS_MSG_E_WRONG_TYPE, "'t' must be a short string");
                return NULL;
            }
            memcpy (type_name, val.s, val.len);
            type_name [val.len] = 0;
        }
        if (key.type == V_OTHER || val.type == V_OTHER) {
            /* their sizes are not read, so the rest cannot be trusted either */
            set_error (error, CS_MSG_E_WRONG_TYPE, "a binary, float or ext value");
            return NULL;
        }
        /* a document's contents, then other nested containers': only roles and ids have them */
        if (key.type == V_STR && key.len == 4 && !memcmp (key.s, "body", 4)) {
            if (skip_doc (&scan, &val, 0) != 0) {
                set_error (error, CS_MSG_E_WRONG_TYPE, "body: truncated, nested too deep or binary");
                return NULL;
            }
        }
        else if (val.type == V_ARRAY) {
            for (uint64_t k = 0; k < val.u; k++) {
                value_t inner;
                if (read_value (&scan, &inner))
                    goto truncated;
                if (inner.type == V_MAP || inner.type == V_OTHER) {
                    set_error (error, CS_MSG_E_WRONG_TYPE, "a map or binary inside an array");
                    return NULL;
                }
                if (inner.type == V_ARRAY) {
                    if (inner.u > 8) {
                        set_error (error, CS_MSG_E_WRONG_TYPE, "nested array too long");
                        return NULL;
                    }
                    for (uint64_t j = 0; j < inner.u; j++) {
                        value_t leaf;
                        if (read_value (&scan, &leaf))
                            goto truncated;
                        if (leaf.type == V_ARRAY || leaf.type == V_MAP || leaf.type == V_OTHER) {
                            set_error (error, CS_MSG_E_WRONG_TYPE, "arrays nested too deep");
                            return NULL;
                        }
                    }
                }
            }
        }
        else if (val.type == V_MAP) {
            set_error (error, CS_MSG_E_WRONG_TYPE, "a map inside the message");
            return NULL;
        }
    }
    if (scan.p != scan.end) {
        set_error (error, CS_MSG_E_TRAILING, "%zu bytes after the message",
                   (size_t) (scan.end - scan.p));
        return NULL;
    }
    if (!have_v) {
        set_error (error, CS_MSG_E_MISSING, "required key 'v' is missing");
        return NULL;
    }
    if (version != CS_MSG_VERSION) {
        set_error (error, CS_MSG_E_VERSION, "schema version %llu; this build speaks %d",
                   (unsigned long long) version, CS_MSG_VERSION);
        return NULL;
    }
    if (!type_name [0]) {
        set_error (error, CS_MSG_E_MISSING, "required key 't' is missing");
        return NULL;
    }
    cs_msg_type_t type = 0;
    for (int t = 1; t < CS_MSG_TYPE_COUNT; t++)
        if (strcmp (s_types [t].name, type_name) == 0)
            type = (cs_msg_type_t) t;
    if (!type) {
        set_error (error, CS_MSG_E_UNKNOWN_TYPE, "unknown message type '%s'", type_name);
        return NULL;
    }
    m = cs_msg_new (type);
    if (!m) {
        set_error (error, CS_MSG_E_NOMEM, "out of memory");
        return NULL;
    }
    uint64_t fields = s_types [type].required | s_types [type].optional;
    uint64_t seen = 0;
    for (uint64_t i = 0; i < top.u; i++) {
        value_t key, val;
        if (read_value (&c, &key) || read_value (&c, &val))
            goto truncated;
        if (key.type != V_STR || key.len == 0 || key.len > 16) {
            set_error (error, CS_MSG_E_BAD_KEY, "%s: a key that is not a short string", type_name);
            goto fail;
        }
        if (key.len == 1 && (key.s [0] == 'v' || key.s [0] == 't'))
            continue;
        int f = field_by_key (key.s, key.len);
        if (f < 0 || !(fields & B (f))) {
            set_error (error, CS_MSG_E_UNKNOWN_KEY, "%s: unknown key '%.*s'", type_name,
                       (int) key.len, key.s);
            goto fail;
        }
        if (seen & B (f)) {
            set_error (error, CS_MSG_E_DUP_KEY, "%s: key '%s' given twice", type_name,
                       s_fields [f].key);
            goto fail;
        }
        seen |= B (f);
        kind_t kind = s_fields [f].kind;
        int ok_type = (kind == K_UINT && val.type == V_UINT)
                      || (kind == K_INT && (val.type == V_UINT || val.type == V_INT))
                      || (kind == K_BOOL && val.type == V_BOOL)
                      || ((kind == K_STR || kind == K_TIME) && val.type == V_STR)
                      || ((kind == K_ROLES || kind == K_IDS) && val.type == V_ARRAY)
                      || (kind == K_DOC && (val.type == V_MAP || val.type == V_ARRAY));
        if (!ok_type) {
            static const char *want [] = { "an unsigned integer", "an integer", "a boolean",
                                           "a string", "a time string", "an array", "an array",
                                           "a map or an array" };
            set_error (error, CS_MSG_E_WRONG_TYPE, "%s: '%s' is a %s, not %s", type_name,
                       s_fields [f].key, vtype_name (val.type), want [kind]);
            goto fail;
        }
        switch (kind) {
            case K_UINT:
            case K_INT:
                if (val.type == V_UINT && val.u > (uint64_t) INT64_MAX) {
                    set_error (error, CS_MSG_E_BAD_VALUE, "%s: '%s' is out of range", type_name,
                               s_fields [f].key);
                    goto fail;
                }
                m->num [f] = val.type == V_UINT ? (int64_t) val.u : val.i;
                m->present |= B (f);
                break;
            case K_BOOL:
                m->num [f] = (int64_t) val.u;
                m->present |= B (f);
                break;
            case K_STR:
            case K_TIME:
                if (val.len > s_fields [f].max) {
                    set_error (error, CS_MSG_E_TOO_LONG, "%s: '%s' is %zu bytes, at most %zu",
                               type_name, s_fields [f].key, val.len, s_fields [f].max);
                    goto fail;
                }
                if (set_str_n (m, (cs_field_t) f, val.s, val.len) != 0) {
                    set_error (error, CS_MSG_E_BAD_VALUE, "%s: '%s' %s", type_name,
                               s_fields [f].key, kind == K_TIME
                               ? "is not a time YYYY-MM-DDTHH:MM:SS" : "is not valid UTF-8");
                    goto fail;
                }
                break;
            case K_ROLES:
                if (decode_roles (m, &c, &val, error) != 0)
                    goto fail;
                break;
            case K_IDS:
                if (decode_ids (m, &c, &val, error) != 0)
                    goto fail;
                break;
            case K_DOC:
                m->doc = decode_doc (&c, &val, 0, error);
                if (!m->doc) {
                    if (!error->code)
                        set_error (error, CS_MSG_E_NOMEM, "body: out of memory");
                    goto fail;
                }
                m->present |= B (f);
                break;
        }
    }
    uint64_t missing = s_types [type].required & ~seen;
    for (int f = 0; f < CS_F_COUNT_FIELDS; f++)
        if (missing & B (f)) {
            set_error (error, CS_MSG_E_MISSING, "%s: required key '%s' is missing", type_name,
                       s_fields [f].key);
            goto fail;
        }
    return m;
truncated:
    set_error (error, CS_MSG_E_TRUNCATED, "the message ends inside a value");
fail:
    cs_msg_destroy (&m);
    return NULL;
}

const char *
cs_msg_strerror (cs_msg_errcode_t code)
{
    switch (code) {
        case CS_MSG_E_NONE: return "no error";
        case CS_MSG_E_TRUNCATED: return "truncated";
        case CS_MSG_E_TRAILING: return "trailing bytes";
        case CS_MSG_E_TOO_BIG: return "message too big";
        case CS_MSG_E_NOT_MAP: return "not a map";
        case CS_MSG_E_BAD_KEY: return "bad key";
        case CS_MSG_E_UNKNOWN_KEY: return "unknown key";
        case CS_MSG_E_DUP_KEY: return "duplicate key";
        case CS_MSG_E_WRONG_TYPE: return "wrong type";
        case CS_MSG_E_TOO_LONG: return "too long";
        case CS_MSG_E_BAD_VALUE: return "bad value";
        case CS_MSG_E_MISSING: return "missing key";
        case CS_MSG_E_VERSION: return "unsupported version";
        case CS_MSG_E_UNKNOWN_TYPE: return "unknown type";
        case CS_MSG_E_NOMEM: return "out of memory";
    }
    return "unknown error";
}

char *
cs_msg_to_json (const cs_msg_t *self)
{
    json_t *j = json_object ();
    if (!j)
        return NULL;
    json_object_set_new (j, "t", json_string (s_types [self->type].name));
    for (int f = 0; f < CS_F_COUNT_FIELDS; f++) {
        if (!(self->present & B (f)))
            continue;
        json_t *v = NULL;
        switch (s_fields [f].kind) {
            case K_UINT:
            case K_INT: v = json_integer (self->num [f]); break;
            case K_BOOL: v = json_boolean (self->num [f]); break;
            case K_STR:
            case K_TIME: v = json_string (self->str [f]); break;
            case K_ROLES:
                v = json_array ();
                for (size_t i = 0; i < self->role_count; i++)
                    json_array_append_new (v, json_pack ("[I, s, s]", (json_int_t) self->roles [i].role,
                                                         self->roles [i].start, self->roles [i].end));
                break;
            case K_IDS:
                v = json_array ();
                for (size_t i = 0; i < self->id_count; i++)
                    json_array_append_new (v, json_integer ((json_int_t) self->ids [i]));
                break;
            case K_DOC: v = json_incref (self->doc); break;
        }
        json_object_set_new (j, s_fields [f].key, v);
    }
    char *text = json_dumps (j, JSON_COMPACT);
    json_decref (j);
    return text;
}

cs_msg_t *
cs_msg_from_json (const char *text, cs_msg_error_t *error)
{
    cs_msg_error_t dummy;
    if (!error)
        error = &dummy;
    memset (error, 0, sizeof *error);
    json_error_t jerr;
    json_t *j = json_loads (text, 0, &jerr);
    if (!json_is_object (j)) {
        set_error (error, CS_MSG_E_NOT_MAP, "not a JSON object: %s", j ? "" : jerr.text);
        json_decref (j);
        return NULL;
    }
    const char *t = json_string_value (json_object_get (j, "t"));
    cs_msg_type_t type = 0;
    for (int i = 1; t && i < CS_MSG_TYPE_COUNT; i++)
        if (!strcmp (s_types [i].name, t))
            type = (cs_msg_type_t) i;
    cs_msg_t *m = type ? cs_msg_new (type) : NULL;
    if (!m) {
        set_error (error, CS_MSG_E_UNKNOWN_TYPE, "unknown message type '%s'", t ? t : "");
        json_decref (j);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach (j, key, v) {
        if (!strcmp (key, "t") || !strcmp (key, "v"))
            continue;
        int f = field_by_key (key, strlen (key));
        int rc = -1;
        if (f >= 0) {
            switch (s_fields [f].kind) {
                case K_UINT:
                case K_INT: rc = json_is_integer (v) ? cs_msg_set_int (m, f, json_integer_value (v)) : -1; break;
                case K_BOOL: rc = json_is_boolean (v) ? cs_msg_set_bool (m, f, json_is_true (v)) : -1; break;
                case K_STR:
                case K_TIME: rc = json_is_string (v) ? cs_msg_set_str (m, f, json_string_value (v)) : -1; break;
                case K_ROLES: {
                    size_t i;
                    json_t *r;
                    rc = json_is_array (v) ? 0 : -1;
                    json_array_foreach (v, i, r)
                        if (rc == 0)
                            rc = cs_msg_add_role (m, json_integer_value (json_array_get (r, 0)),
                                                  json_string_value (json_array_get (r, 1)),
                                                  json_string_value (json_array_get (r, 2)));
                    break;
                }
                case K_IDS: {
                    size_t i;
                    json_t *id;
                    rc = json_is_array (v) ? 0 : -1;
                    json_array_foreach (v, i, id)
                        if (rc == 0)
                            rc = cs_msg_add_id (m, (uint64_t) json_integer_value (id));
                    break;
                }
                case K_DOC: rc = cs_msg_set_doc (m, f, v); break;
            }
        }
        if (rc != 0) {
            set_error (error, CS_MSG_E_BAD_VALUE, "%s: bad or unknown key '%s'", t, key);
            cs_msg_destroy (&m);
            break;
        }
    }
    json_decref (j);
    if (m && check_required (m, error) != 0)
        cs_msg_destroy (&m);
    return m;
}
