"""desired.py MEMBERS.json DEVICE_USERS.json EXCLUDE_EMAILS...: checks that a
device holds exactly what the members say (the span rule of design §2,
written again here independently), for every person tagged with a member's
e-mail. Prints the mismatches; exits 1 if there are any.

As a module: periods(members) and valid(periods) give what a person should
hold (the benchmarks build devices that are already in sync with them)."""
import datetime
import json
import sys

D = datetime.date.fromisoformat


def periods(members, org=1234):
    """e-mail -> the (start, end) periods of its active members' roles"""
    out = {}
    for m in members:
        email = (m.get("email") or "").strip().lower()
        if not email or "@" not in email:
            continue
        ps = out.setdefault(email, [])
        if m.get("inactive"):
            continue
        for r in m["roles"]:
            if r["org"] == org and D(r["end"]) >= D(r["start"]):
                ps.append((D(r["start"]), D(r["end"])))
    return out


def span(ps, today):
    spans = []
    for s, e in sorted(ps):
        if spans and (s - spans[-1][1]).days <= 2:
            spans[-1][1] = max(spans[-1][1], e)
        else:
            spans.append([s, e])
    for s, e in spans:
        if s <= today <= e:
            return s, e
    future = [x for x in spans if x[0] > today]
    return tuple(future[0]) if future else None


def valid(ps, today=None):
    """(beginTime, endTime) a person should hold, or None: not to be admitted"""
    sp = span(ps, today or datetime.date.today())
    if not sp:
        return None
    return (max(sp[0], datetime.date(2000, 1, 1)).isoformat() + "T00:00:00",
            min(sp[1], datetime.date(2037, 12, 31)).isoformat() + "T23:59:59")


def main():
    members = json.load(open(sys.argv[1]))
    users = json.load(open(sys.argv[2]))
    exclude = set(sys.argv[3:])
    now = datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
    want_by = periods(members)
    bad = 0
    for u in users:
        tag = ((u.get("PersonInfoExtends") or [{}])[0].get("value") or "").strip().lower()
        if tag not in want_by or tag in exclude:
            continue
        v = u["Valid"]
        w = valid(want_by[tag])
        if w:
            ok = v["enable"] and (v["beginTime"], v["endTime"]) == w
            want = f"{w[0]}..{w[1]}"
        else:
            ok = v["enable"] and v["endTime"] < now
            want = "ended"
        if not ok:
            bad += 1
            if bad <= 10:
                print(f"{u['employeeNo']} {tag}: has {v['beginTime']}..{v['endTime']} (enable {v['enable']}), wants {want}")
    print(f"{bad} mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
