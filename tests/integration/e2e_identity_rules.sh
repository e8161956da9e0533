#!/usr/bin/env bash
# Identity on the simulators (design §3): a couple sharing one address on two
# persons on two doors, a member with a second card, a member who changes
# e-mail, a staff card numbered like a member. After the first sync, a
# renewal, an e-mail change and a departure, every tied person holds exactly
# its desired validity on both doors; `status --json` counts them in sync only
# then; the audit has one `applied` per device write.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
m = lambda omid, email, start, end: {"omid": omid, "first": "F", "last": str(omid), "email": email,
    "changed": "2025-01-01T00:00:00", "roles": [{"org": 1234, "role": 3126, "start": d(start), "end": d(end)}]}
json.dump([m(3001, "family@example.se", -10, 30), m(3002, "Family@Example.se", 25, 60),
           m(3003, "second@example.se", -10, 40), m(3004, "old@example.se", -10, 300),
           m(3005, "ulla@example.se", -10, 50)], open(sys.argv[1] + "/members.json", "w"))
p = lambda no, tag, end: {"employeeNo": no, "name": "P" + no, "Valid": {"enable": True,
    "beginTime": d(-10) + "T00:00:00", "endTime": d(end) + "T23:59:59"},
    **({"PersonInfoExtends": [{"value": tag}]} if tag else {})}
json.dump([p("7001", "family@example.se", 5), p("7002", "FAMILY@example.se", 5), p("3003", "second@example.se", 5),
           p("8003", "second@example.se", 5), p("3004", "old@example.se", 5), p("9001", None, 999),
           p("3005", "cleaner@example.se", 999)], open(sys.argv[1] + "/door1.json", "w"))
json.dump([p("7101", "family@example.se", 5), p("7102", "family@example.se", 5), p("3003", "second@example.se", 5)],
          open(sys.argv[1] + "/door2.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/members.json"
start_isapi_sim --device door1:0 --device door2:0:old --password 'Id-1'
ISAPI=scripts/isapi-ctl
CSK=scripts/cardskipper-ctl
check "seed door1" $ISAPI seed door1 "$CS_TMP/door1.json"
check "seed door2" $ISAPI seed door2 "$CS_TMP/door2.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Id-1' CARDSYNC_DEVICE_DOOR2_PASSWORD='Id-1'
write_config --all-members --poll 1s --full 3s door1 door2 -- "[sync]
scan_interval = 1h
lease = 20s"
start_pipeline

# every tied person ends on day END (DEV:PERSON=END ...), read from the doors
ends_are () {
    scripts/isapi-ctl users door1 > "$CS_TMP/u1.json" && scripts/isapi-ctl users door2 > "$CS_TMP/u2.json" \
    && python3 - "$CS_TMP" "$1" <<'PY'
import json, sys
held = {}
for dev, f in (("door1", "u1.json"), ("door2", "u2.json")):
    for u in json.load(open(sys.argv[1] + "/" + f)):
        held[dev + ":" + u["employeeNo"]] = u["Valid"]["endTime"]
wrong = [f"{k}: {held.get(k.split('=')[0])}, want {k.split('=')[1]}" for k in sys.argv[2].split()
         if held.get(k.split("=")[0]) != k.split("=")[1] + "T23:59:59"]
print("; ".join(wrong))
sys.exit(1 if wrong else 0)
PY
}
all_in_sync () { is "8 8 0" status '"%d %d %d" % (j["targets"]["matched"], j["targets"]["in_sync"], j["targets"]["pending"])'; }
one_applied_per_write () {
    local writes=$(( $(device_writes door1) + $(device_writes door2) ))
    is "$writes" count_events 'e["kind"] == "applied"'
}
phase () {   # phase NAME FAMILY-END SECOND-END MOVER-END
    local f=$2 s=$3 m=$4
    wait_until "$1: every tied person holds its validity" 30 ends_are \
        "door1:7001=$f door1:7002=$f door2:7101=$f door2:7102=$f door1:3003=$s door1:8003=$s door2:3003=$s door1:3004=$m"
    wait_until "$1: status counts the 8 tied persons in sync" 10 all_in_sync
    check "$1: one applied event per device write" one_applied_per_write
}

# --- first sync: the couple gets the union of both memberships; both cards ---------
phase "first sync" "$(DAY 60)" "$(DAY 40)" "$(DAY 300)"
check "untagged staff card never written" is "$(DAY 999)T23:59:59" valid_until door1 9001
check "a staff card numbered like a member is not that member's" is "$(DAY 999)T23:59:59" valid_until door1 3005
check "that member is unmatched instead" is 2 count_events 'e["kind"] == "unmatched" and e.get("mid") == 3005'
check "each tie is an event, with the organisation and the rule" is 12 count_events \
    'e["kind"] == "tied" and e.get("org") == 1234 and e.get("rule") == "tag"'

# --- a renewal while door2 is unreachable: pending, not in sync ----------------------
check "door2 down" $ISAPI fault door2 down=true
check "renew the second card's member" $CSK extend --omid 3003 --end "$(DAY 45)"
wait_until "door1 renewed first" 20 ends_are "door1:3003=$(DAY 45) door1:8003=$(DAY 45)"
status_pending () { status 'j["targets"]["in_sync"] < j["targets"]["matched"] or exit(1)' >/dev/null; }
check "status: door2's person is not in sync yet" status_pending
check "door2 back" $ISAPI fault door2 down=false
phase "renewal" "$(DAY 60)" "$(DAY 45)" "$(DAY 300)"

# --- the member changes e-mail: still tied, renewed, never revoked -------------------
python3 - "$CS_TMP" <<'PY'
import json, sys
ms = json.load(open(sys.argv[1] + "/members.json"))
one = [m for m in ms if m["omid"] == 3004][0]
one["email"] = "new@example.se"
one["roles"][0]["end"] = __import__("datetime").date.fromordinal(__import__("datetime").date.today().toordinal() + 320).isoformat()
del one["changed"]
json.dump([one], open(sys.argv[1] + "/moved.json", "w"))
PY
check "change the e-mail and renew" $CSK upsert "$CS_TMP/moved.json"
phase "e-mail change" "$(DAY 60)" "$(DAY 45)" "$(DAY 320)"
check "said once: the member's e-mail changed" is 1 count_events 'e["kind"] == "email_changed" and e.get("no") == "3004"'
check "status names the tag to update" is "door1 3004 new@example.se" status \
    '" ".join(r["device"] + " " + r["employee_no"] + " " + r["email"] for r in j["tags_to_update"])'
check "history of the new address has the renewal" is 1 count_events \
    'e["kind"] == "applied" and e.get("no") == "3004"' --email new@example.se
check "nothing revoked on the way" is 0 count_events 'e["kind"] == "applied" and e.get("end", "") < "'"$(DAY 0)"'"'

# --- departures: the couple and the member with two cards leave ----------------------
python3 - "$CS_TMP" <<'PY'
import json, sys
ms = json.load(open(sys.argv[1] + "/members.json"))
gone = [m for m in ms if m["omid"] in (3001, 3002, 3003)]
for m in gone:
    m["inactive"] = True
    del m["changed"]
json.dump(gone, open(sys.argv[1] + "/gone.json", "w"))
PY
check "three members leave" $CSK upsert "$CS_TMP/gone.json"
phase "departure" "$(DAY -1)" "$(DAY -1)" "$(DAY 320)"
check "no tie ended by a departure" is 0 count_events 'e["kind"] == "untied"'
finish
