#!/usr/bin/env bash
# cardsync-pusher against isapi-sim, with msgdump standing in for the differ:
# scans at start, read-modify-write, no write when nothing changes, creation,
# the device's own words on refusal, retries through deviceBusy and downtime,
# and a wrong password that pauses the device instead of locking it.
set -u
. "$(dirname "$0")/lib/common.sh"

start_isapi_sim --device door1:0 --device door2:0:old --password 'Dev1ce!' --seed 3
CTL=scripts/isapi-ctl
mkdir -p "$CS_TMP/run"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Dev1ce!' CARDSYNC_DEVICE_DOOR2_PASSWORD='Dev1ce!'

cat > "$CS_TMP/seed.json" <<'JSON'
[{"employeeNo": "1001", "name": "Åsa Öberg", "PersonInfoExtends": [{"value": "asa@example.se"}],
  "Valid": {"enable": true, "beginTime": "2025-01-01T00:00:00", "endTime": "2025-10-01T23:59:59"},
  "numOfCard": 1, "numOfFace": 1},
 {"employeeNo": "1002", "name": "Erik Lind", "PersonInfoExtends": [{"value": "erik@example.se"}],
  "Valid": {"enable": true, "beginTime": "2025-01-01T00:00:00", "endTime": "2026-01-01T23:59:59"}},
 {"employeeNo": "9001", "name": "Staff", "Valid": {"enable": false, "beginTime": "2020-01-01T00:00:00", "endTime": "2037-12-31T23:59:59"}}]
JSON
check "seed door1" $CTL seed door1 "$CS_TMP/seed.json"

cat > "$CS_TMP/cardsync.ini" <<INI
[cardskipper]
url = http://127.0.0.1:9
username = x
organisation_ids = 1
[device door1]
url = ${DEV_URL[door1]}
username = admin
timeout = 3s
[device door2]
url = ${DEV_URL[door2]}
username = admin
door_right = 1
plan_template = 3
timeout = 3s
[sync]
max_retry_age = 30s
[pipeline]
run_dir = $CS_TMP/run
state_dir = $CS_TMP/state
INI

# --- --check: one login per device, capabilities and counts, a verdict -----------------
run "$(cs_bin pusher)" --config "$CS_TMP/cardsync.ini" --check
expect_rc 0 "--check"
expect_out "device door1 at ${DEV_URL[door1]}: reached, logged in" "--check reaches door1"
expect_out "persons: 3 of 1500 (0% of the device" "--check counts door1's persons against its capacity"
expect_out "verdict: OK" "--check verdict"
sed "s#${DEV_URL[door2]}#http://127.0.0.1:9#" "$CS_TMP/cardsync.ini" > "$CS_TMP/down.ini"
run "$(cs_bin pusher)" --config "$CS_TMP/down.ini" --check
expect_rc 69 "--check with a device that does not answer"
expect_out "fix: check the url, the network" "--check says what to fix when unreachable"

"$CS_BIN/msgdump" --bind "ipc://$CS_TMP/run/differ.in" --count 100000 --timeout 120 > "$CS_TMP/msgs" &
_pids+=($!)
"$CS_BIN/cardsync-pusher" --config "$CS_TMP/cardsync.ini" > "$CS_TMP/pusher.log" 2>&1 &
pusher=$!
_pids+=($pusher)

