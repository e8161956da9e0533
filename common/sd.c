#include "common/sd.h"

#include <stdio.h>
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

void
cs_sd_alive (const char *status)
{
    static long long next;
    long long now = now_ms ();
    if (now < next)
        return;
    next = now + 1000;
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
