/* cs_ctl: an operator command's side of the differ's control socket
 * (differ.ctl): one request, its answer, or a clear word that the differ is
 * not answering. */
#ifndef CS_CTL_H
#define CS_CTL_H

#include "common/config.h"
#include "common/msg.h"

#include <jansson.h>

#define CS_CTL_TIMEOUT_MS 5000        /* a question; replay and approve get six times this */
#define CS_CTL_CONNECT_MS 1000        /* to find the differ's socket listening */

typedef enum {
    CS_CTL_OK = 0,
    CS_CTL_REFUSED,         /* the differ answered no (err says why) */
    CS_CTL_SILENT,          /* no answer in time: the differ is not running, or stuck */
    CS_CTL_BROKEN           /* no socket, or an answer that makes no sense */
} cs_ctl_rc_t;

/* Sends req (a `request`; its req id is set here) and waits for the whole
 * answer: *body is the first answer's body with the "rows" of every part
 * joined. err gets a line for the operator when the result is not CS_CTL_OK. */
cs_ctl_rc_t cs_ctl_ask (const cs_config_t *cfg, cs_msg_t *req, int timeout_ms, json_t **body,
                        char *err, size_t err_size);

/* A new request of this op ("status", "failed", ...). */
cs_msg_t *cs_ctl_request (const char *op);

#endif
