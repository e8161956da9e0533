#!/usr/bin/env bash
# The group under supervisord: all four RUNNING; a program with a bad config
# goes FATAL (no restart loop) and its log names the file, line and key; a
# SIGTERM stop is clean and quick.
set -u
. "$(dirname "$0")/lib/common.sh"

start_cardskipper_sim --members 50
start_isapi_sim --device door1:0 --password 'Pw-1'
export CARDSYNC_CARDSKIPPER_PASSWORD=secret CARDSYNC_DEVICE_DOOR1_PASSWORD='Pw-1'
cat > "$CS_TMP/cardsync.ini" <<INI
[cardskipper]
url = $CS_API
username = api@club.example
organisation_ids = 1234
$(device_sections door1)
[pipeline]
run_dir = $CS_TMP/run
state_dir = $CS_TMP/state
INI
start_group "$CS_TMP/cardsync.ini"
for _ in $(seq 1 50); do
    [ "$(sup status | grep -c RUNNING)" = 4 ] && break
    sleep 0.2
done
sup status > "$CS_TMP/status"
check "all four RUNNING" test "$(grep -c RUNNING "$CS_TMP/status")" = 4
check "the group is called cardsync" grep -q "^cardsync:differ " "$CS_TMP/status"

start=$(date +%s%N)
sup stop 'cardsync:*' > /dev/null
stopped_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "stopping the group took $stopped_ms ms"
sup status > "$CS_TMP/status"
check "all stopped, none killed" bash -c "[ \$(grep -c STOPPED '$CS_TMP/status') = 4 ] && ! grep -q 'exit status [1-9]\|SIGKILL' '$CS_TMP/sup/supervisord.log'"

# a bad config: FATAL, not a restart loop, and the log says why
sed -i 's/^username = admin/username = admin\nmax_inflight = lots/' "$CS_TMP/cardsync.ini"
sup start cardsync:pusher > /dev/null
for _ in $(seq 1 50); do
    sup status cardsync:pusher | grep -q FATAL && break
    sleep 0.2
done
check "FATAL with a bad config" bash -c "supervisorctl -c '$SUPCONF' status cardsync:pusher | grep -q FATAL"
check "the log names the file, line and key" grep -q "cardsync.ini:8: \[device door1\] max_inflight: must be a whole number from 1 to 8, not 'lots'" "$CS_TMP/sup/pusher.log"
check "exit 78" grep -q "exited: pusher (exit status 78; not expected)" "$CS_TMP/sup/supervisord.log"
sup shutdown > /dev/null
finish
