#!/usr/bin/env bash
# Crash safety: during a sync of about 2,000 changes across two devices, each
# of the four programs is killed with SIGKILL several times at random moments
# (supervisord restarts them). Afterwards every device matches the desired
# state exactly, the audit holds each applied change exactly once with no gap
# in its sequence, and the failed queue is exactly the permanently failing
# targets.
set -u
. "$(dirname "$0")/lib/common.sh"

start_cardskipper_sim --members 1100 --seed 11
start_isapi_sim --device door1:0 --device door2:0:old --password 'Crash-1' --seed 11
CSK=scripts/cardskipper-ctl
ISAPI=scripts/isapi-ctl
$CSK members > "$CS_TMP/members.json"
# every member with an e-mail gets a person on both doors, out of date; five on
# door1 carry a name the device refuses on any write (a permanent failure)
python3 - "$CS_TMP" <<'PY'
import json, sys
ms = json.load(open(sys.argv[1] + "/members.json"))
seen, persons, broken = set(), [], []
for m in ms:
    email = (m.get("email") or "").strip()
    if not email or email.lower() in seen:
        continue
    seen.add(email.lower())
    persons.append({"employeeNo": str(m["omid"]), "name": "P%d" % m["omid"],
                    "PersonInfoExtends": [{"value": email}],
                    "Valid": {"enable": True, "beginTime": "2020-01-01T00:00:00", "endTime": "2030-06-30T23:59:59"}})
door1 = [dict(p) for p in persons]
for p in door1[100:105]:
    p["name"] = "x" * 200
    broken.append(p["PersonInfoExtends"][0]["value"].strip().lower())
json.dump(door1, open(sys.argv[1] + "/door1.json", "w"))
json.dump(persons, open(sys.argv[1] + "/door2.json", "w"))
open(sys.argv[1] + "/broken", "w").write("\n".join(broken))
print(len(persons), "persons a door")
PY
check "seed door1" $ISAPI replace door1 "$CS_TMP/door1.json"
check "seed door2" $ISAPI replace door2 "$CS_TMP/door2.json"
# slow enough that the sync is still going while the programs are killed
check "latency door1" $ISAPI fault door1 latency_ms=8
check "latency door2" $ISAPI fault door2 latency_ms=8

export CARDSYNC_DEVICE_DOOR1_PASSWORD='Crash-1' CARDSYNC_DEVICE_DOOR2_PASSWORD='Crash-1'
write_config --all-members --poll 3s --full 20s door1 door2 -- "[sync]
guard_max_revocations = 100000
scan_interval = 15s
lease = 4s
max_retry_age = 30s"
start_group "$CS_CONFIG" 0

# kill -9, three rounds over the four programs, at random moments
RANDOM=20261122
for round in 1 2 3; do
    for prog in producer differ pusher auditor; do
        sleep "0.$((RANDOM % 9 + 1))"
        pid=$(sup pid "cardsync:$prog")
        [ "$pid" -gt 0 ] 2>/dev/null && kill -9 "$pid" && echo "round $round: killed $prog ($pid)"
    done
done
check "still syncing while they were killed" test "$($ISAPI stats door1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["writes"] < 1000)')" = True
check "supervisord restarted them" bash -c "[ \$(supervisorctl -c '$SUPCONF' status | grep -c RUNNING) -ge 3 ]"

broken=$(tr '\n' ' ' < "$CS_TMP/broken")
converged () {
    $ISAPI users door1 > "$CS_TMP/u1.json" && $ISAPI users door2 > "$CS_TMP/u2.json" \
    && python3 tests/integration/lib/desired.py "$CS_TMP/members.json" "$CS_TMP/u1.json" $broken >/dev/null \
    && python3 tests/integration/lib/desired.py "$CS_TMP/members.json" "$CS_TMP/u2.json" >/dev/null
}
_checks=$((_checks + 1))
for i in $(seq 1 120); do converged && break; sleep 1; done
if ! converged; then
    _failures=$((_failures + 1))
    echo "FAILED: the devices did not converge"
    python3 tests/integration/lib/desired.py "$CS_TMP/members.json" "$CS_TMP/u1.json" $broken
    python3 tests/integration/lib/desired.py "$CS_TMP/members.json" "$CS_TMP/u2.json"
fi
echo "converged after ~${i}s"

# the outbox drains: everything acknowledged
wait_until "every event acknowledged" 30 is 0 status 'j["outbox"]' 
check "no gap in the audit sequence" test "$(audit 'SELECT max(seq) - count(*) FROM event')" = 0
check "each change applied once (no duplicates)" test "$(audit "SELECT count(*) FROM (SELECT device, employee_no, end_time FROM event WHERE kind = 'applied' GROUP BY 1, 2, 3 HAVING count(*) > 1)")" = 0
changes=$(audit "SELECT count(*) FROM event WHERE kind = 'applied'")
echo "applied changes in the audit: $changes"
check "about 2,000 changes" test "$changes" -ge 1900
check "each person that changed has its applied event" python3 - "$CS_TMP" <<'PY'
import json, sqlite3, sys
t = sys.argv[1]
db = sqlite3.connect(t + "/state/audit.db")
applied = {(d, n) for d, n in db.execute("SELECT device, employee_no FROM event WHERE kind = 'applied'")}
for dev in ("door1", "door2"):
    for u in json.load(open(f"{t}/u{dev[-1]}.json")):
        if u["Valid"]["endTime"] != "2030-06-30T23:59:59" or u["Valid"]["beginTime"] != "2020-01-01T00:00:00":
            assert (dev, u["employeeNo"]) in applied, (dev, u["employeeNo"])
PY
failed_queue () {
    "$CS_BIN/cardsync-auditor" --config "$CS_CONFIG" failed --json | python3 -c "
import json, sys
f = [json.loads(l) for l in sys.stdin]
print(' '.join(sorted(e['email'] for e in f)))
print(sum(1 for e in f if e['device'] == 'door1' and e['class'] == 'invalid' and 'name' in e['msg']))"
}
check "the failed queue is exactly the refused persons, with the device's own words" is \
    "$(tr ' ' '\n' <<< "$broken" | grep . | sort | tr '\n' ' ' | sed 's/ $//')
5" failed_queue
sup shutdown > /dev/null
finish
