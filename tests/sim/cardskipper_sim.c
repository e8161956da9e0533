/* cardskipper-sim: a local stand-in for Cardskipper's External API
 * (shared/specs/cardskipper-api.md §11), for tests, benchmarks and the demo.
 *
 *   cardskipper-sim [--port N] [--control-port N] [--port-file F] [--members N]
 *                   [--seed S] [--user U] [--password P] [--today YYYY-MM-DD]
 *
 * The API port speaks the real protocol: Basic auth on every call, GET
 * /Organisation/Info, POST /Member/Export with strict request validation and
 * the attribute-based response, streamed as it is generated. The control port
 * (JSON) loads and changes members and sets faults; see scripts/cardskipper-ctl. */
#include "simhttp.h"
#include "common/date.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* --- organisations -------------------------------------------------------- */

typedef struct {
    int64_t id;
    const char *name;
} role_def_t;

typedef struct {
    int64_t id;
    const char *name;
    int64_t parent;             /* 0 if none */
    role_def_t roles [4];
} org_t;

static const org_t s_orgs [] = {
    { 1234, "Föreningen Exempel", 0, { { 3126, "Medlem" }, { 3127, "Ungdom" },
                                       { 3128, "Familj & Vänner" }, { 0, NULL } } },
    { 1240, "Sektion Göteborg", 1234, { { 4001, "Medlem Göteborg" }, { 0, NULL } } },
    { 2000, "Tom förening", 0, { { 5001, "Medlem" }, { 0, NULL } } },
};
#define ORG_COUNT (sizeof s_orgs / sizeof *s_orgs)

static const org_t *
find_org (int64_t id)
{
    for (size_t i = 0; i < ORG_COUNT; i++)
        if (s_orgs [i].id == id)
            return &s_orgs [i];
    return NULL;
}

/* --- the member data set (copy on write) --------------------------------- */

typedef struct {
    int64_t org;
    int64_t role;
    cs_day_t start;
    cs_day_t end;
    uint32_t type;              /* arena offset, 0 = none */
} mrole_t;

typedef struct {
    int64_t omid;
    uint32_t first, last, email, phone;   /* arena offsets, 0 = absent */
    cs_day_t birth;
    int64_t changed;            /* seconds since 1970, naive local time */
    uint32_t role_at;           /* first role in roles[] */
    uint32_t role_count;
    uint8_t inactive;
    uint8_t contact;            /* has a ContactInfo element */
} member_t;

typedef struct {
    member_t *m;
    size_t n, cap;
    mrole_t *r;
    size_t nr, rcap;
    char *arena;
    size_t alen, acap;
    int refs;                   /* guarded by the server lock */
} dataset_t;

static dataset_t *
ds_new (void)
{
    dataset_t *d = calloc (1, sizeof *d);
    if (!d)
        abort ();
    d->acap = 1 << 16;
    d->arena = malloc (d->acap);
    if (!d->arena)
        abort ();
    d->arena [0] = 0;
    d->alen = 1;                /* offset 0 is "absent" */
    d->refs = 1;
    return d;
}

static void
ds_free (dataset_t *d)
{
    if (!d)
        return;
    free (d->m);
    free (d->r);
    free (d->arena);
    free (d);
}

static uint32_t
ds_str (dataset_t *d, const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen (s) + 1;
    if (d->alen + n > d->acap) {
        while (d->alen + n > d->acap)
            d->acap *= 2;
        d->arena = realloc (d->arena, d->acap);
        if (!d->arena)
            abort ();
    }
    memcpy (d->arena + d->alen, s, n);
    uint32_t at = (uint32_t) d->alen;
    d->alen += n;
    return at;
}

static const char *
ds_text (const dataset_t *d, uint32_t at)
{
    return at ? d->arena + at : NULL;
}

static member_t *
ds_add_member (dataset_t *d)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1024;
        d->m = realloc (d->m, d->cap * sizeof *d->m);
        if (!d->m)
            abort ();
    }
    member_t *m = &d->m [d->n++];
    memset (m, 0, sizeof *m);
    m->role_at = (uint32_t) d->nr;
    m->contact = 1;
    return m;
}

/* Roles must be added right after their member. */
static void
ds_add_role (dataset_t *d, member_t *m, int64_t org, int64_t role, cs_day_t start, cs_day_t end,
             const char *type)
{
    if (d->nr == d->rcap) {
        d->rcap = d->rcap ? d->rcap * 2 : 2048;
        d->r = realloc (d->r, d->rcap * sizeof *d->r);
        if (!d->r)
            abort ();
    }
    d->r [d->nr++] = (mrole_t) { org, role, start, end, ds_str (d, type) };
    m->role_count++;
}

static int
by_omid (const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    return x->omid < y->omid ? -1 : x->omid > y->omid;
}

static void
ds_sort (dataset_t *d)
{
    qsort (d->m, d->n, sizeof *d->m, by_omid);
}

/* --- the server ------------------------------------------------------------ */

typedef struct {
    int latency_ms;
    int fail_status;            /* forced status for API calls, 0 = none */
    int fail_count;             /* how many more (0 = every call while set) */
    int html_errors;            /* error bodies as an HTML page */
    long truncate_after;        /* bytes of an export before the connection drops */
    long stall_after;           /* bytes of an export before it stalls */
    int stall_ms;
    int bom;                    /* a UTF-8 BOM before the export */
    char date_format [16];      /* midnight, date, fraction, zulu, offset */
    int omit_empty_members;     /* <Cardskipper/> with no Members element */
    int empty;                  /* every export has no members */
    int forbid_export;          /* 403: no API right for /Member/Export */
    int64_t forbidden_orgs [8];
    int lenient;                /* accept the seeds' element-text request form */
    int doctype;                /* an export that declares entities (billion laughs) */
    char body200 [8];           /* "empty" or "html": the export answers 200 with that instead */
} faults_t;

typedef struct {
    pthread_mutex_t lock;
    dataset_t *data;
    faults_t faults;
    json_t *stats;              /* requests, statuses, exports ... */
    json_t *last_criteria;
    char user [128];
    char password [128];
    cs_day_t today;
    int today_fixed;
    volatile int stopping;
    sim_server_t api;
    sim_server_t control;
} sim_t;

static cs_day_t
today (sim_t *sim)
{
    if (sim->today_fixed)
        return sim->today;
    cs_day_t d;
    if (cs_day_local (time (NULL), "Europe/Stockholm", &d) != 0)
        d = (cs_day_t) (time (NULL) / 86400);
    return d;
}

static void
count_stat (sim_t *sim, const char *group, const char *key, json_int_t by)
{
    json_t *g = json_object_get (sim->stats, group);
    if (!g) {
        g = json_object ();
        json_object_set_new (sim->stats, group, g);
    }
    json_t *v = json_object_get (g, key);
    json_object_set_new (g, key, json_integer ((v ? json_integer_value (v) : 0) + by));
}

static void
bump (sim_t *sim, const char *key, json_int_t by)
{
    json_t *v = json_object_get (sim->stats, key);
    json_object_set_new (sim->stats, key, json_integer ((v ? json_integer_value (v) : 0) + by));
}

static void
reset_stats (sim_t *sim)
{
    json_decref (sim->stats);
    sim->stats = json_pack ("{s:{}, s:{}, s:i, s:i, s:i}", "requests", "status", "exports", 0,
                            "members_sent", 0, "auth_failures", 0);
}

/* --- generator ------------------------------------------------------------- */

