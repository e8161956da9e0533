#!/usr/bin/env bash
# The whole pipeline against the simulators: first sync, matching by tag (any
# case), by employeeNo = member id; unmatched and e-mail-less members reported;
# a renewal reaches both devices and nothing else is written; a membership
# made inactive is revoked; staff are never touched; a quiet run writes nothing;
# drift on a device is put back at the next scan.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
def m(omid, email, start, end, **kw):
    r = {"omid": omid, "first": "F%d" % omid, "last": "Lästname", "birthdate": "1990-01-01",
         "roles": [{"org": 1234, "role": 3126, "start": d(start), "end": d(end)}], "changed": "2025-01-01T00:00:00"}
    if email is not None:
        r["email"] = email
    r.update(kw)
    return r
two_orgs = m(1007, "Both.Orgs@example.se", -100, 10)
two_orgs["roles"].append({"org": 1240, "role": 4001, "start": d(5), "end": d(80)})
members = [two_orgs, m(1001, "asa@example.se", -200, 30), m(1002, "erik@example.se", -10, 100),
           m(1003, None, -10, 100), m(1004, "  Mixed.Case@Example.SE ", -10, 50),
           m(1005, "expired@example.se", -400, -40), m(1006, "byid@example.se", -5, 20)]
json.dump(members, open(sys.argv[1] + "/members.json", "w"))
T = lambda n, hms: d(n) + "T" + hms
persons1 = [
  {"employeeNo": "1001", "name": "Åsa", "PersonInfoExtends": [{"value": "asa@example.se"}], "Valid": {"enable": True, "beginTime": T(-200, "00:00:00"), "endTime": T(10, "23:59:59")}},
  {"employeeNo": "1004", "name": "Mixed", "PersonInfoExtends": [{"value": "mixed.case@example.se"}], "Valid": {"enable": True, "beginTime": T(-10, "00:00:00"), "endTime": T(5, "23:59:59")}},
  {"employeeNo": "1005", "name": "Expired", "PersonInfoExtends": [{"value": "expired@example.se"}], "Valid": {"enable": True, "beginTime": T(-400, "00:00:00"), "endTime": T(300, "23:59:59")}},
  {"employeeNo": "1006", "name": "By Id", "Valid": {"enable": True, "beginTime": T(-5, "00:00:00"), "endTime": T(1, "23:59:59")}},
  {"employeeNo": "7007", "name": "Both", "PersonInfoExtends": [{"value": "both.orgs@example.se"}], "Valid": {"enable": True, "beginTime": T(-100, "00:00:00"), "endTime": T(10, "23:59:59")}},
  {"employeeNo": "9001", "name": "Staff", "Valid": {"enable": False, "beginTime": "2020-01-01T00:00:00", "endTime": "2037-12-31T23:59:59"}}]
persons2 = [
  {"employeeNo": "2001", "name": "Åsa", "PersonInfoExtends": [{"value": " ASA@Example.se"}], "Valid": {"enable": True, "beginTime": T(-200, "00:00:00"), "endTime": T(-1, "23:59:59")}}]
json.dump(persons1, open(sys.argv[1] + "/door1.json", "w"))
json.dump(persons2, open(sys.argv[1] + "/door2.json", "w"))
PY

start_cardskipper_sim --members-file "$CS_TMP/members.json"
start_isapi_sim --device door1:0 --device door2:0:old --password 'D00r!'
ISAPI=scripts/isapi-ctl
CSK=scripts/cardskipper-ctl
check "seed door1" $ISAPI seed door1 "$CS_TMP/door1.json"
check "seed door2" $ISAPI seed door2 "$CS_TMP/door2.json"

export CARDSYNC_DEVICE_DOOR1_PASSWORD='D00r!' CARDSYNC_DEVICE_DOOR2_PASSWORD='D00r!'
write_config --orgs "1234, 1240" --all-members --poll 2s door1 door2 -- "[sync]
scan_interval = 10s
lease = 30s"
start_pipeline
end_of () { valid_until "$1" "$2"; }
writes () { device_writes "$1"; }

