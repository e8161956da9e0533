/* E-mail normalisation (common/email.c): never a crash, and a normal form
 * is its own normal form, no longer than CS_EMAIL_MAX bytes. */
#include "common/email.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *in = strndup ((const char *) data, size);    /* the parsers read C strings */
    if (!in)
        return 0;
    char a [CS_EMAIL_MAX + 1], b [CS_EMAIL_MAX + 1];
    if (cs_email_normalize (in, a) == CS_EMAIL_OK) {
        if (strlen (a) > CS_EMAIL_MAX || cs_email_normalize (a, b) != CS_EMAIL_OK || strcmp (a, b))
            abort ();
    }
    else if (a [0])
        abort ();                       /* an error leaves the output empty */
    free (in);
    return 0;
}
