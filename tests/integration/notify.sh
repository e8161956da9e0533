#!/usr/bin/env bash
# The auditor's e-mail digest, against a local SMTP sink that insists on
# STARTTLS and a login: a permanent failure and a paused device in the first
# mail, a tripped guard kept while the mail server is down and sent when it is
# back, failing exports after export_alert_after; never more than one mail per
# batch_interval; the password never logged.
set -u
. "$(dirname "$0")/lib/common.sh"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1" -keyout "$CS_TMP/key.pem" -out "$CS_TMP/cert.pem" 2>/dev/null
SINK=(--cert "$CS_TMP/cert.pem" --key "$CS_TMP/key.pem" --require-tls --user mailer --password 'Mail-Pw-9')
start_smtp_sink "${SINK[@]}"

python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
ms = [{"omid": 3000 + i, "first": "M", "last": str(i), "email": f"n{i}@example.se", "changed": "2025-01-01T00:00:00",
       "roles": [{"org": 1234, "role": 3126, "start": d(-30), "end": d(100 + i)}]} for i in range(40)]
ps = [{"employeeNo": str(3000 + i), "name": f"M {i}", "PersonInfoExtends": [{"value": f"n{i}@example.se"}],
       "Valid": {"enable": True, "beginTime": d(-30) + "T00:00:00", "endTime": d(100 + i) + "T23:59:59"}} for i in range(40)]
ms[0]["roles"][0]["end"] = d(200)          # a renewal the device will refuse: its name is too long
ps[0]["name"] = "x" * 200
json.dump(ms, open(sys.argv[1] + "/members.json", "w"))
json.dump(ps, open(sys.argv[1] + "/persons.json", "w"))
json.dump(ms[12:], open(sys.argv[1] + "/fewer.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/members.json"
start_isapi_sim --device door1:0 --device door2:0 --password 'N-1'
CSK=scripts/cardskipper-ctl
check "seed" scripts/isapi-ctl seed door1 "$CS_TMP/persons.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='N-1'
export CARDSYNC_DEVICE_DOOR2_PASSWORD='not-N-1' CARDSYNC_SMTP_PASSWORD='Mail-Pw-9'
write_config --poll 1h --full 1s --cardskipper "timeout = 2s" door1 door2 -- "[sync]
guard_max_revocations = 10
[notify]
smtp_url = smtp://127.0.0.1:$SMTP_PORT
username = mailer
ca_file = cert.pem
from = cardsync@club.example
to = admin@club.example, Ops@Club.example
batch_interval = 3s
export_alert_after = 4s"
start_pipeline
mails () { ls "$CS_TMP/mail" 2>/dev/null | grep -c '\.json$'; }
wait_mails () {   # wait_mails N SECONDS
    for _ in $(seq 1 $(($2 * 5))); do [ "$(mails)" -ge "$1" ] && return 0; sleep 0.2; done
    echo "mails: $(mails)"; tail -5 "$CS_TMP/auditor.log"; return 1
}
body () { mail "$1" 'm["data"]'; }
mail () { python3 -c "import json,sys; m=json.load(open('$CS_TMP/mail/%04d.json' % $1)); print($2)"; }

check "a first mail" wait_mails 1 30
check "over STARTTLS, logged in" test "$(mail 1 '(m["tls"], m["user"])')" = "(True, 'mailer')"
check "from and to, as configured" test "$(mail 1 '(m["from"], m["to"])')" = "('cardsync@club.example', ['admin@club.example', 'ops@club.example'])"
check "the subject counts" grep -q '^Subject: cardsync on .*: 1 failed, device paused$' <(body 1)
check "the failure, with the device's words" grep -q 'failed    n0@example.se on door1: invalid: .*name' <(body 1)
check "the paused device" grep -q 'paused    device door2 (auth): login refused' <(body 1)
check "what to do next" grep -q 'cardsync-auditor failed' <(body 1)
check "logged" grep -q "event=mailed items=2" "$CS_TMP/auditor.log"

# the mail server goes away; a guard trips meanwhile; nothing is lost
kill "$SMTP_PID"; wait "$SMTP_PID" 2>/dev/null
check "twelve members gone" $CSK load "$CS_TMP/fewer.json"
for _ in $(seq 1 100); do grep -q "event=mail_failed" "$CS_TMP/auditor.log" && break; sleep 0.2; done
check "an unreachable mail server is logged" grep -q "event=mail_failed items=1 error=" "$CS_TMP/auditor.log"
check "still one mail" test "$(mails)" = 1
start_smtp_sink "${SINK[@]}" --port "$SMTP_PORT"
check "the guard's mail once the server is back" wait_mails 2 90
check "it says the guard tripped" grep -q 'guard     12 revocations exceed the guard' <(body 2)
check "and nothing already mailed" bash -c "! grep -q 'n0@example.se' \"\$1\"" _ <(body 2)

# exports fail for longer than export_alert_after
check "exports fail" $CSK fault fail_status=500
check "the exports' mail" wait_mails 3 30
check "it says since when, and why" grep -q 'exports   no good export from Cardskipper since .*HTTP 500' <(body 3)
sleep 5
check "said once while they keep failing" test "$(mails)" = 3
check "never two mails within batch_interval" python3 -c "
import json, glob
ts = sorted(json.load(open(f))['time'] for f in glob.glob('$CS_TMP/mail/*.json'))
assert all(b - a >= 2.5 for a, b in zip(ts, ts[1:])), ts
"
check "the password is never logged" bash -c "! grep -q 'Mail-Pw-9' '$CS_TMP'/*.log"
run "$CS_BIN/cardsync-auditor" --config "$CS_CONFIG" --print-config
expect_out "starttls = true" "print-config shows the notify settings"
expect_no "Mail-Pw-9" "print-config hides the password"
finish
