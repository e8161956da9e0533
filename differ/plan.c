#include "differ/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A member a person is (or would be) tied to. */
typedef struct {
    int64_t org;
    int64_t omid;
    long m;                     /* its index in the input's members, -1 if gone from the export */
    cs_rule_t rule;
    const char *via;
} who_t;

/* A growable array of who_t. */
typedef struct {
    who_t *items;
    size_t count;
    size_t cap;
} whos_t;

typedef struct {
    const cs_plan_input_t *in;
    cs_plan_t *out;
    size_t *by_email;           /* member indices with an e-mail, by (email, org, omid) */
    size_t email_count;
    size_t *by_omid;            /* every member, by (omid, org) */
    size_t *by_key;             /* every member, by (org, omid) */
    size_t *ties;               /* tie indices by (device, no, org, omid) */
    size_t *map;                /* map line indices by no */
    size_t *open;               /* by (device, no) */
    size_t *failed;
    size_t *persons;            /* the device being planned: person indices by no */
    unsigned char *placed;      /* the device being planned: members with a person there */
    cs_period_t *periods;       /* a scratch list of role periods */
    size_t period_cap;
    size_t caps [6];            /* capacities of the output arrays */
    int nomem;
} planner_t;


/* --- sorting and searching ------------------------------------------------ */

