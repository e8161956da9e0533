#!/usr/bin/env bash
# cardsync-auditor serve (issue 14): the JSON API against a running pipeline
# agrees with `status --json` and the review lists; a request naming another
# host is refused (DNS rebinding) and no CORS allowance is ever sent; with a
# login every request needs it (no data without), the password is in no log;
# off loopback the window refuses to start without a login, or in clear
# without allow_plain_http; TLS from cert_file/key_file works.
set -u
. "$(dirname "$0")/lib/common.sh"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
m = lambda omid, email, end: {"omid": omid, "first": "W", "last": str(omid), "email": email,
    "changed": "2025-01-01T00:00:00", "roles": [{"org": 1234, "role": 3126, "start": d(-10), "end": d(end)}]}
json.dump([m(4001, "webb@example.se", 40), m(4002, "nobody@example.se", 50)], open(sys.argv[1] + "/m.json", "w"))
json.dump([{"employeeNo": "4001", "name": "W 4001", "PersonInfoExtends": [{"value": "webb@example.se"}],
            "Valid": {"enable": True, "beginTime": d(-10) + "T00:00:00", "endTime": d(2) + "T23:59:59"}},
           {"employeeNo": "4999", "name": "Gone", "PersonInfoExtends": [{"value": "left@example.se"}],
            "Valid": {"enable": True, "beginTime": d(-10) + "T00:00:00", "endTime": d(90) + "T23:59:59"}}],
          open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --password 'Web-1'
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Web-1'
free_port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
write_config --poll 2s door1 -- "[web]
listen = 127.0.0.1:$PORT"
start_pipeline
wait_until "the member's door is synced" 30 is "$(DAY 40)T23:59:59" valid_until door1 4001

AUD=("$CS_BIN/cardsync-auditor" --config "$CS_CONFIG")
"${CS_WRAP[@]}" "${AUD[@]}" serve > "$CS_TMP/serve.log" 2>&1 &
SERVE=$!
_pids+=($SERVE)
URL=http://127.0.0.1:$PORT
wait_until "serve says where it listens" 10 grep -q "event=serving url=$URL/" "$CS_TMP/serve.log"

# --- the API agrees with the commands ---------------------------------------------------------
api () { curl -s --max-time 10 "$URL/api/$1"; }
api_code () { curl -s -o "$CS_TMP/body" -w '%{http_code}' --max-time 10 "$@"; }
api status > "$CS_TMP/api_status.json"
"${AUD[@]}" status --json > "$CS_TMP/cli_status.json" 2>/dev/null
check "/api/status agrees with status --json" python3 - "$CS_TMP" <<'PY'
import json, sys
a = json.load(open(sys.argv[1] + "/api_status.json"))
c = json.load(open(sys.argv[1] + "/cli_status.json"))
for k in ("members", "members_with_email", "targets", "guard_held", "state_db"):
    assert a[k] == c[k], (k, a[k], c[k])
assert [(d["name"], d["health"], d["persons"]) for d in a["devices"]] == \
       [(d["name"], d["health"], d["persons"]) for d in c["devices"]], (a["devices"], c["devices"])
assert a["members"] == 2 and a["targets"]["in_sync"] == 1, a
assert [s["name"] for s in a["stages"] if s["alive"]] == [s["name"] for s in c["stages"] if s["alive"]]
PY
check "/api/unmatched lists the member without a person" is "door1 nobody@example.se" \
    sh -c "curl -s $URL/api/unmatched | python3 -c 'import json,sys; print(\" \".join(r[\"device\"] + \" \" + r[\"email\"] for r in json.load(sys.stdin)[\"rows\"]))'"
check "/api/orphans lists the person whose tag is no member's" is "4999" \
    sh -c "curl -s $URL/api/orphans | python3 -c 'import json,sys; print(\" \".join(r[\"employee_no\"] for r in json.load(sys.stdin)[\"rows\"]))'"
check "/api/failed is empty" is "0" sh -c "curl -s $URL/api/failed | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"rows\"]))'"
check "/api/held is empty" is "0 0" sh -c "curl -s $URL/api/held | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j[\"held\"], len(j[\"rows\"]))'"
check "/api/member has the member's person and dates" is "door1 4001 $(DAY 40)T23:59:59" \
    sh -c "curl -s '$URL/api/member?email=WEBB@example.se' | python3 -c 'import json,sys; p=json.load(sys.stdin)[\"rows\"][0][\"persons\"][0]; print(p[\"device\"], p[\"employee_no\"], p[\"end\"])'"
check "/api/history has the write" is "True" \
    sh -c "curl -s '$URL/api/history?email=webb@example.se' | python3 -c 'import json,sys; print(any(e[\"kind\"] == \"applied\" and e[\"end\"] == \"$(DAY 40)T23:59:59\" for e in json.load(sys.stdin)[\"rows\"]))'"
check "a bad address is a 400" is 400 api_code "$URL/api/member?email=no-at-sign"
check "an unknown API is a 404" is 404 api_code "$URL/api/nothing"
check "the API is not written to" is 405 api_code -X POST "$URL/api/status"

# --- /metrics: Prometheus text, parsed by Prometheus's own parser, agreeing with status ----------
wait_until "the pusher's counters reach the differ" 15 sh -c "curl -s $URL/metrics | grep -q 'cardsync_writes_total{device=\"door1\",result=\"applied\"} 1'"
# the auditor's come with its own heartbeat, maybe a little later
wait_until "the auditor's counters too" 15 sh -c "curl -s $URL/metrics | grep -qE '^cardsync_audit_events_total ([3-9]|[1-9][0-9]+)$'"
curl -s -D "$CS_TMP/mheaders" "$URL/metrics" > "$CS_TMP/metrics.txt"
"${AUD[@]}" status --json > "$CS_TMP/cli_status.json" 2>/dev/null
check "/metrics is the text format" grep -qi '^content-type: text/plain; version=0.0.4' "$CS_TMP/mheaders"
check "/metrics parses and agrees with status --json" /usr/bin/python3 - "$CS_TMP" <<'PY'
import json, sys
from prometheus_client.parser import text_string_to_metric_families
d = sys.argv[1]
s = json.load(open(d + "/cli_status.json"))
fam = {f.name: f for f in text_string_to_metric_families(open(d + "/metrics.txt").read())}
def one(name, **labels):
    got = [x.value for x in fam[name].samples if x.labels == labels]
    assert len(got) == 1, (name, labels, fam[name].samples)
    return got[0]
assert fam["cardsync_exports"].type == "counter", fam["cardsync_exports"].type   # _total is the sample's suffix
assert one("cardsync_differ_up") == 1
for st in ("producer", "pusher", "auditor"):
    assert one("cardsync_stage_up", stage=st) == 1
assert one("cardsync_members") == s["members"] == 2
assert one("cardsync_targets", state="in_sync") == s["targets"]["in_sync"] == 1
assert one("cardsync_unmatched") == s["targets"]["unmatched"]
assert one("cardsync_failed_queue") == s["targets"]["failed"] == 0
assert one("cardsync_guard_held") == s["guard_held"]
dev = s["devices"][0]
assert one("cardsync_device_persons", device="door1") == dev["persons"]
assert one("cardsync_device_persons_managed", device="door1") == dev["managed"] == 1
assert one("cardsync_device_health", device="door1", state="ok") == 1
assert one("cardsync_device_health", device="door1", state="down") == 0
assert one("cardsync_writes", device="door1", result="applied") == 1
assert one("cardsync_exports", result="ok") >= 1
assert one("cardsync_last_good_export_timestamp_seconds") == s["last_export"]["last_good_ts"]
assert one("cardsync_last_scan_timestamp_seconds", device="door1") == dev["last_scan_ts"]
assert one("cardsync_audit_events") >= 3
PY

# --- the Host check, and no CORS ---------------------------------------------------------------
check "another site's name is refused" is 403 api_code -H "Host: rebind.attacker.example:$PORT" "$URL/api/status"
check "and the refusal carries no data" is "False" sh -c "python3 -c 'import json; print(\"members\" in json.load(open(\"$CS_TMP/body\")))'"
check "localhost with its port is allowed" is 200 api_code -H "Host: localhost:$PORT" "$URL/api/status"
curl -s -D "$CS_TMP/headers" -o /dev/null -H "Origin: https://evil.example" "$URL/api/status"
check "no CORS allowance, even when asked" sh -c "! grep -qi '^access-control-' '$CS_TMP/headers'"
check "answers are not cached" grep -qi '^cache-control: no-store' "$CS_TMP/headers"

# --- the differ stopped: the API says so ------------------------------------------------------
stop_pipeline differ
check "/api/status with the differ stopped is 503" is 503 api_code "$URL/api/status"
check "and says why" grep -q "the differ is not answering" "$CS_TMP/body"
check "/metrics says the differ is down" is "cardsync_differ_up 0" sh -c "curl -s $URL/metrics | grep -v '^#'"
start_pipeline differ
kill "$SERVE"; wait "$SERVE" 2>/dev/null
check "serve stops on SIGTERM" grep -q "event=stopped" "$CS_TMP/serve.log"

# --- a login ----------------------------------------------------------------------------------
PORT2=$(free_port)
sed -i "s/^listen = .*/listen = 127.0.0.1:$PORT2\nusername = ops/" "$CS_CONFIG"
run "${AUD[@]}" serve
expect_rc 78 "a username without a password: exit 78"
expect_err "CARDSYNC_WEB_PASSWORD" "naming where the password goes"
run "$CS_BIN/cardsync-differ" --config "$CS_CONFIG" --check-config
expect_rc 0 "the other programs do not need the window's password"
export CARDSYNC_WEB_PASSWORD='S3cret-Web-pw'
"${CS_WRAP[@]}" "${AUD[@]}" serve > "$CS_TMP/serve2.log" 2>&1 &
SERVE=$!
_pids+=($SERVE)
URL=http://127.0.0.1:$PORT2
wait_until "serve with a login starts" 10 grep -q "event=serving url=$URL/ login=required" "$CS_TMP/serve2.log"
check "no login: 401" is 401 api_code "$URL/api/status"
check "wrong password: 401" is 401 api_code -u ops:wrong "$URL/api/status"
check "and no data" sh -c "! grep -q members '$CS_TMP/body'"
check "wrong user: 401" is 401 api_code -u admin:S3cret-Web-pw "$URL/api/status"
check "the login: 200" is 200 api_code -u ops:S3cret-Web-pw "$URL/api/status"
check "with the data" grep -q '"members":2' "$CS_TMP/body"
check "a failed login is logged with its user" grep -q "event=login_failed client=127.0.0.1 user=admin" "$CS_TMP/serve2.log"
"${AUD[@]}" --print-config > "$CS_TMP/printed.ini" 2>&1
check "the password is in no log, nor in --print-config" \
    sh -c "! grep -rq 'S3cret-Web-pw' '$CS_TMP'/*.log '$CS_TMP/printed.ini'"
kill "$SERVE"; wait "$SERVE" 2>/dev/null

# --- TLS ----------------------------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$CS_TMP/key.pem" -out "$CS_TMP/cert.pem" 2>/dev/null
PORT3=$(free_port)
sed -i "s/^listen = .*/listen = 127.0.0.1:$PORT3\ncert_file = $(echo "$CS_TMP" | sed 's#/#\\/#g')\/cert.pem\nkey_file = $(echo "$CS_TMP" | sed 's#/#\\/#g')\/key.pem/" "$CS_CONFIG"
"${CS_WRAP[@]}" "${AUD[@]}" serve > "$CS_TMP/serve3.log" 2>&1 &
SERVE=$!
_pids+=($SERVE)
wait_until "serve with TLS starts" 10 grep -q "event=serving url=https://127.0.0.1:$PORT3/" "$CS_TMP/serve3.log"
check "over TLS with the login: 200" is 200 api_code --cacert "$CS_TMP/cert.pem" -u ops:S3cret-Web-pw "https://127.0.0.1:$PORT3/api/status"
check "plain HTTP to the TLS port gets nothing" sh -c "! curl -s --max-time 5 -u ops:S3cret-Web-pw http://127.0.0.1:$PORT3/api/status | grep -q members"
kill "$SERVE"; wait "$SERVE" 2>/dev/null

# --- off loopback -------------------------------------------------------------------------------
sed -i -e '/^username = ops/d' -e '/^cert_file/d' -e '/^key_file/d' -e "s/^listen = .*/listen = 0.0.0.0:$PORT3/" "$CS_CONFIG"
run "${AUD[@]}" serve
expect_rc 78 "off loopback without a login: exit 78"
expect_err "0.0.0.0:$PORT3 is not loopback: the window needs a login there" "saying why"
sed -i "s/^listen = .*/listen = 0.0.0.0:$PORT3\nusername = ops/" "$CS_CONFIG"
run "${AUD[@]}" serve
expect_rc 78 "off loopback in clear: exit 78"
expect_err "allow_plain_http = true" "naming the way out"
finish
