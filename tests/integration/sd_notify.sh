#!/usr/bin/env bash
# Under systemd (Type=notify): each program says READY=1 once its sockets are
# bound and its database open, then WATCHDOG=1 from its main loop, to the
# socket in NOTIFY_SOCKET; with JOURNAL_STREAM naming its stdout, each log
# line carries the journal priority of its level.
set -u
. "$(dirname "$0")/lib/common.sh"

sock=$CS_TMP/notify.sock
/usr/bin/python3 - "$sock" "$CS_TMP/notify.log" <<'PY' &
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
out = open(sys.argv[2], "a", buffering=1)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
    pid = 0
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", data[:12])[0]
    for line in msg.decode().splitlines():
        out.write(f"{pid} {line}\n")
PY
_pids+=($!)

for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done

start_cardskipper_sim
start_isapi_sim --device door1:0 --password 'Sd-1'
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Sd-1'
write_config door1
NOTIFY_SOCKET=$sock WATCHDOG_USEC=2000000 start_pipeline
said () { grep -q "^${PID[$1]} $2\$" "$CS_TMP/notify.log"; }
for p in auditor differ pusher producer; do
    wait_until "the $p says READY=1" 15 said "$p" READY=1
    wait_until "the $p says WATCHDOG=1 from its loop" 15 said "$p" WATCHDOG=1
    check "the $p says what it is doing" grep -q "^${PID[$p]} STATUS=." "$CS_TMP/notify.log"
done
declare -A was
for p in auditor differ pusher producer; do was[$p]=${PID[$p]}; done
stop_pipeline
for p in auditor differ pusher producer; do
    check "the $p says STOPPING=1" grep -q "^${was[$p]} STOPPING=1\$" "$CS_TMP/notify.log"
done

# journald priorities: <6> for info, <3> for errors, only when stdout is the journal's
log=$CS_TMP/journal.out
: > "$log"
js=$(stat -c '%d:%i' "$log")
JOURNAL_STREAM=$js "$CS_BIN/cardsync-producer" --config "$CS_CONFIG" --once >> "$log" 2>&1
check "info lines carry <6>" grep -q '^<6>ts=.* level=info ' "$log"
check "every line carries a priority" bash -c "! grep -v '^<[0-7]>' '$log'"
JOURNAL_STREAM=1:1 "$CS_BIN/cardsync-producer" --config "$CS_CONFIG" --once > "$CS_TMP/plain.out" 2>&1
check "not the journal's stream: plain lines" grep -q '^ts=.* level=info ' "$CS_TMP/plain.out"
: > "$log"
CARDSYNC_CARDSKIPPER_PASSWORD=wrong JOURNAL_STREAM=$js "$CS_BIN/cardsync-producer" --config "$CS_CONFIG" --once >> "$log" 2>&1
check "a failed export is logged at priority err" grep -q '^<3>ts=.* level=error .*event=cycle_end' "$log"
finish