static int
cmp_i64 (int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int
by_email (const void *a, const void *b, void *arg)
{
    const cs_plan_input_t *s_in = arg;
    const cs_plan_member_t *x = &s_in->members [*(const size_t *) a];
    const cs_plan_member_t *y = &s_in->members [*(const size_t *) b];
    int c = strcmp (x->email, y->email);
    return c ? c : cmp_i64 (x->org, y->org) ? cmp_i64 (x->org, y->org) : cmp_i64 (x->omid, y->omid);
}

static int
by_omid (const void *a, const void *b, void *arg)
{
    const cs_plan_input_t *s_in = arg;
    const cs_plan_member_t *x = &s_in->members [*(const size_t *) a];
    const cs_plan_member_t *y = &s_in->members [*(const size_t *) b];
    return cmp_i64 (x->omid, y->omid) ? cmp_i64 (x->omid, y->omid) : cmp_i64 (x->org, y->org);
}

static int
by_key (const void *a, const void *b, void *arg)
{
    const cs_plan_input_t *s_in = arg;
    const cs_plan_member_t *x = &s_in->members [*(const size_t *) a];
    const cs_plan_member_t *y = &s_in->members [*(const size_t *) b];
    return cmp_i64 (x->org, y->org) ? cmp_i64 (x->org, y->org) : cmp_i64 (x->omid, y->omid);
}

static int
by_tie (const void *a, const void *b, void *arg)
{
    const cs_plan_input_t *s_in = arg;
    const cs_plan_tie_t *x = &s_in->ties [*(const size_t *) a];
    const cs_plan_tie_t *y = &s_in->ties [*(const size_t *) b];
    int c = strcmp (x->device, y->device);
    if (!c)
        c = strcmp (x->no, y->no);
    if (!c)
        c = cmp_i64 (x->org, y->org);
    return c ? c : cmp_i64 (x->omid, y->omid);
}

static int
by_map_no (const void *a, const void *b, void *arg)
{
    const cs_plan_input_t *s_in = arg;
    return strcmp (s_in->map [*(const size_t *) a].no, s_in->map [*(const size_t *) b].no);
}


static int
by_sent (const void *a, const void *b, void *arg)
{
    const cs_plan_sent_t *s_sent = arg;
    const cs_plan_sent_t *x = &s_sent [*(const size_t *) a], *y = &s_sent [*(const size_t *) b];
    int c = strcmp (x->device, y->device);
    return c ? c : strcmp (x->no, y->no);
}

static int
by_person_no (const void *a, const void *b, void *arg)
{
    const cs_plan_device_t *s_dev = arg;
    return strcmp (s_dev->persons [*(const size_t *) a].no, s_dev->persons [*(const size_t *) b].no);
}

/* An index of n items sorted by cmp; NULL (and nomem) if out of memory. */
static size_t *
sorted (planner_t *p, size_t n, int (*want) (size_t i, const cs_plan_input_t *in),
        int (*cmp) (const void *, const void *, void *), const void *arg, size_t *count)
{
    size_t *idx = malloc ((n ? n : 1) * sizeof *idx);
    if (!idx) {
        p->nomem = 1;
        *count = 0;
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!want || want (i, p->in))
            idx [k++] = i;
    qsort_r (idx, k, sizeof *idx, cmp, (void *) arg);
    *count = k;
    return idx;
}

static int
has_email (size_t i, const cs_plan_input_t *in)
{
    return in->members [i].email && *in->members [i].email;
}

/* The first position in idx [0..n) whose item is not before the probe, by
 * cmp (probe, item) > 0; a plain lower bound. */
#define LOWER_BOUND(idx, n, before)                                           \
    ({ size_t lo_ = 0, hi_ = (n);                                             \
       while (lo_ < hi_) { size_t mid_ = (lo_ + hi_) / 2; size_t it = (idx) [mid_]; \
           if (before) lo_ = mid_ + 1; else hi_ = mid_; }                     \
       lo_; })

/* Members whose e-mail is email: [*first, *first + count) of by_email. */
static size_t
find_email (planner_t *p, const char *email, size_t *first)
{
    const cs_plan_member_t *ms = p->in->members;
    size_t n = p->email_count;
    *first = LOWER_BOUND (p->by_email, n, strcmp (ms [it].email, email) < 0);
    size_t k = *first;
    while (k < n && !strcmp (ms [p->by_email [k]].email, email))
        k++;
    return k - *first;
}

/* The map's lines for employeeNo no: [*first, *first + count) of map. */
static size_t
find_map (planner_t *p, const char *no, size_t *first)
{
    const cs_plan_map_line_t *ls = p->in->map;
    size_t n = p->in->map_count;
    *first = LOWER_BOUND (p->map, n, strcmp (ls [it].no, no) < 0);
    size_t k = *first;
    while (k < n && !strcmp (ls [p->map [k]].no, no))
        k++;
    return k - *first;
}

/* The member (org, omid), or -1. */
static long
find_member (planner_t *p, int64_t org, int64_t omid)
{
    const cs_plan_member_t *ms = p->in->members;
    size_t n = p->in->member_count;
    size_t k = LOWER_BOUND (p->by_key, n, ms [it].org < org || (ms [it].org == org && ms [it].omid < omid));
    if (k < n && ms [p->by_key [k]].org == org && ms [p->by_key [k]].omid == omid)
        return (long) p->by_key [k];
    return -1;
}

/* The ties of person (device, no): [*first, *first + count) of ties. */
static size_t
find_ties (planner_t *p, const char *device, const char *no, size_t *first)
{
    const cs_plan_tie_t *ts = p->in->ties;
    size_t n = p->in->tie_count;
    *first = LOWER_BOUND (p->ties, n, strcmp (ts [it].device, device) < 0
                          || (!strcmp (ts [it].device, device) && strcmp (ts [it].no, no) < 0));
    size_t k = *first;
    while (k < n && !strcmp (ts [p->ties [k]].device, device) && !strcmp (ts [p->ties [k]].no, no))
        k++;
    return k - *first;
}

/* The command recorded for (device, no) in list, or NULL. */
static const cs_plan_sent_t *
find_sent (const size_t *idx, const cs_plan_sent_t *list, size_t n, const char *device, const char *no)
{
    size_t k = LOWER_BOUND (idx, n, strcmp (list [it].device, device) < 0
                            || (!strcmp (list [it].device, device) && strcmp (list [it].no, no) < 0));
    if (k < n && !strcmp (list [idx [k]].device, device) && !strcmp (list [idx [k]].no, no))
        return &list [idx [k]];
    return NULL;
}

static const cs_plan_person_t *
find_person (planner_t *p, const cs_plan_device_t *d, const char *no)
{
    size_t n = d->person_count;
    size_t k = LOWER_BOUND (p->persons, n, strcmp (d->persons [it].no, no) < 0);
    return k < n && !strcmp (d->persons [p->persons [k]].no, no) ? &d->persons [p->persons [k]] : NULL;
}

/* --- output ------------------------------------------------------------------ */

static void *grow (planner_t *p, void **items, size_t *count, size_t *cap, size_t size);

/* A copy of s kept by the plan (freed with it). */
static const char *
own (planner_t *p, const char *s)
{
    char *copy = strdup (s);
    char **slot = copy ? grow (p, (void **) &p->out->owned, &p->out->owned_count, &p->caps [5],
                               sizeof *slot) : NULL;
    if (!slot) {
        free (copy);
        p->nomem = 1;
        return NULL;
    }
    *slot = copy;
    return copy;
}

static void *
grow (planner_t *p, void **items, size_t *count, size_t *cap, size_t size)
{
    if (*count == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        void *bigger = realloc (*items, n * size);
        if (!bigger) {
            p->nomem = 1;
            return NULL;
        }
        *items = bigger;
        *cap = n;
    }
    void *item = (char *) *items + (*count)++ * size;
    memset (item, 0, size);
    return item;
}

#define ADD(p, arr, cnt, capi) grow ((p), (void **) &(p)->out->arr, &(p)->out->cnt, &(p)->caps [capi], \
                                     sizeof *(p)->out->arr)

