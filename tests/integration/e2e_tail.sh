#!/usr/bin/env bash
# `auditor tail -f` while the audit is busy: tails started at different
# moments of a sync of about 2,000 changes print every event from where they
# start to the end, each exactly once and in order, across the switch from
# audit.db history to the live stream; filters keep that promise too, and
# piped output has no colour.
set -u
. "$(dirname "$0")/lib/common.sh"

start_cardskipper_sim --members 1100 --seed 5
start_isapi_sim --device door1:0 --device door2:0 --password 'Tail-1' --seed 5
ISAPI=scripts/isapi-ctl
scripts/cardskipper-ctl members > "$CS_TMP/members.json"
python3 - "$CS_TMP" <<'PY'
import json, sys
ms = json.load(open(sys.argv[1] + "/members.json"))
seen, persons = set(), []
for m in ms:
    email = (m.get("email") or "").strip()
    if email and email.lower() not in seen:
        seen.add(email.lower())
        persons.append({"employeeNo": str(m["omid"]), "name": "P%d" % m["omid"],
                        "PersonInfoExtends": [{"value": email}],
                        "Valid": {"enable": True, "beginTime": "2020-01-01T00:00:00", "endTime": "2030-06-30T23:59:59"}})
json.dump(persons, open(sys.argv[1] + "/persons.json", "w"))
PY
check "seed door1" $ISAPI replace door1 "$CS_TMP/persons.json"
check "seed door2" $ISAPI replace door2 "$CS_TMP/persons.json"
check "latency door1" $ISAPI fault door1 latency_ms=3
check "latency door2" $ISAPI fault door2 latency_ms=3
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Tail-1' CARDSYNC_DEVICE_DOOR2_PASSWORD='Tail-1'
write_config --all-members --poll 1h door1 door2 -- "[sync]
guard_max_revocations = 100000"
start_pipeline
AUD=("$CS_BIN/cardsync-auditor" --config "$CS_CONFIG")
for _ in $(seq 1 150); do [ "$(audit "SELECT count(*) FROM event WHERE kind = 'applied'")" -ge 50 ] 2>/dev/null && break; sleep 0.1; done

tails=()
start_tail () {   # start_tail NAME ARGS...
    local name=$1
    shift
    audit "SELECT max(seq) FROM event" > "$CS_TMP/$name.start"
    "${AUD[@]}" tail -f "$@" > "$CS_TMP/$name.out" 2> "$CS_TMP/$name.err" &
    tails+=($!)
    _pids+=($!)
}
start_tail all --json --since 1
sleep 0.4
start_tail last3 --json -n 3
sleep 0.4
start_tail applied --json -n 5 --type applied --device door2
sleep 0.4
start_tail human -n 5

# wait for the sync to end and the audit to settle
for _ in $(seq 1 120); do
    [ "$(status '"%d %d" % (j["targets"]["pending"], j["outbox"])')" = "0 0" ] && break
    sleep 0.5
done
sleep 2
kill -INT "${tails[@]}"
wait "${tails[@]}"
total=$(audit "SELECT max(seq) FROM event")
echo "events: $total; the tails started at seq $(cat "$CS_TMP"/{all,last3,applied,human}.start | tr '\n' ' ')"
check "a busy audit" test "$total" -ge 2000
check "the last tail started while events were still arriving" test $((total - $(cat "$CS_TMP/human.start"))) -ge 200

check "tail --since 1: every event once, in order" python3 - "$CS_TMP/all.out" "$total" <<'PY'
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1])]
assert seqs == list(range(1, int(sys.argv[2]) + 1)), (len(seqs), seqs[:3], seqs[-3:])
PY
check "tail -n 3: the last three, then the rest, once each" python3 - "$CS_TMP/last3.out" "$total" "$(cat "$CS_TMP/last3.start")" <<'PY'
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1])]
total, start = int(sys.argv[2]), int(sys.argv[3])
assert start - 2 <= seqs[0], (seqs[0], start)
assert seqs == list(range(seqs[0], total + 1)), (seqs[:5], seqs[-3:])
PY
check "a filtered tail: exactly the matching events from its start, once each" python3 - "$CS_TMP/applied.out" "$CS_TMP/state/audit.db" <<'PY'
import json, sqlite3, sys
got = [json.loads(l)["seq"] for l in open(sys.argv[1])]
db = sqlite3.connect(sys.argv[2])
want = [s for (s,) in db.execute("SELECT seq FROM event WHERE kind = 'applied' AND device = 'door2' AND seq >= ? ORDER BY seq", (got[0],))]
assert got == want, (len(got), len(want))
assert all(json.loads(l)["dev"] == "door2" for l in open(sys.argv[1]))
PY
check "human lines, one per event" test "$(grep -c . "$CS_TMP/human.out")" -eq $((total - $(head -1 "$CS_TMP/human.out" | awk '{print $1}') + 1))
check "no colour when piped" bash -c "! grep -q $'\e' '$CS_TMP/human.out'"
check "tails end quietly on Ctrl-C" bash -c "! grep -q . '$CS_TMP/all.err'"

# the history alone
run "${AUD[@]}" tail -n 2 --json
check "tail -n 2: the last two" test "$(python3 -c "import json,sys; print(' '.join(str(json.loads(l)['seq']) for l in open('$_out')))")" = "$((total - 1)) $total"
run "${AUD[@]}" tail -n 0
expect_rc 0 "tail -n 0"
check "tail -n 0 prints nothing" test ! -s "$_out"
run "${AUD[@]}" tail --since $((total - 4))
check "tail --since SEQ starts at SEQ" test "$(awk '{print $1}' "$_out" | tr '\n' ' ')" = "$((total - 4)) $((total - 3)) $((total - 2)) $((total - 1)) $total "
run "${AUD[@]}" tail --since "$(date +%Y-%m-%d)" --json
check "tail --since TODAY: everything of today" test "$(grep -c . "$_out")" = "$total"
one=$(audit "SELECT email FROM event WHERE kind = 'applied' LIMIT 1")
run "${AUD[@]}" tail --email "${one^^}" -n 100 --json
check "tail --email: that member only, any case" python3 -c "
import json
es = {json.loads(l)['email'] for l in open('$_out')}
assert es == {'$one'}, es
"
run "${AUD[@]}" tail -n many
expect_rc 64 "tail -n with a word"
expect_err "-n wants a number of events, not 'many'" "tail -n says what it wants"
run "${AUD[@]}" tail --since last-week
expect_rc 64 "tail --since with a bad time"
run "${AUD[@]}" tail --help
expect_rc 0 "tail --help"
expect_out "example: cardsync-auditor tail -f" "tail --help has an example"
finish
