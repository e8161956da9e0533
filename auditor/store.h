/* cs_audit: audit.db - every event once, by the differ's sequence number. */
#ifndef CS_AUDIT_H
#define CS_AUDIT_H

#include "common/db.h"
#include "common/msg.h"

typedef struct _cs_audit_t cs_audit_t;

cs_audit_t *cs_audit_open (const char *path, char *error, size_t error_size);
void cs_audit_destroy (cs_audit_t **self_p);

/* Stores events (type event) in one transaction. A seq already stored is
 * skipped. inserted[i] tells which were new. Returns 0 or -1. */
int cs_audit_store (cs_audit_t *self, cs_msg_t **events, size_t count, int *inserted);

/* The highest seq such that every seq up to it is stored. */
int64_t cs_audit_contiguous (cs_audit_t *self);

/* Deletes events older than days; returns how many, or -1. */
long cs_audit_expire (cs_audit_t *self, int days, int64_t now_ms);

const char *cs_audit_errmsg (cs_audit_t *self);
cs_db_t *cs_audit_db (cs_audit_t *self);

#endif
