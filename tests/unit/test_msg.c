#include "harness.h"
#include "common/msg.h"

#include <msgpack.h>

/* Encodes m, decodes the bytes, and returns the copy (NULL on failure). */
static cs_msg_t *
round_trip (const cs_msg_t *m)
{
    uint8_t *data;
    size_t size;
    cs_msg_error_t err;
    if (cs_msg_encode (m, &data, &size, &err) != 0) {
        cs_test_fail (__FILE__, __LINE__, "encode: %s", err.text);
        return NULL;
    }
    cs_msg_t *copy = cs_msg_decode (data, size, &err);
    if (!copy)
        cs_test_fail (__FILE__, __LINE__, "decode: %s", err.text);
    free (data);
    return copy;
}

static cs_msg_t *
sample_member (void)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_MEMBER);
    cs_msg_set_int (m, CS_F_CYCLE, 42);
    cs_msg_set_int (m, CS_F_ORG, 1234);
    cs_msg_set_int (m, CS_F_MID, INT64_C (5000000000));      /* above 2^32 */
    cs_msg_set_str (m, CS_F_EMAIL, " Asa.Oberg@Example.se ");
    cs_msg_set_str (m, CS_F_FIRST, "Åsa");
    cs_msg_set_str (m, CS_F_LAST, "Öberg-Ståhl & Co");
    cs_msg_set_bool (m, CS_F_INACTIVE, 0);
    cs_msg_add_role (m, 3126, "2025-01-01", "2025-10-01");
    cs_msg_add_role (m, 3127, "2025-10-02", "2025-11-01");
    return m;
}

TEST (member_round_trip)
{
    cs_msg_t *m = sample_member ();
    cs_msg_t *c = round_trip (m);
    REQUIRE (c);
    CHECK_INT (cs_msg_type (c), CS_MSG_MEMBER);
    CHECK_INT (cs_msg_int (c, CS_F_CYCLE), 42);
    CHECK_INT (cs_msg_int (c, CS_F_MID), INT64_C (5000000000));
    CHECK_STR (cs_msg_str (c, CS_F_EMAIL), " Asa.Oberg@Example.se ");
    CHECK_STR (cs_msg_str (c, CS_F_LAST), "Öberg-Ståhl & Co");
    CHECK (cs_msg_has (c, CS_F_INACTIVE) && !cs_msg_bool (c, CS_F_INACTIVE));
    CHECK_INT (cs_msg_role_count (c), 2);
    CHECK_INT (cs_msg_role (c, 1)->role, 3127);
    CHECK_STR (cs_msg_role (c, 1)->start, "2025-10-02");
    CHECK_STR (cs_msg_role (c, 1)->end, "2025-11-01");
    CHECK (cs_msg_role (c, 2) == NULL);
    CHECK (!cs_msg_has (c, CS_F_DEV));
    CHECK (cs_msg_str (c, CS_F_DEV) == NULL);
    cs_msg_destroy (&c);
    cs_msg_destroy (&m);
    CHECK (m == NULL);
    cs_msg_destroy (&m);
}

