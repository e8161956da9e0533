/* The Cardskipper export's SAX parse (producer/export.c) as small worlds: a
 * body in, the members and the verdict out, whatever pieces the download
 * comes in. */
#include "harness.h"
#include "producer/export.h"

typedef struct {
    char text [2048];           /* "omid email first last inactive roles;" each member */
    size_t len;
} seen_t;

static int
on_member (void *arg, const cs_member_t *m)
{
    seen_t *s = arg;
    if (!m)
        return 0;
    s->len += (size_t) snprintf (s->text + s->len, sizeof s->text - s->len, "%lld %s %s %s %d",
                                 (long long) m->omid, m->email ? m->email : "-", m->first ? m->first : "-",
                                 m->last ? m->last : "-", m->inactive);
    for (size_t i = 0; i < m->role_count; i++)
        s->len += (size_t) snprintf (s->text + s->len, sizeof s->text - s->len, " %lld:%s:%s",
                                     (long long) m->roles [i].role, m->roles [i].start, m->roles [i].end);
    s->len += (size_t) snprintf (s->text + s->len, sizeof s->text - s->len, ";");
    return 0;
}

/* Parses body whole and in pieces of every size from 1 to 64 bytes; each
 * must give status and members (or the error's start). */
static void
expect (int line, const char *body, cs_export_status_t status, const char *want)
{
    size_t len = strlen (body);
    for (size_t piece = 0; piece <= 64; piece++) {
        size_t count = piece ? len / piece : 0;
        size_t *cuts = calloc (count + 1, sizeof *cuts);
        for (size_t i = 0; i < count; i++)
            cuts [i] = (i + 1) * piece;
        seen_t seen = { "", 0 };
        cs_export_result_t r;
        cs_export_parse (1234, body, len, cuts, count, on_member, &seen, &r);
        free (cuts);
        const char *got = r.status == CS_EXPORT_OK ? seen.text : r.error;
        if (r.status != status || strncmp (got, want, strlen (want)) != 0) {
            cs_test_fail (__FILE__, line, "pieces of %zu: status %d, \"%s\"; expected %d, \"%s\"",
                          piece, (int) r.status, got, (int) status, want);
            return;
        }
    }
}

#define HEAD "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Cardskipper><Members>"
#define TAIL "</Members></Cardskipper>"

TEST (members_whatever_the_pieces)
{
    expect (__LINE__, HEAD TAIL, CS_EXPORT_OK, "");
    expect (__LINE__, HEAD
            "<Member OrganisationMemberId=\"7\" Firstname=\"Åsa\" Lastname=\"Öberg\" Inactive=\"false\">"
            "<ContactInfo EMail=\"ÅSA@FÖRENING.SE\"/><Organisations>"
            "<Organisation Id=\"1234\"><Roles>"
            "<Role Id=\"3126\" StartDate=\"2026-01-01T00:00:00\" EndDate=\"2026-12-31T00:00:00\"/>"
            "</Roles></Organisation>"
            "<Organisation Id=\"9\"><Roles><Role Id=\"1\" StartDate=\"2026-01-01\" EndDate=\"2026-02-01\"/>"
            "</Roles></Organisation></Organisations></Member>"
            "<Member OrganisationMemberId=\"8\" Inactive=\"true\"/>" TAIL,
            CS_EXPORT_OK, "7 ÅSA@FÖRENING.SE Åsa Öberg 0 3126:2026-01-01:2026-12-31;8 - - - 1;");
}

TEST (what_an_export_never_has)
{
    expect (__LINE__, "", CS_EXPORT_FAILED, "export: Cardskipper answered HTTP 200 with an empty body");
    expect (__LINE__, "<!DOCTYPE html><html><body>503</body></html>", CS_EXPORT_FAILED,
            "export: Cardskipper answered with an HTML page, not XML");
    expect (__LINE__, "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><Cardskipper>&a;</Cardskipper>",
            CS_EXPORT_FAILED, "export: the export has a DOCTYPE; refused");
    expect (__LINE__, "<Other/>", CS_EXPORT_FAILED, "export: the export's root element is <Other>");
    expect (__LINE__, HEAD "<Member OrganisationMemberId=\"7\">", CS_EXPORT_FAILED,
            "export: the export is not well-formed XML");
}

/* Found by fuzz_export: a Member whose id is not a number stopped the parser
 * inside the callback, which then read its remaining attributes from the
 * freed input (make asan and make memcheck see it). */
TEST (a_bad_member_id_stops_the_parse_after_the_callback)
{
    expect (__LINE__, HEAD "<Member OrganisationMemberId=\"1009-01T00:00:00\" Inactive=\"false\" "
            "Firstname=\"" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"/>" TAIL,
            CS_EXPORT_FAILED, "export: a Member's OrganisationMemberId is not a number: '1009-01T00:00:00'");
}

/* Found by fuzz_export: a declared encoding libxml2 does not know, with bytes
 * that are not UTF-8, passed when the body came in one piece and failed when
 * it came in many. An export is UTF-8 whatever it declares. */
TEST (an_export_is_utf8_whatever_it_declares)
{
    expect (__LINE__, "<?xml version=\"1.0\" encoding=\"utf8-\"?><Cardskipper><Members>"
            "<Member OrganisationMemberId=\"7\" Firstname=\"\xE4\"/>" TAIL,
            CS_EXPORT_FAILED, "export: the export is not well-formed XML (line 1): Input is not proper UTF-8");
    expect (__LINE__, "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Cardskipper><Members>"
            "<Member OrganisationMemberId=\"7\" Firstname=\"Åsa\"/>" TAIL,
            CS_EXPORT_OK, "7 - Åsa - 0;");
}
