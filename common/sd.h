/* cs_sd: telling systemd how a program is (sd_notify(3)). Under a
 * Type=notify unit: READY=1 once its sockets are bound and its database is
 * open, WATCHDOG=1 from its main loop (WatchdogSec=), STATUS= a one-line
 * summary. Without NOTIFY_SOCKET (supervisord, a shell) each call does nothing. */
#ifndef CS_SD_H
#define CS_SD_H

/* READY=1 with a STATUS line. */
void cs_sd_ready (const char *status);

/* Is a WATCHDOG=1 due (one a second, and only under systemd)? A loop asks
 * before it builds its STATUS line. */
int cs_sd_due (void);

/* From the main loop, as often as it likes: WATCHDOG=1 (and STATUS when
 * status is not NULL) at most once a second. */
void cs_sd_alive (const char *status);

/* STOPPING=1. */
void cs_sd_stopping (void);

#endif