TEST (every_type_round_trips)
{
    cs_msg_t *m;
    /* cycle_end */
    m = cs_msg_new (CS_MSG_CYCLE_END);
    cs_msg_set_int (m, CS_F_CYCLE, 7);
    cs_msg_set_bool (m, CS_F_FULL, 1);
    cs_msg_set_bool (m, CS_F_OK, 0);
    cs_msg_set_int (m, CS_F_COUNT, 1312);
    cs_msg_set_str (m, CS_F_ERROR, "export truncated after 1312 members");
    cs_msg_t *c = round_trip (m);
    REQUIRE (c);
    CHECK (cs_msg_bool (c, CS_F_FULL) && !cs_msg_bool (c, CS_F_OK));
    CHECK_STR (cs_msg_str (c, CS_F_ERROR), "export truncated after 1312 members");
    cs_msg_destroy (&c);
    cs_msg_destroy (&m);
    /* scan_user */
    m = cs_msg_new (CS_MSG_SCAN_USER);
    cs_msg_set_str (m, CS_F_DEV, "door1");
    cs_msg_set_int (m, CS_F_SCAN, 3);
    cs_msg_set_str (m, CS_F_EMPNO, "1042");
    cs_msg_set_str (m, CS_F_TAG, "jane.doe@example.com");
    cs_msg_set_bool (m, CS_F_ENABLE, 1);
    cs_msg_set_str (m, CS_F_BEGIN, "2025-01-01T00:00:00");
    cs_msg_set_str (m, CS_F_END, "2037-12-31T23:59:59");
    c = round_trip (m);
    REQUIRE (c);
    CHECK_STR (cs_msg_str (c, CS_F_END), "2037-12-31T23:59:59");
    cs_msg_destroy (&c);
    cs_msg_destroy (&m);
    /* result */
    m = cs_msg_new (CS_MSG_RESULT);
    cs_msg_set_int (m, CS_F_ID, 99);
    cs_msg_set_str (m, CS_F_DEV, "door2");
    cs_msg_set_bool (m, CS_F_OK, 0);
    cs_msg_set_str (m, CS_F_CLASS, "permanent");
    cs_msg_set_int (m, CS_F_HTTP, 400);
    cs_msg_set_int (m, CS_F_CODE, 6);
    cs_msg_set_str (m, CS_F_SUB, "badJsonContent");
    cs_msg_set_str (m, CS_F_MSG, "1. The message has only URL ... is wrong.employeeNo");
    cs_msg_set_int (m, CS_F_TRIES, 3);
    c = round_trip (m);
    REQUIRE (c);
    CHECK_INT (cs_msg_int (c, CS_F_HTTP), 400);
    CHECK_STR (cs_msg_str (c, CS_F_SUB), "badJsonContent");
    cs_msg_destroy (&c);
    cs_msg_destroy (&m);
    /* event with a negative int */
    m = cs_msg_new (CS_MSG_EVENT);
    cs_msg_set_int (m, CS_F_SEQ, 1000001);
    cs_msg_set_int (m, CS_F_TS, INT64_C (1763800000123));
    cs_msg_set_str (m, CS_F_KIND, "applied");
    cs_msg_set_int (m, CS_F_CODE, -1);
    cs_msg_set_str (m, CS_F_PREV_END, "2025-10-01T23:59:59");
    cs_msg_set_str (m, CS_F_END, "2025-11-01T23:59:59");
    c = round_trip (m);
    REQUIRE (c);
    CHECK_INT (cs_msg_int (c, CS_F_CODE), -1);
    CHECK_INT (cs_msg_int (c, CS_F_TS), INT64_C (1763800000123));
    CHECK_STR (cs_msg_str (c, CS_F_PREV_END), "2025-10-01T23:59:59");
    cs_msg_destroy (&c);
    cs_msg_destroy (&m);
    /* a replay request with ids */
    m = cs_msg_new (CS_MSG_REQUEST);
    cs_msg_set_int (m, CS_F_REQ, 5);
    cs_msg_set_str (m, CS_F_OP, "replay");
    for (uint64_t i = 0; i < 40; i++)
        CHECK (cs_msg_add_id (m, 1000 + i) == 0);
    c = round_trip (m);
    REQUIRE (c);
    CHECK_INT (cs_msg_id_count (c), 40);
    CHECK_INT (cs_msg_id (c, 39), 1039);
    CHECK_INT (cs_msg_id (c, 40), 0);
    cs_msg_destroy (&c);
    cs_msg_destroy (&m);
    /* the small ones */
    static const cs_msg_type_t small [] = { CS_MSG_ACK, CS_MSG_CYCLE_BEGIN, CS_MSG_SCAN_BEGIN,
                                            CS_MSG_SCAN_END, CS_MSG_COMMAND, CS_MSG_HEALTH,
                                            CS_MSG_HEARTBEAT };
    for (size_t i = 0; i < sizeof small / sizeof *small; i++) {
        m = cs_msg_new (small [i]);
        cs_msg_set_int (m, CS_F_SEQ, 1);
        cs_msg_set_int (m, CS_F_CYCLE, 1);
        cs_msg_set_bool (m, CS_F_FULL, 0);
        cs_msg_set_str (m, CS_F_DEV, "d");
        cs_msg_set_int (m, CS_F_SCAN, 1);
        cs_msg_set_bool (m, CS_F_OK, 1);
        cs_msg_set_int (m, CS_F_COUNT, 0);
        cs_msg_set_int (m, CS_F_ID, 1);
        cs_msg_set_str (m, CS_F_OP, "scan");
        cs_msg_set_str (m, CS_F_STATE, "ok");
        cs_msg_set_int (m, CS_F_REQ, 1);
        cs_msg_set_int (m, CS_F_CAP, 3000);
        cs_msg_set_str (m, CS_F_STAGE, "pusher");
        c = round_trip (m);
        CHECK (c && cs_msg_type (c) == small [i]);
        CHECK_STR (cs_msg_type_name (small [i]), cs_msg_type_name (cs_msg_type (c)));
        if (small [i] == CS_MSG_SCAN_END)
            CHECK_INT (cs_msg_int (c, CS_F_CAP), 3000);
        cs_msg_destroy (&c);
        cs_msg_destroy (&m);
    }
}

