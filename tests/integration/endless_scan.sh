#!/usr/bin/env bash
# A device whose list never ends (every page MORE, with persons it cannot
# hold) is not read forever: the scan stops a little past the capacity the
# device itself reports, fails with a clear message and counts for nothing;
# the device's other work goes on.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
m = lambda end: [{"omid": 8101, "first": "E", "last": "S", "email": "e@example.se", "changed": "2025-01-01T00:00:00",
                  "roles": [{"org": 1234, "role": 3126, "start": d(-5), "end": d(end)}]}]
json.dump(m(30), open(sys.argv[1] + "/m.json", "w"))
later = m(60)
del later[0]["changed"]         # Cardskipper stamps the change itself
json.dump(later, open(sys.argv[1] + "/m60.json", "w"))
json.dump([{"employeeNo": "8101", "name": "E S", "PersonInfoExtends": [{"value": "e@example.se"}],
            "Valid": {"enable": True, "beginTime": d(-5) + "T00:00:00", "endTime": d(1) + "T23:59:59"}}],
          open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'Es-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
check "a small door" scripts/isapi-ctl fault door1 capacity=100
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Es-1'
write_config door1
start_pipeline
wait_until "synced" 30 is "$(DAY 30)T23:59:59" valid_until door1 8101
check "the door's list now never ends" scripts/isapi-ctl fault door1 endless_pages=true
check "reset-stats" scripts/isapi-ctl reset-stats door1
check "a scan" rescan door1
failed_scan () { count_events 'e["kind"] == "scan" and e.get("state") == "ignored" and "goes on past" in e.get("msg", "")'; }
wait_until "the scan fails" 20 is 1 failed_scan
check "with a clear message" grep -q 'holds at most 100 (maxRecordNum): the scan is stopped' "$CS_TMP/pusher.log"
requests () { scripts/isapi-ctl stats door1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("POST /ISAPI/AccessControl/UserInfo/Search", 0))'; }
echo "pages read of the endless list: $(requests)"
check "five pages (150 persons), not thousands" is 5 requests
check "a renewal" scripts/cardskipper-ctl upsert "$CS_TMP/m60.json"
wait_until "the door's other work goes on" 30 is "$(DAY 60)T23:59:59" valid_until door1 8101
finish
