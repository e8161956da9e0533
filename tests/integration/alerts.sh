#!/usr/bin/env bash
# Alerts where people are ([notify]), against a local HTTP endpoint: the
# digest as one JSON POST per batch (with a "text"), a dead-man GET after each
# good full cycle and URL/fail once exports have failed for export_alert_after;
# an endpoint that hangs or is down delays an alert, never loses it, and never
# stalls the audit; the URLs' tokens are in no log.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 tests/sim/http_sink.py --dir "$CS_TMP/sink" --port-file "$CS_TMP/sink.port" >>"$CS_TMP/sink.log" 2>&1 &
_pids+=($!)
_wait_file "$CS_TMP/sink.port" 1 || { cat "$CS_TMP/sink.log"; exit 1; }
SINK=http://127.0.0.1:$(cat "$CS_TMP/sink.port")
python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
ms = [{"omid": 5000 + i, "first": "A", "last": str(i), "email": f"a{i}@example.se", "changed": "2025-01-01T00:00:00",
       "roles": [{"org": 1234, "role": 3126, "start": d(-30), "end": d(100 + i)}]} for i in range(40)]
ps = [{"employeeNo": str(5000 + i), "name": f"A {i}", "PersonInfoExtends": [{"value": f"a{i}@example.se"}],
       "Valid": {"enable": True, "beginTime": d(-30) + "T00:00:00", "endTime": d(100 + i) + "T23:59:59"}} for i in range(40)]