static void
whos_add (planner_t *p, whos_t *w, int64_t org, int64_t omid, long m, cs_rule_t rule, const char *via)
{
    for (size_t i = 0; i < w->count; i++)
        if (w->items [i].org == org && w->items [i].omid == omid)
            return;
    who_t *x = grow (p, (void **) &w->items, &w->count, &w->cap, sizeof *x);
    if (x)
        *x = (who_t) { org, omid, m, rule, via };
}

static int
whos_has (const whos_t *w, int64_t org, int64_t omid)
{
    for (size_t i = 0; i < w->count; i++)
        if (w->items [i].org == org && w->items [i].omid == omid)
            return 1;
    return 0;
}

static int
whos_same (const whos_t *a, const whos_t *b)
{
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (!whos_has (b, a->items [i].org, a->items [i].omid))
            return 0;
    return 1;
}

/* "1234:1001 (asa@example.se), 1234:1002" */
static void
whos_text (planner_t *p, const whos_t *w, char *out, size_t size)
{
    size_t len = 0;
    out [0] = 0;
    for (size_t i = 0; i < w->count && len + 1 < size; i++) {
        const who_t *x = &w->items [i];
        const char *email = x->m >= 0 ? p->in->members [x->m].email : NULL;
        int n = snprintf (out + len, size - len, "%s%lld:%lld%s%s%s", i ? ", " : "", (long long) x->org,
                          (long long) x->omid, email ? " (" : "", email ? email : "", email ? ")" : "");
        if (n < 0)
            break;
        len += (size_t) n;
    }
}

static void
tie_change (planner_t *p, int made, const char *device, const char *no, const who_t *x, const char *why)
{
    cs_plan_tie_change_t *c = made ? ADD (p, tied, tied_count, 1) : ADD (p, untied, untied_count, 2);
    if (!c)
        return;
    *c = (cs_plan_tie_change_t) { device, no, x->org, x->omid, x->rule, x->via,
                                  x->m >= 0 ? p->in->members [x->m].email : NULL, why };
}

static cs_plan_notice_t *
notice (planner_t *p, cs_event_kind_t kind, const char *device, const char *no)
{
    cs_plan_notice_t *n = ADD (p, notices, notice_count, 3);
    if (n) {
        n->kind = kind;
        n->device = device;
        n->no = no;
    }
    return n;
}

/* --- the rules ------------------------------------------------------------------ */

static int
role_wanted (const cs_plan_input_t *in, int64_t role)
{
    if (in->role_count == 0)
        return 1;
    for (size_t i = 0; i < in->role_count; i++)
        if (in->roles [i] == role)
            return 1;
    return 0;
}

/* Adds member m's entitling periods to the scratch list at *n. */
static void
add_periods (planner_t *p, const cs_plan_member_t *m, size_t *n)
{
    if (m->inactive)
        return;
    for (size_t i = 0; i < m->role_count; i++) {
        if (!role_wanted (p->in, m->roles [i].role))
            continue;
        if (*n == p->period_cap) {
            size_t cap = p->period_cap ? p->period_cap * 2 : 64;
            cs_period_t *bigger = realloc (p->periods, cap * sizeof *bigger);
            if (!bigger) {
                p->nomem = 1;
                return;
            }
            p->periods = bigger;
            p->period_cap = cap;
        }
        p->periods [(*n)++] = (cs_period_t) { m->roles [i].start, m->roles [i].end };
    }
}

/* The validity the members of w are entitled to on day today: 1 and the
 * device times, or 0 (none, or wholly outside the device's range). */
