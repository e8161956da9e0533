/* The planner, as small worlds: each case is a few members, a device's
 * persons, the remembered ties and the operator's map, on 2026-11-30 at noon,
 * and exactly what the planner must answer - the commands, the ties made and
 * ended, the notices, and each tied person's sync state.
 *
 * A world, one line each:
 *   cfg match=tag,map,member_id roles=3126 create=1 revoke=0 guard=MAX,PCT
 *       dryrun=1 approved=N byname=1
 *   dev NAME [unscanned]                    (default: one scanned door1)
 *   m ORG:OMID EMAIL|- [inactive] ROLE:START:END ...
 *   p DEV EMPLOYEENO TAG|- BEGIN|- END|- [off]
 *   t DEV EMPLOYEENO ORG:OMID RULE VIA      (a remembered tie)
 *   map EMAIL EMPLOYEENO
 *   open|failed DEV EMPLOYEENO BEGIN END    (a command on its way, or refused)
 * The answer, sorted:
 *   set|create DEV NO ORG:OMID BEGIN END [revoke] [held] [name=N tag=T]
 *   tied DEV NO ORG:OMID RULE  /  untied DEV NO ORG:OMID RULE: WHY
 *   unmatched DEV ORG:OMID  /  conflict DEV NO  /  email_changed DEV NO ORG:OMID EMAIL
 *   planned DEV NO BEGIN END OP
 *   = DEV NO SYNC [retag=EMAIL]             (each tied person)
 *   guard tripped R>L  /  approval spent */
#include "harness.h"
#include "differ/plan.h"

#define MAXN 64

typedef struct {
    const char *world;
    const char *expect;
} world_t;

typedef struct {
    char arena [1 << 15];
    size_t used;
    cs_match_t match [3];
    int64_t roles [8];
    cs_plan_role_t member_roles [MAXN * 4];
    size_t member_role_count;
    cs_plan_member_t members [MAXN];
    cs_plan_person_t persons [4][MAXN];
    cs_plan_device_t devices [4];
    cs_plan_tie_t ties [MAXN];
    cs_plan_map_line_t map [MAXN];
    cs_plan_sent_t open [MAXN], failed [MAXN];
    cs_plan_input_t in;
} parsed_t;

static char *
keep (parsed_t *w, const char *s, size_t len)
{
    REQUIRE (w->used + len + 1 < sizeof w->arena);
    char *out = w->arena + w->used;
    memcpy (out, s, len);
    out [len] = 0;
    w->used += len + 1;
    return out;
}

static cs_day_t
day (const char *text)
{
    cs_day_t d = 0;
    if (cs_day_parse (text, &d) != 0)
        cs_test_fail (__FILE__, __LINE__, "world date '%s' does not parse", text);
    return d;
}

static void
member_key (const char *text, int64_t *org, int64_t *omid)
{
    long long a = 0, b = 0;
    if (sscanf (text, "%lld:%lld", &a, &b) != 2)
        cs_test_fail (__FILE__, __LINE__, "world member '%s' is not ORG:OMID", text);
    *org = a;
    *omid = b;
}

static const char *
opt (parsed_t *w, const char *word)
{
    return strcmp (word, "-") ? keep (w, word, strlen (word)) : NULL;
}

static const char *
time_or_empty (parsed_t *w, const char *word)
{
    return strcmp (word, "-") ? keep (w, word, strlen (word)) : "";
}