ms[0]["roles"][0]["end"] = d(200)          # a renewal the device refuses: its name is too long
ps[0]["name"] = "x" * 200
json.dump(ms, open(sys.argv[1] + "/members.json", "w"))
json.dump(ps, open(sys.argv[1] + "/persons.json", "w"))
json.dump(ms[12:], open(sys.argv[1] + "/fewer.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/members.json"
start_isapi_sim --device door1:0 --device door2:0 --password 'Al-1'
CSK=scripts/cardskipper-ctl
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/persons.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Al-1' CARDSYNC_DEVICE_DOOR2_PASSWORD='not-Al-1'
export CARDSYNC_WEBHOOK_URL="$SINK/hook/tok-SECRET-123"
echo "$SINK/ping/uuid-SECRET-456" > "$CS_TMP/ping.url"
chmod 600 "$CS_TMP/ping.url"
write_config --poll 1h --full 1s --cardskipper "timeout = 2s" door1 door2 -- "[sync]
guard_max_revocations = 10
[notify]
healthcheck_url_file = ping.url
batch_interval = 2s
export_alert_after = 4s"
start_pipeline

# requests the sink answered: hooks (POST) and pings (GET), as JSON lines
reqs () { cat "$CS_TMP"/sink/*.json 2>/dev/null | python3 -c "
import json, sys
for l in sys.stdin.read().replace('}{', '}\n{').splitlines():
    r = json.loads(l)
    if $1: print(json.dumps(r))"; }
count () { reqs "$1" | grep -c . ; }
hooks_ok () { count 'r["method"] == "POST" and r["status"] == 200'; }
wait_count () {   # wait_count CONDITION N SECONDS
    for _ in $(seq 1 $(($3 * 5))); do [ "$(count "$1")" -ge "$2" ] && return 0; sleep 0.2; done
    echo "$(count "$1") requests; auditor: $(tail -3 "$CS_TMP/auditor.log")"; return 1
}
hook () { reqs 'r["method"] == "POST" and r["status"] == 200' | sed -n "${1}p"; }

check "a first webhook digest" wait_count 'r["method"] == "POST"' 1 30
hook 1 > "$CS_TMP/req1.json"
check "posted to the configured URL as JSON" is "/hook/tok-SECRET-123 application/json" \
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["path"], r["headers"]["Content-Type"])' "$CS_TMP/req1.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["body"])' "$CS_TMP/req1.json" > "$CS_TMP/hook1.json"
check "its text says what needs attention" python3 - "$CS_TMP/hook1.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["title"].endswith(": 1 failed, device paused"), j["title"]
assert j["text"].startswith(j["title"]), j["text"]
assert "failed    a0@example.se on door1: invalid" in j["text"], j["text"]
assert "paused    device door2 (auth)" in j["text"], j["text"]
assert "cardsync-auditor failed" in j["text"]
assert j["counts"] == {"failed": 1, "paused": 1, "guard": 0, "exports_failing": False}, j["counts"]
assert len(j["lines"]) == 2, j["lines"]
PY
check "logged without the token" grep -q "event=webhook_sent items=2 to=http://127.0.0.1:[0-9]*/\.\.\." "$CS_TMP/auditor.log"
check "a dead-man ping after a good full cycle" wait_count 'r["method"] == "GET" and r["path"] == "/ping/uuid-SECRET-456"' 1 15

# the endpoint hangs, then is down: the audit goes on, the alert waits
echo hang > "$CS_TMP/sink/mode"
check "twelve members gone: the guard trips" $CSK load "$CS_TMP/fewer.json"
guard_stored () { [ "$(audit "SELECT count (*) FROM event WHERE kind = 'guard' AND state = 'tripped'")" -ge 1 ]; }
recent_cycles () { [ "$(audit "SELECT count (*) FROM event WHERE kind = 'cycle' AND ts > (strftime ('%s', 'now') - 2) * 1000")" -ge 1 ]; }
wait_until "the audit stores the guard's event while the webhook hangs" 10 guard_stored
sleep 2
check "and keeps storing (full cycles every second)" recent_cycles
echo fail > "$CS_TMP/sink/mode"
wait_until "a failed delivery is logged" 20 grep -q "event=alert_failed items=1 error=\"the endpoint answered HTTP 503\"" "$CS_TMP/auditor.log"
check "nothing delivered meanwhile" is 1 hooks_ok
rm "$CS_TMP/sink/mode"
check "the guard's digest once the endpoint is back" wait_count 'r["method"] == "POST" and r["status"] == 200' 2 30
hook 2 > "$CS_TMP/hook2.json"
check "it says the guard tripped, and nothing already sent" python3 - "$CS_TMP/hook2.json" <<'PY'
import json, sys
j = json.loads(json.load(open(sys.argv[1]))["body"])
assert j["counts"]["guard"] == 1 and "guard     12 revocations exceed the guard" in j["text"], j
assert "a0@example.se" not in j["text"], j["text"]
PY

# exports fail for longer than export_alert_after
pings_fail () { count 'r["method"] == "GET" and r["path"] == "/ping/uuid-SECRET-456/fail"'; }
check "exports fail" $CSK fault fail_status=500
check "the dead-man ping says fail" wait_count 'r["path"] == "/ping/uuid-SECRET-456/fail"' 1 30
check "and a digest says the exports fail" wait_count 'r["method"] == "POST" and "exports failing" in r["body"]' 1 15
sleep 3
check "said once while they keep failing" is 1 pings_fail
check "never two digests within batch_interval" sh -c "reqs_at=\$(cat '$CS_TMP'/sink/*.json | python3 -c '
import json, sys
at = sorted(json.loads(l)[\"at\"] for l in sys.stdin.read().replace(\"}{\", \"}\n{\").splitlines()
            if json.loads(l)[\"method\"] == \"POST\")
print(min([b - a for a, b in zip(at, at[1:])] or [9]))'); python3 -c \"import sys; sys.exit(0 if \$reqs_at >= 1.9 else 1)\""
check "the tokens are in no log" sh -c "! grep -rq 'SECRET' '$CS_TMP'/*.log"
"$CS_BIN/cardsync-auditor" --config "$CS_CONFIG" --print-config > "$CS_TMP/printed.ini" 2>&1
check "nor in --print-config" sh -c "! grep -q SECRET '$CS_TMP/printed.ini' && grep -q '^; webhook: (redacted)' '$CS_TMP/printed.ini'"
finish
