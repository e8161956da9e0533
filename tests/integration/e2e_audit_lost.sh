#!/usr/bin/env bash
# audit.db deleted while the auditor runs: the auditor notices, reopens a new
# file and tells the differ how far it really holds; the differ sends again
# what its outbox has and names what it no longer has in an audit_gap event,
# which status shows. In the end every seq is in audit.db exactly once, or
# an audit_gap names it; the outbox drains.
set -u
. "$(dirname "$0")/lib/common.sh"

N=150
python3 - "$CS_TMP" $N <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
n = int(sys.argv[2])
json.dump([{"omid": 7000 + i, "first": "A", "last": str(i), "email": f"a{i}@example.se", "changed": "2025-01-01T00:00:00",
            "roles": [{"org": 1234, "role": 3126, "start": d(-5), "end": d(30)}]} for i in range(n)],
          open(sys.argv[1] + "/m.json", "w"))
v = {"enable": True, "beginTime": d(-5) + "T00:00:00", "endTime": d(1) + "T23:59:59"}
json.dump([{"employeeNo": str(7000 + i), "name": f"A {i}", "PersonInfoExtends": [{"value": f"a{i}@example.se"}], "Valid": v}
           for i in range(n)], open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'Al-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
check "a slow door" scripts/isapi-ctl fault door1 latency_ms=40
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Al-1'
write_config --poll 1s --pipeline 'heartbeat_interval = 1s' door1
start_pipeline
applied () { audit "SELECT count(*) FROM event WHERE kind = 'applied'"; }
some () { [ "$(applied)" -ge 30 ]; }
wait_until "the sync is under way" 30 some
db=$CS_TMP/state/audit.db
check "audit.db deleted mid-sync" rm -f "$db" "$db-wal" "$db-shm"
replaced () { grep -q 'event=audit_db_replaced' "$CS_TMP/auditor.log"; }
wait_until "the auditor notices" 10 replaced
done_syncing () { [ "$(valid_until door1 $((7000 + N - 1)))" = "$(DAY 30)T23:59:59" ]; }
wait_until "the sync goes on to the end" 60 done_syncing
drained () { [ "$(status "j['outbox']")" = 0 ]; }
wait_until "the outbox drains" 30 drained
check "an audit_gap event names the lost events" is 1 audit "SELECT count(*) FROM event WHERE kind = 'audit_gap'"
check "and the differ logged it" grep -q 'level=error stage=differ event=audit_gap' "$CS_TMP/differ.log"
covered () {
    sqlite3 "$db" "SELECT seq, kind, body FROM event ORDER BY seq" | python3 -c '
import json, sys
seqs, gaps = set(), []
for line in sys.stdin:
    seq, kind, body = line.rstrip("\n").split("|", 2)
    seqs.add(int(seq))
    if kind == "audit_gap":
        first, last = json.loads(body)["ids"]
        gaps.append((first, last))
top = max(seqs)
missing = [s for s in range(1, top + 1) if s not in seqs and not any(a <= s <= b for a, b in gaps)]
both = [s for s in seqs if any(a <= s <= b for a, b in gaps)]
print(f"top={top} gaps={gaps} missing={missing[:10]} both={both[:10]}")
sys.exit(1 if missing or both or not gaps else 0)'
}
check "every seq is in audit.db exactly once, or an audit_gap names it" covered
check "the audit is contiguous to the end" is "$(audit "SELECT max(seq) FROM event")" \
    sqlite3 "$db" "SELECT value FROM meta WHERE key = 'contiguous'"
check "status names the loss" is True status "any('the audit lost events' in a for a in j['attention'])"
finish
