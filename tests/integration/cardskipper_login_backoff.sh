#!/usr/bin/env bash
# Cardskipper refusing the login is not retried every poll_interval: after a
# refused login the producer waits auth_retry_min (1 min by default; 1 s
# here), then twice as long each time, up to an hour; status names it.
set -u
. "$(dirname "$0")/lib/common.sh"

start_cardskipper_sim
start_isapi_sim --device door1:0 --password 'Lb-1'
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Lb-1'
write_config --poll 1s --cardskipper 'auth_retry_min = 1s' door1
export CARDSYNC_CARDSKIPPER_PASSWORD=wrong
start_pipeline differ producer
attempts () { grep -c 'event=cycle_end .*ok=false' "$CS_TMP/producer.log"; }
five () { [ "$(attempts)" -ge 5 ]; }
wait_until "five refused logins" 25 five
gaps=$(grep 'event=cycle_end .*ok=false' "$CS_TMP/producer.log" | head -5 | python3 -c '
import sys, datetime
ts = [datetime.datetime.strptime(l.split()[0][3:], "%Y-%m-%dT%H:%M:%S.%fZ") for l in sys.stdin]
print(" ".join(f"{(b - a).total_seconds():.2f}" for a, b in zip(ts, ts[1:])))')
echo "seconds between login attempts: $gaps"
doubling () {
    python3 -c '
import sys
g = [float(x) for x in sys.argv[1:]]
want = [1, 2, 4, 8]
ok = len(g) == 4 and all(w * 0.95 <= x <= w + 1.5 for x, w in zip(g, want))
sys.exit(0 if ok else 1)' $gaps
}
check "the waits are auth_retry_min, then doubling (1, 2, 4, 8 s)" doubling
check "each refusal says what to check and when it tries again" \
    grep -q 'level=error stage=producer event=login_refused http=401 next_try_in_s=1 msg="Cardskipper refused the login (401): check username and CARDSYNC_CARDSKIPPER_PASSWORD' "$CS_TMP/producer.log"
named () { status "any('the last export was ignored' in a and '401' in a for a in j['attention'])"; }
wait_until "status names the refused login" 10 is True named

# a 403 is not a wrong password: the message says what to ask for instead
stop_pipeline
unset CARDSYNC_CARDSKIPPER_PASSWORD
write_config --poll 1s --cardskipper 'auth_retry_min = 1s' door1
check "no export right" scripts/cardskipper-ctl fault forbid_export=true
: > "$CS_TMP/producer.log"
start_pipeline differ producer
forbidden () { grep -q 'event=login_refused http=403 .*lacks the API right' "$CS_TMP/producer.log"; }
wait_until "a 403 says the account lacks the API right" 10 forbidden
check "and does not blame the password" bash -c "! grep 'http=403' '$CS_TMP/producer.log' | grep -q password"
finish
