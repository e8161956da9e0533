#!/usr/bin/env bash
# Help never needs a config; a command that cannot read its data says so and
# exits non-zero (an unreadable audit.db is never shown as an empty one).
set -u
. "$(dirname "$0")/lib/common.sh"

for c in tail failed status history member unmatched orphans held replay approve serve; do
    run env -C "$CS_TMP" "$CS_BIN/cardsync-auditor" "$c" --help
    expect_rc 0 "$c --help without a config file"
    expect_out "usage: cardsync-auditor" "$c --help prints its usage"
done
CS_API=http://127.0.0.1:9
DEV_URL[door1]=http://127.0.0.1:9
export CARDSYNC_DEVICE_DOOR1_PASSWORD=x
write_config door1
mkdir -p "$CS_TMP/state"
head -c 20000 /dev/urandom > "$CS_TMP/state/audit.db"
for c in "tail -n 2" "history a@example.se"; do
    # shellcheck disable=SC2086
    run "$CS_BIN/cardsync-auditor" --config "$CS_CONFIG" $c
    expect_rc 65 "$c on an unreadable audit.db exits non-zero"
    expect_err "cannot read $CS_TMP/state/audit.db" "$c says it cannot read the audit"
    expect_err "not a database" "$c gives SQLite's reason"
done
finish
