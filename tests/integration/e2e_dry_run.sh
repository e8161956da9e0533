#!/usr/bin/env bash
# differ --dry-run: plans and audits what it would do, and sends nothing.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
json.dump([{"omid": 1, "first": "A", "last": "B", "email": "a@example.se", "changed": "2025-01-01T00:00:00",
            "roles": [{"org": 1234, "role": 3126, "start": d(-1), "end": d(9)}]}], open(sys.argv[1] + "/m.json", "w"))
json.dump([{"employeeNo": "1", "PersonInfoExtends": [{"value": "a@example.se"}],
            "Valid": {"enable": True, "beginTime": d(-1) + "T00:00:00", "endTime": d(2) + "T23:59:59"}}], open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'D-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='D-1'
write_config door1
start_pipeline auditor differ:--dry-run pusher producer
for _ in $(seq 1 50); do [ "$(audit "SELECT count(*) FROM event WHERE kind = 'planned'")" = 1 ] && break; sleep 0.2; done
end=$(python3 -c "import datetime; print((datetime.date.today() + datetime.timedelta(days=9)).isoformat())")
check "the plan is in the audit" test "$(audit "SELECT employee_no || ' ' || end_time || ' ' || msg FROM event WHERE kind = 'planned'")" = "1 ${end}T23:59:59 set"
sleep 2
check "nothing sent" test "$(scripts/isapi-ctl stats door1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["writes"])')" = 0
check "logged as a dry run" grep -q "dry_run=true" "$CS_TMP/differ.log"
finish
