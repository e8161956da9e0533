/* cs_export: one POST /Member/Export, parsed while it downloads.
 *
 * libcurl's write callback feeds libxml2's SAX push parser, so memory stays
 * constant whatever the export's size; each complete Member is handed to the
 * caller at once. A DOCTYPE or entity declaration in the response, a missing
 * Cardskipper root, a malformed date or a truncated body fails the export. */
#ifndef CS_EXPORT_H
#define CS_EXPORT_H

#include "common/config.h"
#include "common/msg.h"

#include <stdint.h>

typedef enum {
    CS_EXPORT_OK = 0,
    CS_EXPORT_TRANSIENT,      /* network, timeout, 429, 5xx: try again later */
    CS_EXPORT_AUTH,           /* 401/403: credentials or API rights; do not hammer */
    CS_EXPORT_FAILED,         /* another 4xx, a malformed or truncated document */
    CS_EXPORT_INTERRUPTED     /* SIGTERM */
} cs_export_status_t;

/* One member as the export gave it; the roles are narrowed to the
 * organisation asked for (which roles grant access is the differ's planner's
 * to decide). Strings may be NULL. */
typedef struct {
    int64_t org;
    int64_t omid;             /* 0 if absent */
    const char *email;
    const char *first;
    const char *last;
    int inactive;
    const cs_msg_role_t *roles;
    size_t role_count;
} cs_member_t;

/* Returns 0 to go on, -1 to stop the export (it then fails). Called with
 * member NULL about once a second while the transfer runs (a tick for the
 * caller's heartbeat). */
typedef int (cs_member_fn) (void *arg, const cs_member_t *member);

typedef struct {
    cs_export_status_t status;
    long http_status;
    size_t members;
    size_t bytes;
    char error [512];         /* what went wrong, for logs and cycle_end */
} cs_export_result_t;

/* Runs the export of organisation org. changed_at ("YYYY-MM-DDTHH:MM:SS") asks
 * only for members changed since then; NULL for all. */
void cs_export_run (const cs_cardskipper_config_t *cfg, int64_t org, const char *changed_at,
                    cs_member_fn *fn, void *arg, cs_export_result_t *result);

/* The parse cs_export_run does on a 200 answer, over a body held in memory
 * and given to the parser in pieces that end at the offsets in cuts
 * (ascending; others are ignored), then the rest: for tests and fuzzing. */
void cs_export_parse (int64_t org, const char *data, size_t size, const size_t *cuts,
                      size_t cut_count, cs_member_fn *fn, void *arg, cs_export_result_t *result);

/* GET /Organisation/Info: the organisations this account may read, as a
 * comma list of "id name" into out. Same statuses as the export. */
void cs_export_info (const cs_cardskipper_config_t *cfg, char *out, size_t size,
                     cs_export_result_t *result);

#endif