# --- first sync ---------------------------------------------------------------------
wait_until "asa on door1" 30 is "$(DAY 30)T23:59:59" end_of door1 1001
wait_until "asa on door2 (tag in another case)" 10 is "$(DAY 30)T23:59:59" end_of door2 2001
wait_until "mixed case and blanks in Cardskipper" 10 is "$(DAY 50)T23:59:59" end_of door1 1004
wait_until "matched by member id" 10 is "$(DAY 20)T23:59:59" end_of door1 1006
wait_until "expired member revoked (ended yesterday)" 10 is "$(DAY -1)T23:59:59" end_of door1 1005
check "staff untouched" test "$(end_of door1 9001)" = "2037-12-31T23:59:59"
wait_until "two organisations: the union of their roles" 10 is "$(DAY 80)T23:59:59" end_of door1 7007
wait_until "applied events in the audit" 10 is 6 audit "SELECT count(*) FROM event WHERE kind = 'applied'"
check "unmatched reported per device" test "$(audit "SELECT count(*) FROM event WHERE kind = 'unmatched' AND email = 'erik@example.se'")" = 2
check "no e-mail reported" test "$(audit "SELECT count(*) FROM event WHERE kind = 'no_email' AND member_id = 1003")" = 1
check "the seed design's views" test "$(audit "SELECT count(*) FROM sync_history WHERE new_end_date = '$(DAY 30)T23:59:59'")" = 2
check "audit seq has no gaps" test "$(audit "SELECT max(seq) - count(*) FROM event")" = 0
check "writes door1" test "$(writes door1)" = 5
check "writes door2" test "$(writes door2)" = 1

# --- a renewal: both devices, within a poll or two, nothing else written ----------------
check "renew" $CSK extend --omid 1001 --end "$(DAY 61)"
wait_until "renewal on door1" 15 is "$(DAY 61)T23:59:59" end_of door1 1001
wait_until "renewal on door2" 10 is "$(DAY 61)T23:59:59" end_of door2 2001
sleep 5
check "only the renewal was written (door1)" test "$(writes door1)" = 6
check "only the renewal was written (door2)" test "$(writes door2)" = 2
check "the audit has it, with the old end" test "$(audit "SELECT prev_end || ' ' || end_time FROM event WHERE kind = 'applied' AND device = 'door1' AND employee_no = '1001' ORDER BY seq DESC LIMIT 1")" = "$(DAY 30)T23:59:59 $(DAY 61)T23:59:59"

# --- a renewal bought in advance: a second role from the day after the first ends ---
check "renew in advance" $CSK extend --omid 1001 --start "$(DAY 62)" --end "$(DAY 400)"
wait_until "the end of the second role" 15 is "$(DAY 400)T23:59:59" end_of door1 1001

# --- made inactive: revoked --------------------------------------------------------------
python3 - "$CS_TMP" <<'PY'
import json, sys
ms = json.load(open(sys.argv[1] + "/members.json"))
one = [m for m in ms if m["omid"] == 1006][0]
one["inactive"] = True
del one["changed"]          # Cardskipper stamps the change itself
json.dump([one], open(sys.argv[1] + "/inactive.json", "w"))
PY
check "inactivate" $CSK upsert "$CS_TMP/inactive.json"
wait_until "an inactive member is revoked" 15 is "$(DAY -1)T23:59:59" end_of door1 1006

# --- drift: a validity changed by hand is put back at the next scan -------------------------
check "drift by hand" $ISAPI set-user door1 1004 Valid.endTime=2037-01-01T23:59:59
wait_until "put back" 25 is "$(DAY 50)T23:59:59" end_of door1 1004

# --- quiet: nothing changes, nothing is written -----------------------------------------------
w1=$(writes door1); w2=$(writes door2)
sleep 6
check "a quiet run writes nothing" test "$(writes door1) $(writes door2)" = "$w1 $w2"
check "the audit has each change once" test "$(audit "SELECT count(*) FROM (SELECT seq FROM event GROUP BY seq HAVING count(*) > 1)")" = 0

finish
