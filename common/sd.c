#include "common/sd.h"

#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static long long
now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cs_sd_ready (const char *status)
{
    sd_notifyf (0, "READY=1\nSTATUS=%s", status ? status : "ready");
}

static long long s_next;        /* when the next WATCHDOG=1 is due */

int
cs_sd_due (void)
{
    static int under = -1;
    if (under < 0)
        under = getenv ("NOTIFY_SOCKET") != NULL;
    return under && now_ms () >= s_next;
}

void
cs_sd_alive (const char *status)
{
    if (!cs_sd_due ())
        return;
    s_next = now_ms () + 1000;
    if (status)
        sd_notifyf (0, "WATCHDOG=1\nSTATUS=%s", status);
    else
        sd_notify (0, "WATCHDOG=1");
}

void
cs_sd_stopping (void)
{
    sd_notify (0, "STOPPING=1\nSTATUS=stopping");
}