static void
parse_world (parsed_t *w, const char *text)
{
    memset (w, 0, sizeof *w);
    cs_plan_input_t *in = &w->in;
    w->match [0] = CS_MATCH_TAG;
    w->match [1] = CS_MATCH_MAP;
    w->match [2] = CS_MATCH_MEMBER_ID;
    in->match = w->match;
    in->match_count = 3;
    in->roles = w->roles;
    in->revoke = 1;
    in->guard_max_revocations = 10;
    in->guard_max_percent = 5;
    in->members = w->members;
    in->devices = w->devices;
    in->ties = w->ties;
    in->map = w->map;
    in->open = w->open;
    in->failed = w->failed;
    const char *now = "2026-11-30T12:00:00";
    for (const char *line = text; line && *line; ) {
        const char *eol = strchr (line, '\n');
        size_t len = eol ? (size_t) (eol - line) : strlen (line);
        char buf [512];
        REQUIRE (len < sizeof buf);
        memcpy (buf, line, len);
        buf [len] = 0;
        line = eol ? eol + 1 : NULL;
        char *words [16];
        int n = 0;
        for (char *save = NULL, *tok = strtok_r (buf, " ", &save); tok && n < 16; tok = strtok_r (NULL, " ", &save))
            words [n++] = tok;
        if (n == 0)
            continue;
        if (!strcmp (words [0], "cfg")) {
            for (int i = 1; i < n; i++) {
                char *eq = strchr (words [i], '=');
                REQUIRE (eq);
                *eq = 0;
                const char *k = words [i], *v = eq + 1;
                if (!strcmp (k, "match")) {
                    in->match_count = 0;
                    char copy [64];
                    snprintf (copy, sizeof copy, "%s", v);
                    for (char *s2 = NULL, *r = strtok_r (copy, ",", &s2); r; r = strtok_r (NULL, ",", &s2))
                        w->match [in->match_count++] = !strcmp (r, "tag") ? CS_MATCH_TAG
                                                     : !strcmp (r, "map") ? CS_MATCH_MAP : CS_MATCH_MEMBER_ID;
                }
                else if (!strcmp (k, "roles")) {
                    char copy [64];
                    snprintf (copy, sizeof copy, "%s", v);
                    for (char *s2 = NULL, *r = strtok_r (copy, ",", &s2); r; r = strtok_r (NULL, ",", &s2))
                        w->roles [in->role_count++] = strtoll (r, NULL, 10);
                }
                else if (!strcmp (k, "create"))
                    in->create_missing = atoi (v);
                else if (!strcmp (k, "revoke"))
                    in->revoke = atoi (v);
                else if (!strcmp (k, "guard"))
                    REQUIRE (sscanf (v, "%d,%d", &in->guard_max_revocations, &in->guard_max_percent) == 2);
                else if (!strcmp (k, "dryrun"))
                    in->dry_run = atoi (v);
                else if (!strcmp (k, "approved"))
                    in->approved = atoi (v);
                else if (!strcmp (k, "byname"))
                    in->tag_by_name = atoi (v);
                else
                    cs_test_fail (__FILE__, __LINE__, "world: unknown cfg key '%s'", k);
            }
        }
        else if (!strcmp (words [0], "dev") && n >= 2) {
            REQUIRE (in->device_count < 4);
            cs_plan_device_t *d = &w->devices [in->device_count];
            d->name = keep (w, words [1], strlen (words [1]));
            d->scanned = !(n >= 3 && !strcmp (words [2], "unscanned"));
            d->persons = w->persons [in->device_count];
            in->device_count++;
        }
        else if (!strcmp (words [0], "m") && n >= 3) {
            REQUIRE (in->member_count < MAXN);
            cs_plan_member_t *m = &w->members [in->member_count++];
            member_key (words [1], &m->org, &m->omid);
            m->email = opt (w, words [2]);
            char name [64];
            snprintf (name, sizeof name, "F%lld L", (long long) m->omid);
            m->name = keep (w, name, strlen (name));
            m->roles = &w->member_roles [w->member_role_count];
            for (int i = 3; i < n; i++) {
                if (!strcmp (words [i], "inactive")) {
                    m->inactive = 1;
                    continue;
                }
                long long role;
                char start [11], end [11];
                REQUIRE (sscanf (words [i], "%lld:%10[0-9-]:%10[0-9-]", &role, start, end) == 3);
                w->member_roles [w->member_role_count++] = (cs_plan_role_t) { role, day (start), day (end) };
                m->role_count++;
            }
        }
        else if (!strcmp (words [0], "p") && n >= 6) {
            if (in->device_count == 0) {        /* a world without dev lines has door1 */
                w->devices [0] = (cs_plan_device_t) { .name = "door1", .scanned = 1, .persons = w->persons [0] };
                in->device_count = 1;
            }
            size_t di = 0;
            while (di < in->device_count && strcmp (w->devices [di].name, words [1]))
                di++;
            REQUIRE (di < in->device_count);
            cs_plan_device_t *d = &w->devices [di];
            cs_plan_person_t *x = &w->persons [di][d->person_count++];
            x->no = keep (w, words [2], strlen (words [2]));
            x->tag = opt (w, words [3]);
            x->begin = time_or_empty (w, words [4]);
            x->end = time_or_empty (w, words [5]);
            x->enable = !(n >= 7 && !strcmp (words [6], "off"));
        }
        else if (!strcmp (words [0], "t") && n == 6) {
            cs_plan_tie_t *t = &w->ties [in->tie_count++];
            t->device = keep (w, words [1], strlen (words [1]));
            t->no = keep (w, words [2], strlen (words [2]));
            member_key (words [3], &t->org, &t->omid);
            t->rule = (cs_rule_t) cs_rule_parse (words [4]);
            REQUIRE ((int) t->rule >= 0);
            t->via = keep (w, words [5], strlen (words [5]));
        }
        else if (!strcmp (words [0], "map") && n == 3) {
            cs_plan_map_line_t *l = &w->map [in->map_count++];
            l->email = keep (w, words [1], strlen (words [1]));
            l->no = keep (w, words [2], strlen (words [2]));
        }
        else if ((!strcmp (words [0], "open") || !strcmp (words [0], "failed")) && n == 5) {
            int is_open = !strcmp (words [0], "open");
            cs_plan_sent_t *s = is_open ? &w->open [in->open_count++] : &w->failed [in->failed_count++];
            s->device = keep (w, words [1], strlen (words [1]));
            s->no = keep (w, words [2], strlen (words [2]));
            s->begin = keep (w, words [3], strlen (words [3]));
            s->end = keep (w, words [4], strlen (words [4]));
        }
        else
            cs_test_fail (__FILE__, __LINE__, "world: cannot read line '%.*s'", (int) len, buf);
    }
    if (in->device_count == 0) {
        w->devices [0] = (cs_plan_device_t) { .name = "door1", .scanned = 1, .persons = w->persons [0] };
        in->device_count = 1;
    }
    for (size_t i = 0; i < in->device_count; i++) {
        w->devices [i].today = day ("2026-11-30");
        w->devices [i].now = now;
    }
}