static const char *FIRST [] = {
    "Anna", "Erik", "Lars", "Karin", "Åsa", "Björn", "Märta", "Göran", "Sören", "Ingrid",
    "Olof", "Maja", "Linnéa", "Håkan", "Åke", "Örjan", "Kjell", "Ulla", "Agnes", "Nils",
    "Elsa", "Måns", "Sigrid", "Jöns",
};
static const char *LAST [] = {
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Öberg", "Åström", "Ström", "Lindgren", "Bäckström", "Sjögren",
    "Ekström", "Hägg", "Löfgren", "Dahlén",
};
static const char *DOMAINS [] = { "example.se", "club.example", "mail.example.com", "exempel.nu" };

/* ASCII for e-mail local parts: å->a, ö->o, é->e ... */
static void
ascii_lower (const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *) in; *p && n + 1 < size; p++) {
        if (*p == 0xC3 && p [1]) {
            unsigned char c = p [1];
            p++;
            char r = (c == 0xA5 || c == 0x85 || c == 0xA4 || c == 0x84) ? 'a'
                   : (c == 0xB6 || c == 0x96) ? 'o' : (c == 0xA9 || c == 0x89) ? 'e' : 'x';
            out [n++] = r;
        }
        else if (*p >= 'A' && *p <= 'Z')
            out [n++] = (char) (*p + 32);
        else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
            out [n++] = (char) *p;
    }
    out [n] = 0;
}

static dataset_t *
generate (size_t count, uint64_t seed, cs_day_t now)
{
    dataset_t *d = ds_new ();
    sim_rng_t rng;
    sim_rng_seed (&rng, seed);
    char email [256], local [128], name [128];
    for (size_t i = 0; i < count; i++) {
        member_t *m = ds_add_member (d);
        double roll = sim_rng_real (&rng);
        /* about 1 % above 2^31 */
        m->omid = roll < 0.01 ? INT64_C (3000000000) + (int64_t) i : 1000 + (int64_t) i;
        const char *first = FIRST [sim_rng_below (&rng, sizeof FIRST / sizeof *FIRST)];
        const char *last = LAST [sim_rng_below (&rng, sizeof LAST / sizeof *LAST)];
        m->first = ds_str (d, first);
        if (sim_rng_real (&rng) < 0.005) {
            snprintf (name, sizeof name, "%s & Söner", last);
            m->last = ds_str (d, name);
        }
        else
            m->last = ds_str (d, last);
        m->birth = now - 365 * (8 + (cs_day_t) sim_rng_below (&rng, 70))
                   - (cs_day_t) sim_rng_below (&rng, 365);
        m->changed = ((int64_t) now - (int64_t) sim_rng_below (&rng, 400)) * 86400;
        char phone [32];
        snprintf (phone, sizeof phone, "070 %03u %03u", sim_rng_below (&rng, 1000),
                  sim_rng_below (&rng, 1000));
        m->phone = ds_str (d, phone);
        double e = sim_rng_real (&rng);
        if (e < 0.01)
            m->contact = 0;                              /* no ContactInfo at all */
        else if (e < 0.02)
            m->email = 0;                                /* a phone, no e-mail */
        else if (e < 0.05 && i > 0) {
            /* a family sharing an earlier member's address */
            const member_t *other = &d->m [sim_rng_below (&rng, (unsigned) i)];
            m->email = other->email;
        }
        else {
            ascii_lower (first, local, sizeof local);
            char lastl [64];
            ascii_lower (last, lastl, sizeof lastl);
            const char *domain = DOMAINS [sim_rng_below (&rng, 4)];
            if (e < 0.10)    /* mixed case and stray spaces */
                snprintf (email, sizeof email, "  %c%s.%s%zu@%s ", first [0] >= 'a' ? first [0] : 'A',
                          local + 1, lastl, i, "Example.SE");
            else
                snprintf (email, sizeof email, "%s.%s%zu@%s", local, lastl, i, domain);
            m->email = ds_str (d, email);
        }
        m->inactive = sim_rng_real (&rng) < 0.02;
        /* the current role, and sometimes more */
        cs_day_t start = now - (cs_day_t) sim_rng_below (&rng, 330);
        cs_day_t end = start + 364;
        int64_t role = 3126 + (int64_t) sim_rng_below (&rng, 3);
        double r = sim_rng_real (&rng);
        if (r < 0.05) {                                  /* expired only */
            ds_add_role (d, m, 1234, role, start - 800, start - 436, NULL);
        }
        else if (r < 0.08) {                             /* future only */
            ds_add_role (d, m, 1234, role, now + 10, now + 375, NULL);
        }
        else if (r < 0.09) {                             /* end before start */
            ds_add_role (d, m, 1234, role, now, now - 400, NULL);
        }
        else if (r < 0.10) {                             /* ends today */
            ds_add_role (d, m, 1234, role, now - 364, now, NULL);
        }
        else {
            ds_add_role (d, m, 1234, role, start, end, role == 3127 ? "Ungdom" : NULL);
            if (sim_rng_real (&rng) < 0.20)              /* last year's role */
                ds_add_role (d, m, 1234, role, start - 365, start - 1, NULL);
            if (sim_rng_real (&rng) < 0.10)              /* renewed in advance */
                ds_add_role (d, m, 1234, role, end + 1, end + 365, NULL);
        }
        if (sim_rng_real (&rng) < 0.05)                  /* also in the child organisation */
            ds_add_role (d, m, 1240, 4001, start, end, NULL);
    }
    ds_sort (d);
    return d;
}

/* --- JSON in and out ------------------------------------------------------- */

static json_t *
member_json (const dataset_t *d, const member_t *m)
{
    char day [CS_DAY_LEN];
    cs_day_format (m->birth, day);
    char changed [32];
    time_t t = (time_t) m->changed;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (changed, sizeof changed, "%Y-%m-%dT%H:%M:%S", &tm);
    json_t *roles = json_array ();
    for (uint32_t i = 0; i < m->role_count; i++) {
        const mrole_t *r = &d->r [m->role_at + i];
        char s [CS_DAY_LEN], e [CS_DAY_LEN];
        cs_day_format (r->start, s);
        cs_day_format (r->end, e);
        json_t *jr = json_pack ("{s:I, s:I, s:s, s:s}", "org", (json_int_t) r->org, "role",
                                (json_int_t) r->role, "start", s, "end", e);
        if (r->type)
            json_object_set_new (jr, "type", json_string (ds_text (d, r->type)));
        json_array_append_new (roles, jr);
    }
    json_t *j = json_pack ("{s:I, s:s, s:s, s:s, s:b, s:b, s:s, s:o}",
                           "omid", (json_int_t) m->omid, "first", ds_text (d, m->first),
                           "last", ds_text (d, m->last), "birthdate", day,
                           "inactive", m->inactive, "contact", m->contact, "changed", changed,
                           "roles", roles);
    if (m->email)
        json_object_set_new (j, "email", json_string (ds_text (d, m->email)));
    if (m->phone)
        json_object_set_new (j, "phone", json_string (ds_text (d, m->phone)));
    return j;
}

static int
parse_changed (const char *text, int64_t *out)
{
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *end = strptime (text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || *end)
        return -1;
    *out = (int64_t) timegm (&tm);
    return 0;
}