static int
entitled (planner_t *p, const whos_t *w, cs_day_t today, char begin [CS_TIME_LEN], char end [CS_TIME_LEN])
{
    size_t n = 0;
    for (size_t i = 0; i < w->count; i++)
        if (w->items [i].m >= 0)
            add_periods (p, &p->in->members [w->items [i].m], &n);
    cs_span_t span;
    if (cs_date_span (p->periods, n, today, &span) != 0) {
        p->nomem = 1;
        return 0;
    }
    return span.valid && cs_date_span_times (&span, begin, end) == 0;
}

/* The members a rule finds for person x on device d, into w. */
static void
apply_rule (planner_t *p, cs_match_t rule, const cs_plan_person_t *x, whos_t *w, const char **via)
{
    const cs_plan_input_t *in = p->in;
    w->count = 0;
    *via = NULL;
    size_t first, n;
    switch (rule) {
        case CS_MATCH_TAG:
            if (!x->tag)
                return;
            n = find_email (p, x->tag, &first);
            for (size_t k = first; k < first + n; k++) {
                const cs_plan_member_t *m = &in->members [p->by_email [k]];
                whos_add (p, w, m->org, m->omid, (long) p->by_email [k], CS_RULE_TAG, x->tag);
            }
            *via = x->tag;
            return;
        case CS_MATCH_MAP: {
            size_t lines, lo = 0;
            lines = find_map (p, x->no, &lo);
            for (size_t k = lo; k < lo + lines; k++) {
                const char *email = in->map [p->map [k]].email;
                n = find_email (p, email, &first);
                for (size_t j = first; j < first + n; j++) {
                    const cs_plan_member_t *m = &in->members [p->by_email [j]];
                    whos_add (p, w, m->org, m->omid, (long) p->by_email [j], CS_RULE_MAP, email);
                }
                if (n && !*via)
                    *via = email;
            }
            return;
        }
        case CS_MATCH_MEMBER_ID: {
            if (x->tag)
                return;         /* a tagged person is someone's card: its tag says whose */
            char *end;
            long long omid = strtoll (x->no, &end, 10);
            char canon [32];
            snprintf (canon, sizeof canon, "%lld", omid);
            if (*end || omid <= 0 || strcmp (canon, x->no))
                return;
            size_t lo = LOWER_BOUND (p->by_omid, in->member_count, in->members [it].omid < omid);
            for (size_t k = lo; k < in->member_count && in->members [p->by_omid [k]].omid == omid; k++) {
                const cs_plan_member_t *m = &in->members [p->by_omid [k]];
                whos_add (p, w, m->org, m->omid, (long) p->by_omid [k], CS_RULE_MEMBER_ID, x->no);
            }
            *via = x->no;
            return;
        }
    }
}

static int
rule_of_match (cs_match_t m)
{
    return m == CS_MATCH_TAG ? CS_RULE_TAG : m == CS_MATCH_MAP ? CS_RULE_MAP : CS_RULE_MEMBER_ID;
}

/* The members person x on device d is tied to (into t), after the rules and
 * the remembered ties; records the ties made and ended and the conflicts. */
