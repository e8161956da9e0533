/* The msgpack message decoder (common/msg.c), which reads every frame that
 * crosses a socket: never a crash, and what it accepts encodes and decodes
 * again to the same bytes. */
#include "common/msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cs_msg_error_t error;
    cs_msg_t *m = cs_msg_decode (data, size, &error);
    if (!m)
        return 0;
    uint8_t *once = NULL, *twice = NULL;
    size_t once_size = 0, twice_size = 0;
    if (cs_msg_encode (m, &once, &once_size, &error) != 0)
        abort ();                       /* a decoded message can always be sent on */
    cs_msg_t *again = cs_msg_decode (once, once_size, &error);
    if (!again || cs_msg_encode (again, &twice, &twice_size, &error) != 0
        || once_size != twice_size || memcmp (once, twice, once_size))
        abort ();
    char *json = cs_msg_to_json (m);
    free (json);
    free (once);
    free (twice);
    cs_msg_destroy (&again);
    cs_msg_destroy (&m);
    return 0;
}