/* Adds a member from JSON to d; -1 with a reason. */
static int
add_member_json (dataset_t *d, json_t *j, int64_t now_secs, char *why, size_t why_size)
{
    json_int_t omid = json_integer_value (json_object_get (j, "omid"));
    if (!json_is_integer (json_object_get (j, "omid")) || omid <= 0) {
        snprintf (why, why_size, "a member needs a positive integer omid");
        return -1;
    }
    const char *first = json_string_value (json_object_get (j, "first"));
    const char *last = json_string_value (json_object_get (j, "last"));
    const char *birth = json_string_value (json_object_get (j, "birthdate"));
    const char *changed = json_string_value (json_object_get (j, "changed"));
    member_t *m = ds_add_member (d);
    m->omid = omid;
    m->first = ds_str (d, first ? first : "");
    m->last = ds_str (d, last ? last : "");
    cs_day_t b = 0;
    if (birth && cs_day_parse (birth, &b) != 0) {
        snprintf (why, why_size, "member %lld: bad birthdate '%s'", (long long) omid, birth);
        d->n--;
        return -1;
    }
    m->birth = birth ? b : 7000;
    m->changed = now_secs;
    if (changed && parse_changed (changed, &m->changed) != 0) {
        snprintf (why, why_size, "member %lld: bad changed '%s'", (long long) omid, changed);
        d->n--;
        return -1;
    }
    m->email = ds_str (d, json_string_value (json_object_get (j, "email")));
    m->phone = ds_str (d, json_string_value (json_object_get (j, "phone")));
    m->inactive = json_is_true (json_object_get (j, "inactive"));
    json_t *contact = json_object_get (j, "contact");
    m->contact = contact ? json_is_true (contact) : 1;
    size_t i;
    json_t *r;
    json_array_foreach (json_object_get (j, "roles"), i, r) {
        const char *s = json_string_value (json_object_get (r, "start"));
        const char *e = json_string_value (json_object_get (r, "end"));
        cs_day_t sd, ed;
        if (!s || !e || cs_day_parse (s, &sd) != 0 || cs_day_parse (e, &ed) != 0) {
            snprintf (why, why_size, "member %lld: a role needs start and end as YYYY-MM-DD",
                      (long long) omid);
            d->nr -= m->role_count;
            d->n--;
            return -1;
        }
        json_int_t org = json_integer_value (json_object_get (r, "org"));
        json_int_t role = json_integer_value (json_object_get (r, "role"));
        ds_add_role (d, m, org ? org : 1234, role ? role : 3126, sd, ed,
                     json_string_value (json_object_get (r, "type")));
    }
    return 0;
}

/* Called for each copied member, right after its roles: may change it and
 * add roles (they stay contiguous). Returns 1 if it changed the member. */
typedef int (edit_fn) (dataset_t *d, member_t *m, void *ctx);

/* A new data set: the old one's members except those in skip, each passed
 * through edit (if not NULL). *edited counts the members edit changed. */
static dataset_t *
ds_copy_edit (const dataset_t *old, const int64_t *skip, size_t skip_count, edit_fn *edit,
              void *ctx, int *edited)
{
    dataset_t *d = ds_new ();
    if (edited)
        *edited = 0;
    for (size_t i = 0; i < old->n; i++) {
        const member_t *o = &old->m [i];
        int skipped = 0;
        for (size_t k = 0; k < skip_count && !skipped; k++)
            skipped = skip [k] == o->omid;
        if (skipped)
            continue;
        member_t *m = ds_add_member (d);
        *m = *o;
        m->role_at = (uint32_t) d->nr;
        m->role_count = 0;
        m->first = ds_str (d, ds_text (old, o->first));
        m->last = ds_str (d, ds_text (old, o->last));
        m->email = ds_str (d, ds_text (old, o->email));
        m->phone = ds_str (d, ds_text (old, o->phone));
        for (uint32_t k = 0; k < o->role_count; k++) {
            const mrole_t *r = &old->r [o->role_at + k];
            ds_add_role (d, m, r->org, r->role, r->start, r->end, ds_text (old, r->type));
        }
        if (edit && edit (d, m, ctx) && edited)
            (*edited)++;
    }
    return d;
}

static dataset_t *
ds_copy_except (const dataset_t *old, const int64_t *skip, size_t skip_count)
{
    return ds_copy_edit (old, skip, skip_count, NULL, NULL, NULL);
}

/* --- the export, streamed -------------------------------------------------- */

typedef struct {
    int64_t org;
    int only_active;
    int64_t role;               /* 0 = any */
    int has_changed;
    int64_t changed;
    int64_t omid;               /* 0 = any */
    char first [256];
    char last [256];
} criteria_t;

typedef struct {
    sim_t *sim;
    dataset_t *data;            /* a reference, released at the end */
    criteria_t crit;
    faults_t faults;            /* as they were when the export began */
    cs_day_t today;
    size_t next;                /* the next member to look at */
    int phase;                  /* 0 header, 1 members, 2 footer, 3 done */
    int any;                    /* a member has been written */
    sim_buf_t pending;
    size_t pending_off;
    long sent;
    long members;
    int stalled;
} export_t;

static int
member_matches (const export_t *x, const member_t *m)
{
    const dataset_t *d = x->data;
    int in_org = 0, active = 0, has_role = x->crit.role == 0;
    for (uint32_t i = 0; i < m->role_count; i++) {
        const mrole_t *r = &d->r [m->role_at + i];
        if (r->org != x->crit.org)
            continue;
        in_org = 1;
        int now = r->start <= x->today && x->today <= r->end;
        if (x->crit.role && r->role == x->crit.role && (!x->crit.only_active || now))
            has_role = 1;
        active |= now;
    }
    if (!in_org || !has_role)
        return 0;
    if (x->crit.only_active && (m->inactive || !active))
        return 0;
    if (x->crit.has_changed && m->changed < x->crit.changed)
        return 0;
    if (x->crit.omid && m->omid != x->crit.omid)
        return 0;
    if (x->crit.first [0] && strncasecmp (ds_text (d, m->first), x->crit.first,
                                          strlen (x->crit.first)) != 0)
        return 0;
    if (x->crit.last [0] && strncasecmp (ds_text (d, m->last), x->crit.last,
                                         strlen (x->crit.last)) != 0)
        return 0;
    return 1;
}

static void
put_date (sim_buf_t *b, const char *fmt, cs_day_t day)
{
    char text [CS_DAY_LEN];
    cs_day_format (day, text);
    sim_buf_add (b, text, 10);
    if (strcmp (fmt, "date") == 0)
        return;
    if (strcmp (fmt, "fraction") == 0)
        SIM_ADD (b, "T00:00:00.0000000");
    else if (strcmp (fmt, "zulu") == 0)
        SIM_ADD (b, "T00:00:00Z");
    else if (strcmp (fmt, "offset") == 0)
        SIM_ADD (b, "T00:00:00+01:00");
    else
        SIM_ADD (b, "T00:00:00");
}

