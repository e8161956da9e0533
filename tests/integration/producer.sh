#!/usr/bin/env bash
# cardsync-producer against cardskipper-sim, with msgdump standing in for the
# differ: what it sends for a full export, the organisation filter, and
# how every kind of failure ends the cycle (ok=false, reason, exit code).
set -u
. "$(dirname "$0")/lib/common.sh"

start_cardskipper_sim --members-file tests/fixtures/members.json --today 2025-09-15
CTL=scripts/cardskipper-ctl
mkdir -p "$CS_TMP/run"
export CARDSYNC_CARDSKIPPER_PASSWORD=secret

producer_config () {   # producer_config [EXTRA [cardskipper] LINES]
    cat > "$CS_TMP/cardsync.ini" <<INI
[cardskipper]
url = $CS_API
username = api@club.example
organisation_ids = ${ORGS:-1234}
only_active = ${ONLY_ACTIVE:-false}
timeout = 3s
poll_interval = 1s
$1

[device door1]
url = http://127.0.0.1:9
username = admin

[pipeline]
run_dir = $CS_TMP/run
state_dir = $CS_TMP/state
INI
}

# once: runs producer --once against a fresh msgdump; messages in $CS_TMP/msgs
once () {
    rm -f "$CS_TMP/msgs"
    "$CS_BIN/msgdump" --bind "ipc://$CS_TMP/run/differ.in" --until cycle_end --timeout 20 > "$CS_TMP/msgs" &
    local dump=$!
    sleep 0.2
    run "$(cs_bin producer)" --config "$CS_TMP/cardsync.ini" --once
    wait "$dump"
}
msgs () { python3 -c "
import json, sys
ms = [json.loads(l) for l in open('$CS_TMP/msgs')]
members = {m['mid']: m for m in ms if m['t'] == 'member'}
end = [m for m in ms if m['t'] == 'cycle_end'][0]
begin = [m for m in ms if m['t'] == 'cycle_begin'][0]
r = ($1)
print(r)"; }
same () {
    _checks=$((_checks + 1))
    [ "$2" = "$3" ] || { _failures=$((_failures + 1)); echo "FAILED: $1: got '$2', want '$3'"; cat "$_err" | tail -5; }
}

# --- a full export -------------------------------------------------------------------
producer_config ""
once
expect_rc 0 "producer --once"
same "framed by one cycle" "$(msgs '(begin["full"], end["ok"], end["full"], end["n"], begin["c"] == end["c"])')" "(True, True, True, 13, True)"
same "every member of 1234, in order" "$(msgs 'sorted(members) == [m["mid"] for m in ms if m["t"] == "member"] and len(members)')" "13"
same "names and e-mail as given" "$(msgs 'members[1001]["fn"], members[1001]["ln"], members[1001]["email"]')" "('Åsa', 'Öberg-Ståhl', 'asa.oberg@example.se')"
same "blanks and case are the differ's business" "$(msgs 'repr(members[1007]["email"])')" "' Today.Ends@Example.SE '"
same "no e-mail: no key" "$(msgs '"email" in members[1002], "email" in members[1003]')" "(False, False)"
same "roles as days" "$(msgs 'members[1011]["roles"]')" "[[3126, '2024-01-01', '2024-12-31'], [3128, '2025-01-01', '2025-12-31']]"
same "ids above 2^31" "$(msgs '3000000001 in members')" "True"
same "Inactive" "$(msgs 'members[1006].get("inact")')" "True"
same "end before start is passed on as it is" "$(msgs 'members[1008]["roles"]')" "[[3126, '2019-05-16', '2015-05-15']]"
check "a log line for the cycle" grep -q 'event=cycle_end .*full=true ok=true members=13' "$_out"

# --- filters ---------------------------------------------------------------------------
producer_config "roles = 3128, 3127"
once
same "every role is sent: which roles admit is the differ's planner's rule" "$(msgs 'members[1011]["roles"], members[1001]["roles"]')" "([[3126, '2024-01-01', '2024-12-31'], [3128, '2025-01-01', '2025-12-31']], [[3126, '2025-01-01', '2025-10-01']])"
ONLY_ACTIVE=true producer_config ""
once
same "only_active asks for OnlyActive" "$(msgs 'end["n"]')" "9"
check "OnlyActive sent" bash -c "$CTL stats | grep -q '\"OnlyActive\": \"true\"'"
ORGS="1234, 1240" producer_config ""
once
same "two organisations, one cycle" "$(msgs 'end["n"], sorted(m["org"] for m in ms if m["t"] == "member" and m["mid"] == 1010)')" "(15, [1234, 1240])"

# --- what the export can look like -------------------------------------------------------
producer_config ""
for knob in bom=true date_format=date date_format=fraction date_format=zulu date_format=offset; do
    $CTL reset-faults >/dev/null
    $CTL fault "$knob" >/dev/null
    once
    same "$knob: read the same" "$(msgs 'end["ok"], end["n"], members[1001]["roles"]')" "(True, 13, [[3126, '2025-01-01', '2025-10-01']])"
done
$CTL reset-faults >/dev/null
$CTL fault empty=true >/dev/null
once
same "an empty export is a good, empty cycle" "$(msgs 'end["ok"], end["n"]')" "(True, 0)"

# --- failures: ok=false with the reason, and an exit code that says which ----------------------
fail_case () {   # fail_case NAME FAULTS EXIT REASON
    $CTL reset-faults >/dev/null
    [ -n "$2" ] && $CTL fault $2 >/dev/null
    once
    expect_rc "$3" "$1: exit code"
    same "$1: cycle not ok" "$(msgs 'end["ok"]')" "False"
    check "$1: the reason" bash -c "grep -F -- '$4' '$CS_TMP/msgs'"
    check "$1: logged" grep -qF -- "$4" "$_out"
}
fail_case "a 500" "fail_status=500" 75 "HTTP 500"
fail_case "a 503 HTML page" "fail_status=503 html_errors=true" 75 "HTTP 503: <!DOCTYPE html>"
fail_case "a 429" "fail_status=429" 75 "HTTP 429"
fail_case "a truncated export" "truncate_after=900" 75 "partial file"
fail_case "a stalled export" "stall_after=900 stall_ms=10000" 75 "no complete answer within 3 s"
fail_case "entities in the export" "doctype=true" 65 "has a DOCTYPE; refused"
fail_case "an empty 200" "body200=empty" 65 "Cardskipper answered HTTP 200 with an empty body, not an export"
fail_case "an HTML page with 200" "body200=html" 65 "Cardskipper answered with an HTML page, not XML"
fail_case "no right to export" "forbid_export=true" 77 "HTTP 403 (the account lacks the API right"
$CTL reset-faults >/dev/null
CARDSYNC_CARDSKIPPER_PASSWORD=Not-It-42 fail_case "a wrong password" "" 77 "HTTP 401 (the username or password is wrong)"

# --- --check ------------------------------------------------------------------------------------
$CTL reset-faults >/dev/null
ORGS="1234, 1240" producer_config ""
run "$(cs_bin producer)" --config "$CS_TMP/cardsync.ini" --check
expect_rc 0 "--check"
expect_out "organisation 1234: 13 members in the export, 11 with an e-mail" "--check counts"
expect_out "verdict: OK" "--check verdict"
CARDSYNC_CARDSKIPPER_PASSWORD=Not-It-42 run "$(cs_bin producer)" --config "$CS_TMP/cardsync.ini" --check
expect_rc 77 "--check with a wrong password"
expect_out "verdict: FAILED - check the username and CARDSYNC_CARDSKIPPER_PASSWORD" "--check says what to fix"
expect_no "Not-It-42" "the password is never printed"

# --- as a daemon: a full cycle, then incremental ones, and a clean stop ---------------------------
producer_config ""
"$CS_BIN/msgdump" --bind "ipc://$CS_TMP/run/differ.in" --count 1000 --timeout 20 > "$CS_TMP/msgs" &
dump=$!
"$CS_BIN/cardsync-producer" --config "$CS_TMP/cardsync.ini" > "$CS_TMP/producer.log" 2>&1 &
prod=$!
for _ in $(seq 1 100); do
    [ "$(grep -c cycle_end "$CS_TMP/msgs" 2>/dev/null)" -ge 3 ] && break
    sleep 0.1
done
kill -TERM $prod
wait $prod
rc=$?
kill $dump 2>/dev/null; wait $dump 2>/dev/null
expect_rc 0 "SIGTERM stops the producer cleanly"
check "first full, then incremental" python3 -c "
import json
ends = [json.loads(l) for l in open('$CS_TMP/msgs') if '\"cycle_end\"' in l]
assert len(ends) >= 3, ends
assert ends[0]['full'] and not ends[1]['full'] and not ends[2]['full'], ends
assert all(e['ok'] for e in ends), ends
assert ends[1]['n'] == 0, ends   # nothing changed since the full export
"
check "ChangedAt sent" bash -c "$CTL stats | grep -q '\"ChangedAt\"'"
check "a stopped line" grep -q "event=stopped" "$CS_TMP/producer.log"

finish