static void
tie_person (planner_t *p, const cs_plan_device_t *d, const cs_plan_person_t *x, whos_t *t,
            whos_t *fresh, whos_t *later)
{
    const cs_plan_input_t *in = p->in;
    t->count = 0;
    /* what the rules say today: the first that finds members decides */
    fresh->count = 0;
    int decided = -1;
    const char *via = NULL;
    char conflict [400] = "";
    for (size_t r = 0; r < in->match_count; r++) {
        whos_t *into = decided < 0 ? fresh : later;
        const char *v;
        apply_rule (p, in->match [r], x, into, &v);
        if (!into->count)
            continue;
        if (decided < 0) {
            decided = rule_of_match (in->match [r]);
            via = v;
        }
        else if (!conflict [0] && !whos_same (fresh, later)) {
            char a [160], b [160];
            whos_text (p, fresh, a, sizeof a);
            whos_text (p, later, b, sizeof b);
            snprintf (conflict, sizeof conflict, "%s ties it to %s, %s would tie it to %s; the %s decides",
                      cs_rule_name (decided), a, cs_rule_name (rule_of_match (in->match [r])), b,
                      cs_rule_name (decided));
        }
    }
    /* what is remembered, less the map lines that are gone */
    size_t first, n = find_ties (p, d->name, x->no, &first);
    for (size_t k = first; k < first + n; k++) {
        const cs_plan_tie_t *tie = &in->ties [p->ties [k]];
        who_t w = { tie->org, tie->omid, find_member (p, tie->org, tie->omid), tie->rule, tie->via };
        if (tie->rule == CS_RULE_MAP) {
            int still = 0;
            size_t lo, lines = find_map (p, x->no, &lo);
            for (size_t j = lo; j < lo + lines; j++)
                still |= !strcmp (in->map [p->map [j]].email, tie->via);
            if (!still) {
                tie_change (p, 0, d->name, x->no, &w, "the identity_map line that tied it was removed");
                continue;
            }
        }
        whos_add (p, t, w.org, w.omid, w.m, w.rule, w.via);
    }
    int overlap = 0;
    for (size_t i = 0; i < fresh->count; i++)
        overlap |= whos_has (t, fresh->items [i].org, fresh->items [i].omid);
    if (t->count && fresh->count && !overlap) {
        const who_t *r0 = &t->items [0];
        int same_tag = (r0->rule == CS_RULE_TAG || r0->rule == CS_RULE_CREATED) && x->tag
                       && r0->via && !strcmp (r0->via, x->tag);
        if (decided == CS_RULE_TAG && !same_tag) {
            /* re-tagged with another current member's e-mail: it is theirs now */
            for (size_t i = 0; i < t->count; i++)
                tie_change (p, 0, d->name, x->no, &t->items [i],
                            "the person was re-tagged with another member's e-mail");
            t->count = 0;
        }
        else {
            char a [160], b [160];
            whos_text (p, t, a, sizeof a);
            whos_text (p, fresh, b, sizeof b);
            snprintf (conflict, sizeof conflict, "it is tied to %s (%s); %s would tie it to %s; "
                      "the remembered tie stands", a, cs_rule_name (r0->rule), cs_rule_name (decided), b);
            fresh->count = 0;
        }
    }
    for (size_t i = 0; i < fresh->count; i++) {
        const who_t *w = &fresh->items [i];
        if (whos_has (t, w->org, w->omid))
            continue;
        whos_add (p, t, w->org, w->omid, w->m, (cs_rule_t) decided, via);
        tie_change (p, 1, d->name, x->no, &t->items [t->count - 1], NULL);
    }
    if (conflict [0]) {
        cs_plan_notice_t *c = notice (p, CS_EV_CONFLICT, d->name, x->no);
        if (c) {
            snprintf (c->key, sizeof c->key, "%s|%s", d->name, x->no);
            snprintf (c->msg, sizeof c->msg, "%s", conflict);
            if (t->count) {
                c->org = t->items [0].org;
                c->omid = t->items [0].omid;
                c->email = t->items [0].m >= 0 ? in->members [t->items [0].m].email : NULL;
            }
        }
    }
}

/* The revocation: ended yesterday, begun no later than that. */
static void
revocation (const cs_plan_device_t *d, const cs_plan_person_t *x, char begin [CS_TIME_LEN],
            char end [CS_TIME_LEN])
{
    char day [CS_DAY_LEN];
    cs_day_format (d->today - 1, day);
    snprintf (end, CS_TIME_LEN, "%sT23:59:59", day);
    if (x->begin [0] && cs_time_valid (x->begin) && strcmp (x->begin, end) <= 0
        && strcmp (x->begin, CS_TIME_MIN) >= 0)
        snprintf (begin, CS_TIME_LEN, "%s", x->begin);
    else
        snprintf (begin, CS_TIME_LEN, "%sT00:00:00", day);
}

int
cs_plan_holds (const cs_plan_target_t *t, int enable, const char *begin, const char *end, const char *now)
{
    if (t->keep)
        return 1;
    if (t->revoke)
        return enable && end && cs_time_valid (end) && strcmp (end, now) < 0;
    return enable && begin && end && !strcmp (begin, t->begin) && !strcmp (end, t->end);
}

cs_sync_t
cs_plan_sync (const cs_plan_target_t *t, int enable, const char *begin, const char *end,
              const char *now, int failed, int held)
{
    if (cs_plan_holds (t, enable, begin, end, now))
        return CS_SYNC_IN_SYNC;
    return held ? CS_SYNC_HELD : failed ? CS_SYNC_FAILED : CS_SYNC_PENDING;
}

