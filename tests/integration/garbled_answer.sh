#!/usr/bin/env bash
# A device that answers a write with HTTP 200 and a body cut short (changing
# nothing) has not said OK: the write is retried, never audited as applied
# until the device answers properly, and then applied once.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
json.dump([{"omid": 8001, "first": "G", "last": "A", "email": "g@example.se", "changed": "2025-01-01T00:00:00",
            "roles": [{"org": 1234, "role": 3126, "start": d(-5), "end": d(30)}]}], open(sys.argv[1] + "/m.json", "w"))
json.dump([{"employeeNo": "8001", "name": "G A", "PersonInfoExtends": [{"value": "g@example.se"}],
            "Valid": {"enable": True, "beginTime": d(-5) + "T00:00:00", "endTime": d(1) + "T23:59:59"}}],
          open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'Ga-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
check "the next two writes are answered 200 with a body cut short" scripts/isapi-ctl fault door1 garble_writes=2
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Ga-1'
write_config door1
start_pipeline
wait_until "applied once the device answers properly" 60 is "$(DAY 30)T23:59:59" valid_until door1 8001
garbled () { scripts/isapi-ctl stats door1 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("garbled", 0))'; }
check "both garbled answers were given" is 2 garbled
check "the pusher said why it tried again" grep -q "event=retry device=door1 employee_no=8001 tries=1 .*cannot be read" "$CS_TMP/pusher.log"
applied () { count_events 'e["kind"] == "applied" and e.get("no") == "8001"'; }
wait_until "audited as applied" 10 is 1 applied
check "and applied exactly once" is 1 applied
check "never failed" is 0 count_events 'e["kind"] == "failed"'
finish
