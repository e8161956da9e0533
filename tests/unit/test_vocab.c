#include "harness.h"
#include "common/vocab.h"

/* Every word has a name, every name reads back as its word, and the names
 * are the ones already on the wire and in audit.db. */
TEST (every_word_round_trips)
{
    for (int i = 0; i < CS_EV_COUNT; i++)
        CHECK_INT (cs_event_kind_parse (cs_event_kind_name ((cs_event_kind_t) i)), i);
    for (int i = 0; i < CS_CLASS_COUNT; i++)
        CHECK_INT (cs_class_parse (cs_class_name ((cs_class_t) i)), i);
    for (int i = 0; i < CS_HEALTH_COUNT; i++)
        CHECK_INT (cs_health_parse (cs_health_name ((cs_health_t) i)), i);
    for (int i = 0; i < CS_OP_COUNT; i++)
        CHECK_INT (cs_op_parse (cs_op_name ((cs_op_t) i)), i);
    for (int i = 0; i < CS_RULE_COUNT; i++)
        CHECK_INT (cs_rule_parse (cs_rule_name ((cs_rule_t) i)), i);
    for (int i = 0; i < CS_SYNC_COUNT; i++)
        CHECK_INT (cs_sync_parse (cs_sync_name ((cs_sync_t) i)), i);
}

TEST (the_wire_names)
{
    CHECK_STR (cs_event_kind_name (CS_EV_APPLIED), "applied");
    CHECK_STR (cs_event_kind_name (CS_EV_EMAIL_CHANGED), "email_changed");
    CHECK_STR (cs_class_name (CS_CLASS_NOT_FOUND), "not_found");
    CHECK_STR (cs_health_name (CS_HEALTH_LOCKED), "locked");
    CHECK_STR (cs_rule_name (CS_RULE_MEMBER_ID), "member_id");
    CHECK_STR (cs_sync_name (CS_SYNC_IN_SYNC), "in_sync");
}

TEST (unknown_words)
{
    CHECK_INT (cs_event_kind_parse ("appliedx"), -1);
    CHECK_INT (cs_class_parse (NULL), -1);
    CHECK (cs_event_kind_name (CS_EV_COUNT) == NULL);
    CHECK (cs_op_name ((cs_op_t) -1) == NULL);
}