TEST (setters_refuse)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_ACK);
    CHECK (cs_msg_set_str (m, CS_F_EMAIL, "a@b.se") == -1);      /* not an ack field */
    CHECK (cs_msg_set_int (m, CS_F_SEQ, -1) == -1);              /* uint */
    CHECK (cs_msg_set_bool (m, CS_F_SEQ, 1) == -1);              /* wrong kind */
    CHECK (cs_msg_set_int (m, CS_F_COUNT_FIELDS, 1) == -1);
    cs_msg_destroy (&m);
    m = cs_msg_new (CS_MSG_SCAN_USER);
    CHECK (cs_msg_set_str (m, CS_F_BEGIN, "2025-01-01 00:00:00") == -1);
    CHECK (cs_msg_set_str (m, CS_F_BEGIN, "2025-02-30T00:00:00") == -1);
    CHECK (cs_msg_set_str (m, CS_F_NAME, "bad \xC3\x28 utf8") == -1);
    CHECK (cs_msg_set_str (m, CS_F_NAME, "overlong \xC0\xAF") == -1);
    CHECK (cs_msg_set_str (m, CS_F_NAME, "surrogate \xED\xA0\x80") == -1);
    CHECK (cs_msg_set_str (m, CS_F_NAME, NULL) == -1);
    char big [600];
    memset (big, 'x', sizeof big - 1);
    big [sizeof big - 1] = 0;
    CHECK (cs_msg_set_str (m, CS_F_NAME, big) == -1);
    CHECK (cs_msg_set_str (m, CS_F_EMPNO, "123456789012345678901234567890123") == -1);
    CHECK (!cs_msg_has (m, CS_F_NAME));
    cs_msg_destroy (&m);
    m = cs_msg_new (CS_MSG_MEMBER);
    CHECK (cs_msg_add_role (m, 1, "2025-13-01", "2025-12-31") == -1);
    CHECK (cs_msg_add_role (m, 1, "2025-01-01", "yesterday") == -1);
    for (int i = 0; i < CS_MSG_MAX_ROLES; i++)
        cs_msg_add_role (m, i, "2025-01-01", "2025-12-31");
    CHECK (cs_msg_add_role (m, 999, "2025-01-01", "2025-12-31") == -1);
    cs_msg_destroy (&m);
    CHECK (cs_msg_new (0) == NULL);
    CHECK (cs_msg_new (CS_MSG_TYPE_COUNT) == NULL);
}

