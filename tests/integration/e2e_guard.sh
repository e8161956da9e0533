#!/usr/bin/env bash
# Bad input never revokes: an empty export, a truncated one and a 500 change
# nothing; a full export that would revoke more than the guard allows revokes
# nothing and says so; a later good export clears the guard.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
ms = [{"omid": 2000 + i, "first": "M", "last": str(i), "email": f"m{i}@example.se", "changed": "2025-01-01T00:00:00",
       "roles": [{"org": 1234, "role": 3126, "start": d(-30), "end": d(100 + i)}]} for i in range(40)]
ps = [{"employeeNo": str(2000 + i), "name": f"M {i}", "PersonInfoExtends": [{"value": f"m{i}@example.se"}],
       "Valid": {"enable": True, "beginTime": d(-30) + "T00:00:00", "endTime": d(100 + i) + "T23:59:59"}} for i in range(40)]
json.dump(ms, open(sys.argv[1] + "/members.json", "w"))
json.dump(ps, open(sys.argv[1] + "/persons.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/members.json"
start_isapi_sim --device door1:0 --password 'G-1'
CSK=scripts/cardskipper-ctl
ISAPI=scripts/isapi-ctl
check "seed" $ISAPI seed door1 "$CS_TMP/persons.json"
export CARDSYNC_CARDSKIPPER_PASSWORD=secret CARDSYNC_DEVICE_DOOR1_PASSWORD='G-1'
cat > "$CS_TMP/cardsync.ini" <<INI
[cardskipper]
url = $CS_API
username = api@club.example
organisation_ids = 1234
only_active = false
poll_interval = 1h
full_interval = 2s
timeout = 2s
[device door1]
url = ${DEV_URL[door1]}
username = admin
[sync]
guard_max_revocations = 10
guard_max_percent = 5
[pipeline]
run_dir = $CS_TMP/run
state_dir = $CS_TMP/state
INI
for prog in auditor differ pusher producer; do
    "$CS_BIN/cardsync-$prog" --config "$CS_TMP/cardsync.ini" > "$CS_TMP/$prog.log" 2>&1 &
    _pids+=($!)
done
audit () { sqlite3 "$CS_TMP/state/audit.db" "$1" 2>/dev/null; }
writes () { $ISAPI stats door1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["writes"])'; }
cycles () { audit "SELECT count(*) FROM event WHERE kind = 'cycle'"; }
wait_cycles () {   # wait for N more cycle events
    local want=$(( $(cycles) + $1 ))
    for _ in $(seq 1 100); do [ "$(cycles)" -ge "$want" ] && return 0; sleep 0.2; done
    echo "no cycle came"; return 1
}
check "a first good cycle" wait_cycles 1
check "in sync from the start: nothing written" test "$(writes)" = 0

for fault in empty=true truncate_after=600 fail_status=500; do
    $CSK reset-faults >/dev/null
    $CSK fault $fault >/dev/null
    check "$fault: cycles go on" wait_cycles 2
    check "$fault: nothing written" test "$(writes)" = 0
    check "$fault: the cycle is ignored, with the reason" test "$(audit "SELECT state FROM event WHERE kind = 'cycle' ORDER BY seq DESC LIMIT 1")" = ignored
done
$CSK reset-faults >/dev/null
check "the empty export's reason" test "$(audit "SELECT count(*) FROM event WHERE kind = 'cycle' AND msg LIKE 'an empty full export%'")" -ge 1
check "the 500's reason" test "$(audit "SELECT count(*) FROM event WHERE kind = 'cycle' AND msg LIKE '%HTTP 500%'")" -ge 1

# twenty members gone from a full export at once: more than max(10, 5%) revocations
python3 -c "import json,sys; json.dump(json.load(open('$CS_TMP/members.json'))[20:], open('$CS_TMP/half.json', 'w'))"
check "twenty gone" $CSK load "$CS_TMP/half.json"
check "cycles go on" wait_cycles 2
check "the guard trips" test "$(audit "SELECT group_concat(count) FROM event WHERE kind = 'guard' AND state = 'tripped'")" = 20
check "nothing revoked" test "$(writes)" = 0
check "said once, not every cycle" bash -c "sleep 3; test \$(sqlite3 '$CS_TMP/state/audit.db' \"SELECT count(*) FROM event WHERE kind = 'guard'\") = 1"
check "the differ logs it" grep -q "event=guard_tripped revocations=20" "$CS_TMP/differ.log"

# they come back: the next snapshot clears the guard, still nothing to write
check "back" $CSK upsert "$CS_TMP/members.json"
check "cycles go on" wait_cycles 2
check "guard cleared" test "$(audit "SELECT count(*) FROM event WHERE kind = 'guard' AND state = 'cleared'")" = 1
check "still nothing written" test "$(writes)" = 0

# within the guard: a few leave and are revoked
for i in 0 1 2; do $CSK delete $((2000 + i)) > /dev/null; done
for _ in $(seq 1 50); do [ "$(writes)" = 3 ] && break; sleep 0.2; done
check "three revoked" test "$(writes)" = 3
finish
