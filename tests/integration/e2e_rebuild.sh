#!/usr/bin/env bash
# A damaged state.db stops syncing with a message that names the file and the
# way out (status says so, nothing reaches a door); `cardsync-differ
# --rebuild`, run with the group stopped, rebuilds it from the audit's ties,
# plans nothing until a full export and a scan of every door have come, and
# then still revokes a member who left during the outage, renews the others
# and leaves staff untouched.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
m = lambda i, e: {"omid": i, "first": "R", "last": str(i), "email": e, "changed": "2025-01-01T00:00:00",
                  "roles": [{"org": 1234, "role": 3126, "start": d(-5), "end": d(30)}]}
json.dump([m(6001, "stays@example.se"), m(6002, "leaves@example.se"), m(6003, "third@example.se")],
          open(sys.argv[1] + "/m.json", "w"))
v = {"enable": True, "beginTime": d(-5) + "T00:00:00", "endTime": d(1) + "T23:59:59"}
p = lambda no, e: {"employeeNo": no, "name": "R " + no, "PersonInfoExtends": [{"value": e}], "Valid": v}
json.dump([p("6001", "stays@example.se"), p("6002", "leaves@example.se"), p("6003", "third@example.se"),
           {"employeeNo": "9", "name": "Staff", "Valid": v}], open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'Rb-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Rb-1'
write_config --poll 1s --full 1h door1
AUD=("$CS_BIN/cardsync-auditor" --config "$CS_CONFIG")
start_pipeline
wait_until "synced" 30 is "$(DAY 30)T23:59:59" valid_until door1 6002
staff=$(valid_until door1 9)

# the group stops; state.db is damaged (a few hundred bytes scrambled in two pages)
stop_pipeline
db=$CS_TMP/state/state.db
check "checkpointed" sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE)'
pages=$(sqlite3 "$db" "SELECT group_concat(rootpage, ' ') FROM sqlite_schema WHERE name IN ('record', 'tie')")
python3 - "$db" $pages <<'PY'
import random, sys
random.seed(7)
f = open(sys.argv[1], "r+b")
for p in sys.argv[2:]:                  # the two tables' root pages, past their headers
    f.seek((int(p) - 1) * 4096 + 12)
    f.write(bytes(random.randrange(256) for _ in range(300)))
PY
check "quick_check finds it damaged" bash -c "[ \"\$(sqlite3 '$db' 'PRAGMA quick_check' 2>&1 | head -1)\" != ok ]"
writes_before=$(device_writes door1)
start_pipeline
damaged () { grep -q "event=state_damaged db=$db" "$CS_TMP/differ.log"; }
wait_until "the differ says state.db is damaged" 15 damaged
check "and the way out" grep -q 'way_out="stop the group; cardsync-differ --rebuild; start the group"' "$CS_TMP/differ.log"
check "at priority error" grep -q 'level=error stage=differ event=state_damaged' "$CS_TMP/differ.log"
run "${AUD[@]}" status
expect_rc 1 "status exits 1"
expect_out "$db is damaged" "status names the file"
expect_out "cardsync-differ --rebuild" "and the way out"
run "${AUD[@]}" failed
expect_rc 1 "failed: refused while state.db is damaged"
expect_err "is damaged" "and says why"
run "$CS_BIN/cardsync-differ" --config "$CS_CONFIG" --rebuild
expect_rc 75 "--rebuild refuses while a differ runs"
expect_err "a differ is running" "and says so"

# a member leaves while nothing syncs
check "a member leaves" scripts/cardskipper-ctl delete 6002
sleep 3
check "nothing reached the door meanwhile" is "$writes_before" device_writes door1

stop_pipeline
run "$CS_BIN/cardsync-differ" --config "$CS_CONFIG" --rebuild
expect_rc 0 "--rebuild with the group stopped"
expect_out "with 3 ties from the audit" "it rebuilds the three ties"
check "the damaged file is kept aside" bash -c "ls '$CS_TMP/state/' | grep -q 'state.db.damaged-'"
check "the new state.db is whole" is ok sqlite3 "$db" 'PRAGMA quick_check'
start_pipeline
wait_until "the member who left is revoked" 30 is "$(DAY -1)T23:59:59" valid_until door1 6002
check "the others are renewed" is "$(DAY 30)T23:59:59" valid_until door1 6001
check "all of them" is "$(DAY 30)T23:59:59" valid_until door1 6003
check "staff untouched" is "$staff" valid_until door1 9
check "the rebuild waited for a full export and a scan" grep -q 'event=rebuilt_complete' "$CS_TMP/differ.log"
all_well () { "${AUD[@]}" status > /dev/null 2>&1; }
wait_until "all well" 20 all_well
check "each event once in the audit" is 0 audit "SELECT count(*) - count(DISTINCT seq) FROM event"
finish
