#!/usr/bin/env bash
# One version, in one place (VERSION): every program's --version says it, and
# every HTTP request says it in its User-Agent (Cardskipper, the doors).
set -u
. "$(dirname "$0")/lib/common.sh"

V=$(cat VERSION)
for p in producer differ pusher auditor; do
    check "$p --version says $V" is "cardsync-$p $V" "$CS_BIN/cardsync-$p" --version
done
start_cardskipper_sim --members 3
start_isapi_sim --device door1:0 --password 'Ver-1'
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Ver-1'
write_config door1
run "$CS_BIN/cardsync-producer" --config "$CS_CONFIG" --check
expect_rc 0 "producer --check reaches the simulator"
run "$CS_BIN/cardsync-pusher" --config "$CS_CONFIG" --check
expect_rc 0 "pusher --check reaches the door"
check "Cardskipper saw only cardsync/$V" is "['cardsync/$V']" \
    sh -c "scripts/cardskipper-ctl stats | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)[\"user_agents\"]))'"
check "the door saw only cardsync/$V" is "['cardsync/$V']" \
    sh -c "scripts/isapi-ctl stats door1 | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)[\"user_agents\"]))'"
finish