static void
write_member (export_t *x, const member_t *m)
{
    sim_buf_t *b = &x->pending;
    const dataset_t *d = x->data;
    const char *fmt = x->faults.date_format;
    sim_buf_printf (b, "    <Member OrganisationMemberId=\"%lld\" Firstname=\"", (long long) m->omid);
    sim_buf_xml (b, ds_text (d, m->first));
    SIM_ADD (b, "\" Lastname=\"");
    sim_buf_xml (b, ds_text (d, m->last));
    SIM_ADD (b, "\" Birthdate=\"");
    put_date (b, fmt, m->birth);
    sim_buf_printf (b, "\" Inactive=\"%s\">\n", m->inactive ? "true" : "false");
    if (m->contact && (m->phone || m->email)) {
        SIM_ADD (b, "      <ContactInfo");
        if (m->phone) {
            SIM_ADD (b, " CellPhone1=\"");
            sim_buf_xml (b, ds_text (d, m->phone));
            SIM_ADD (b, "\"");
        }
        if (m->email) {
            SIM_ADD (b, " EMail=\"");
            sim_buf_xml (b, ds_text (d, m->email));
            SIM_ADD (b, "\"");
        }
        SIM_ADD (b, "/>\n");
    }
    sim_buf_printf (b, "      <Organisations>\n        <Organisation Id=\"%lld\">\n          <Roles>\n",
                    (long long) x->crit.org);
    for (uint32_t i = 0; i < m->role_count; i++) {
        const mrole_t *r = &d->r [m->role_at + i];
        if (r->org != x->crit.org)
            continue;
        sim_buf_printf (b, "            <Role Id=\"%lld\" StartDate=\"", (long long) r->role);
        put_date (b, fmt, r->start);
        SIM_ADD (b, "\" EndDate=\"");
        put_date (b, fmt, r->end);
        SIM_ADD (b, "\"");
        if (r->type) {
            SIM_ADD (b, " Type=\"");
            sim_buf_xml (b, ds_text (d, r->type));
            SIM_ADD (b, "\"");
        }
        SIM_ADD (b, "/>\n");
    }
    SIM_ADD (b, "          </Roles>\n        </Organisation>\n      </Organisations>\n"
                    "    </Member>\n");
    x->members++;
}

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Cardskipper " \
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" " \
    "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n"

/* Fills pending with the next piece of the document. */
static void
produce (export_t *x)
{
    x->pending.len = 0;
    x->pending_off = 0;
    if (x->phase == 0) {
        if (x->faults.bom)
            SIM_ADD (&x->pending, "\xEF\xBB\xBF");
        if (x->faults.doctype)
            SIM_ADD (&x->pending, "<?xml version=\"1.0\"?>\n<!DOCTYPE Cardskipper [\n"
                     "  <!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">\n"
                     "  <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
                     "  <!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n]>\n"
                     "<Cardskipper><Members><Member OrganisationMemberId=\"1\" Firstname=\"&c;\">"
                     "<ContactInfo EMail=\"x@example.se\"/></Member></Members></Cardskipper>\n");
        if (x->faults.doctype) {
            x->phase = 3;
            return;
        }
        sim_buf_add (&x->pending, XML_HEAD, strlen (XML_HEAD));
        x->phase = 1;
        return;
    }
    if (x->phase == 1) {
        while (x->next < x->data->n && x->pending.len < 32768) {
            const member_t *m = &x->data->m [x->next++];
            if (x->faults.empty || !member_matches (x, m))
                continue;
            if (!x->any) {
                SIM_ADD (&x->pending, "  <Members>\n");
                x->any = 1;
            }
            write_member (x, m);
        }
        if (x->next >= x->data->n)
            x->phase = 2;
        if (x->pending.len)
            return;
    }
    if (x->phase == 2) {
        if (x->any)
            SIM_ADD (&x->pending, "  </Members>\n");
        else if (!x->faults.omit_empty_members)
            SIM_ADD (&x->pending, "  <Members/>\n");
        SIM_ADD (&x->pending, "</Cardskipper>\n");
        x->phase = 3;
    }
}

static ssize_t
export_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    export_t *x = cls;
    while (x->pending_off >= x->pending.len) {
        if (x->phase == 3)
            return MHD_CONTENT_READER_END_OF_STREAM;
        produce (x);
    }
    size_t n = x->pending.len - x->pending_off;
    if (n > max)
        n = max;
    if (x->faults.truncate_after >= 0 && x->sent + (long) n > x->faults.truncate_after) {
        n = (size_t) (x->faults.truncate_after - x->sent);
        if (n == 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;   /* the connection drops */
    }
    if (x->faults.stall_after >= 0 && !x->stalled && x->sent + (long) n > x->faults.stall_after) {
        n = (size_t) (x->faults.stall_after - x->sent);
        if (n == 0) {
            x->stalled = 1;
            for (int64_t end = sim_now_ms () + x->faults.stall_ms;
                 sim_now_ms () < end && !x->sim->stopping; )
                sim_sleep_ms (50);
        }
    }
    memcpy (buf, x->pending.data + x->pending_off, n);
    x->pending_off += n;
    x->sent += (long) n;
    return (ssize_t) n;
}

static void
export_free (void *cls)
{
    export_t *x = cls;
    sim_t *sim = x->sim;
    pthread_mutex_lock (&sim->lock);
    bump (sim, "members_sent", x->members);
    if (--x->data->refs == 0)
        ds_free (x->data);
    pthread_mutex_unlock (&sim->lock);
    sim_buf_free (&x->pending);
    free (x);
}

/* --- request validation ---------------------------------------------------- */

static const char *CRITERIA [] = {
    "MemberId", "OrganisationId", "RoleId", "UserId", "OrganisationMemberId", "Birthdate",
    "Firstname", "Lastname", "Cellphone", "TagContains", "OrganisationUnit", "HasUserDevice",
    "OnlyActive", "ChangedAt", NULL,
};

static int
parse_bool (const char *v, int *out)
{
    if (!strcmp (v, "true") || !strcmp (v, "True") || !strcmp (v, "1")) { *out = 1; return 0; }
    if (!strcmp (v, "false") || !strcmp (v, "False") || !strcmp (v, "0")) { *out = 0; return 0; }
    return -1;
}

static int
parse_int (const char *v, int64_t *out)
{
    char *end;
    long long n = strtoll (v, &end, 10);
    if (!*v || *end)
        return -1;
    *out = n;
    return 0;
}