TEST (encode_requires_required_keys)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_COMMAND);
    cs_msg_set_int (m, CS_F_ID, 1);
    cs_msg_set_str (m, CS_F_DEV, "door1");
    uint8_t *data;
    size_t size;
    cs_msg_error_t err;
    CHECK (cs_msg_encode (m, &data, &size, &err) == -1);
    CHECK_INT (err.code, CS_MSG_E_MISSING);
    CHECK_HAS (err.text, "command: required key 'op' is missing");
    CHECK (data == NULL);
    cs_msg_destroy (&m);
}

/* Builds a message with msgpack-c's packer, as a foreign peer would. */
typedef struct {
    msgpack_sbuffer buf;
    msgpack_packer pk;
} raw_t;

static void
raw_init (raw_t *r)
{
    msgpack_sbuffer_init (&r->buf);
    msgpack_packer_init (&r->pk, &r->buf, msgpack_sbuffer_write);
}

static void
raw_str (raw_t *r, const char *s)
{
    msgpack_pack_str (&r->pk, strlen (s));
    msgpack_pack_str_body (&r->pk, s, strlen (s));
}

static void
raw_header (raw_t *r, size_t entries, uint64_t version, const char *type)
{
    msgpack_pack_map (&r->pk, entries);
    raw_str (r, "v");
    msgpack_pack_uint64 (&r->pk, version);
    raw_str (r, "t");
    raw_str (r, type);
}

static cs_msg_errcode_t
decode_raw (raw_t *r, char *text, size_t size)
{
    cs_msg_error_t err;
    cs_msg_t *m = cs_msg_decode ((const uint8_t *) r->buf.data, r->buf.size, &err);
    msgpack_sbuffer_destroy (&r->buf);
    if (m) {
        cs_msg_destroy (&m);
        return CS_MSG_E_NONE;
    }
    if (text)
        snprintf (text, size, "%s", err.text);
    return err.code;
}

TEST (foreign_encoder_accepted)
{
    /* keys in another order, small ints as fixints, negative as int8 */
    raw_t r;
    raw_init (&r);
    msgpack_pack_map (&r.pk, 3);
    raw_str (&r, "seq");
    msgpack_pack_uint8 (&r.pk, 9);
    raw_str (&r, "t");
    raw_str (&r, "ack");
    raw_str (&r, "v");
    msgpack_pack_uint64 (&r.pk, 1);
    CHECK_INT (decode_raw (&r, NULL, 0), CS_MSG_E_NONE);
    /* our bytes decode with msgpack-c */
    cs_msg_t *m = sample_member ();
    uint8_t *data;
    size_t size;
    REQUIRE (cs_msg_encode (m, &data, &size, NULL) == 0);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t off = 0;
    CHECK (msgpack_unpack_next (&up, (const char *) data, size, &off) == MSGPACK_UNPACK_SUCCESS);
    CHECK_INT (off, size);
    CHECK (up.data.type == MSGPACK_OBJECT_MAP);
    CHECK_INT (up.data.via.map.size, 10);
    msgpack_unpacked_destroy (&up);
    free (data);
    cs_msg_destroy (&m);
}

