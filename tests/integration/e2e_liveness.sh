#!/usr/bin/env bash
# status is the one health verdict and is never wrong: each stage stopped in
# turn is named within three heartbeat intervals (exit 1) and forgotten once
# it is back (exit 0); a stopped differ is said to be silent (exit 1, with
# what the audit alone knows); a door's last good scan moves on with each
# scan, and a door that is down is named; a forged ack beyond anything sent
# changes nothing.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
json.dump([{"omid": 5001, "first": "L", "last": "V", "email": "l@example.se", "changed": "2025-01-01T00:00:00",
            "roles": [{"org": 1234, "role": 3126, "start": d(-5), "end": d(30)}]}], open(sys.argv[1] + "/m.json", "w"))
json.dump([{"employeeNo": "5001", "name": "L V", "PersonInfoExtends": [{"value": "l@example.se"}],
            "Valid": {"enable": True, "beginTime": d(-5) + "T00:00:00", "endTime": d(1) + "T23:59:59"}}],
          open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'Lv-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Lv-1'
write_config --poll 2s --pipeline 'heartbeat_interval = 1s' door1
AUD=("$CS_BIN/cardsync-auditor" --config "$CS_CONFIG")

run "${AUD[@]}" status
expect_rc 69 "status before anything ran: no state yet"
expect_err "the differ is not answering on ipc://$CS_TMP/run/differ.ctl; is it running?" "status says the differ is silent"
expect_err "no state yet" "and that there is no state yet"

start_pipeline
all_well () { "${AUD[@]}" status > /dev/null 2>&1; }
wait_until "all well once synced" 30 all_well
check "synced" is "$(DAY 30)T23:59:59" valid_until door1 5001
run "${AUD[@]}" status
expect_out "all well" "status says all well"
expect_out "producer alive; pusher alive; auditor alive" "status names every stage alive"

names () { status "any('the $1 is silent' in a for a in j['attention'])"; }
for p in producer pusher auditor; do
    stop_pipeline "$p"
    wait_until "the stopped $p is named within three heartbeats" 6 is True names "$p"
    run "${AUD[@]}" status
    expect_rc 1 "status exits 1 with the $p stopped"
    expect_out "$p SILENT" "status shows the $p silent"
    start_pipeline "$p"
    wait_until "all well again with the $p back" 20 all_well
done

# the differ stopped: every command says so, status shows what the audit knows
stop_pipeline differ
run "${AUD[@]}" status
expect_rc 1 "status with the differ stopped exits 1"
expect_err "the differ is not answering on ipc://$CS_TMP/run/differ.ctl; is it running?" "and says why"
expect_out "from the audit alone" "and what the audit alone can say"
expect_out "last export:" "such as the last export"
run "${AUD[@]}" status --json
expect_rc 1 "status --json with the differ stopped exits 1"
expect_out '"attention":["the differ is not answering' "and names it under attention"
for c in failed "member l@example.se" "replay --all"; do
    # shellcheck disable=SC2086
    run "${AUD[@]}" $c
    expect_rc 1 "$c with the differ stopped exits 1"
    expect_err "is it running?" "$c says the differ is not answering"
done
start_pipeline differ
wait_until "all well with the differ back" 20 all_well

# the lists an operator reviews come from the differ
run "${AUD[@]}" member l@example.se
expect_rc 0 "member"
expect_out "member 1234:5001  L V <l@example.se>" "member names the member"
expect_out "door1      person 5001       tied by tag" "and the person tied to it"
run "${AUD[@]}" orphans --csv
expect_rc 0 "orphans --csv"
expect_out "device,employee_no,name,until,why,tag" "orphans: a CSV header"

# a forged ack beyond anything the differ sent is refused; events still reach the audit
echo '{"t":"ack","seq":9223372036854775807}' | "$CS_BIN/msgdump" --send "ipc://$CS_TMP/run/differ.in"
check "a scan after the forged ack" rescan door1
scans () { count_events 'e["kind"] == "scan"'; }
before=$(scans)
check "another scan" rescan door1
more_scans () { [ "$(scans)" -gt "$before" ]; }
wait_until "events still reach the audit after a forged ack" 15 more_scans
check "the forged ack is logged" grep -q 'seq=9223372036854775807' "$CS_TMP/differ.log"

# each complete scan is the door's last good one (twice scan_interval without one
# needs attention: test_verdict's small worlds); a door that cannot be reached is named
last_scan () { status "[d.get('last_scan') for d in j['devices']][0]"; }
scanned=$(last_scan)
sleep 1
check "a scan" rescan door1
newer () { [ "$(last_scan)" != "$scanned" ]; }
wait_until "the door's last good scan moves on" 15 newer
check "the door goes down" scripts/isapi-ctl fault door1 down=true
check "a scan of a door that is down" rescan door1
down () { status "any(a.startswith('device door1: down') for a in j['attention'])"; }
wait_until "a door that is down is named" 20 is True down
check "the door is back" scripts/isapi-ctl reset door1
check "and scanned" rescan door1
wait_until "all well once it is scanned again" 20 all_well
finish