/* What a target needs: a command, or nothing (in sync, on its way, refused). */
static void
settle (planner_t *p, const cs_plan_device_t *d, const cs_plan_person_t *x, size_t ti, cs_op_t op,
        const char *name, const char *tag)
{
    cs_plan_target_t *t = &p->out->targets [ti];
    int enable = x ? x->enable : 0;
    const char *begin = x ? x->begin : "", *end = x ? x->end : "";
    if (x && cs_plan_holds (t, enable, begin, end, d->now)) {
        t->sync = CS_SYNC_IN_SYNC;
        return;
    }
    char want_begin [CS_TIME_LEN], want_end [CS_TIME_LEN];
    if (t->revoke)
        revocation (d, x, want_begin, want_end);
    else {
        memcpy (want_begin, t->begin, CS_TIME_LEN);
        memcpy (want_end, t->end, CS_TIME_LEN);
    }
    const cs_plan_sent_t *f = find_sent (p->failed, p->in->failed, p->in->failed_count, d->name, t->no);
    if (f && !strcmp (f->begin, want_begin) && !strcmp (f->end, want_end)) {
        t->sync = CS_SYNC_FAILED;       /* refused for good: in the failed queue until replayed */
        return;
    }
    t->sync = CS_SYNC_PENDING;
    const cs_plan_sent_t *o = find_sent (p->open, p->in->open, p->in->open_count, d->name, t->no);
    if (o && !strcmp (o->begin, want_begin) && !strcmp (o->end, want_end))
        return;                         /* already on its way */
    cs_plan_command_t *c = ADD (p, commands, command_count, 0);
    if (!c)
        return;
    c->device = d->name;
    c->no = t->no;
    c->op = op;
    c->org = t->org;
    c->omid = t->omid;
    c->email = t->email;
    c->name = name;
    c->tag = tag;
    memcpy (c->begin, want_begin, CS_TIME_LEN);
    memcpy (c->end, want_end, CS_TIME_LEN);
    snprintf (c->prev_begin, CS_TIME_LEN, "%s", begin);
    snprintf (c->prev_end, CS_TIME_LEN, "%s", end);
    c->revoke = t->revoke;
    c->target = ti;
}

/* A target for person no on device d, tied to t's members. */
static size_t
target (planner_t *p, const cs_plan_device_t *d, const char *no, const whos_t *t)
{
    cs_plan_target_t *x = ADD (p, targets, target_count, 4);
    if (!x)
        return (size_t) -1;
    x->device = d->name;
    x->no = no;
    /* the first member still in the export speaks for the person */
    const who_t *lead = &t->items [0];
    for (size_t i = 0; i < t->count; i++)
        if (t->items [i].m >= 0) {
            lead = &t->items [i];
            break;
        }
    x->org = lead->org;
    x->omid = lead->omid;
    x->email = lead->m >= 0 ? p->in->members [lead->m].email : NULL;
    if (!x->email && (lead->rule == CS_RULE_TAG || lead->rule == CS_RULE_MAP || lead->rule == CS_RULE_CREATED))
        x->email = lead->via;           /* a departed member: the e-mail that tied it */
    if (!entitled (p, t, d->today, x->begin, x->end)) {
        x->begin [0] = x->end [0] = 0;
        x->revoke = p->in->revoke;
        x->keep = !p->in->revoke;
    }
    return p->out->target_count - 1;
}