TEST (hostile_structure)
{
    char text [160];
    raw_t r;
    /* not a map */
    raw_init (&r);
    msgpack_pack_array (&r.pk, 0);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_NOT_MAP);
    /* empty input */
    CHECK (cs_msg_decode ((const uint8_t *) "", 0, NULL) == NULL);
    CHECK (cs_msg_decode (NULL, 0, NULL) == NULL);
    /* trailing bytes */
    raw_init (&r);
    raw_header (&r, 3, 1, "ack");
    raw_str (&r, "seq");
    msgpack_pack_uint64 (&r.pk, 1);
    msgpack_pack_nil (&r.pk);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_TRAILING);
    /* version 2, unknown type, missing v and t */
    raw_init (&r);
    raw_header (&r, 3, 2, "ack");
    raw_str (&r, "seq");
    msgpack_pack_uint64 (&r.pk, 1);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_VERSION);
    raw_init (&r);
    raw_header (&r, 2, 1, "launch_missiles");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_UNKNOWN_TYPE);
    CHECK_HAS (text, "launch_missiles");
    raw_init (&r);
    msgpack_pack_map (&r.pk, 1);
    raw_str (&r, "t");
    raw_str (&r, "ack");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_MISSING);
    /* a member without its roles array */
    raw_init (&r);
    raw_header (&r, 4, 1, "member");
    raw_str (&r, "c");
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "org");
    msgpack_pack_uint64 (&r.pk, 1);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_MISSING);
    CHECK_HAS (text, "'roles'");
    /* missing required key, unknown key, duplicate key */
    raw_init (&r);
    raw_header (&r, 2, 1, "ack");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_MISSING);
    CHECK_HAS (text, "'seq'");
    raw_init (&r);
    raw_header (&r, 4, 1, "ack");
    raw_str (&r, "seq");
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "email");
    raw_str (&r, "a@b.se");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_UNKNOWN_KEY);
    raw_init (&r);
    raw_header (&r, 4, 1, "ack");
    raw_str (&r, "seq");
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "seq");
    msgpack_pack_uint64 (&r.pk, 2);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_DUP_KEY);
    raw_init (&r);
    raw_header (&r, 3, 1, "ack");
    msgpack_pack_uint64 (&r.pk, 7);            /* an integer key */
    msgpack_pack_uint64 (&r.pk, 1);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_BAD_KEY);
}

TEST (hostile_values)
{
    char text [160];
    raw_t r;
    /* wrong types: string for uint, negative for uint, float, nil, bin */
    raw_init (&r);
    raw_header (&r, 3, 1, "ack");
    raw_str (&r, "seq");
    raw_str (&r, "1");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_WRONG_TYPE);
    CHECK_HAS (text, "'seq' is a string, not an unsigned integer");
    raw_init (&r);
    raw_header (&r, 3, 1, "ack");
    raw_str (&r, "seq");
    msgpack_pack_int64 (&r.pk, -5);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_WRONG_TYPE);
    raw_init (&r);
    raw_header (&r, 3, 1, "ack");
    raw_str (&r, "seq");
    msgpack_pack_double (&r.pk, 1.0);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_WRONG_TYPE);
    raw_init (&r);
    raw_header (&r, 3, 1, "ack");
    raw_str (&r, "seq");
    msgpack_pack_nil (&r.pk);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_WRONG_TYPE);
    raw_init (&r);
    raw_header (&r, 3, 1, "ack");
    raw_str (&r, "seq");
    msgpack_pack_uint64 (&r.pk, UINT64_MAX);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_BAD_VALUE);
    /* oversized string, bad UTF-8, bad time */
    char big [3000];
    memset (big, 'x', sizeof big - 1);
    big [sizeof big - 1] = 0;
    raw_init (&r);
    raw_header (&r, 6, 1, "health");
    raw_str (&r, "dev");
    raw_str (&r, "d");
    raw_str (&r, "state");
    raw_str (&r, "ok");
    raw_str (&r, "msg");
    raw_str (&r, big);
    raw_str (&r, "until");
    msgpack_pack_uint64 (&r.pk, 1);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_TOO_LONG);
    CHECK_HAS (text, "'msg' is 2999 bytes, at most 2048");
    raw_init (&r);
    raw_header (&r, 4, 1, "health");
    raw_str (&r, "dev");
    raw_str (&r, "d\xff");
    raw_str (&r, "state");
    raw_str (&r, "ok");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_BAD_VALUE);
    raw_init (&r);
    raw_header (&r, 4, 1, "health");
    raw_str (&r, "dev");
    msgpack_pack_str (&r.pk, 3);
    msgpack_pack_str_body (&r.pk, "a\0b", 3);      /* an embedded NUL */
    raw_str (&r, "state");
    raw_str (&r, "ok");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_BAD_VALUE);
    raw_init (&r);
    raw_header (&r, 6, 1, "scan_user");
    raw_str (&r, "dev");
    raw_str (&r, "d");
    raw_str (&r, "scan");
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "no");
    raw_str (&r, "1");
    raw_str (&r, "end");
    raw_str (&r, "2037-12-31T23:59:60");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_BAD_VALUE);
    CHECK_HAS (text, "'end' is not a time");
    /* a role entry of the wrong shape, and impossible role dates */
    raw_init (&r);
    raw_header (&r, 5, 1, "member");
    raw_str (&r, "c");
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "org");
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "roles");
    msgpack_pack_array (&r.pk, 1);
    msgpack_pack_array (&r.pk, 2);
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "2025-01-01");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_WRONG_TYPE);
    raw_init (&r);
    raw_header (&r, 5, 1, "member");
    raw_str (&r, "c");
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "org");
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "roles");
    msgpack_pack_array (&r.pk, 1);
    msgpack_pack_array (&r.pk, 3);
    msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "2023-02-29");
    raw_str (&r, "2025-01-01");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_BAD_VALUE);
    /* a map nested where none belongs */
    raw_init (&r);
    raw_header (&r, 3, 1, "ack");
    raw_str (&r, "seq");
    msgpack_pack_map (&r.pk, 0);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_WRONG_TYPE);
}

