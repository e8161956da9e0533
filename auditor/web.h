/* cs_web: `cardsync-auditor serve`, the operator's window ([web]). An HTTP
 * server (libmicrohttpd) in its own process: JSON under /api/ mirroring the
 * operator commands, asked of the differ on its control socket (state.db is
 * never opened here) and, for a member's history, read from audit.db.
 *
 * Every request must name an allowed host (allowed_hosts: a page on another
 * site cannot reach the window by DNS rebinding); no CORS allowance is sent.
 * With a username configured every request needs the login (HTTP Basic; over
 * TLS or on loopback), and off loopback the config refuses to start without
 * one. */
#ifndef CS_WEB_H
#define CS_WEB_H

#include "common/config.h"
#include "common/log.h"

/* Serves until SIGTERM or SIGINT; an exit code (0, or 69 when it cannot
 * listen, 78 when the TLS files do not load). */
int cs_web_serve (const cs_config_t *cfg, cs_log_t *log, int argc, const char **argv);

/* Is host (a Host header: "name", "name:port", "[v6]:port") one of the
 * allowed names? Pure: for the unit tests. */
int cs_web_host_allowed (const cs_web_config_t *web, const char *host);

#endif
