/* The date parsers (common/date.c) and the duration parser of the config:
 * never a crash, and what parses formats back to what parses the same. */
#include "common/config.h"
#include "common/date.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *in = strndup ((const char *) data, size);    /* the parsers read C strings */
    if (!in)
        return 0;
    cs_day_t day, again;
    char text [CS_DAY_LEN];
    if (cs_day_parse (in, &day) == 0) {
        cs_day_format (day, text);
        if (cs_day_parse (text, &again) != 0 || again != day)
            abort ();
    }
    const char *why = NULL;
    if (cs_date_parse_cardskipper (in, &day, &why) == 0) {
        cs_day_format (day, text);
        if (cs_day_parse (text, &again) != 0 || again != day)
            abort ();
    }
    else if (!why)
        abort ();                       /* a refusal always says why */
    if (cs_time_valid (in)) {
        time_t t;
        cs_time_to_utc (in, "Europe/Stockholm", &t);
    }
    int seconds;
    cs_config_parse_duration (in, &seconds);
    free (in);
    return 0;
}