TEST (lying_lengths)
{
    /* headers that claim far more than the bytes there: nothing is allocated */
    static const uint8_t str32 [] = { 0x82, 0xa1, 'v', 0x01, 0xa1, 't', 0xdb, 0xff, 0xff, 0xff,
                                      0xff, 'a' };
    static const uint8_t map32 [] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01 };
    static const uint8_t arr32 [] = { 0x85, 0xa1, 'v', 0x01, 0xa1, 't', 0xa6, 'r', 'e', 'p',
                                      'l', 'a', 'y', 0xa3, 'r', 'e', 'q', 0x01, 0xa3, 'i', 'd',
                                      's', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 };
    static const uint8_t ids_max [] = { 0x84, 0xa1, 'v', 0x01, 0xa1, 't', 0xa6, 'r', 'e', 'p',
                                        'l', 'a', 'y', 0xa3, 'r', 'e', 'q', 0x01, 0xa3, 'i',
                                        'd', 's', 0xdc, 0x03, 0xe9 };   /* 1001 ids claimed */
    cs_msg_error_t err;
    CHECK (cs_msg_decode (str32, sizeof str32, &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_TRUNCATED);
    CHECK (cs_msg_decode (map32, sizeof map32, &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_TRUNCATED);
    CHECK (cs_msg_decode (arr32, sizeof arr32, &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_TRUNCATED);
    CHECK (cs_msg_decode (ids_max, sizeof ids_max, &err) == NULL);
    CHECK (err.code == CS_MSG_E_TRUNCATED || err.code == CS_MSG_E_TOO_LONG);
    uint8_t *huge = calloc (1, CS_MSG_MAX_SIZE + 1);
    CHECK (cs_msg_decode (huge, CS_MSG_MAX_SIZE + 1, &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_TOO_BIG);
    free (huge);
}

TEST (every_truncation_fails_cleanly)
{
    cs_msg_t *m = sample_member ();
    uint8_t *data;
    size_t size;
    REQUIRE (cs_msg_encode (m, &data, &size, NULL) == 0);
    int accepted = 0;
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc (n ? n : 1);    /* exact size: ASan sees any overread */
        memcpy (copy, data, n);
        cs_msg_t *d = cs_msg_decode (copy, n, NULL);
        accepted += d != NULL;
        cs_msg_destroy (&d);
        free (copy);
    }
    CHECK_INT (accepted, 0);
    free (data);
    cs_msg_destroy (&m);
}

TEST (random_mutations_never_crash)
{
    cs_msg_t *m = sample_member ();
    uint8_t *data;
    size_t size;
    REQUIRE (cs_msg_encode (m, &data, &size, NULL) == 0);
    srand (20261122);
    int decoded = 0;
    for (int round = 0; round < 20000; round++) {
        uint8_t *copy = malloc (size);
        memcpy (copy, data, size);
        int flips = 1 + rand () % 4;
        for (int k = 0; k < flips; k++)
            copy [rand () % size] = (uint8_t) rand ();
        cs_msg_t *d = cs_msg_decode (copy, size, NULL);
        if (d) {
            decoded++;
            /* whatever is accepted re-encodes */
            uint8_t *again;
            size_t again_size;
            CHECK (cs_msg_encode (d, &again, &again_size, NULL) == 0);
            free (again);
        }
        cs_msg_destroy (&d);
        free (copy);
    }
    CHECK (decoded < 20000);
    free (data);
    cs_msg_destroy (&m);
}

TEST (empty_roles_and_json)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_MEMBER);
    cs_msg_set_int (m, CS_F_CYCLE, 1);
    cs_msg_set_int (m, CS_F_ORG, 1234);
    cs_msg_set_str (m, CS_F_LAST, "Lind \"the elder\"");
    cs_msg_t *c = round_trip (m);      /* a member with no roles is still a member */
    REQUIRE (c);
    CHECK (cs_msg_has (c, CS_F_ROLES));
    CHECK_INT (cs_msg_role_count (c), 0);
    char *text = cs_msg_to_json (c);
    CHECK_STR (text, "{\"t\":\"member\",\"c\":1,\"org\":1234,\"ln\":\"Lind \\\"the elder\\\"\",\"roles\":[]}");
    free (text);
    cs_msg_destroy (&c);
    cs_msg_destroy (&m);
}

