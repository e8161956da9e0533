/* cs_email: the one way cardsync compares e-mail addresses.
 * Normalising trims blanks (ASCII and no-break spaces), folds the case of the
 * part before '@' in NFC (libunistring: ÅSA, åsa and a decomposed å are one),
 * and maps the domain by UTS #46 (libidn2), keeping its Unicode form
 * (FÖRENING.SE and xn--frening-90a.se become förening.se). The checks catch
 * what is surely not an address. Normalising a normal form changes nothing. */
#ifndef CS_EMAIL_H
#define CS_EMAIL_H

#include <stddef.h>

#define CS_EMAIL_MAX 254       /* bytes, as in RFC 5321 */

typedef enum {
    CS_EMAIL_OK = 0,
    CS_EMAIL_EMPTY,
    CS_EMAIL_TOO_LONG,
    CS_EMAIL_NO_AT,
    CS_EMAIL_MANY_AT,
    CS_EMAIL_BAD_LOCAL,
    CS_EMAIL_BAD_DOMAIN,
    CS_EMAIL_BAD_CHAR
} cs_email_error_t;

/* Writes the normalised address (NUL-terminated, at most CS_EMAIL_MAX bytes)
 * into out, which has room for CS_EMAIL_MAX + 1 bytes. Returns CS_EMAIL_OK or
 * the reason the address is not usable (out is then empty). */
cs_email_error_t cs_email_normalize (const char *in, char out [CS_EMAIL_MAX + 1]);

const char *cs_email_strerror (cs_email_error_t error);

#endif
