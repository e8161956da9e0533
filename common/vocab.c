#include "common/vocab.h"

#include <stddef.h>
#include <string.h>

static const char *const s_kinds [CS_EV_COUNT] = {
    [CS_EV_APPLIED] = "applied", [CS_EV_FAILED] = "failed", [CS_EV_PLANNED] = "planned",
    [CS_EV_UNMATCHED] = "unmatched", [CS_EV_CONFLICT] = "conflict",
    [CS_EV_EMAIL_CHANGED] = "email_changed", [CS_EV_TIED] = "tied", [CS_EV_UNTIED] = "untied",
    [CS_EV_SKIPPED] = "skipped", [CS_EV_DUPLICATE] = "duplicate", [CS_EV_NO_EMAIL] = "no_email",
    [CS_EV_BAD_EMAIL] = "bad_email", [CS_EV_GUARD] = "guard", [CS_EV_CYCLE] = "cycle",
    [CS_EV_SCAN] = "scan", [CS_EV_HEALTH] = "health", [CS_EV_REPLAY] = "replay",
    [CS_EV_REPLAYED] = "replayed", [CS_EV_SUPERSEDED] = "superseded",
    [CS_EV_AUDIT_GAP] = "audit_gap",
};

static const char *const s_stages [CS_STAGE_COUNT] = {
    [CS_STAGE_PRODUCER] = "producer", [CS_STAGE_PUSHER] = "pusher", [CS_STAGE_AUDITOR] = "auditor",
};

static const char *const s_classes [CS_CLASS_COUNT] = {
    [CS_CLASS_OK] = "ok", [CS_CLASS_TRANSIENT] = "transient", [CS_CLASS_AUTH] = "auth",
    [CS_CLASS_LOCKED] = "locked", [CS_CLASS_NOT_FOUND] = "not_found", [CS_CLASS_EXISTS] = "exists",
    [CS_CLASS_FULL] = "full", [CS_CLASS_UNSUPPORTED] = "unsupported", [CS_CLASS_INVALID] = "invalid",
};

static const char *const s_health [CS_HEALTH_COUNT] = {
    [CS_HEALTH_UNKNOWN] = "unknown", [CS_HEALTH_OK] = "ok", [CS_HEALTH_DOWN] = "down",
    [CS_HEALTH_AUTH] = "auth", [CS_HEALTH_LOCKED] = "locked",
};

static const char *const s_ops [CS_OP_COUNT] = {
    [CS_OP_SET] = "set", [CS_OP_CREATE] = "create", [CS_OP_SCAN] = "scan",
};

static const char *const s_rules [CS_RULE_COUNT] = {
    [CS_RULE_TAG] = "tag", [CS_RULE_MAP] = "map", [CS_RULE_MEMBER_ID] = "member_id",
    [CS_RULE_CREATED] = "created",
};

static const char *const s_sync [CS_SYNC_COUNT] = {
    [CS_SYNC_IN_SYNC] = "in_sync", [CS_SYNC_PENDING] = "pending", [CS_SYNC_FAILED] = "failed",
    [CS_SYNC_HELD] = "held",
};

static const char *
name_of (const char *const *table, int count, int value)
{
    return value >= 0 && value < count ? table [value] : NULL;
}

static int
parse (const char *const *table, int count, const char *name)
{
    for (int i = 0; name && i < count; i++)
        if (!strcmp (table [i], name))
            return i;
    return -1;
}

const char *cs_event_kind_name (cs_event_kind_t v) { return name_of (s_kinds, CS_EV_COUNT, (int) v); }
const char *cs_class_name (cs_class_t v) { return name_of (s_classes, CS_CLASS_COUNT, (int) v); }
const char *cs_health_name (cs_health_t v) { return name_of (s_health, CS_HEALTH_COUNT, (int) v); }
const char *cs_op_name (cs_op_t v) { return name_of (s_ops, CS_OP_COUNT, (int) v); }
const char *cs_rule_name (cs_rule_t v) { return name_of (s_rules, CS_RULE_COUNT, (int) v); }
const char *cs_sync_name (cs_sync_t v) { return name_of (s_sync, CS_SYNC_COUNT, (int) v); }
const char *cs_stage_name (cs_stage_t v) { return name_of (s_stages, CS_STAGE_COUNT, (int) v); }

int cs_event_kind_parse (const char *n) { return parse (s_kinds, CS_EV_COUNT, n); }
int cs_class_parse (const char *n) { return parse (s_classes, CS_CLASS_COUNT, n); }
int cs_health_parse (const char *n) { return parse (s_health, CS_HEALTH_COUNT, n); }
int cs_op_parse (const char *n) { return parse (s_ops, CS_OP_COUNT, n); }
int cs_rule_parse (const char *n) { return parse (s_rules, CS_RULE_COUNT, n); }
int cs_sync_parse (const char *n) { return parse (s_sync, CS_SYNC_COUNT, n); }
int cs_stage_parse (const char *n) { return parse (s_stages, CS_STAGE_COUNT, n); }
