/* cs_plan: who gets in, decided in one place (design §3).
 *
 * A pure function: members (as Cardskipper gave them), each device's persons,
 * the remembered ties, the operator's map, the commands already on their way
 * or refused, today and now go in; the commands, the ties made and ended, the
 * notices, each tied person's target and sync state, and the guard's verdict
 * come out. No database, no clock, no socket: differ/handlers.c reads the
 * inputs from state.db and writes the outputs back.
 *
 * The rules, in the order they apply:
 * - A person is tied by the first rule in `match` that finds members for it
 *   (tag: the members whose e-mail is the person's tag; map: the members whose
 *   e-mail a map line gives this employeeNo; member_id: the members whose
 *   OrganisationMemberId is the employeeNo, for untagged persons only). A later
 *   rule that finds other members raises a conflict notice; it ties nobody.
 * - A remembered tie holds until the person is gone from the device, is
 *   re-tagged with another current member's e-mail, or the map line that made
 *   it is removed. A member's e-mail changing never ends it.
 * - Every tied person gets the union of its members' role periods (roles
 *   filter, inactive members and departed members give none), merged into
 *   spans: the span containing today, else the nearest future one; none
 *   means revoke (end yesterday), once.
 * - Untied persons are never written. An entitled member without a person is
 *   created (create_missing, one person for an e-mail shared by several) or
 *   reported unmatched.
 * - A full plan that would revoke more than max(guard_max_revocations,
 *   guard_max_percent % of the members) holds every revocation back. */
#ifndef CS_PLAN_H
#define CS_PLAN_H

#include "common/config.h"
#include "common/date.h"
#include "common/vocab.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t role;
    cs_day_t start;             /* both ends inclusive */
    cs_day_t end;
} cs_plan_role_t;

typedef struct {
    int64_t org;                /* (org, omid) is the member */
    int64_t omid;
    const char *email;          /* normalised; NULL when it has none usable */
    const char *name;           /* "First Last", for created persons */
    int inactive;
    const cs_plan_role_t *roles;
    size_t role_count;
} cs_plan_member_t;

typedef struct {
    const char *no;             /* employeeNo */
    const char *tag;            /* the normalised e-mail tag, NULL if none */
    int enable;                 /* Valid.enable */
    const char *begin;          /* Valid.beginTime, "" if unknown */
    const char *end;
} cs_plan_person_t;

typedef struct {
    const char *name;
    int scanned;                /* a complete scan was seen: who is on it is known */
    cs_day_t today;             /* the device's local day */
    const char *now;            /* the device's local time, "YYYY-MM-DDTHH:MM:SS" */
    const cs_plan_person_t *persons;
    size_t person_count;
} cs_plan_device_t;

/* A remembered tie: person (device, no) belongs to member (org, omid). */
typedef struct {
    const char *device;
    const char *no;
    int64_t org;
    int64_t omid;
    cs_rule_t rule;
    const char *via;            /* what tied it: the tag, the map's e-mail, the employeeNo */
} cs_plan_tie_t;

typedef struct {
    const char *email;          /* normalised */
    const char *no;
} cs_plan_map_line_t;

/* A command already recorded for a person: on its way, or refused for good. */
typedef struct {
    const char *device;
    const char *no;
    const char *begin;
    const char *end;
} cs_plan_sent_t;

typedef struct {
    const cs_match_t *match;    /* the rules, in order */
    size_t match_count;
    const int64_t *roles;       /* the roles that grant access; none: all */
    size_t role_count;
    int create_missing;
    int revoke;
    int tag_by_name;            /* tag_field = name: created persons carry the e-mail as name */
    int guard_max_revocations;
    int guard_max_percent;
    int dry_run;                /* commands become `planned` notices */
    int64_t approved;           /* revocations an operator approved (0: none) */
    const cs_plan_member_t *members;
    size_t member_count;
    const cs_plan_device_t *devices;
    size_t device_count;
    const cs_plan_tie_t *ties;
    size_t tie_count;
    const cs_plan_map_line_t *map;
    size_t map_count;
    const cs_plan_sent_t *open;     /* pending commands */
    size_t open_count;
    const cs_plan_sent_t *failed;   /* refused targets, not retried until replayed */
    size_t failed_count;
} cs_plan_input_t;