/* Parses the SearchCriteriaMember request; -1 with why (a 400). */
static int
parse_criteria (const char *body, size_t len, int lenient, criteria_t *c, json_t *seen,
                char *why, size_t why_size)
{
    memset (c, 0, sizeof *c);
    if (len == 0) {
        snprintf (why, why_size, "The request body is empty.");
        return -1;
    }
    xmlDocPtr doc = xmlReadMemory (body, (int) len, "request.xml", NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        snprintf (why, why_size, "The request is not well-formed XML.");
        return -1;
    }
    int rc = -1;
    xmlNodePtr root = xmlDocGetRootElement (doc);
    xmlNodePtr list = NULL;
    int element_form = 0;
    if (doc->intSubset || doc->extSubset) {
        snprintf (why, why_size, "DOCTYPE is not allowed.");
        goto done;
    }
    if (root && !strcmp ((const char *) root->name, "Cardskipper")) {
        for (xmlNodePtr n = root->children; n; n = n->next)
            if (n->type == XML_ELEMENT_NODE) {
                if (strcmp ((const char *) n->name, "SearchCriteriaMember") != 0 || list) {
                    snprintf (why, why_size, "Cardskipper must hold one SearchCriteriaMember.");
                    goto done;
                }
                list = n;
            }
    }
    else if (root && !strcmp ((const char *) root->name, "SearchCriteriaMember") && lenient) {
        list = root;
        element_form = 1;
    }
    if (!list) {
        snprintf (why, why_size, "The root element must be Cardskipper with a "
                  "SearchCriteriaMember inside.");
        goto done;
    }
    int have_org = 0;
    for (xmlNodePtr n = list->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        const char *name = (const char *) n->name;
        int known = 0;
        for (int i = 0; CRITERIA [i]; i++)
            known |= !strcmp (CRITERIA [i], name);
        if (!known) {
            if (lenient)
                continue;
            snprintf (why, why_size, "Unknown criterion '%.100s'.", name);
            goto done;
        }
        xmlChar *raw = element_form ? xmlNodeGetContent (n) : xmlGetProp (n, BAD_CAST "value");
        if (!raw || !raw [0]) {
            snprintf (why, why_size, "Criterion '%.100s' has no value%s.", name,
                      element_form ? "" : " attribute");
            xmlFree (raw);
            goto done;
        }
        char value [256];
        snprintf (value, sizeof value, "%s", (const char *) raw);
        xmlFree (raw);
        json_object_set_new (seen, name, json_string (value));
        int64_t num;
        int flag;
        int bad = 0;
        if (!strcmp (name, "OrganisationId")) {
            bad = parse_int (value, &c->org) != 0 || c->org <= 0;
            have_org = 1;
        }
        else if (!strcmp (name, "RoleId"))
            bad = parse_int (value, &c->role) != 0;
        else if (!strcmp (name, "OrganisationMemberId"))
            bad = parse_int (value, &c->omid) != 0;
        else if (!strcmp (name, "MemberId") || !strcmp (name, "UserId"))
            bad = parse_int (value, &num) != 0;
        else if (!strcmp (name, "OnlyActive"))
            bad = parse_bool (value, &c->only_active) != 0;
        else if (!strcmp (name, "HasUserDevice"))
            bad = parse_bool (value, &flag) != 0;
        else if (!strcmp (name, "ChangedAt") || !strcmp (name, "Birthdate")) {
            cs_day_t day;
            bad = cs_date_parse_cardskipper (value, &day, NULL) != 0;
            if (!bad && !strcmp (name, "ChangedAt")) {
                c->has_changed = 1;
                if (strlen (value) == 10)
                    c->changed = (int64_t) day * 86400;
                else
                    bad = parse_changed (value, &c->changed) != 0;
            }
        }
        else if (!strcmp (name, "Firstname"))
            snprintf (c->first, sizeof c->first, "%s", value);
        else if (!strcmp (name, "Lastname"))
            snprintf (c->last, sizeof c->last, "%s", value);
        if (bad) {
            snprintf (why, why_size, "Criterion '%.40s' has an invalid value '%.100s'.", name, value);
            goto done;
        }
    }
    if (!have_org) {
        snprintf (why, why_size, "OrganisationId is required.");
        goto done;
    }
    rc = 0;
done:
    xmlFreeDoc (doc);
    return rc;
}

/* --- the API --------------------------------------------------------------- */

static void
normalise_path (const char *url, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = url; *p && *p != '?' && n + 1 < size; p++)
        out [n++] = (char) (*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    while (n > 1 && out [n - 1] == '/')
        n--;
    out [n] = 0;
}

static sim_step_t
api_error (sim_t *sim, struct MHD_Connection *conn, unsigned status, const char *text)
{
    pthread_mutex_lock (&sim->lock);
    int html = sim->faults.html_errors;
    char key [16];
    snprintf (key, sizeof key, "%u", status);
    count_stat (sim, "status", key, 1);
    pthread_mutex_unlock (&sim->lock);
    if (html) {
        char page [1024];
        int n = snprintf (page, sizeof page, "<!DOCTYPE html>\n<html><head><title>%u</title></head>"
                          "<body><h1>Server Error</h1><p>%s</p></body></html>\n", status, text);
        return sim_reply (conn, status, "text/html; charset=utf-8", page, (size_t) n, NULL);
    }
    return sim_reply_text (conn, status, text);
}

static sim_step_t
api_handler (void *cls, struct MHD_Connection *conn, const char *method, const char *url,
             sim_req_t *req, int complete)
{
    sim_t *sim = cls;
    char path [256];
    normalise_path (url, path, sizeof path);
    if (!complete) {
        char key [320];
        snprintf (key, sizeof key, "%s %s", method, path);
        const char *agent = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
        pthread_mutex_lock (&sim->lock);
        count_stat (sim, "requests", key, 1);
        count_stat (sim, "user_agents", agent ? agent : "(none)", 1);
        int latency = sim->faults.latency_ms;
        pthread_mutex_unlock (&sim->lock);
        sim_sleep_ms (latency);
        /* Basic auth on every call, before the body */
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password (conn, &pass);
        int ok = user && pass && !strcmp (user, sim->user) && !strcmp (pass, sim->password);
        MHD_free (user);
        MHD_free (pass);
        if (!ok) {
            pthread_mutex_lock (&sim->lock);
            bump (sim, "auth_failures", 1);
            count_stat (sim, "status", "401", 1);
            pthread_mutex_unlock (&sim->lock);
            const char *text = "401 - Unauthorized: Access is denied due to invalid credentials.";
            return sim_reply (conn, 401, "text/plain; charset=utf-8", text, strlen (text),
                              "WWW-Authenticate", "Basic realm=\"Cardskipper\"", NULL);
        }
        /* forced failures */
        pthread_mutex_lock (&sim->lock);
        int status = sim->faults.fail_status;
        if (status && sim->faults.fail_count > 0 && --sim->faults.fail_count == 0)
            sim->faults.fail_status = 0;
        pthread_mutex_unlock (&sim->lock);
        if (status)
            return api_error (sim, conn, (unsigned) status, status == 429
                              ? "Too many requests." : "The service is unavailable.");
        return SIM_CONTINUE;
    }

    int is_export = !strcmp (path, "/member/export");
    int is_info = !strcmp (path, "/organisation/info");
    int is_basedata = !strcmp (path, "/basedata/country") || !strcmp (path, "/basedata/gender");
    if (!is_export && !is_info && !is_basedata)
        return api_error (sim, conn, 404, "Not found.");
    if ((is_export && strcmp (method, "POST")) || (!is_export && strcmp (method, "GET")))
        return api_error (sim, conn, 405, "The requested resource does not support this method.");

    if (is_info || is_basedata) {
        sim_buf_t b = { 0 };
        sim_buf_add (&b, XML_HEAD, strlen (XML_HEAD));
        if (is_basedata) {
            if (strstr (path, "country"))
                sim_buf_printf (&b, "  <Countries><Country Id=\"1\" Code=\"SE\" Name=\"Sverige\"/>"
                                "<Country Id=\"2\" Code=\"NO\" Name=\"Norge\"/></Countries>\n");
            else
                sim_buf_printf (&b, "  <Genders><Gender Id=\"1\" Code=\"M\" Name=\"Man\"/>"
                                "<Gender Id=\"2\" Code=\"F\" Name=\"Kvinna\"/></Genders>\n");
        }
        else {
            pthread_mutex_lock (&sim->lock);
            faults_t f = sim->faults;
            pthread_mutex_unlock (&sim->lock);
            SIM_ADD (&b, "  <Organisations>\n");
            for (size_t i = 0; i < ORG_COUNT; i++) {
                const org_t *o = &s_orgs [i];
                int forbidden = 0;
                for (int k = 0; k < 8; k++)
                    forbidden |= f.forbidden_orgs [k] == o->id;
                if (forbidden)
                    continue;
                sim_buf_printf (&b, "    <Organisation Id=\"%lld\" Name=\"", (long long) o->id);
                sim_buf_xml (&b, o->name);
                SIM_ADD (&b, "\">\n      <Roles>\n");
                for (int r = 0; o->roles [r].id; r++) {
                    sim_buf_printf (&b, "        <Role Id=\"%lld\" Name=\"", (long long) o->roles [r].id);
                    sim_buf_xml (&b, o->roles [r].name);
                    SIM_ADD (&b, "\"/>\n");
                }
                SIM_ADD (&b, "      </Roles>\n      <InformationTypes/>\n");
                for (size_t c = 0; c < ORG_COUNT; c++)
                    if (s_orgs [c].parent == o->id)
                        sim_buf_printf (&b, "      <Children><CardskipperOrganisationChildren "
                                        "Id=\"%lld\" Name=\"%s\"/></Children>\n",
                                        (long long) s_orgs [c].id, s_orgs [c].name);
                SIM_ADD (&b, "    </Organisation>\n");
            }
            SIM_ADD (&b, "  </Organisations>\n");
        }
        SIM_ADD (&b, "</Cardskipper>\n");
        pthread_mutex_lock (&sim->lock);
        count_stat (sim, "status", "200", 1);
        pthread_mutex_unlock (&sim->lock);
        sim_step_t step = sim_reply (conn, 200, "application/xml; charset=utf-8", b.data, b.len,
                                     NULL);
        sim_buf_free (&b);
        return step;
    }

    /* POST /Member/Export */
    const char *ctype = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ctype && strncasecmp (ctype, "application/xml", 15) && strncasecmp (ctype, "text/xml", 8))
        return api_error (sim, conn, 415, "The request must be XML.");
    if (req->too_big)
        return api_error (sim, conn, 413, "The request is too large.");
    pthread_mutex_lock (&sim->lock);
    faults_t f = sim->faults;
    pthread_mutex_unlock (&sim->lock);
    if (f.forbid_export)
        return api_error (sim, conn, 403, "The account has no API right for Member/Export.");
    criteria_t crit;
    char why [256];
    json_t *seen = json_object ();
    if (parse_criteria (req->body, req->len, f.lenient, &crit, seen, why, sizeof why) != 0) {
        json_decref (seen);
        return api_error (sim, conn, 400, why);
    }
    int forbidden = !find_org (crit.org);
    for (int k = 0; k < 8; k++)
        forbidden |= f.forbidden_orgs [k] == crit.org;
    if (forbidden) {
        json_decref (seen);
        return api_error (sim, conn, 403, "The account is not authorised for this organisation.");
    }
    if (f.body200 [0]) {
        static const char page [] = "<!DOCTYPE html>\n<html><head><title>Welcome</title></head>"
                                    "<body><p>Please log in to the portal.</p></body></html>\n";
        int html = !strcmp (f.body200, "html");
        json_decref (seen);
        return sim_reply (conn, 200, html ? "text/html" : "application/xml", html ? page : "",
                          html ? strlen (page) : 0, NULL);
    }
    export_t *x = calloc (1, sizeof *x);
    if (!x) {
        json_decref (seen);
        return SIM_FAIL;
    }
    x->sim = sim;
    x->crit = crit;
    x->faults = f;
    x->today = today (sim);
    pthread_mutex_lock (&sim->lock);
    x->data = sim->data;
    x->data->refs++;
    bump (sim, "exports", 1);
    count_stat (sim, "status", "200", 1);
    json_decref (sim->last_criteria);
    sim->last_criteria = seen;
    pthread_mutex_unlock (&sim->lock);
    struct MHD_Response *resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 64 * 1024,
                                                                   export_read, x, export_free);
    if (!resp) {
        export_free (x);
        return SIM_FAIL;
    }
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/xml; charset=utf-8");
    enum MHD_Result r = MHD_queue_response (conn, 200, resp);
    MHD_destroy_response (resp);
    return r == MHD_YES ? SIM_DONE : SIM_FAIL;
}