TEST (json_round_trip)
{
    cs_msg_t *m = sample_member ();
    char *text = cs_msg_to_json (m);
    cs_msg_error_t err;
    cs_msg_t *back = cs_msg_from_json (text, &err);
    REQUIRE (back);
    char *again = cs_msg_to_json (back);
    CHECK_STR (again, text);
    free (text);
    free (again);
    cs_msg_destroy (&back);
    cs_msg_destroy (&m);
    CHECK (cs_msg_from_json ("[1]", &err) == NULL);
    CHECK (cs_msg_from_json ("{\"t\":\"nope\"}", &err) == NULL);
    CHECK (cs_msg_from_json ("{\"t\":\"ack\",\"seq\":\"1\"}", &err) == NULL);
    CHECK (cs_msg_from_json ("{\"t\":\"ack\"}", &err) == NULL);
    CHECK_INT (err.code, CS_MSG_E_MISSING);
    CHECK (cs_msg_from_json ("{\"t\":\"ack\",\"seq\":1,\"zzz\":1}", &err) == NULL);
}

#include <jansson.h>

TEST (answer_document_round_trips)
{
    json_t *body = json_pack ("{s:i, s:s, s:b, s:n, s:[{s:s, s:I}, {s:s, s:I}], s:{s:{s:[i]}}}",
                              "held", 3, "msg", "Åsa's card", "ok", 1, "none",
                              "rows", "device", "door1", "id", (json_int_t) -5,
                              "device", "door2", "id", (json_int_t) INT64_MAX,
                              "deep", "er", "list", 7);
    cs_msg_t *m = cs_msg_new (CS_MSG_ANSWER);
    cs_msg_set_int (m, CS_F_REQ, 77);
    cs_msg_set_bool (m, CS_F_OK, 1);
    cs_msg_set_bool (m, CS_F_MORE, 1);
    REQUIRE (cs_msg_set_doc (m, CS_F_BODY, body) == 0);
    cs_msg_t *c = round_trip (m);
    REQUIRE (c);
    CHECK (json_equal (cs_msg_doc (c, CS_F_BODY), body));
    CHECK (cs_msg_bool (c, CS_F_MORE));
    /* and through JSON, as tools see it */
    char *text = cs_msg_to_json (c);
    cs_msg_t *back = cs_msg_from_json (text, NULL);
    REQUIRE (back);
    CHECK (json_equal (cs_msg_doc (back, CS_F_BODY), body));
    free (text);
    cs_msg_destroy (&back);
    cs_msg_destroy (&c);
    cs_msg_destroy (&m);
    json_decref (body);
    /* what a document may not hold: reals, too deep, a body on another type */
    m = cs_msg_new (CS_MSG_ANSWER);
    json_t *real = json_pack ("{s:f}", "x", 1.5);
    CHECK (cs_msg_set_doc (m, CS_F_BODY, real) != 0);
    json_decref (real);
    json_t *deep = json_array ();
    for (int i = 0; i < 10; i++)
        deep = json_pack ("[o]", deep);
    CHECK (cs_msg_set_doc (m, CS_F_BODY, deep) != 0);
    json_decref (deep);
    cs_msg_destroy (&m);
    m = cs_msg_new (CS_MSG_ACK);
    json_t *obj = json_object ();
    CHECK (cs_msg_set_doc (m, CS_F_BODY, obj) != 0);
    json_decref (obj);
    cs_msg_destroy (&m);
}

