#!/usr/bin/env bash
# The group under supervisord: all four RUNNING; a program with a bad config
# goes FATAL (no restart loop) and its log names the file, line and key; a
# SIGTERM stop is clean and quick.
set -u
. "$(dirname "$0")/lib/common.sh"

start_cardskipper_sim --members 50
start_isapi_sim --device door1:0 --password 'Pw-1'
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Pw-1'
write_config --poll 5m door1
start_group "$CS_CONFIG"
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
check "all stopped, none killed" bash -c "[ \$(grep -c '^cardsync:.*STOPPED' '$CS_TMP/status') = 4 ] && ! grep -q 'exit status [1-9]\|SIGKILL' '$CS_TMP/sup/supervisord.log'"

# a bad config: FATAL, not a restart loop, and the log says why
sed -i 's/^username = admin/username = admin\nmax_inflight = lots/' "$CS_CONFIG"
bad_line=$(grep -n '^max_inflight = lots' "$CS_CONFIG" | cut -d: -f1)
sup start cardsync:pusher > /dev/null
for _ in $(seq 1 50); do
    sup status cardsync:pusher | grep -q FATAL && break
    sleep 0.2
done
check "FATAL with a bad config" bash -c "supervisorctl -c '$SUPCONF' status cardsync:pusher | grep -q FATAL"
check "the log names the file, line and key" grep -q "cardsync.ini:$bad_line: \[device door1\] max_inflight: must be a whole number from 1 to 8, not 'lots'" "$CS_TMP/sup/pusher.log"
check "exit 78" grep -q "exited: pusher (exit status 78; not expected)" "$CS_TMP/sup/supervisord.log"
sup shutdown > /dev/null
finish
