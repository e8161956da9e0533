"""desired.py MEMBERS.json DEVICE_USERS.json EXCLUDE_EMAILS...: checks that a
device holds exactly what the members say (the span rule of design §2,
written again here independently), for every person tagged with a member's
e-mail. Prints the mismatches; exits 1 if there are any."""
import datetime
import json
import sys

members = json.load(open(sys.argv[1]))
users = json.load(open(sys.argv[2]))
exclude = set(sys.argv[3:])
today = datetime.date.today()
now = datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
D = datetime.date.fromisoformat

periods = {}
for m in members:
    email = (m.get("email") or "").strip().lower()
    if not email or "@" not in email:
        continue
    ps = periods.setdefault(email, [])
    if m.get("inactive"):
        continue
    for r in m["roles"]:
        if r["org"] == 1234 and D(r["end"]) >= D(r["start"]):
            ps.append((D(r["start"]), D(r["end"])))


def span(ps):
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


bad = 0
for u in users:
    tag = ((u.get("PersonInfoExtends") or [{}])[0].get("value") or "").strip().lower()
    if tag not in periods or tag in exclude:
        continue
    v = u["Valid"]
    sp = span(periods[tag])
    if sp:
        b = max(sp[0], datetime.date(2000, 1, 1)).isoformat() + "T00:00:00"
        e = min(sp[1], datetime.date(2037, 12, 31)).isoformat() + "T23:59:59"
        ok = v["enable"] and v["beginTime"] == b and v["endTime"] == e
        want = f"{b}..{e}"
    else:
        ok = v["enable"] and v["endTime"] < now
        want = "ended"
    if not ok:
        bad += 1
        if bad <= 10:
            print(f"{u['employeeNo']} {tag}: has {v['beginTime']}..{v['endTime']} (enable {v['enable']}), wants {want}")
print(f"{bad} mismatches")
sys.exit(1 if bad else 0)