/* The strings below point into the input (or into the plan itself): the
 * input must outlive the plan. */
typedef struct {
    const char *device;
    const char *no;
    cs_op_t op;                 /* set or create */
    int64_t org;                /* the member it is for (the first of several) */
    int64_t omid;
    const char *email;          /* that member's e-mail now (NULL if gone) */
    const char *name;           /* create: the person's name */
    const char *tag;            /* create: the e-mail tag to store, NULL with tag_by_name */
    char begin [CS_TIME_LEN];
    char end [CS_TIME_LEN];
    char prev_begin [CS_TIME_LEN];  /* what the device holds now ("" for create) */
    char prev_end [CS_TIME_LEN];
    int revoke;
    int held;                   /* held back by the tripped guard: not to be sent */
    size_t target;              /* its person's entry in targets */
} cs_plan_command_t;

typedef struct {
    const char *device;
    const char *no;
    int64_t org;
    int64_t omid;
    cs_rule_t rule;
    const char *via;
    const char *email;          /* the member's e-mail now, NULL if unknown */
    const char *why;            /* an ended tie: why it ended */
} cs_plan_tie_change_t;

/* Said once while it holds; key names what it is about. */
typedef struct {
    cs_event_kind_t kind;       /* unmatched, conflict, email_changed, planned */
    char key [160];
    const char *device;
    const char *no;             /* NULL for unmatched */
    int64_t org;
    int64_t omid;
    const char *email;
    char msg [400];
    char begin [CS_TIME_LEN];   /* planned */
    char end [CS_TIME_LEN];
} cs_plan_notice_t;

/* A tied person and what it should hold. */
typedef struct {
    const char *device;
    const char *no;             /* employeeNo (for a person to create: the member id) */
    int64_t org;                /* the first of its members */
    int64_t omid;
    const char *email;          /* that member's e-mail now, NULL if gone */
    const char *retag;          /* the person's tag no longer matches: the e-mail it should hold */
    int revoke;                 /* not entitled: should not admit (begin/end empty) */
    int keep;                   /* not entitled but revoke = false: nothing is written */
    char begin [CS_TIME_LEN];
    char end [CS_TIME_LEN];
    cs_sync_t sync;
} cs_plan_target_t;

typedef struct {
    cs_plan_command_t *commands;
    size_t command_count;
    cs_plan_tie_change_t *tied;
    size_t tied_count;
    cs_plan_tie_change_t *untied;
    size_t untied_count;
    cs_plan_notice_t *notices;
    size_t notice_count;
    cs_plan_target_t *targets;
    size_t target_count;
    char **owned;               /* strings the plan made (the numbers of persons to create) */
    size_t owned_count;
    size_t revocations;         /* revocations planned */
    size_t limit;               /* what the guard allows */
    int tripped;                /* the guard holds them back */
    int approval_spent;         /* back within the guard: an approval lapses */
} cs_plan_t;

/* Plans; NULL only when out of memory. */
cs_plan_t *cs_plan_new (const cs_plan_input_t *in);
void cs_plan_destroy (cs_plan_t **self_p);

/* Whether a person's record holds a target (for a revocation: it has ended
 * by now, the device's local time). */
int cs_plan_holds (const cs_plan_target_t *target, int enable, const char *begin,
                   const char *end, const char *now);

/* The sync state of a tied person: the one rule `status` counts by. */
cs_sync_t cs_plan_sync (const cs_plan_target_t *target, int enable, const char *begin,
                        const char *end, const char *now, int failed, int held);

#endif