TEST (hostile_documents)
{
    char text [160];
    raw_t r;
    /* nested too deep */
    raw_init (&r);
    raw_header (&r, 5, 1, "answer");
    raw_str (&r, "req"); msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "ok"); msgpack_pack_true (&r.pk);
    raw_str (&r, "body");
    for (int i = 0; i < 40; i++)
        msgpack_pack_array (&r.pk, 1);
    msgpack_pack_nil (&r.pk);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_WRONG_TYPE);
    /* a map that claims more entries than there are bytes */
    raw_init (&r);
    raw_header (&r, 5, 1, "answer");
    raw_str (&r, "req"); msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "ok"); msgpack_pack_true (&r.pk);
    raw_str (&r, "body");
    msgpack_pack_map (&r.pk, 1000000);
    raw_str (&r, "a");
    CHECK (decode_raw (&r, text, sizeof text) != CS_MSG_E_NONE);
    /* a key that is not a string */
    raw_init (&r);
    raw_header (&r, 5, 1, "answer");
    raw_str (&r, "req"); msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "ok"); msgpack_pack_true (&r.pk);
    raw_str (&r, "body");
    msgpack_pack_map (&r.pk, 1);
    msgpack_pack_uint8 (&r.pk, 1);
    msgpack_pack_true (&r.pk);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_BAD_KEY);
    /* a float inside */
    raw_init (&r);
    raw_header (&r, 5, 1, "answer");
    raw_str (&r, "req"); msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "ok"); msgpack_pack_true (&r.pk);
    raw_str (&r, "body");
    msgpack_pack_array (&r.pk, 1);
    msgpack_pack_double (&r.pk, 1.5);
    CHECK (decode_raw (&r, text, sizeof text) != CS_MSG_E_NONE);
    /* bad UTF-8 in a string */
    raw_init (&r);
    raw_header (&r, 5, 1, "answer");
    raw_str (&r, "req"); msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "ok"); msgpack_pack_true (&r.pk);
    raw_str (&r, "body");
    msgpack_pack_array (&r.pk, 1);
    msgpack_pack_str (&r.pk, 2);
    msgpack_pack_str_body (&r.pk, "\xc3\x28", 2);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_BAD_VALUE);
    /* a body where no type has one */
    raw_init (&r);
    raw_header (&r, 4, 1, "ack");
    raw_str (&r, "seq"); msgpack_pack_uint64 (&r.pk, 1);
    raw_str (&r, "body");
    msgpack_pack_map (&r.pk, 0);
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_UNKNOWN_KEY);
    /* a heartbeat's stage is a short string */
    raw_init (&r);
    raw_header (&r, 3, 1, "heartbeat");
    raw_str (&r, "stage");
    raw_str (&r, "a-stage-name-far-too-long-for-any");
    CHECK_INT (decode_raw (&r, text, sizeof text), CS_MSG_E_TOO_LONG);
}
