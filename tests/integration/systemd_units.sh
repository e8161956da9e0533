#!/usr/bin/env bash
# scripts/systemd: systemd-analyze finds nothing wrong with the units (with
# the binaries where the units expect them), every program of the group has a
# unit that the target pulls in, and each unit's command line is one its
# program accepts; each unit's sandbox is rated 2.5 or lower by
# systemd-analyze security, and, where systemd is PID 1, each program runs
# under it (elsewhere that part says SKIP and why).
set -u
. "$(dirname "$0")/lib/common.sh"

units=$CS_TMP/units
mkdir -p "$units"
for f in scripts/systemd/*; do
    sed -e "s#/usr/local/bin/#$CS_BIN/#g" -e "s#/etc/cardsync/cardsync.ini#$PWD/cardsync.ini.example#g" "$f" \
        > "$units/$(basename "$f")"
done
run systemd-analyze verify --man=no "$units"/cardsync.target "$units"/cardsync-*.service
expect_rc 0 "systemd-analyze verify"
check "and it has nothing to say" test ! -s "$_err"
[ -s "$_err" ] && cat "$_err"
for prog in producer differ pusher auditor; do
    unit=$units/cardsync-$prog.service
    check "$prog has a unit" test -f "$unit"
    check "the target wants $prog" grep -q "cardsync-$prog.service" "$units/cardsync.target"
    check "$prog stops with the target" grep -qx "PartOf=cardsync.target" "$unit"
    check "$prog: config errors are not restarted in a loop" grep -qx "RestartPreventExitStatus=78" "$unit"
    check "$prog is Type=notify" grep -qx "Type=notify" "$unit"
    check "$prog has a watchdog" grep -qE "^WatchdogSec=[0-9]+" "$unit"
    for key in ExecStartPre ExecStart; do
        cmd=$(sed -n "s/^$key=//p" "$unit")
        if [ $key = ExecStart ]; then cmd="$cmd --check-config"; fi
        run env CARDSYNC_CARDSKIPPER_PASSWORD=x CARDSYNC_DEVICE_DOOR1_PASSWORD=x CARDSYNC_DEVICE_DOOR2_PASSWORD=x $cmd
        expect_rc 0 "$prog's $key is a command line it accepts"
    done
done
# the window: its own unit, wanted by the target once enabled (not by default)
unit=$units/cardsync-web.service
check "the window has a unit" test -f "$unit"
check "it stops with the target" grep -qx "PartOf=cardsync.target" "$unit"
check "and is enabled into it" grep -qx "WantedBy=cardsync.target" "$unit"
check "its config errors are not restarted in a loop" grep -qx "RestartPreventExitStatus=78" "$unit"
check "it is Type=notify with a watchdog" sh -c "grep -qx Type=notify '$unit' && grep -qE '^WatchdogSec=[0-9]+' '$unit'"
check "it runs serve" grep -qE "^ExecStart=.*cardsync-auditor --config .* serve$" "$unit"
cmd=$(sed -n "s/^ExecStartPre=//p" "$unit")
run env CARDSYNC_CARDSKIPPER_PASSWORD=x CARDSYNC_DEVICE_DOOR1_PASSWORD=x CARDSYNC_DEVICE_DOOR2_PASSWORD=x $cmd
expect_rc 0 "the window's ExecStartPre is a command line it accepts"
# the sandbox: each unit rated 2.5 or lower by systemd-analyze security
for u in "$units"/cardsync-*.service; do
    name=$(basename "$u")
    score=$(systemd-analyze security --offline=true "$u" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    echo "$name: exposure $score"
    check "$name is rated 2.5 or lower (${score:-no rating})" python3 -c "import sys; sys.exit(0 if '$score' and float('$score') <= 2.5 else 1)"
    check "$name may talk tcp (another site's pusher, a device, Cardskipper)" \
        grep -qx "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" "$u"
done
# each program under its unit's sandbox, where systemd runs this machine
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemd-run >/dev/null; then
    for prog in producer differ pusher auditor web; do
        unit=$units/cardsync-$prog.service
        props=()
        while IFS= read -r line; do props+=(-p "$line"); done < <(sed -n '/^# sandbox:/,/^RestrictAddressFamilies=/p' "$unit" | grep -v '^#')
        bin=cardsync-$prog; [ $prog = web ] && bin=cardsync-auditor
        run systemd-run --quiet --wait --pipe --collect "${props[@]}" \
            env CARDSYNC_CARDSKIPPER_PASSWORD=x CARDSYNC_DEVICE_DOOR1_PASSWORD=x CARDSYNC_DEVICE_DOOR2_PASSWORD=x \
            "$CS_BIN/$bin" --config "$PWD/cardsync.ini.example" --check-config
        expect_rc 0 "$prog starts and reads its config under its unit's sandbox"
    done
else
    echo "SKIP: running each program under its unit's sandbox needs systemd as PID 1 (here: $(cat /proc/1/comm 2>/dev/null)); the ratings and systemd-analyze verify are checked above"
fi
finish