static int
cmp_lines (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Sorts the lines of text in place (one per '\n'). */
static void
sort_lines (char *text)
{
    char *lines [512];
    size_t n = 0;
    for (char *s = NULL, *l = strtok_r (text, "\n", &s); l && n < 512; l = strtok_r (NULL, "\n", &s))
        lines [n++] = l;
    qsort (lines, n, sizeof *lines, cmp_lines);
    char out [16384];
    size_t len = 0;
    out [0] = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t) snprintf (out + len, sizeof out - len, "%s\n", lines [i]);
    memcpy (text, out, len + 1);
}

static void
render (const cs_plan_t *p, char *out, size_t size)
{
    size_t len = 0;
    out [0] = 0;
#define PUT(...) (len += (size_t) snprintf (out + len, size - len, __VA_ARGS__))
    for (size_t i = 0; i < p->command_count; i++) {
        const cs_plan_command_t *c = &p->commands [i];
        PUT ("%s %s %s %lld:%lld %s %s%s%s", cs_op_name (c->op), c->device, c->no, (long long) c->org,
             (long long) c->omid, c->begin, c->end, c->revoke ? " revoke" : "", c->held ? " held" : "");
        if (c->op == CS_OP_CREATE)
            PUT (" name=%s tag=%s", c->name ? c->name : "-", c->tag ? c->tag : "-");
        PUT ("\n");
    }
    for (size_t i = 0; i < p->tied_count; i++)
        PUT ("tied %s %s %lld:%lld %s\n", p->tied [i].device, p->tied [i].no, (long long) p->tied [i].org,
             (long long) p->tied [i].omid, cs_rule_name (p->tied [i].rule));
    for (size_t i = 0; i < p->untied_count; i++)
        PUT ("untied %s %s %lld:%lld %s: %s\n", p->untied [i].device, p->untied [i].no,
             (long long) p->untied [i].org, (long long) p->untied [i].omid,
             cs_rule_name (p->untied [i].rule), p->untied [i].why);
    for (size_t i = 0; i < p->notice_count; i++) {
        const cs_plan_notice_t *n = &p->notices [i];
        switch (n->kind) {
            case CS_EV_UNMATCHED:
                PUT ("unmatched %s %lld:%lld\n", n->device, (long long) n->org, (long long) n->omid);
                break;
            case CS_EV_CONFLICT:
                PUT ("conflict %s %s\n", n->device, n->no);
                break;
            case CS_EV_EMAIL_CHANGED:
                PUT ("email_changed %s %s %lld:%lld %s\n", n->device, n->no, (long long) n->org,
                     (long long) n->omid, n->email);
                break;
            case CS_EV_PLANNED:
                PUT ("planned %s %s %s %s %s\n", n->device, n->no, n->begin, n->end, n->msg);
                break;
            default:
                PUT ("notice %s?\n", cs_event_kind_name (n->kind));
        }
    }
    for (size_t i = 0; i < p->target_count; i++) {
        const cs_plan_target_t *t = &p->targets [i];
        PUT ("= %s %s %s", t->device, t->no, cs_sync_name (t->sync));
        if (t->retag)
            PUT (" retag=%s", t->retag);
        PUT ("\n");
    }
    if (p->tripped)
        PUT ("guard tripped %zu>%zu\n", p->revocations, p->limit);
    if (p->approval_spent)
        PUT ("approval spent\n");
#undef PUT
}

static cs_plan_t *
plan_world (const world_t *w, parsed_t *in)
{
    parse_world (in, w->world);
    cs_plan_t *p = cs_plan_new (&in->in);
    REQUIRE (p);
    return p;
}

static void
run_world (const char *name, const world_t *w)
{
    static parsed_t in;
    cs_plan_t *p = plan_world (w, &in);
    static char got [16384], want [16384];
    render (p, got, sizeof got);
    snprintf (want, sizeof want, "%s", w->expect);
    sort_lines (got);
    sort_lines (want);
    if (strcmp (got, want))
        cs_test_fail (__FILE__, __LINE__, "world '%s':\n--- expected\n%s--- got\n%s", name, want, got);
    cs_plan_destroy (&p);
}

