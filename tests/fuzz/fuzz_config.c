/* The INI config loader (common/config.c with inih): never a crash, and a
 * config it refuses always says why. The bytes are the file. */
#include "common/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static int fd = -1;
    static FILE *sink;
    static char path [64];
    if (fd < 0) {
        fd = memfd_create ("cardsync.ini", 0);
        sink = fopen ("/dev/null", "w");
        if (fd < 0 || !sink)
            abort ();
        snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate (fd, 0) != 0 || pwrite (fd, data, size, 0) != (ssize_t) size)
        abort ();
    char *errors = NULL;
    cs_config_t *cfg = cs_config_load (path, 0, &errors);
    if (cfg) {
        cs_config_print (cfg, sink);
        for (size_t i = 0; i < cfg->device_count; i++)
            cs_config_device (cfg, cfg->devices [i].name);
        cs_config_destroy (&cfg);
    }
    else if (!errors || !*errors)
        abort ();
    free (errors);
    return 0;
}
