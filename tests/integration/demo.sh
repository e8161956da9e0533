#!/usr/bin/env bash
# scripts/demo (make demo) plays its scenario start to end: the first sync,
# the renewal on both doors, the failure while a door is offline and its
# replay, a clean status, and everything stopped afterwards.
set -u
. "$(dirname "$0")/lib/common.sh"

DEMO_DIR=$CS_TMP/demo DEMO_BIN=$CS_BIN run scripts/demo
expect_rc 0 "the demo runs to the end"
expect_out "== 2. Åsa renews" "the renewal step"
expect_out "applied    door2     asa.oberg@example.se" "the renewal reaches door2 in tail"
# how many tries fit in max_retry_age depends on the backoff's jitter
check "the failed queue while door2 is offline" grep -Eq 'transient +[0-9]+  gave up after' "$_out"
expect_out "re-sent     door2    erik.lind@example.se" "the replay"
expect_out "re-sent as command" "the replay in tail"
expect_out "all well" "a clean status at the end"
expect_out "(exit status 0:" "status exits 0"
expect_out "demo: done in" "the end"
check "nothing left running" bash -c "! pgrep -af '$CS_TMP/[d]emo/'"
finish