/* Plans every person on device d, then its members without a person. */
static void
plan_device (planner_t *p, const cs_plan_device_t *d, whos_t *t, whos_t *fresh, whos_t *later)
{
    const cs_plan_input_t *in = p->in;
    memset (p->placed, 0, in->member_count ? in->member_count : 1);
    for (size_t i = 0; i < d->person_count && !p->nomem; i++) {
        const cs_plan_person_t *x = &d->persons [i];
        tie_person (p, d, x, t, fresh, later);
        if (!t->count)
            continue;           /* nobody's: never written */
        for (size_t k = 0; k < t->count; k++)
            if (t->items [k].m >= 0)
                p->placed [t->items [k].m] = 1;
        size_t ti = target (p, d, x->no, t);
        if (ti == (size_t) -1)
            return;
        /* a tag that no longer names any of its members: say what it should be */
        const cs_plan_target_t *tg = &p->out->targets [ti];
        if (x->tag && (t->items [0].rule == CS_RULE_TAG || t->items [0].rule == CS_RULE_CREATED)) {
            int named = 0;
            for (size_t k = 0; k < t->count; k++)
                named |= t->items [k].m >= 0 && in->members [t->items [k].m].email
                         && !strcmp (in->members [t->items [k].m].email, x->tag);
            for (size_t k = 0; k < t->count && !named; k++) {
                const who_t *w = &t->items [k];
                const char *now = w->m >= 0 ? in->members [w->m].email : NULL;
                if (!now)
                    continue;
                if (!tg->retag)
                    p->out->targets [ti].retag = now;
                cs_plan_notice_t *c = notice (p, CS_EV_EMAIL_CHANGED, d->name, x->no);
                if (!c)
                    return;
                snprintf (c->key, sizeof c->key, "%s|%s|%lld:%lld|%s", d->name, x->no,
                          (long long) w->org, (long long) w->omid, now);
                c->org = w->org;
                c->omid = w->omid;
                c->email = now;
                snprintf (c->msg, sizeof c->msg, "the member's e-mail is now %s; the person's tag "
                          "still holds %s (it stays tied; update the tag)", now, x->tag);
            }
        }
        settle (p, d, x, ti, CS_OP_SET, NULL, NULL);
    }
    /* remembered ties whose person is gone from the device */
    for (size_t k = 0; k < in->tie_count; k++) {
        const cs_plan_tie_t *tie = &in->ties [k];
        if (strcmp (tie->device, d->name) || find_person (p, d, tie->no))
            continue;
        who_t w = { tie->org, tie->omid, find_member (p, tie->org, tie->omid), tie->rule, tie->via };
        tie_change (p, 0, d->name, tie->no, &w, "the person is gone from the device");
    }
    /* entitled members without a person, one e-mail at a time */
    for (size_t k = 0; k < p->email_count && !p->nomem; ) {
        size_t first = k;
        const char *email = in->members [p->by_email [k]].email;
        int placed = 0;
        t->count = 0;
        while (k < p->email_count && !strcmp (in->members [p->by_email [k]].email, email)) {
            size_t m = p->by_email [k++];
            placed |= p->placed [m];
            whos_add (p, t, in->members [m].org, in->members [m].omid, (long) m, CS_RULE_CREATED, email);
        }
        char begin [CS_TIME_LEN], end [CS_TIME_LEN];
        if (placed || !entitled (p, t, d->today, begin, end))
            continue;
        const cs_plan_member_t *m = &in->members [p->by_email [first]];
        char no [24];
        snprintf (no, sizeof no, "%lld", (long long) m->omid);
        const cs_plan_person_t *taken = find_person (p, d, no);
        if (in->create_missing && !taken) {
            const char *kept = own (p, no);
            size_t ti = kept ? target (p, d, kept, t) : (size_t) -1;
            if (ti == (size_t) -1)
                return;
            settle (p, d, NULL, ti, CS_OP_CREATE, in->tag_by_name ? m->email : m->name,
                    in->tag_by_name ? NULL : m->email);
            continue;
        }
        for (size_t j = first; j < k; j++) {
            const cs_plan_member_t *u = &in->members [p->by_email [j]];
            cs_plan_notice_t *c = notice (p, CS_EV_UNMATCHED, d->name, NULL);
            if (!c)
                return;
            snprintf (c->key, sizeof c->key, "%s|%lld:%lld", d->name, (long long) u->org, (long long) u->omid);
            c->org = u->org;
            c->omid = u->omid;
            c->email = u->email;
            if (taken)
                snprintf (c->msg, sizeof c->msg, "no person on the device matches this member, and "
                          "employeeNo %s belongs to a person not tied to it: not created", no);
            else
                snprintf (c->msg, sizeof c->msg, "no person on the device matches this member");
        }
    }
}

/* The guard: never a mass revocation from one bad export. */
static void
guard (planner_t *p)
{
    const cs_plan_input_t *in = p->in;
    cs_plan_t *out = p->out;
    for (size_t i = 0; i < out->command_count; i++)
        out->revocations += out->commands [i].revoke;
    size_t limit = in->guard_max_revocations > 0 ? (size_t) in->guard_max_revocations : 0;
    size_t by_percent = in->member_count * (size_t) (in->guard_max_percent > 0 ? in->guard_max_percent : 0) / 100;
    out->limit = by_percent > limit ? by_percent : limit;
    /* an operator's approval covers up to the count they saw, until the
     * revocations are back within the guard */
    out->tripped = out->revocations > out->limit && in->approved < (int64_t) out->revocations;
    out->approval_spent = out->revocations <= out->limit && in->approved != 0;
    if (!out->tripped)
        return;
    for (size_t i = 0; i < out->command_count; i++)
        if (out->commands [i].revoke) {
            out->commands [i].held = 1;
            out->targets [out->commands [i].target].sync = CS_SYNC_HELD;
        }
}