#define WORLD(id, world_text, expect_text) \
    TEST (id) { static const world_t w_ = { world_text, expect_text }; run_world (#id, &w_); }

#define YEAR "3126:2026-01-01:2026-12-31"
#define HALF_B "2026-01-01T00:00:00"
#define HALF_E "2026-06-30T23:59:59"
#define YEAR_B "2026-01-01T00:00:00"
#define YEAR_E "2026-12-31T23:59:59"
#define GONE "2026-11-29T23:59:59"

/* --- the basics -------------------------------------------------------------- */

WORLD (a_renewal_reaches_the_tagged_person,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " HALF_B " " HALF_E "\n",
    "set door1 1001 1:1001 " YEAR_B " " YEAR_E "\n"
    "tied door1 1001 1:1001 tag\n"
    "= door1 1001 pending\n")

WORLD (in_sync_nothing_is_written,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "= door1 1001 in_sync\n")

WORLD (disabled_validity_is_not_in_sync,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E " off\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " " YEAR_E "\n"
    "= door1 1001 pending\n")

/* --- every tied person is managed ----------------------------------------------- */

WORLD (one_member_two_persons_both_renewed,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " HALF_B " " HALF_E "\n"
    "p door1 5001 asa@x.se " HALF_B " " HALF_E "\n",
    "set door1 1001 1:1001 " YEAR_B " " YEAR_E "\n"
    "set door1 5001 1:1001 " YEAR_B " " YEAR_E "\n"
    "tied door1 1001 1:1001 tag\n"
    "tied door1 5001 1:1001 tag\n"
    "= door1 1001 pending\n"
    "= door1 5001 pending\n")

WORLD (the_member_leaves_every_tied_person_revoked,
    "m 1:1002 bo@x.se " YEAR "\n"
    "p door1 1001 asa@x.se 2025-03-04T00:00:00 " YEAR_E "\n"
    "p door1 5001 asa@x.se " HALF_B " 2027-01-01T23:59:59\n"
    "t door1 1001 1:1001 tag asa@x.se\n"
    "t door1 5001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 2025-03-04T00:00:00 " GONE " revoke\n"
    "set door1 5001 1:1001 " HALF_B " " GONE " revoke\n"
    "unmatched door1 1:1002\n"
    "= door1 1001 pending\n"
    "= door1 5001 pending\n")

WORLD (two_members_share_an_address_on_one_person,
    "m 1:1001 fam@x.se " YEAR "\n"
    "m 1:1002 fam@x.se 3126:2027-01-01:2027-06-30\n"
    "p door1 7001 fam@x.se " HALF_B " " HALF_E "\n",
    "set door1 7001 1:1001 " YEAR_B " 2027-06-30T23:59:59\n"
    "tied door1 7001 1:1001 tag\n"
    "tied door1 7001 1:1002 tag\n"
    "= door1 7001 pending\n")

WORLD (two_members_share_an_address_on_two_persons,
    "m 1:1001 fam@x.se " YEAR "\n"
    "m 1:1002 fam@x.se 3126:2026-06-01:2027-03-31\n"
    "p door1 7001 fam@x.se " HALF_B " " HALF_E "\n"
    "p door1 7002 fam@x.se " HALF_B " " HALF_E "\n",
    "set door1 7001 1:1001 " YEAR_B " 2027-03-31T23:59:59\n"
    "set door1 7002 1:1001 " YEAR_B " 2027-03-31T23:59:59\n"
    "tied door1 7001 1:1001 tag\n"
    "tied door1 7001 1:1002 tag\n"
    "tied door1 7002 1:1001 tag\n"
    "tied door1 7002 1:1002 tag\n"
    "= door1 7001 pending\n"
    "= door1 7002 pending\n")

WORLD (the_union_only_among_members_sharing_the_address,
    "m 1:1001 asa@x.se " YEAR "\n"
    "m 1:1002 bo@x.se 3126:2026-01-01:2029-12-31\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "p door1 1002 bo@x.se " YEAR_B " 2029-12-31T23:59:59\n",
    "tied door1 1001 1:1001 tag\n"
    "tied door1 1002 1:1002 tag\n"
    "= door1 1001 in_sync\n"
    "= door1 1002 in_sync\n")

WORLD (one_member_of_a_shared_address_leaves_the_other_still_admits,
    "m 1:1001 fam@x.se " YEAR "\n"
    "p door1 7001 fam@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 7001 1:1001 tag fam@x.se\n"
    "t door1 7001 1:1002 tag fam@x.se\n",
    "= door1 7001 in_sync\n")

/* --- identity follows the member ------------------------------------------------ */

WORLD (email_change_renewed_never_revoked,
    "m 1:1001 new@x.se 3126:2026-01-01:2027-09-26\n"
    "p door1 1001 old@x.se " HALF_B " " HALF_E "\n"
    "t door1 1001 1:1001 tag old@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " 2027-09-26T23:59:59\n"
    "email_changed door1 1001 1:1001 new@x.se\n"
    "= door1 1001 pending retag=new@x.se\n")

WORLD (email_change_of_an_untagged_person_tied_by_member_id,
    "m 1:1006 new@x.se " YEAR "\n"
    "p door1 1006 - " YEAR_B " " YEAR_E "\n"
    "t door1 1006 1:1006 member_id 1006\n",
    "= door1 1006 in_sync\n")

WORLD (email_change_without_a_remembered_tie_is_never_a_revocation,
    "m 1:1001 new@x.se " YEAR "\n"
    "p door1 1001 old@x.se " HALF_B " " HALF_E "\n",
    "unmatched door1 1:1001\n")

WORLD (shared_address_one_member_changes_email_both_stay_tied,
    "m 1:1001 fam@x.se " YEAR "\n"
    "m 1:1002 bo@x.se 3126:2026-01-01:2027-12-31\n"
    "p door1 7001 fam@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 7001 1:1001 tag fam@x.se\n"
    "t door1 7001 1:1002 tag fam@x.se\n",
    "set door1 7001 1:1001 " YEAR_B " 2027-12-31T23:59:59\n"
    "= door1 7001 pending\n")

/* --- entitlement: roles, inactive, spans, the device's range ------------------------ */

WORLD (inactive_member_revoked,
    "m 1:1001 asa@x.se inactive " YEAR "\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " " GONE " revoke\n"
    "= door1 1001 pending\n")

WORLD (role_filter_only_configured_roles_admit,
    "cfg roles=3126\n"
    "m 1:1001 asa@x.se 9999:2026-01-01:2029-12-31 " YEAR "\n"
    "p door1 1001 asa@x.se " HALF_B " " HALF_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " " YEAR_E "\n"
    "= door1 1001 pending\n")

WORLD (role_filter_no_configured_role_means_revoke,
    "cfg roles=3126\n"
    "m 1:1001 asa@x.se 9999:2026-01-01:2029-12-31\n"
    "p door1 1001 asa@x.se " HALF_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 " HALF_B " " GONE " revoke\n"
    "= door1 1001 pending\n")

WORLD (renewal_bought_in_advance_future_span,
    "m 1:1001 asa@x.se 3126:2026-01-01:2026-11-20 3126:2027-01-10:2027-12-31\n"
    "p door1 1001 asa@x.se " YEAR_B " 2026-11-20T23:59:59\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 2027-01-10T00:00:00 2027-12-31T23:59:59\n"
    "= door1 1001 pending\n")

WORLD (a_one_day_gap_joins_two_periods,
    "m 1:1001 asa@x.se " YEAR " 3126:2027-01-02:2027-06-30\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " 2027-06-30T23:59:59\n"
    "= door1 1001 pending\n")

WORLD (a_two_day_gap_does_not,
    "m 1:1001 asa@x.se " YEAR " 3126:2027-01-03:2027-06-30\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "= door1 1001 in_sync\n")

WORLD (a_span_ending_today_still_admits_today,
    "m 1:1001 asa@x.se 3126:2026-01-01:2026-11-30\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " 2026-11-30T23:59:59\n"
    "= door1 1001 pending\n")

WORLD (an_end_beyond_2037_is_clamped,
    "m 1:1001 asa@x.se 3126:2026-01-01:2040-05-01\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " 2037-12-31T23:59:59\n"
    "= door1 1001 pending\n")

WORLD (a_begin_before_2000_is_clamped,
    "m 1:1001 asa@x.se 3126:1995-06-01:2026-12-31\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door1 1001 1:1001 2000-01-01T00:00:00 " YEAR_E "\n"
    "= door1 1001 pending\n")

WORLD (a_person_already_ended_is_not_revoked_again,
    "p door1 1001 asa@x.se " YEAR_B " 2026-10-01T23:59:59\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "= door1 1001 in_sync\n")

WORLD (revoke_false_leaves_a_departed_member_alone,
    "cfg revoke=0\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "= door1 1001 in_sync\n")

/* --- who is nobody's: never written ---------------------------------------------- */

WORLD (staff_are_never_touched,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 9001 - 2020-01-01T00:00:00 2037-12-31T23:59:59 off\n"
    "p door1 9002 cleaner@x.se 2020-01-01T00:00:00 2037-12-31T23:59:59\n",
    "unmatched door1 1:1001\n")

WORLD (a_staff_card_numbered_like_a_member_is_untouched,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 cleaner@x.se 2020-01-01T00:00:00 2037-12-31T23:59:59\n",
    "unmatched door1 1:1001\n")

WORLD (an_expired_member_without_a_person_is_not_reported,
    "m 1:1001 asa@x.se 3126:2025-01-01:2025-12-31\n",
    "")

WORLD (an_unscanned_device_decides_nothing,
    "dev door1 unscanned\n"
    "m 1:1001 asa@x.se " YEAR "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "")

/* --- the rules and their order ---------------------------------------------------- */

WORLD (map_and_tag_disagree_the_first_rule_decides,
    "m 1:1001 asa@x.se " YEAR "\n"
    "m 1:1002 bo@x.se " YEAR "\n"
    "map bo@x.se X77\n"
    "p door1 X77 asa@x.se " YEAR_B " " HALF_E "\n",
    "set door1 X77 1:1001 " YEAR_B " " YEAR_E "\n"
    "tied door1 X77 1:1001 tag\n"
    "conflict door1 X77\n"
    "unmatched door1 1:1002\n"
    "= door1 X77 pending\n")

WORLD (map_first_in_match_order_decides,
    "cfg match=map,tag,member_id\n"
    "m 1:1001 asa@x.se " YEAR "\n"
    "m 1:1002 bo@x.se 3126:2026-01-01:2027-12-31\n"
    "map bo@x.se X77\n"
    "p door1 X77 asa@x.se " YEAR_B " " HALF_E "\n",
    "set door1 X77 1:1002 " YEAR_B " 2027-12-31T23:59:59\n"
    "tied door1 X77 1:1002 map\n"
    "conflict door1 X77\n"
    "unmatched door1 1:1001\n"
    "= door1 X77 pending\n")

WORLD (a_map_line_ties_an_untagged_person,
    "m 1:1001 asa@x.se " YEAR "\n"
    "map asa@x.se X77\n"
    "p door1 X77 - " YEAR_B " " HALF_E "\n",
    "set door1 X77 1:1001 " YEAR_B " " YEAR_E "\n"
    "tied door1 X77 1:1001 map\n"
    "= door1 X77 pending\n")

WORLD (member_id_fallback_for_an_untagged_person,
    "m 1:1006 byid@x.se " YEAR "\n"
    "p door1 1006 - " YEAR_B " " HALF_E "\n",
    "set door1 1006 1:1006 " YEAR_B " " YEAR_E "\n"
    "tied door1 1006 1:1006 member_id\n"
    "= door1 1006 pending\n")

WORLD (member_id_needs_the_exact_number,
    "m 1:1006 byid@x.se " YEAR "\n"
    "p door1 01006 - " YEAR_B " " HALF_E "\n",
    "unmatched door1 1:1006\n")

WORLD (a_member_without_email_tied_by_member_id,
    "m 1:1003 - " YEAR "\n"
    "p door1 1003 - " YEAR_B " " HALF_E "\n",
    "set door1 1003 1:1003 " YEAR_B " " YEAR_E "\n"
    "tied door1 1003 1:1003 member_id\n"
    "= door1 1003 pending\n")

WORLD (a_remembered_tie_stands_against_a_later_disagreement,
    "m 1:1001 asa@x.se " YEAR "\n"
    "m 1:1002 bo@x.se " YEAR "\n"
    "map bo@x.se 1001\n"
    "p door1 1001 - " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 member_id 1001\n",
    "conflict door1 1001\n"
    "unmatched door1 1:1002\n"
    "= door1 1001 in_sync\n")

/* --- when a tie ends ----------------------------------------------------------------- */

WORLD (tie_ends_when_the_person_is_gone,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 2002 - " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "untied door1 1001 1:1001 tag: the person is gone from the device\n"
    "unmatched door1 1:1001\n")

WORLD (a_person_recreated_with_the_same_number_is_a_new_person,
    "m 1:1001 asa@x.se " YEAR "\n"
    "m 1:1002 bo@x.se " YEAR "\n"
    "p door1 1001 bo@x.se " YEAR_B " " HALF_E "\n",
    "set door1 1001 1:1002 " YEAR_B " " YEAR_E "\n"
    "tied door1 1001 1:1002 tag\n"
    "unmatched door1 1:1001\n"
    "= door1 1001 pending\n")

WORLD (tie_ends_when_retagged_to_another_member,
    "m 1:1001 asa@x.se " YEAR "\n"
    "m 1:1002 bo@x.se 3126:2026-01-01:2027-12-31\n"
    "p door1 5001 bo@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 5001 1:1001 tag asa@x.se\n",
    "untied door1 5001 1:1001 tag: the person was re-tagged with another member's e-mail\n"
    "tied door1 5001 1:1002 tag\n"
    "set door1 5001 1:1002 " YEAR_B " 2027-12-31T23:59:59\n"
    "unmatched door1 1:1001\n"
    "= door1 5001 pending\n")

WORLD (retagged_to_an_address_no_member_has_the_tie_stays,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 5001 other@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 5001 1:1001 tag asa@x.se\n",
    "email_changed door1 5001 1:1001 asa@x.se\n"
    "= door1 5001 in_sync retag=asa@x.se\n")

WORLD (tie_ends_when_the_map_line_is_removed,
    "m 1:1002 bo@x.se " YEAR "\n"
    "p door1 X77 - " YEAR_B " " YEAR_E "\n"
    "t door1 X77 1:1002 map bo@x.se\n",
    "untied door1 X77 1:1002 map: the identity_map line that tied it was removed\n"
    "unmatched door1 1:1002\n")

/* --- what is on its way, what was refused ---------------------------------------------- */

WORLD (a_command_on_its_way_is_not_sent_again,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " HALF_B " " HALF_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n"
    "open door1 1001 " YEAR_B " " YEAR_E "\n",
    "= door1 1001 pending\n")

WORLD (a_newer_target_replaces_one_on_its_way,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " HALF_B " " HALF_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n"
    "open door1 1001 " YEAR_B " 2026-12-01T23:59:59\n",
    "set door1 1001 1:1001 " YEAR_B " " YEAR_E "\n"
    "= door1 1001 pending\n")

WORLD (a_refused_target_waits_for_a_replay,
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " HALF_B " " HALF_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n"
    "failed door1 1001 " YEAR_B " " YEAR_E "\n",
    "= door1 1001 failed\n")

/* --- create_missing ---------------------------------------------------------------------- */

WORLD (create_missing_creates_an_entitled_member,
    "cfg create=1\n"
    "m 1:1003 new@x.se " YEAR "\n"
    "m 1:1004 old@x.se 3126:2025-01-01:2025-12-31\n"
    "p door1 9001 - " YEAR_B " " YEAR_E "\n",
    "create door1 1003 1:1003 " YEAR_B " " YEAR_E " name=F1003 L tag=new@x.se\n"
    "= door1 1003 pending\n")

WORLD (create_missing_with_tag_field_name,
    "cfg create=1 byname=1\n"
    "m 1:1003 new@x.se " YEAR "\n",
    "create door1 1003 1:1003 " YEAR_B " " YEAR_E " name=new@x.se tag=-\n"
    "= door1 1003 pending\n")

WORLD (create_missing_one_person_for_a_shared_address,
    "cfg create=1\n"
    "m 1:1003 fam@x.se " YEAR "\n"
    "m 1:1004 fam@x.se 3126:2026-01-01:2027-03-31\n",
    "create door1 1003 1:1003 " YEAR_B " 2027-03-31T23:59:59 name=F1003 L tag=fam@x.se\n"
    "= door1 1003 pending\n")

WORLD (create_missing_never_takes_an_untied_persons_number,
    "cfg create=1\n"
    "m 1:1003 new@x.se " YEAR "\n"
    "p door1 1003 staff@x.se 2020-01-01T00:00:00 2037-12-31T23:59:59\n",
    "unmatched door1 1:1003\n")

/* --- the guard, dry run ------------------------------------------------------------------- */

WORLD (guard_exactly_at_the_threshold_sends,
    "cfg guard=2,0\n"
    "p door1 1001 a@x.se " YEAR_B " " YEAR_E "\n"
    "p door1 1002 b@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag a@x.se\n"
    "t door1 1002 1:1002 tag b@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " " GONE " revoke\n"
    "set door1 1002 1:1002 " YEAR_B " " GONE " revoke\n"
    "= door1 1001 pending\n"
    "= door1 1002 pending\n")

WORLD (guard_one_over_holds_every_revocation,
    "cfg guard=2,0\n"
    "m 1:1004 d@x.se " YEAR "\n"
    "p door1 1001 a@x.se " YEAR_B " " YEAR_E "\n"
    "p door1 1002 b@x.se " YEAR_B " " YEAR_E "\n"
    "p door1 1003 c@x.se " YEAR_B " " YEAR_E "\n"
    "p door1 1004 d@x.se " YEAR_B " " HALF_E "\n"
    "t door1 1001 1:1001 tag a@x.se\n"
    "t door1 1002 1:1002 tag b@x.se\n"
    "t door1 1003 1:1003 tag c@x.se\n"
    "t door1 1004 1:1004 tag d@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " " GONE " revoke held\n"
    "set door1 1002 1:1002 " YEAR_B " " GONE " revoke held\n"
    "set door1 1003 1:1003 " YEAR_B " " GONE " revoke held\n"
    "set door1 1004 1:1004 " YEAR_B " " YEAR_E "\n"
    "guard tripped 3>2\n"
    "= door1 1001 held\n"
    "= door1 1002 held\n"
    "= door1 1003 held\n"
    "= door1 1004 pending\n")

WORLD (guard_an_approval_lets_exactly_that_many_through,
    "cfg guard=2,0 approved=3\n"
    "p door1 1001 a@x.se " YEAR_B " " YEAR_E "\n"
    "p door1 1002 b@x.se " YEAR_B " " YEAR_E "\n"
    "p door1 1003 c@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag a@x.se\n"
    "t door1 1002 1:1002 tag b@x.se\n"
    "t door1 1003 1:1003 tag c@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " " GONE " revoke\n"
    "set door1 1002 1:1002 " YEAR_B " " GONE " revoke\n"
    "set door1 1003 1:1003 " YEAR_B " " GONE " revoke\n"
    "= door1 1001 pending\n"
    "= door1 1002 pending\n"
    "= door1 1003 pending\n")

WORLD (guard_an_approval_lapses_back_within_the_guard,
    "cfg guard=2,0 approved=3\n"
    "p door1 1001 a@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 1001 1:1001 tag a@x.se\n",
    "set door1 1001 1:1001 " YEAR_B " " GONE " revoke\n"
    "approval spent\n"
    "= door1 1001 pending\n")

WORLD (dry_run_plans_and_sends_nothing,
    "cfg dryrun=1\n"
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " HALF_B " " HALF_E "\n"
    "p door1 2002 gone@x.se " YEAR_B " " YEAR_E "\n"
    "t door1 2002 1:2002 tag gone@x.se\n",
    "planned door1 1001 " YEAR_B " " YEAR_E " set\n"
    "planned door1 2002 " YEAR_B " " GONE " set\n"
    "tied door1 1001 1:1001 tag\n"
    "= door1 1001 pending\n"
    "= door1 2002 pending\n")

/* --- several doors ----------------------------------------------------------------------- */

WORLD (each_door_is_planned_on_its_own,
    "dev door1\n"
    "dev door2\n"
    "m 1:1001 asa@x.se " YEAR "\n"
    "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
    "p door2 2001 ASA-tagged-elsewhere@x.se " YEAR_B " " HALF_E "\n"
    "p door2 2002 asa@x.se " YEAR_B " " HALF_E "\n"
    "t door1 1001 1:1001 tag asa@x.se\n",
    "set door2 2002 1:1001 " YEAR_B " " YEAR_E "\n"
    "tied door2 2002 1:1001 tag\n"
    "= door1 1001 in_sync\n"
    "= door2 2002 pending\n")

/* --- the rules beside the table ------------------------------------------------------------ */

TEST (conflict_names_both_members)
{
    static parsed_t in;
    static const world_t w = {
        "m 1:1001 asa@x.se " YEAR "\n"
        "m 1:1002 bo@x.se " YEAR "\n"
        "map bo@x.se X77\n"
        "p door1 X77 asa@x.se " YEAR_B " " HALF_E "\n", "" };
    cs_plan_t *p = plan_world (&w, &in);
    REQUIRE (p->notice_count == 2);
    const cs_plan_notice_t *c = p->notices [0].kind == CS_EV_CONFLICT ? &p->notices [0] : &p->notices [1];
    CHECK_INT (c->kind, CS_EV_CONFLICT);
    CHECK_STR (c->key, "door1|X77");
    CHECK_HAS (c->msg, "1:1001 (asa@x.se)");
    CHECK_HAS (c->msg, "1:1002 (bo@x.se)");
    CHECK_HAS (c->msg, "the tag decides");
    cs_plan_destroy (&p);
}

TEST (a_departed_members_revocation_names_the_email_that_tied_it)
{
    static parsed_t in;
    static const world_t w = {
        "p door1 1001 asa@x.se " YEAR_B " " YEAR_E "\n"
        "t door1 1001 1:1001 tag asa@x.se\n", "" };
    cs_plan_t *p = plan_world (&w, &in);
    REQUIRE (p->command_count == 1);
    CHECK_STR (p->commands [0].email, "asa@x.se");
    CHECK_STR (p->commands [0].prev_end, YEAR_E);
    cs_plan_destroy (&p);
}

TEST (sync_state_rule)
{
    cs_plan_target_t t;
    memset (&t, 0, sizeof t);
    snprintf (t.begin, sizeof t.begin, YEAR_B);
    snprintf (t.end, sizeof t.end, YEAR_E);
    const char *now = "2026-11-30T12:00:00";
    CHECK_INT (cs_plan_sync (&t, 1, YEAR_B, YEAR_E, now, 0, 0), CS_SYNC_IN_SYNC);
    CHECK_INT (cs_plan_sync (&t, 0, YEAR_B, YEAR_E, now, 0, 0), CS_SYNC_PENDING);
    CHECK_INT (cs_plan_sync (&t, 1, YEAR_B, HALF_E, now, 1, 0), CS_SYNC_FAILED);
    CHECK_INT (cs_plan_sync (&t, 1, YEAR_B, HALF_E, now, 0, 1), CS_SYNC_HELD);
    t.revoke = 1;
    t.begin [0] = t.end [0] = 0;
    CHECK_INT (cs_plan_sync (&t, 1, YEAR_B, GONE, now, 0, 0), CS_SYNC_IN_SYNC);
    CHECK_INT (cs_plan_sync (&t, 1, YEAR_B, "2026-11-30T23:59:59", now, 0, 0), CS_SYNC_PENDING);
    CHECK_INT (cs_plan_sync (&t, 0, YEAR_B, GONE, now, 0, 0), CS_SYNC_PENDING);   /* enable:false admits */
    CHECK_INT (cs_plan_sync (&t, 1, YEAR_B, "", now, 0, 0), CS_SYNC_PENDING);
}

TEST (a_large_world_plans_every_person_once)
{
    /* 2,000 members, each with a person, half of them out of date */
    enum { N = 2000 };
    static cs_plan_member_t members [N];
    static cs_plan_role_t roles [N];
    static cs_plan_person_t persons [N];
    static char emails [N][32], nos [N][16];
    cs_day_t start, end;
    REQUIRE (cs_day_parse ("2026-01-01", &start) == 0 && cs_day_parse ("2026-12-31", &end) == 0);
    for (int i = 0; i < N; i++) {
        snprintf (emails [i], sizeof emails [i], "m%d@x.se", i);
        snprintf (nos [i], sizeof nos [i], "%d", 5000 + i);
        roles [i] = (cs_plan_role_t) { 1, start, end };
        members [i] = (cs_plan_member_t) { 1, 1000 + i, emails [i], "N", 0, &roles [i], 1 };
        persons [i] = (cs_plan_person_t) { nos [i], emails [i], 1, YEAR_B, i % 2 ? YEAR_E : HALF_E };
    }
    cs_plan_device_t dev = { "door1", 1, start + 333, "2026-11-30T12:00:00", persons, N };
    cs_match_t match [] = { CS_MATCH_TAG };
    cs_plan_input_t in = { .match = match, .match_count = 1, .revoke = 1, .guard_max_revocations = 10,
                           .members = members, .member_count = N, .devices = &dev, .device_count = 1 };
    cs_plan_t *p = cs_plan_new (&in);
    REQUIRE (p);
    CHECK_INT (p->command_count, N / 2);
    CHECK_INT (p->target_count, N);
    CHECK_INT (p->tied_count, N);
    CHECK_INT (p->notice_count, 0);
    cs_plan_destroy (&p);
}
