#!/usr/bin/env bash
# Identity: an operator's CSV map, create_missing for members with no person,
# and a replay request that re-sends the current desired state of a failed target.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
m = lambda omid, email, end: {"omid": omid, "first": "Förnamn", "last": str(omid), "email": email,
    "changed": "2025-01-01T00:00:00", "roles": [{"org": 1234, "role": 3126, "start": d(-1), "end": d(end)}]}
json.dump([m(501, "mapped@example.se", 40), m(502, "newbie@example.se", 50), m(503, "refused@example.se", 60)],
          open(sys.argv[1] + "/m.json", "w"))
json.dump([{"employeeNo": "X77", "name": "Mapped by hand", "Valid": {"enable": True, "beginTime": d(-1) + "T00:00:00", "endTime": d(1) + "T23:59:59"}},
           {"employeeNo": "503", "name": "x" * 200, "Valid": {"enable": True, "beginTime": d(-1) + "T00:00:00", "endTime": d(1) + "T23:59:59"}}],
          open(sys.argv[1] + "/p.json", "w"))
open(sys.argv[1] + "/map.csv", "w").write("email,employeeNo\nMapped@Example.se,X77\n")
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'I-1'
ISAPI=scripts/isapi-ctl
check "seed" $ISAPI seed door1 "$CS_TMP/p.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='I-1'
write_config --device "door_right = 1
plan_template = 2" door1 -- "[sync]
match = tag, map, member_id
identity_map = map.csv
create_missing = true"
start_pipeline
user () { person door1 "$1" "$2"; }
wait_is () {   # wait_is NAME WANT COMMAND...
    wait_until "$1" 15 is "$2" "${@:3}"
}
failed_json () { "$CS_BIN/cardsync-auditor" --config "$CS_CONFIG" failed --json; }
ties () { events --type tied | python3 -c "import json,sys; print(' '.join(sorted(e['no'] + '/' + e['rule'] + '/' + str(e['mid']) for e in map(json.loads, sys.stdin))))"; }

wait_is "matched through the map" "$(DAY 40)T23:59:59" user X77 'u["Valid"]["endTime"]'
wait_is "created when missing" "('Förnamn 502', 'newbie@example.se', '2', '$(DAY 50)T23:59:59')" user 502 '(u["name"], u["PersonInfoExtends"][0]["value"], u["RightPlan"][0]["planTemplateNo"], u["Valid"]["endTime"])'
wait_is "every tie is an event: map, created, member_id" "502/created/502 503/member_id/503 X77/map/501" ties
refused () { failed_json | python3 -c "import json,sys; f=[json.loads(l) for l in sys.stdin if 'refused@' in l]; print(f[0]['class'], 'name' in f[0]['msg'])"; }
wait_is "a refused write is in the failed queue, with the device's words" "invalid True" refused
sleep 3     # several cycles: a refused write is not tried again on its own
check "not retried until replayed" is 1 count_events 'e["kind"] == "failed"' --email refused@example.se

# the operator looks at the failed queue and the status
AUD="$CS_BIN/cardsync-auditor --config $CS_CONFIG"
run $AUD failed
expect_rc 0 "auditor failed"
expect_out "refused@example.se" "the failed queue lists the member"
expect_out "door1     503       invalid" "with device, person and class"
expect_out "name" "and the device's own words"
expect_out "1 failed" "and a count"
run $AUD failed --json
expect_out '"class":"invalid"' "failed --json"
run $AUD status
expect_rc 1 "auditor status exits 1: something needs attention"
expect_out "attention:" "status lists what needs attention"
expect_out "  - 1 failed target (cardsync-auditor failed; then replay)" "status: the failure needs attention"
expect_out "members:       3 (3 with a usable e-mail)" "status: members"
expect_out "1 failed" "status: targets"
expect_out "door1        ok; last scan" "status: device health"
expect_out "persons of 1500" "status: persons against the device's capacity"
expect_out "guard:         clear" "status: guard"
expect_out "failed queue:  1" "status: failed queue"

# the operator fixes the person on the device, then replays: the current state is sent
check "fix by hand" $ISAPI set-user door1 503 name=Fixed
run $AUD replay --email Refused@Example.se
expect_rc 0 "auditor replay"
expect_out "re-sent     door1    refused@example.se (command" "replay says what it re-sent"
wait_is "the replay applies the current desired state" "$(DAY 60)T23:59:59" user 503 'u["Valid"]["endTime"]'
wait_is "the failed queue is empty" "0" status 'j["targets"]["failed"]' 
run $AUD status
expect_rc 0 "auditor status exits 0 once all is well"
expect_out "all well" "status says so"
run $AUD status --json
expect_rc 0 "status --json"
check "status --json is one object with the counts" python3 -c "
import json, sys
j = json.loads(open('$_out').read())
assert j['targets']['failed'] == 0 and j['members'] == 3 and j['attention'] == [], j
assert j['devices'][0]['name'] == 'door1' and j['devices'][0]['health'] == 'ok' and j['devices'][0]['persons'] >= 3, j
assert j['devices'][0]['capacity'] == 1500, j
assert j['last_export']['result'] in ('full', 'incremental'), j
"
run $AUD status --bogus
expect_rc 64 "status with a bad option"
check "the replay is audited" is 1 count_events 'e["kind"] == "replayed" and e.get("id", 0) > 0' --email refused@example.se
run $AUD history refused@example.se
expect_out "replayed" "history shows the replay"
expect_out "applied" "history shows the applied change"
expect_no "mapped@example.se" "history is about one member"

# a failure whose target has moved on is reported superseded, not re-sent
check "refuse again" $ISAPI set-user door1 503 name=$(printf 'y%.0s' $(seq 1 200))
check "renew 503" scripts/cardskipper-ctl extend --omid 503 --end "$(DAY 70)"
wait_is "failed again" 1 status 'j["targets"]["failed"]' 
check "the renewal is taken back" scripts/cardskipper-ctl extend --omid 503 --end "$(DAY 60)"
wait_is "nothing more to do for it" 0 status 'j["targets"]["pending"]' 
sleep 3
run $AUD replay --all
expect_out "superseded  door1    refused@example.se" "replay reports it superseded"
run $AUD replay
expect_rc 64 "replay without a target is a usage error"
wait_is "and out of the failed queue" 0 status 'j["targets"]["failed"]' 

# a device nearly full is something to attend to
check "door1 holds 3 at most" $ISAPI fault door1 capacity=3
echo '{"t":"command","id":99999,"dev":"door1","op":"scan"}' | "$CS_BIN/msgdump" --send "ipc://$CS_TMP/run/pusher.in"
wait_is "rescanned with the new capacity" 3 status 'j["devices"][0]["capacity"]' 
run $AUD status
expect_rc 1 "status with a full device"
expect_out "  - device door1 is 100% full (3 of 3 persons)" "status says the device is full"
finish
