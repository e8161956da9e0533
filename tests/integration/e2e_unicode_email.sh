#!/usr/bin/env bash
# A Swedish address typed three ways is one member: upper case in Cardskipper,
# decomposed letters and the domain's xn-- form in the door's tag. The person is
# tied by tag, gets the member's dates, and the operator finds the member and
# the history by the address as typed any of those ways.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
json.dump([{"omid": 601, "first": "Åsa", "last": "Öberg", "email": "ÅSA@FÖRENING.SE",
            "changed": "2025-01-01T00:00:00",
            "roles": [{"org": 1234, "role": 3126, "start": d(-1), "end": d(40)}]}],
          open(sys.argv[1] + "/m.json", "w"))
nfd = "a\u030asa@xn--frening-90a.se"
json.dump([{"employeeNo": "X1", "name": "Åsa Öberg", "PersonInfoExtends": [{"value": nfd}],
            "Valid": {"enable": True, "beginTime": d(-1) + "T00:00:00", "endTime": d(1) + "T23:59:59"}}],
          open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'I-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='I-1'
write_config door1
start_pipeline

wait_until "the person tagged in another form gets the member's end" 15 is "$(DAY 40)T23:59:59" valid_until door1 X1
ties () { events --type tied | python3 -c "import json,sys; print(' '.join(e['no'] + '/' + e['rule'] + '/' + e['email'] for e in map(json.loads, sys.stdin)))"; }
check "tied by tag, under the normal form" is "X1/tag/åsa@förening.se" ties
AUD="$CS_BIN/cardsync-auditor --config $CS_CONFIG"
for typed in 'ÅSA@FÖRENING.SE' 'åsa@xn--frening-90a.se' "$(printf 'a\xcc\x8asa@fo\xcc\x88rening.se')"; do
    run $AUD member "$typed"
    expect_rc 0 "member '$typed'"
    expect_out "601" "member '$typed' finds the member"
    expect_out "X1" "member '$typed' shows the tied person"
    run $AUD tail --json -n 100 --email "$typed"
    expect_out '"kind":"applied"' "tail --email '$typed' finds the write"
done
run $AUD unmatched
expect_no "åsa" "the member is not unmatched"
stop_pipeline
finish
