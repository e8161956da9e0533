/* cs_vocab: the words that cross from one program to another - event kinds,
 * result classes, device health states, command ops and identity rules -
 * named once, with one table of their wire names each. A program compares
 * and prints these names through here, never by spelling the string itself. */
#ifndef CS_VOCAB_H
#define CS_VOCAB_H

/* What an audited event tells of (the "kind" of an event). */
typedef enum {
    CS_EV_APPLIED = 0,      /* a device holds the new validity */
    CS_EV_FAILED,           /* a write was refused or given up on */
    CS_EV_PLANNED,          /* --dry-run: what would have been sent */
    CS_EV_UNMATCHED,        /* an entitled member has no person on a device */
    CS_EV_CONFLICT,         /* two identity rules disagree about a person */
    CS_EV_EMAIL_CHANGED,    /* a tied member's e-mail is no longer the person's tag */
    CS_EV_TIED,             /* a person was tied to a member */
    CS_EV_UNTIED,           /* a tie ended */
    CS_EV_SKIPPED,          /* a device person that cannot be used */
    CS_EV_DUPLICATE,        /* several members share one e-mail */
    CS_EV_NO_EMAIL,         /* a member without an e-mail */
    CS_EV_BAD_EMAIL,        /* a member whose e-mail cannot be used */
    CS_EV_GUARD,            /* the guard tripped, cleared, was approved */
    CS_EV_CYCLE,            /* an export ended */
    CS_EV_SCAN,             /* a device scan ended */
    CS_EV_HEALTH,           /* a device's reachability changed */
    CS_EV_REPLAY,           /* an operator's replay request was answered */
    CS_EV_REPLAYED,         /* one failed target was sent again */
    CS_EV_SUPERSEDED,       /* one failed target needed nothing any more */
    CS_EV_AUDIT_GAP,        /* events the audit lost and the outbox no longer holds */
    CS_EV_COUNT
} cs_event_kind_t;

/* What became of a request to a device (the "class" of a result). */
typedef enum {
    CS_CLASS_OK = 0,
    CS_CLASS_TRANSIENT,     /* network, timeout, 5xx, deviceBusy, 401 without a challenge */
    CS_CLASS_AUTH,          /* 401 after a challenge: the credentials are wrong */
    CS_CLASS_LOCKED,        /* the device locked the account */
    CS_CLASS_NOT_FOUND,     /* employeeNoNotExist / deviceUserNotExist */
    CS_CLASS_EXISTS,        /* employeeNoAlreadyExist / deviceUserAlreadyExist */
    CS_CLASS_FULL,          /* deviceUserFull */
    CS_CLASS_UNSUPPORTED,   /* notSupport, methodNotAllowed, 404 */
    CS_CLASS_INVALID,       /* any other refusal: bad field, bad format ... */
    CS_CLASS_COUNT
} cs_class_t;

/* A device's health as the pusher sees it. */
typedef enum {
    CS_HEALTH_UNKNOWN = 0,  /* no word yet */
    CS_HEALTH_OK,
    CS_HEALTH_DOWN,         /* cannot be reached */
    CS_HEALTH_AUTH,         /* refused the login: paused */
    CS_HEALTH_LOCKED,       /* locked the account: paused until it unlocks */
    CS_HEALTH_COUNT
} cs_health_t;

/* What a command asks of the pusher. */
typedef enum {
    CS_OP_SET = 0,          /* change a person's validity (read-modify-write) */
    CS_OP_CREATE,           /* add a person */
    CS_OP_SCAN,             /* read the device's persons */
    CS_OP_COUNT
} cs_op_t;

/* How a person was tied to a member (design §3). */
typedef enum {
    CS_RULE_TAG = 0,        /* the e-mail stored on the person */
    CS_RULE_MAP,            /* a line of the operator's identity_map */
    CS_RULE_MEMBER_ID,      /* employeeNo = OrganisationMemberId, untagged persons only */
    CS_RULE_CREATED,        /* cardsync created the person for the member */
    CS_RULE_COUNT
} cs_rule_t;

/* Where a tied person stands: in sync only when the device holds what the
 * member is entitled to. */
typedef enum {
    CS_SYNC_IN_SYNC = 0,
    CS_SYNC_PENDING,        /* a command is on its way (or about to be) */
    CS_SYNC_FAILED,         /* the write was refused: in the failed queue */
    CS_SYNC_HELD,           /* a revocation the tripped guard holds back */
    CS_SYNC_COUNT
} cs_sync_t;

/* The programs that send the differ a heartbeat. */
typedef enum {
    CS_STAGE_PRODUCER = 0,
    CS_STAGE_PUSHER,
    CS_STAGE_AUDITOR,
    CS_STAGE_COUNT
} cs_stage_t;

const char *cs_event_kind_name (cs_event_kind_t kind);
const char *cs_class_name (cs_class_t cls);
const char *cs_health_name (cs_health_t health);
const char *cs_op_name (cs_op_t op);
const char *cs_rule_name (cs_rule_t rule);
const char *cs_sync_name (cs_sync_t sync);
const char *cs_stage_name (cs_stage_t stage);

/* The reverse: the value named name, or -1 (NULL or unknown). */
int cs_event_kind_parse (const char *name);
int cs_class_parse (const char *name);
int cs_health_parse (const char *name);
int cs_op_parse (const char *name);
int cs_rule_parse (const char *name);
int cs_sync_parse (const char *name);
int cs_stage_parse (const char *name);

#endif
