#!/usr/bin/env bash
# One unusable person does not spoil a scan: a door holding a person whose
# employeeNo is longer than the 32 bytes ISAPI allows still has every other
# person synced and its drift healed at the next scan; the skipped person is
# named in one `skipped` event, not one per scan.
set -u
. "$(dirname "$0")/lib/common.sh"

LONG=$(printf 'X%.0s' $(seq 1 40))
python3 - "$CS_TMP" "$LONG" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
json.dump([{"omid": 4001, "first": "A", "last": "B", "email": "a@example.se", "changed": "2025-01-01T00:00:00",
            "roles": [{"org": 1234, "role": 3126, "start": d(-5), "end": d(30)}]}], open(sys.argv[1] + "/m.json", "w"))
v = {"enable": True, "beginTime": d(-5) + "T00:00:00", "endTime": d(1) + "T23:59:59"}
json.dump([{"employeeNo": "4001", "name": "A B", "PersonInfoExtends": [{"value": "a@example.se"}], "Valid": v},
           {"employeeNo": sys.argv[2], "name": "Overlong", "Valid": v}], open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'Sk-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Sk-1'
write_config door1
start_pipeline

wait_until "the first scan counts despite the unusable person" 30 is "$(DAY 30)T23:59:59" valid_until door1 4001
check "drift by hand" scripts/isapi-ctl set-user door1 4001 Valid.endTime=2037-01-01T23:59:59
check "a scan" rescan door1
wait_until "healed at the next scan" 20 is "$(DAY 30)T23:59:59" valid_until door1 4001
scans () { count_events 'e["kind"] == "scan" and e.get("state") == "ok"'; }
check "another scan" rescan door1
three_scans () { [ "$(scans)" -ge 3 ]; }
wait_until "three scans" 20 three_scans
check "no scan ignored" is 0 count_events 'e["kind"] == "scan" and e.get("state") == "ignored"'
check "the skipped person is named once" is 1 count_events \
    'e["kind"] == "skipped" and e.get("name") == "Overlong" and "XXXXXXXXXX" in e["msg"] and "40 bytes" in e["msg"]'
check "the scan says a person was skipped" test "$(count_events 'e["kind"] == "scan" and "1 person skipped" in e.get("msg", "")')" -ge 3
check "the unusable person is never written" is "$(DAY 1)T23:59:59" valid_until door1 "$LONG"
finish