wait_for () {   # wait_for NAME PYTHON-CONDITION-OVER-msgs [SECONDS]
    local name=$1 cond=$2 secs=${3:-15}
    _checks=$((_checks + 1))
    for _ in $(seq 1 $((secs * 10))); do
        python3 - "$CS_TMP/msgs" <<PY 2>/dev/null && return 0
import json, sys
ms = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
results = {m['id']: m for m in ms if m['t'] == 'result'}
scans = [m for m in ms if m['t'] == 'scan_end']
users = [m for m in ms if m['t'] == 'scan_user']
health = [m for m in ms if m['t'] == 'health']
sys.exit(0 if ($cond) else 1)
PY
        sleep 0.1
    done
    _failures=$((_failures + 1))
    echo "FAILED: $name"
    tail -5 "$CS_TMP/msgs"
    tail -5 "$CS_TMP/pusher.log"
}
send () { echo "$1" | "$CS_BIN/msgdump" --send "ipc://$CS_TMP/run/pusher.in"; }
sim_user () { $CTL user "$1" "$2" | python3 -c "import json,sys; u=json.load(sys.stdin); print($3)"; }
writes () { $CTL stats "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["writes"])'; }

# --- scans at start -------------------------------------------------------------
wait_for "both devices scanned" 'len([s for s in scans if s["ok"]]) == 2'
wait_for "door1's three persons" 'sorted(u["no"] for u in users if u["dev"] == "door1") == ["1001", "1002", "9001"]'
wait_for "with tag and validity" 'any(u["no"] == "1001" and u.get("tag") == "asa@example.se" and u["end"] == "2025-10-01T23:59:59" and u["en"] for u in users)'
wait_for "door2 is empty" 'any(s["dev"] == "door2" and s["ok"] and s["n"] == 0 for s in scans)'
wait_for "each scan tells the device's capacity" 'any(s["dev"] == "door1" and s.get("cap") == 1500 for s in scans) and any(s["dev"] == "door2" and s.get("cap") == 3000 for s in scans)'
check "scan logged" grep -q 'event=scan_end device=door1 ok=true users=3' "$CS_TMP/pusher.log"

# --- a renewal: read, modify the whole record, report -----------------------------
send '{"t":"command","id":1,"dev":"door1","op":"set","no":"1001","email":"asa@example.se","begin":"2025-01-01T00:00:00","end":"2025-11-01T23:59:59"}'
wait_for "renewal applied" '1 in results and results[1]["ok"] and results[1]["end"] == "2025-11-01T23:59:59"'
check "on the device" test "$(sim_user door1 1001 'u["Valid"]["endTime"]')" = "2025-11-01T23:59:59"
check "the rest of the record kept" test "$(sim_user door1 1001 '(u["name"], u["PersonInfoExtends"][0]["value"], u["numOfCard"])')" = "('Åsa Öberg', 'asa@example.se', 1)"
w1=$(writes door1)
send '{"t":"command","id":2,"dev":"door1","op":"set","no":"1001","begin":"2025-01-01T00:00:00","end":"2025-11-01T23:59:59"}'
wait_for "the same again" '2 in results and results[2]["ok"]'
check "writes nothing" test "$(writes door1)" = "$w1"
check "said so" grep -q 'event=already_applied id=2' "$CS_TMP/pusher.log"

# --- refusals in the device's own words ---------------------------------------------
send '{"t":"command","id":3,"dev":"door1","op":"set","no":"4242","begin":"2025-01-01T00:00:00","end":"2025-11-01T23:59:59"}'
wait_for "absent person" '3 in results and results[3]["class"] == "not_found" and not results[3]["ok"]'
send '{"t":"command","id":4,"dev":"door1","op":"set","no":"1002","begin":"2025-06-01T00:00:00","end":"2025-05-01T23:59:59"}'
wait_for "end before begin: the device's words" '4 in results and results[4]["class"] == "invalid" and results[4]["sub"] == "invalidOperation" and results[4]["code"] == 4 and results[4]["http"] == 400'

# --- creation ------------------------------------------------------------------------
send '{"t":"command","id":5,"dev":"door2","op":"create","no":"5001","email":"new@example.se","name":"Ny Medlem","tag":"new@example.se","begin":"2025-01-01T00:00:00","end":"2025-12-31T23:59:59"}'
wait_for "created" '5 in results and results[5]["ok"]'
check "created with the tag the differ resolved, doors and plan" test "$(sim_user door2 5001 '(u["name"], u["PersonInfoExtends"][0]["value"], u["doorRight"], u["RightPlan"][0]["planTemplateNo"], u["Valid"]["endTime"])')" = "('Ny Medlem', 'new@example.se', '1', '3', '2025-12-31T23:59:59')"
send '{"t":"command","id":6,"dev":"door1","op":"create","no":"1002","name":"x","begin":"2025-01-01T00:00:00","end":"2026-02-01T23:59:59"}'
wait_for "create of an existing person sets it" '6 in results and results[6]["ok"]'
check "set, not duplicated" test "$(sim_user door1 1002 'u["Valid"]["endTime"]')" = "2026-02-01T23:59:59"

# --- a scan on request, then retries through deviceBusy ---------------------------------
send '{"t":"command","id":7,"dev":"door1","op":"scan"}'
wait_for "scan on request" 'len([s for s in scans if s["dev"] == "door1"]) >= 2'
check "busy" $CTL fault door1 busy_rate=0.6
send '{"t":"command","id":8,"dev":"door1","op":"set","no":"1002","begin":"2025-01-01T00:00:00","end":"2026-03-01T23:59:59"}'
wait_for "through deviceBusy by retrying" '8 in results and results[8]["ok"] and results[8]["tries"] >= 1' 40
check "on the device" test "$(sim_user door1 1002 'u["Valid"]["endTime"]')" = "2026-03-01T23:59:59"
check "not busy" $CTL fault door1 busy_rate=0

# --- a device that is down gets its update when it comes back -------------------------------
check "door2 down" $CTL fault door2 down=true
send '{"t":"command","id":9,"dev":"door2","op":"set","no":"5001","begin":"2025-01-01T00:00:00","end":"2026-06-30T23:59:59"}'
wait_for "down is reported" 'any(h["dev"] == "door2" and h["state"] == "down" for h in health)'
sleep 1
check "door2 up" $CTL fault door2 down=false
wait_for "applied after it came back" '9 in results and results[9]["ok"] and results[9]["tries"] >= 2' 30
check "on the device" test "$(sim_user door2 5001 'u["Valid"]["endTime"]')" = "2026-06-30T23:59:59"

# --- many renewals at once: their records are read 30 to a search (10 on old firmware) -----------
python3 - "$CS_TMP" <<'PY'
import json, sys
t = sys.argv[1]
persons = [{"employeeNo": str(2000 + i), "name": f"B {i}", "Valid": {"enable": True,
            "beginTime": "2025-01-01T00:00:00", "endTime": "2025-10-01T23:59:59"}} for i in range(1, 46)]
json.dump(persons, open(t + "/batch.json", "w"))
def cmds(first, dev, end, extra=()):
    return [json.dumps({"t": "command", "id": first + i, "dev": dev, "op": "set", "no": str(2000 + i),
                        "begin": "2025-01-01T00:00:00", "end": end}) for i in list(range(1, 46)) + list(extra)]
open(t + "/round1", "w").write("\n".join(cmds(100, "door1", "2027-01-01T23:59:59", [999]) + cmds(200, "door2", "2027-01-01T23:59:59")) + "\n")
open(t + "/round2", "w").write("\n".join(cmds(300, "door1", "2027-02-01T23:59:59")) + "\n")
PY
check "seed door1" $CTL seed door1 "$CS_TMP/batch.json"
check "seed door2" $CTL seed door2 "$CS_TMP/batch.json"
searches () { $CTL stats "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("POST /ISAPI/AccessControl/UserInfo/Search", 0))'; }
ends () { $CTL users "$1" | python3 -c 'import json,sys; print(sorted({u["Valid"]["endTime"] for u in json.load(sys.stdin) if u["employeeNo"].startswith("20")}))'; }
$CTL reset-stats door1 >/dev/null; $CTL reset-stats door2 >/dev/null
"$CS_BIN/msgdump" --send "ipc://$CS_TMP/run/pusher.in" < "$CS_TMP/round1"
wait_for "91 renewals at once, all answered" 'all(i in results for i in list(range(101, 146)) + [1099] + list(range(201, 246)))'
wait_for "applied, one not on the device" 'all(results[i]["ok"] for i in list(range(101, 146)) + list(range(201, 246))) and results[1099]["class"] == "not_found"'
check "door1: read 30 to a search" test "$(searches door1)" -le 5
check "door2 (10 a page): read 10 to a search" bash -c "n=\$($(declare -f searches); CTL=$CTL searches door2); [ \$n -ge 5 ] && [ \$n -le 8 ]"
check "door1 has them all" test "$(ends door1)" = "['2027-01-01T23:59:59']"
check "door2 has them all" test "$(ends door2)" = "['2027-01-01T23:59:59']"
check "one write each" test "$(writes door1)" = 45
# a device that cuts a search short without saying so: the rest are read again
check "door1 cuts pages at 10" $CTL fault door1 page_cap=10
$CTL reset-stats door1 >/dev/null
"$CS_BIN/msgdump" --send "ipc://$CS_TMP/run/pusher.in" < "$CS_TMP/round2"
wait_for "45 renewals through short pages" 'all(i in results and results[i]["ok"] for i in range(301, 346))'
check "door1 has them all again" test "$(ends door1)" = "['2027-02-01T23:59:59']"
check "none lost, none written twice" test "$(writes door1)" = 45
check "pages cut at 10" test "$(searches door1)" -ge 5
check "door1 back to 30 a page" $CTL fault door1 page_cap=30

# --- a wrong password pauses the device: one bad login, no lockout -----------------------------
check "door2's password changed on the device" $CTL fault door2 password=Other-Pass
check "reset stats" $CTL reset-stats door2
for id in 10 11 12; do
    send "{\"t\":\"command\",\"id\":$id,\"dev\":\"door2\",\"op\":\"set\",\"no\":\"5001\",\"begin\":\"2025-01-01T00:00:00\",\"end\":\"2026-07-0$((id - 9))T23:59:59\"}"
done
wait_for "auth health reported" 'any(h["dev"] == "door2" and h["state"] == "auth" and "wrong username or password" in h["msg"] for h in health)'
sleep 3
check "exactly one bad login, no lockout" bash -c "$CTL stats door2 | python3 -c 'import json,sys; j=json.load(sys.stdin); assert (j[\"bad_logins\"], j[\"lockouts\"]) == (1, 0), j'"
check "door1 unaffected" bash -c "$CTL stats door1 | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j[\"bad_logins\"] == 0, j'"

# --- --check ---------------------------------------------------------------------------------------
run "$(cs_bin pusher)" --config "$CS_TMP/cardsync.ini" --check
expect_rc 69 "--check with one bad device"
expect_out "device door1 at ${DEV_URL[door1]}: reached, logged in (DS-K1T342MFX-E1, firmware V4.38.0)" "--check door1"
expect_out "device door2 at ${DEV_URL[door2]}: FAILED: login refused: wrong username or password" "--check door2"
expect_out "verdict: FAILED" "--check verdict"
expect_out "fix: check the username and the device's password" "--check says what to fix"
check "--check made one login attempt on the bad device, no lockout" bash -c "$CTL stats door2 | python3 -c 'import json,sys; j=json.load(sys.stdin); assert (j[\"bad_logins\"], j[\"lockouts\"]) == (2, 0), j'"

# --- SIGTERM -------------------------------------------------------------------------------------
kill -TERM $pusher
wait $pusher
rc=$?
expect_rc 0 "SIGTERM stops the pusher"
check "stopped cleanly" grep -q "event=stopped" "$CS_TMP/pusher.log"

finish
