#!/usr/bin/env bash
# Bad input never revokes: an empty export, a truncated one and a 500 change
# nothing; a full export that would revoke more than the guard allows revokes
# nothing and says so; a later good export clears the guard, or an operator
# approves exactly the revocations `auditor approve` showed.
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
export CARDSYNC_DEVICE_DOOR1_PASSWORD='G-1'
write_config --all-members --poll 1h --full 2s --cardskipper "timeout = 2s" door1 -- "[sync]
guard_max_revocations = 10
guard_max_percent = 5"
start_pipeline
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
AUD=("$CS_BIN/cardsync-auditor" --config "$CS_CONFIG")
run "${AUD[@]}" status
expect_out "guard:         TRIPPED: 20 revocations held back" "status shows the guard"
echo no > "$CS_TMP/no"
run "${AUD[@]}" approve < "$CS_TMP/no"
expect_rc 1 "approve, answered no"
expect_out "20 revocations held back by the guard" "approve shows the count"
expect_out "m0@example.se" "approve lists who would be revoked"
expect_out "m19@example.se" "approve lists the last of them"
expect_no "m20@example.se" "approve lists only them"
expect_out "not approved; nothing sent" "approve says nothing was sent"
run "${AUD[@]}" approve < /dev/null
expect_rc 1 "approve with no answer at all"
run "${AUD[@]}" approve --bogus
expect_rc 64 "approve with a bad option"
check "still nothing revoked" test "$(writes)" = 0
# an approval for a list that is not the one held now is refused
run bash -c "echo '{\"t\":\"request\",\"req\":7,\"op\":\"approve\",\"n\":3}' | '$CS_BIN/msgdump' --ask 'ipc://$CS_TMP/run/differ.ctl'"
expect_out '"approved":false' "a stale approval is answered no"
expect_out "not approved: 20 revocations are held now, not the 3 shown; look again" "and says why"
for _ in $(seq 1 50); do [ -n "$(audit "SELECT state FROM event WHERE kind = 'guard' AND req = 7")" ] && break; sleep 0.2; done
check "a stale approval is refused" test "$(audit "SELECT state FROM event WHERE kind = 'guard' AND req = 7")" = stale
check "and revokes nothing" bash -c "sleep 1; test $(writes) = 0"

# they come back: the next snapshot clears the guard, still nothing to write
check "back" $CSK upsert "$CS_TMP/members.json"
check "cycles go on" wait_cycles 2
check "guard cleared" test "$(audit "SELECT count(*) FROM event WHERE kind = 'guard' AND state = 'cleared'")" = 1
check "still nothing written" test "$(writes)" = 0
run "${AUD[@]}" approve --yes
expect_rc 0 "approve with the guard clear"
expect_out "the guard is clear: no revocation waits for approval" "approve says there is nothing to approve"

# within the guard: a few leave and are revoked
for i in 0 1 2; do $CSK delete $((2000 + i)) > /dev/null; done
for _ in $(seq 1 50); do [ "$(writes)" = 3 ] && break; sleep 0.2; done
check "three revoked" test "$(writes)" = 3

# a real mass departure: the operator approves, and exactly those are revoked
python3 -c "import json,sys; json.dump(json.load(open('$CS_TMP/members.json'))[23:], open('$CS_TMP/rest.json', 'w'))"
check "twenty more gone" $CSK load "$CS_TMP/rest.json"
for _ in $(seq 1 100); do [ "$(audit "SELECT count(*) FROM event WHERE kind = 'guard' AND state = 'tripped'")" = 2 ] && break; sleep 0.2; done
check "the guard trips again" test "$(audit "SELECT count FROM event WHERE kind = 'guard' AND state = 'tripped' ORDER BY seq DESC LIMIT 1")" = 20
run "${AUD[@]}" approve --yes
expect_rc 0 "approve --yes"
expect_out "approved: an operator approved 20 revocations" "approve says what it approved"
for _ in $(seq 1 100); do [ "$(writes)" = 23 ] && break; sleep 0.2; done
check "the twenty are revoked" test "$(writes)" = 23
check "the right ones" test "$(audit "SELECT group_concat(email) FROM (SELECT DISTINCT email FROM event WHERE kind = 'applied' AND seq > (SELECT seq FROM event WHERE state = 'approved') ORDER BY email)")" = "$(python3 -c "print(','.join(sorted(f'm{i}@example.se' for i in range(3, 23))))")"
check "the approval is audited" test "$(audit "SELECT count(*) FROM event WHERE kind = 'guard' AND state = 'approved'")" = 1
check "and logged" grep -q "event=guard_approved revocations=20" "$CS_TMP/differ.log"
check "the guard is clear afterwards" bash -c "sleep 2; '$CS_BIN/cardsync-auditor' --config '$CS_CONFIG' status | grep -q 'guard:         clear'"
finish