/* --- the control port ------------------------------------------------------ */

static void
faults_defaults (faults_t *f)
{
    memset (f, 0, sizeof *f);
    f->truncate_after = -1;
    f->stall_after = -1;
    snprintf (f->date_format, sizeof f->date_format, "midnight");
}

static json_t *
faults_json (const faults_t *f)
{
    json_t *orgs = json_array ();
    for (int k = 0; k < 8; k++)
        if (f->forbidden_orgs [k])
            json_array_append_new (orgs, json_integer (f->forbidden_orgs [k]));
    return json_pack ("{s:i, s:i, s:i, s:b, s:I, s:I, s:i, s:b, s:s, s:b, s:b, s:b, s:o, s:b, s:b, s:s}",
                      "latency_ms", f->latency_ms, "fail_status", f->fail_status,
                      "fail_count", f->fail_count, "html_errors", f->html_errors,
                      "truncate_after", (json_int_t) f->truncate_after,
                      "stall_after", (json_int_t) f->stall_after, "stall_ms", f->stall_ms,
                      "bom", f->bom, "date_format", f->date_format,
                      "omit_empty_members", f->omit_empty_members, "empty", f->empty,
                      "forbid_export", f->forbid_export, "forbidden_orgs", orgs,
                      "lenient", f->lenient, "doctype", f->doctype, "body200", f->body200);
}

static int
apply_faults (faults_t *f, json_t *j, char *why, size_t why_size)
{
    faults_t next = *f;
    if (json_is_true (json_object_get (j, "reset")))
        faults_defaults (&next);
    const char *key;
    json_t *v;
    json_object_foreach (j, key, v) {
        if (!strcmp (key, "reset"))
            continue;
        int is_int = json_is_integer (v), is_bool = json_is_boolean (v);
        if (!strcmp (key, "latency_ms") && is_int) next.latency_ms = (int) json_integer_value (v);
        else if (!strcmp (key, "fail_status") && is_int) next.fail_status = (int) json_integer_value (v);
        else if (!strcmp (key, "fail_count") && is_int) next.fail_count = (int) json_integer_value (v);
        else if (!strcmp (key, "html_errors") && is_bool) next.html_errors = json_is_true (v);
        else if (!strcmp (key, "truncate_after") && is_int) next.truncate_after = (long) json_integer_value (v);
        else if (!strcmp (key, "stall_after") && is_int) next.stall_after = (long) json_integer_value (v);
        else if (!strcmp (key, "stall_ms") && is_int) next.stall_ms = (int) json_integer_value (v);
        else if (!strcmp (key, "bom") && is_bool) next.bom = json_is_true (v);
        else if (!strcmp (key, "omit_empty_members") && is_bool) next.omit_empty_members = json_is_true (v);
        else if (!strcmp (key, "empty") && is_bool) next.empty = json_is_true (v);
        else if (!strcmp (key, "forbid_export") && is_bool) next.forbid_export = json_is_true (v);
        else if (!strcmp (key, "lenient") && is_bool) next.lenient = json_is_true (v);
        else if (!strcmp (key, "doctype") && is_bool) next.doctype = json_is_true (v);
        else if (!strcmp (key, "body200") && json_is_string (v)
                 && (!strcmp (json_string_value (v), "empty") || !strcmp (json_string_value (v), "html")))
            snprintf (next.body200, sizeof next.body200, "%s", json_string_value (v));
        else if (!strcmp (key, "date_format") && json_is_string (v)) {
            const char *s = json_string_value (v);
            if (strcmp (s, "midnight") && strcmp (s, "date") && strcmp (s, "fraction")
                && strcmp (s, "zulu") && strcmp (s, "offset")) {
                snprintf (why, why_size, "date_format: midnight, date, fraction, zulu or offset");
                return -1;
            }
            snprintf (next.date_format, sizeof next.date_format, "%s", s);
        }
        else if (!strcmp (key, "forbidden_orgs") && json_is_array (v)) {
            memset (next.forbidden_orgs, 0, sizeof next.forbidden_orgs);
            size_t i;
            json_t *o;
            json_array_foreach (v, i, o)
                if (i < 8)
                    next.forbidden_orgs [i] = json_integer_value (o);
        }
        else {
            snprintf (why, why_size, "unknown fault or wrong type: %s", key);
            return -1;
        }
    }
    *f = next;
    return 0;
}

