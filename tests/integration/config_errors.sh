#!/usr/bin/env bash
# Every program: --help, --version, bad usage (64), config errors (78 naming
# file, line and key), --check-config on the shipped example (0).
set -u
. "$(dirname "$0")/lib/common.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/bad.ini" <<'INI'
[cardskipper]
url = https://api.cardskipper.se
username = api@club.example
organisation_ids = 1234
poll_interval = often

[device door1]
url = http://127.0.0.1:8081
username = admin
max_inflight = 0
INI

for prog in producer differ pusher auditor; do
    bin=$(cs_bin "$prog")

    run "$bin" --help
    expect_rc 0 "$prog --help"
    expect_out "usage: cardsync-$prog" "$prog --help"
    expect_out "--check-config" "$prog --help"
    expect_out "example: cardsync-$prog" "$prog --help has an example"

    run "$bin" --version
    expect_rc 0 "$prog --version"
    expect_out "cardsync-$prog " "$prog --version"

    run "$bin" --no-such-option
    expect_rc 64 "$prog with an unknown option"
    expect_err "is not known" "$prog with an unknown option"

    run "$bin" --config "$tmp/bad.ini" --check-config
    expect_rc 78 "$prog --check-config on a bad file"
    expect_err "$tmp/bad.ini:5: [cardskipper] poll_interval: must be a duration" "$prog"
    expect_err "$tmp/bad.ini:10: [device door1] max_inflight: must be a whole number from 1 to 8, not '0'" "$prog"
    expect_err "errors in the config:" "$prog"

    # a daemon start with a bad config fails the same way, before doing anything
    run "$bin" --config "$tmp/bad.ini"
    expect_rc 78 "$prog started with a bad config"

    run "$bin" --config "$tmp/missing.ini"
    expect_rc 78 "$prog with a missing config file"
    expect_err "$tmp/missing.ini: cannot read the config file: No such file or directory" "$prog"

    # CARDSYNC_CONFIG is the default config path
    CARDSYNC_CONFIG="$tmp/bad.ini" run "$bin" --check-config
    expect_rc 78 "$prog with CARDSYNC_CONFIG"
done

# The shipped example passes for every program once the secrets are given.
export CARDSYNC_CARDSKIPPER_PASSWORD=example-cs CARDSYNC_DEVICE_DOOR1_PASSWORD=example-1 \
       CARDSYNC_DEVICE_DOOR2_PASSWORD=example-2
for prog in producer differ pusher auditor; do
    run "$(cs_bin "$prog")" --config cardsync.ini.example --check-config
    expect_rc 0 "$prog --check-config cardsync.ini.example"
    expect_out "cardsync.ini.example is valid (2 devices)" "$prog"
done

# Secrets are needed by the program that uses them, and never printed.
unset CARDSYNC_DEVICE_DOOR2_PASSWORD
run "$(cs_bin pusher)" --config cardsync.ini.example --check-config
expect_rc 78 "pusher without a device password"
expect_err "[device door2] password_file: no password: set CARDSYNC_DEVICE_DOOR2_PASSWORD" "pusher"
run "$(cs_bin differ)" --config cardsync.ini.example --print-config
expect_rc 0 "differ --print-config"
expect_out "[device door1]" "print-config"
expect_no "example-cs" "print-config must not print secrets"
expect_no "example-1" "print-config must not print secrets"

# every operator command has its own --help, with an example
for cmd in tail failed status history replay approve; do
    run "$(cs_bin auditor)" --config cardsync.ini.example $cmd --help
    expect_rc 0 "auditor $cmd --help"
    expect_out "example: cardsync-auditor" "auditor $cmd --help has an example"
done
# a password inside a URL: refused by every program (78, naming the key), shown by none
sed 's#^url = http://192.168.1.100#url = http://admin:Hidden-9@192.168.1.100#' cardsync.ini.example > "$CS_TMP/userinfo.ini"
for prog in producer differ pusher auditor; do
    for how in --check-config --print-config; do
        run "$(cs_bin $prog)" --config "$CS_TMP/userinfo.ini" $how
        expect_rc 78 "$prog $how: a URL with a password is a config error"
        expect_err "[device door1] url: must not carry a username or password" "$prog $how names the key"
        expect_no "Hidden-9" "$prog $how never shows the password"
    done
done
run "$(cs_bin pusher)" --config "$CS_TMP/userinfo.ini" --check
expect_rc 78 "pusher --check refuses it too"
expect_no "Hidden-9" "and shows no password"

run "$(cs_bin auditor)" --config cardsync.ini.example frobnicate
expect_rc 64 "an unknown auditor command"
expect_err "'frobnicate' is not a command" "says so"
finish