/* --dry-run: every command that would go out is a `planned` notice instead. */
static void
dry_run (planner_t *p)
{
    cs_plan_t *out = p->out;
    size_t kept = 0;
    for (size_t i = 0; i < out->command_count && !p->nomem; i++) {
        const cs_plan_command_t *c = &out->commands [i];
        if (c->held) {
            out->commands [kept++] = *c;
            continue;
        }
        cs_plan_notice_t *n = notice (p, CS_EV_PLANNED, c->device, NULL);
        if (!n)
            return;
        n->no = out->targets [c->target].no;
        snprintf (n->key, sizeof n->key, "%s|%s|%s|%s", c->device, c->no, c->begin, c->end);
        n->org = c->org;
        n->omid = c->omid;
        n->email = c->email;
        memcpy (n->begin, c->begin, CS_TIME_LEN);
        memcpy (n->end, c->end, CS_TIME_LEN);
        snprintf (n->msg, sizeof n->msg, "%s", cs_op_name (c->op));
    }
    out->command_count = kept;
}

cs_plan_t *
cs_plan_new (const cs_plan_input_t *in)
{
    planner_t p;
    memset (&p, 0, sizeof p);
    p.in = in;
    p.out = calloc (1, sizeof *p.out);
    if (!p.out)
        return NULL;
    size_t n;
    p.by_email = sorted (&p, in->member_count, has_email, by_email, in, &p.email_count);
    p.by_omid = sorted (&p, in->member_count, NULL, by_omid, in, &n);
    p.by_key = sorted (&p, in->member_count, NULL, by_key, in, &n);
    p.ties = sorted (&p, in->tie_count, NULL, by_tie, in, &n);
    p.map = sorted (&p, in->map_count, NULL, by_map_no, in, &n);
    p.open = sorted (&p, in->open_count, NULL, by_sent, in->open, &n);
    p.failed = sorted (&p, in->failed_count, NULL, by_sent, in->failed, &n);
    p.placed = malloc (in->member_count ? in->member_count : 1);
    whos_t t = { 0 }, fresh = { 0 }, later = { 0 };
    if (!p.placed)
        p.nomem = 1;
    /* at most a target per person, and one per member to create: sized once
     * (a door of 100,000 persons should not cost twice that while it grows) */
    size_t most = 0;
    for (size_t i = 0; i < in->device_count; i++)
        if (in->devices [i].scanned)
            most += in->devices [i].person_count + (in->create_missing ? p.email_count : 0);
    if (most && !p.nomem) {
        p.out->targets = malloc (most * sizeof *p.out->targets);
        p.caps [4] = most;
        if (!p.out->targets)
            p.nomem = 1;
    }
    for (size_t i = 0; i < in->device_count && !p.nomem; i++) {
        const cs_plan_device_t *d = &in->devices [i];
        if (!d->scanned)
            continue;           /* who is on it is not known yet: nothing to decide */
        free (p.persons);
        p.persons = sorted (&p, d->person_count, NULL, by_person_no, d, &n);
        if (!p.nomem)
            plan_device (&p, d, &t, &fresh, &later);
    }
    if (!p.nomem)
        guard (&p);
    if (!p.nomem && in->dry_run)
        dry_run (&p);
    free (t.items);
    free (fresh.items);
    free (later.items);
    free (p.by_email);
    free (p.by_omid);
    free (p.by_key);
    free (p.ties);
    free (p.map);
    free (p.open);
    free (p.failed);
    free (p.persons);
    free (p.placed);
    free (p.periods);
    if (p.nomem)
        cs_plan_destroy (&p.out);
    return p.out;
}

void
cs_plan_destroy (cs_plan_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cs_plan_t *self = *self_p;
    free (self->commands);
    free (self->tied);
    free (self->untied);
    free (self->notices);
    free (self->targets);
    for (size_t i = 0; i < self->owned_count; i++)
        free (self->owned [i]);
    free (self->owned);
    free (self);
    *self_p = NULL;
}