/* Swaps in a new data set. */
static void
replace_data (sim_t *sim, dataset_t *d)
{
    pthread_mutex_lock (&sim->lock);
    dataset_t *old = sim->data;
    sim->data = d;
    if (--old->refs == 0)
        ds_free (old);
    pthread_mutex_unlock (&sim->lock);
}

static dataset_t *
current_data (sim_t *sim)
{
    pthread_mutex_lock (&sim->lock);
    dataset_t *d = sim->data;
    d->refs++;
    pthread_mutex_unlock (&sim->lock);
    return d;
}

static void
release_data (sim_t *sim, dataset_t *d)
{
    pthread_mutex_lock (&sim->lock);
    if (--d->refs == 0)
        ds_free (d);
    pthread_mutex_unlock (&sim->lock);
}

static int64_t
now_local_secs (void)
{
    /* "changed" times are naive Stockholm time, like the criteria */
    char text [CS_TIME_LEN];
    int64_t t = (int64_t) time (NULL);
    if (cs_time_local ((time_t) t, "Europe/Stockholm", text) == 0) {
        int64_t secs;
        if (parse_changed (text, &secs) == 0)
            return secs;
    }
    return t;
}

/* A case-insensitive comparison of e-mails, ignoring surrounding blanks. */
static int
same_email (const char *a, const char *b)
{
    while (*a == ' ') a++;
    while (*b == ' ') b++;
    size_t la = strlen (a), lb = strlen (b);
    while (la && a [la - 1] == ' ') la--;
    while (lb && b [lb - 1] == ' ') lb--;
    return la == lb && strncasecmp (a, b, la) == 0;
}

typedef struct {
    int64_t omid;               /* or 0 */
    const char *email;          /* or NULL */
    int64_t org, role;          /* 0: the member's latest role's */
    int has_start;
    cs_day_t start, end;
    int64_t now;
} extend_t;

static int
extend_member (dataset_t *d, member_t *m, void *ctx)
{
    extend_t *x = ctx;
    if (x->omid ? m->omid != x->omid
                : !(m->email && same_email (ds_text (d, m->email), x->email)))
        return 0;
    mrole_t *latest = NULL;
    for (uint32_t k = 0; k < m->role_count; k++) {
        mrole_t *r = &d->r [m->role_at + k];
        if ((!x->org || r->org == x->org) && (!latest || r->end > latest->end))
            latest = r;
    }
    if (x->has_start || !latest) {
        int64_t org = x->org ? x->org : latest ? latest->org : 1234;
        int64_t role = x->role ? x->role : latest ? latest->role : 3126;
        ds_add_role (d, m, org, role, x->has_start ? x->start : x->end - 364, x->end, NULL);
    }
    else
        latest->end = x->end;
    m->changed = x->now;
    return 1;
}

/* POST /extend {"omid": N | "email": E, "end": day, "start": day?, "org": N?, "role": N?}
 * With start, a new role period (a renewal bought in advance); without, the
 * latest role's end moves. */
static sim_step_t
control_extend (sim_t *sim, struct MHD_Connection *conn, json_t *j)
{
    extend_t x;
    memset (&x, 0, sizeof x);
    const char *end = json_string_value (json_object_get (j, "end"));
    const char *start = json_string_value (json_object_get (j, "start"));
    x.email = json_string_value (json_object_get (j, "email"));
    x.omid = json_integer_value (json_object_get (j, "omid"));
    x.org = json_integer_value (json_object_get (j, "org"));
    x.role = json_integer_value (json_object_get (j, "role"));
    x.has_start = start != NULL;
    x.now = now_local_secs ();
    if (!end || cs_day_parse (end, &x.end) != 0 || (start && cs_day_parse (start, &x.start) != 0))
        return sim_control_error (conn, 400, "end (and start) must be YYYY-MM-DD");
    if (!x.omid && !x.email)
        return sim_control_error (conn, 400, "give omid or email");
    dataset_t *old = current_data (sim);
    int changed = 0;
    dataset_t *d = ds_copy_edit (old, NULL, 0, extend_member, &x, &changed);
    release_data (sim, old);
    if (!changed) {
        ds_free (d);
        return sim_control_error (conn, 404, "no such member");
    }
    replace_data (sim, d);
    return sim_reply_json (conn, 200, json_pack ("{s:i}", "changed", changed), 0);
}

static sim_step_t
control_handler (void *cls, struct MHD_Connection *conn, const char *method, const char *url,
                 sim_req_t *req, int complete)
{
    sim_t *sim = cls;
    if (!complete)
        return SIM_CONTINUE;
    json_t *body = NULL;
    if (req->len) {
        json_error_t err;
        body = json_loadb (req->body, req->len, 0, &err);
        if (!body)
            return sim_control_error (conn, 400, err.text);
    }
    sim_step_t step;
    char why [256];
    if (!strcmp (url, "/health"))
        step = sim_reply_json (conn, 200, json_pack ("{s:s}", "status", "ok"), 0);
    else if (!strcmp (url, "/stats") && !strcmp (method, "GET")) {
        pthread_mutex_lock (&sim->lock);
        json_t *copy = json_deep_copy (sim->stats);
        json_object_set (copy, "last_criteria", sim->last_criteria ? sim->last_criteria
                                                                    : json_null ());
        json_object_set_new (copy, "members", json_integer ((json_int_t) sim->data->n));
        pthread_mutex_unlock (&sim->lock);
        step = sim_reply_json (conn, 200, copy, 0);
    }
    else if (!strcmp (url, "/stats/reset") && !strcmp (method, "POST")) {
        pthread_mutex_lock (&sim->lock);
        reset_stats (sim);
        pthread_mutex_unlock (&sim->lock);
        step = sim_reply_json (conn, 200, json_pack ("{s:b}", "ok", 1), 0);
    }
    else if (!strcmp (url, "/faults")) {
        pthread_mutex_lock (&sim->lock);
        int rc = 0;
        if (!strcmp (method, "POST"))
            rc = body ? apply_faults (&sim->faults, body, why, sizeof why) : 0;
        json_t *now = faults_json (&sim->faults);
        pthread_mutex_unlock (&sim->lock);
        if (rc != 0) {
            json_decref (now);
            step = sim_control_error (conn, 400, why);
        }
        else
            step = sim_reply_json (conn, 200, now, 0);
    }
    else if (!strcmp (url, "/today") && !strcmp (method, "POST")) {
        const char *t = json_string_value (json_object_get (body, "today"));
        cs_day_t d;
        if (t && cs_day_parse (t, &d) == 0) {
            pthread_mutex_lock (&sim->lock);
            sim->today = d;
            sim->today_fixed = 1;
            pthread_mutex_unlock (&sim->lock);
            step = sim_reply_json (conn, 200, json_pack ("{s:s}", "today", t), 0);
        }
        else
            step = sim_control_error (conn, 400, "today must be YYYY-MM-DD");
    }
    else if (!strcmp (url, "/generate") && !strcmp (method, "POST")) {
        json_int_t count = json_integer_value (json_object_get (body, "count"));
        json_int_t seed = json_integer_value (json_object_get (body, "seed"));
        if (count < 0 || count > 5000000)
            step = sim_control_error (conn, 400, "count from 0 to 5000000");
        else {
            replace_data (sim, generate ((size_t) count, (uint64_t) seed, today (sim)));
            step = sim_reply_json (conn, 200, json_pack ("{s:I}", "members", count), 0);
        }
    }
    else if (!strcmp (url, "/members") && !strcmp (method, "GET")) {
        dataset_t *d = current_data (sim);
        json_t *all = json_array ();
        for (size_t i = 0; i < d->n; i++)
            json_array_append_new (all, member_json (d, &d->m [i]));
        release_data (sim, d);
        step = sim_reply_json (conn, 200, all, 0);
    }
    else if (!strcmp (url, "/members") && (!strcmp (method, "PUT") || !strcmp (method, "POST"))) {
        /* PUT replaces every member; POST adds or replaces the members given */
        if (!json_is_array (body))
            step = sim_control_error (conn, 400, "expected a JSON array of members");
        else {
            int64_t skip [4096];
            size_t nskip = 0;
            size_t i;
            json_t *m;
            json_array_foreach (body, i, m)
                if (nskip < 4096)
                    skip [nskip++] = json_integer_value (json_object_get (m, "omid"));
            dataset_t *old = current_data (sim);
            dataset_t *d = !strcmp (method, "PUT") ? ds_new () : ds_copy_except (old, skip, nskip);
            release_data (sim, old);
            int64_t now = now_local_secs ();
            int bad = 0;
            json_array_foreach (body, i, m)
                if (!bad && add_member_json (d, m, now, why, sizeof why) != 0)
                    bad = 1;
            if (bad) {
                ds_free (d);
                step = sim_control_error (conn, 400, why);
            }
            else {
                ds_sort (d);
                size_t n = d->n;
                replace_data (sim, d);
                step = sim_reply_json (conn, 200, json_pack ("{s:I}", "members", (json_int_t) n), 0);
            }
        }
    }
    else if (!strncmp (url, "/members/", 9) && !strcmp (method, "DELETE")) {
        int64_t omid = strtoll (url + 9, NULL, 10);
        dataset_t *old = current_data (sim);
        dataset_t *d = ds_copy_except (old, &omid, 1);
        int found = d->n != old->n;
        release_data (sim, old);
        if (!found) {
            ds_free (d);
            step = sim_control_error (conn, 404, "no such member");
        }
        else {
            replace_data (sim, d);
            step = sim_reply_json (conn, 200, json_pack ("{s:b}", "deleted", 1), 0);
        }
    }
    else if (!strcmp (url, "/extend") && !strcmp (method, "POST"))
        step = control_extend (sim, conn, body);
    else
        step = sim_control_error (conn, 404, "unknown control path");
    json_decref (body);
    return step;
}

