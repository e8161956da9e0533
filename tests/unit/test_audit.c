/* audit.db: every event once by seq, the member's organisation and the
 * identity rule kept as columns, and retention that never deletes the ties. */
#include "harness.h"
#include "auditor/store.h"

static cs_msg_t *
event (int64_t seq, int64_t ts, const char *kind)
{
    cs_msg_t *m = cs_msg_new (CS_MSG_EVENT);
    cs_msg_set_int (m, CS_F_SEQ, seq);
    cs_msg_set_int (m, CS_F_TS, ts);
    cs_msg_set_str (m, CS_F_KIND, kind);
    return m;
}

static long long
count (cs_audit_t *a, const char *sql)
{
    sqlite3_stmt *st = cs_db_stmt (cs_audit_db (a), sql);
    long long n = -1;
    if (st && sqlite3_step (st) == SQLITE_ROW)
        n = sqlite3_column_int64 (st, 0);
    if (st)
        sqlite3_reset (st);
    return n;
}

TEST (retention_keeps_every_tie_made_or_ended)
{
    char path [512], error [256];
    snprintf (path, sizeof path, "%s/audit.db", cs_test_dir ());
    cs_audit_t *a = cs_audit_open (path, error, sizeof error);
    REQUIRE (a);
    int64_t day = 86400000, now = 400 * day;
    cs_msg_t *ev [4] = { event (1, now - 300 * day, "tied"), event (2, now - 300 * day, "applied"),
                         event (3, now - 200 * day, "untied"), event (4, now - day, "applied") };
    cs_msg_set_int (ev [0], CS_F_ORG, 1234);
    cs_msg_set_int (ev [0], CS_F_MID, 1001);
    cs_msg_set_str (ev [0], CS_F_RULE, "tag");
    cs_msg_set_str (ev [0], CS_F_DEV, "door1");
    cs_msg_set_str (ev [0], CS_F_EMPNO, "5001");
    int inserted [4];
    CHECK_INT (cs_audit_store (a, ev, 4, inserted), 0);
    CHECK_INT (cs_audit_contiguous (a), 4);
    CHECK_INT (count (a, "SELECT count (*) FROM event WHERE org = 1234 AND member_id = 1001 AND rule = 'tag' "
                        "AND device = 'door1' AND employee_no = '5001'"), 1);
    CHECK_INT (cs_audit_expire (a, 100, now), 1);     /* the old applied event only */
    CHECK_INT (count (a, "SELECT count (*) FROM event WHERE kind IN ('tied', 'untied')"), 2);
    CHECK_INT (count (a, "SELECT count (*) FROM event"), 3);
    for (int i = 0; i < 4; i++)
        cs_msg_destroy (&ev [i]);
    cs_audit_destroy (&a);
}

/* After its file was lost the auditor holds nothing: the events it gets
 * (re-sent ones, later ones) wait above a hole until an audit_gap event
 * names the hole, and then the contiguous mark passes it - but not a hole
 * no audit_gap names. */
TEST (an_audit_gap_lets_the_contiguous_mark_pass_what_is_lost)
{
    char path [512], error [256];
    snprintf (path, sizeof path, "%s/audit.db", cs_test_dir ());
    cs_audit_t *a = cs_audit_open (path, error, sizeof error);
    REQUIRE (a);
    int inserted [3];
    cs_msg_t *later [2] = { event (41, 1, "applied"), event (42, 1, "applied") };
    CHECK_INT (cs_audit_store (a, later, 2, inserted), 0);
    CHECK_INT (cs_audit_contiguous (a), 0);           /* 1..40 missing */
    cs_msg_t *gap [1] = { event (44, 1, "audit_gap") };
    cs_msg_add_id (gap [0], 1);
    cs_msg_add_id (gap [0], 40);
    CHECK_INT (cs_audit_store (a, gap, 1, inserted), 0);
    CHECK_INT (cs_audit_contiguous (a), 42);          /* 43 is not named: still missing */
    cs_msg_t *resent [1] = { event (43, 1, "applied") };
    CHECK_INT (cs_audit_store (a, resent, 1, inserted), 0);
    CHECK_INT (cs_audit_contiguous (a), 44);
    CHECK_INT (count (a, "SELECT count (*) FROM gap WHERE first = 1 AND last = 40"), 1);
    /* the mark survives a restart */
    cs_audit_destroy (&a);
    a = cs_audit_open (path, error, sizeof error);
    REQUIRE (a);
    CHECK_INT (cs_audit_contiguous (a), 44);
    cs_msg_destroy (&later [0]);
    cs_msg_destroy (&later [1]);
    cs_msg_destroy (&gap [0]);
    cs_msg_destroy (&resent [0]);
    cs_audit_destroy (&a);
}

/* Events stored with the ASCII-only form of schema 3 and before take the
 * Unicode normal form, column and body, so history by e-mail finds them. */
TEST (schema_3_addresses_take_the_unicode_form)
{
    char path [512], error [256];
    snprintf (path, sizeof path, "%s/audit.db", cs_test_dir ());
    cs_audit_t *a = cs_audit_open (path, error, sizeof error);
    REQUIRE (a);
    cs_msg_t *ev [3] = { event (1, 1000, "applied"), event (2, 2000, "applied"), event (3, 3000, "applied") };
    cs_msg_set_str (ev [0], CS_F_EMAIL, "\xC3\x85sa@f\xC3\x96rening.se");
    cs_msg_set_str (ev [1], CS_F_EMAIL, "a\xCC\x8Asa@xn--frening-90a.se");
    cs_msg_set_str (ev [2], CS_F_EMAIL, "plain@club.se");
    int inserted [3];
    CHECK_INT (cs_audit_store (a, ev, 3, inserted), 0);
    REQUIRE (cs_db_exec (cs_audit_db (a), "PRAGMA user_version = 3;") == 0);
    cs_audit_destroy (&a);
    a = cs_audit_open (path, error, sizeof error);
    REQUIRE (a);
    CHECK_INT (count (a, "SELECT count (*) FROM event WHERE email = '\xC3\xA5sa@f\xC3\xB6rening.se' "
                        "AND json_extract (body, '$.email') = email"), 2);
    CHECK_INT (count (a, "SELECT count (*) FROM event WHERE email = 'plain@club.se'"), 1);
    for (int i = 0; i < 3; i++)
        cs_msg_destroy (&ev [i]);
    cs_audit_destroy (&a);
}