/* --- main ------------------------------------------------------------------ */

static volatile sig_atomic_t s_stop;

static void
on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
usage (void)
{
    printf ("usage: cardskipper-sim [options]\n"
            "A local Cardskipper API for tests (127.0.0.1 only).\n\n"
            "  --port N           API port (default 0: any free port)\n"
            "  --control-port N   control port (default 0: any free port)\n"
            "  --port-file F      write the API and control ports to F, one a line\n"
            "  --members N        generate N members (default 300)\n"
            "  --seed S           seed for the generator (default 1)\n"
            "  --members-file F   load members from a JSON file instead\n"
            "  --user U           Basic auth user (default api@club.example)\n"
            "  --password P       Basic auth password (default secret)\n"
            "  --today YYYY-MM-DD the date OnlyActive uses (default: today in Stockholm)\n\n"
            "example: cardskipper-sim --port 8080 --control-port 8081 --members 1000\n");
}

int
main (int argc, char **argv)
{
    sim_t sim;
    memset (&sim, 0, sizeof sim);
    pthread_mutex_init (&sim.lock, NULL);
    faults_defaults (&sim.faults);
    snprintf (sim.user, sizeof sim.user, "api@club.example");
    snprintf (sim.password, sizeof sim.password, "secret");
    long port = 0, control_port = 0, members = 300;
    uint64_t seed = 1;
    const char *port_file = NULL, *members_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        const char *v = i + 1 < argc ? argv [i + 1] : NULL;
        if (!strcmp (a, "--help") || !strcmp (a, "-h")) { usage (); return 0; }
        if (!v) { fprintf (stderr, "cardskipper-sim: %s needs a value\n", a); return 64; }
        i++;
        if (!strcmp (a, "--port")) port = strtol (v, NULL, 10);
        else if (!strcmp (a, "--control-port")) control_port = strtol (v, NULL, 10);
        else if (!strcmp (a, "--port-file")) port_file = v;
        else if (!strcmp (a, "--members")) members = strtol (v, NULL, 10);
        else if (!strcmp (a, "--seed")) seed = strtoull (v, NULL, 10);
        else if (!strcmp (a, "--members-file")) members_file = v;
        else if (!strcmp (a, "--user")) snprintf (sim.user, sizeof sim.user, "%s", v);
        else if (!strcmp (a, "--password")) snprintf (sim.password, sizeof sim.password, "%s", v);
        else if (!strcmp (a, "--today")) {
            if (cs_day_parse (v, &sim.today) != 0) {
                fprintf (stderr, "cardskipper-sim: --today wants YYYY-MM-DD\n");
                return 64;
            }
            sim.today_fixed = 1;
        }
        else { fprintf (stderr, "cardskipper-sim: unknown option %s\n", a); return 64; }
    }
    reset_stats (&sim);
    if (members_file) {
        json_error_t err;
        json_t *all = json_load_file (members_file, 0, &err);
        if (!json_is_array (all)) {
            fprintf (stderr, "cardskipper-sim: %s: %s\n", members_file, all ? "not an array" : err.text);
            return 66;
        }
        sim.data = ds_new ();
        size_t i;
        json_t *m;
        char why [256];
        json_array_foreach (all, i, m)
            if (add_member_json (sim.data, m, now_local_secs (), why, sizeof why) != 0) {
                fprintf (stderr, "cardskipper-sim: %s: %s\n", members_file, why);
                return 65;
            }
        ds_sort (sim.data);
        json_decref (all);
    }
    else
        sim.data = generate ((size_t) members, seed, today (&sim));

    signal (SIGPIPE, SIG_IGN);
    signal (SIGINT, on_signal);
    signal (SIGTERM, on_signal);
    sim.api = (sim_server_t) { api_handler, NULL, &sim, NULL, 0 };
    sim.control = (sim_server_t) { control_handler, NULL, &sim, NULL, 0 };
    if (sim_listen (&sim.api, (uint16_t) port, seed) != 0
        || sim_listen (&sim.control, (uint16_t) control_port, seed + 1) != 0) {
        fprintf (stderr, "cardskipper-sim: cannot listen on 127.0.0.1:%ld / %ld\n", port,
                 control_port);
        return 69;
    }
    uint16_t ports [2] = { sim.api.port, sim.control.port };
    if (port_file && sim_write_port_file (port_file, ports, 2) != 0) {
        fprintf (stderr, "cardskipper-sim: cannot write %s\n", port_file);
        return 73;
    }
    printf ("cardskipper-sim: api http://127.0.0.1:%u control http://127.0.0.1:%u "
            "members %zu user %s\n", sim.api.port, sim.control.port, sim.data->n, sim.user);
    fflush (stdout);
    while (!s_stop)
        pause ();
    sim.stopping = 1;
    sim_stop (&sim.api);
    sim_stop (&sim.control);
    release_data (&sim, sim.data);
    json_decref (sim.stats);
    json_decref (sim.last_criteria);
    return 0;
}
