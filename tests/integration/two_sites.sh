#!/usr/bin/env bash
# Two buildings ([site NAME]): the differ, the auditor, the producer and the
# local pusher in this test's own network namespace; the north building's
# pusher in a second one, joined by a veth pair (10.213.0.1 here, 10.213.0.2
# there: addresses that exist only inside these namespaces), each pusher with
# its own simulated doors, over tcp:// with CURVE (keys made by
# cardsync-differ --make-cert). Every door converges, neither pusher ever
# gets the other site's device, a pusher whose key is not trusted is refused
# and logged; cutting the veth for 30 s makes status name the silent site
# pusher, loses nothing, and the writes resume when it is back.
set -u
if [ "${CS_IN_NETNS:-}" != 1 ]; then
    why=""
    [ "$(id -u)" = 0 ] || why="it needs root (network namespaces)"
    [ -z "$why" ] && ! command -v ip >/dev/null && why="ip (iproute2) is missing"
    [ -z "$why" ] && ! unshare --net true 2>/dev/null && why="this machine does not allow network namespaces (unshare --net failed)"
    [ -z "$why" ] && ! unshare --net ip link add csa type veth peer name csb 2>/dev/null && why="no veth pairs here (ip link add type veth failed)"
    [ -z "$why" ] && ! { ip netns add "cs-probe-$$" 2>/dev/null && ip netns del "cs-probe-$$"; } && why="ip netns add failed (no /run/netns mounts here)"
    if [ -n "$why" ]; then
        echo "SKIP: two sites over veth: $why"
        echo "0 checks, 0 failed"
        exit 0
    fi
    CS_IN_NETNS=1 exec unshare --net bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"

# --- the two namespaces ---------------------------------------------------------------
NS=cs-north-$$
# at the end: whatever still runs in north's namespace too, then the namespace
north_cleanup () {
    local p
    _cleanup
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null; done
    sleep 0.5
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
}
trap north_cleanup EXIT
ip link set lo up
ip netns add "$NS"
ip -n "$NS" link set lo up
ip link add csA type veth peer name csB netns "$NS"
ip addr add 10.213.0.1/24 dev csA
ip link set csA up
ip -n "$NS" addr add 10.213.0.2/24 dev csB
ip -n "$NS" link set csB up
north () { ip netns exec "$NS" "$@"; }    # (not for programs left running: $! would be a subshell's)
check "the namespaces are joined" north bash -c 'exec 3<>/dev/tcp/10.213.0.1/9 2>/dev/null; [ $? -ne 0 ]' # refused, not unreachable
check "10.213.0.1 is not the host's" sh -c "! nsenter --net=/proc/1/ns/net ip -4 addr 2>/dev/null | grep -q '10.213.0.1/'"

# --- the keys: one certificate per host, and one no host trusts ------------------------------
K=$CS_TMP/keys
mkdir -p "$K" "$CS_TMP/trusted-here" "$CS_TMP/trusted-north"
for host in central north rogue; do
    run "$CS_BIN/cardsync-differ" --make-cert "$K/$host"
    expect_rc 0 "cardsync-differ --make-cert $K/$host"
    expect_out "public key: " "it prints the public key"
done
check "the secret half is private" test "$(stat -c %a "$K/north.cert_secret")" = 600
pub () { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$K/$1.cert"; }
cp "$K/central.cert" "$K/north.cert" "$CS_TMP/trusted-here/"
cp "$K/central.cert" "$CS_TMP/trusted-north/"

# --- members and doors ------------------------------------------------------------------------
python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
T = lambda n: d(n) + "T23:59:59"
members = [{"omid": 1000 + i, "first": "F%d" % i, "last": "L", "birthdate": "1990-01-01",
            "email": "m%d@example.se" % i, "changed": "2025-01-01T00:00:00",
            "roles": [{"org": 1234, "role": 3126, "start": d(-100), "end": d(30 + i)}]} for i in range(1, 7)]
json.dump(members, open(sys.argv[1] + "/members.json", "w"))
p = lambda i, no: {"employeeNo": str(no), "name": "F%d" % i, "PersonInfoExtends": [{"value": "m%d@example.se" % i}],
                   "Valid": {"enable": True, "beginTime": d(-100) + "T00:00:00", "endTime": T(1)}}
doors = {"door1": [p(1, 11), p(2, 12)], "door2": [p(3, 13)],
         "north1": [p(1, 21), p(4, 24), p(5, 25)], "north2": [p(6, 26)]}
for name, persons in doors.items():
    json.dump(persons, open(sys.argv[1] + "/%s.json" % name, "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/members.json"
start_isapi_sim --device door1:0 --device door2:0 --password 'D00r!'
ip netns exec "$NS" "$CS_BIN/isapi-sim" --port-file "$CS_TMP/north.ports" --device north1:0 --device north2:0 \
    --password 'N0rth!' > "$CS_TMP/north-sim.log" 2>&1 &
_pids+=($!)
_wait_file "$CS_TMP/north.ports" 3 || exit 1
NORTH_CONTROL=http://127.0.0.1:$(sed -n 3p "$CS_TMP/north.ports")
north_ctl () { north env ISAPI_SIM_CONTROL="$NORTH_CONTROL" scripts/isapi-ctl "$@"; }
north_until () { north_ctl user "$1" "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Valid"]["endTime"])'; }
for dev in door1 door2; do check "seed $dev" scripts/isapi-ctl seed $dev "$CS_TMP/$dev.json"; done
for dev in north1 north2; do check "seed $dev" north_ctl seed $dev "$CS_TMP/$dev.json"; done

# --- the configs: the central host's, and the north host's ----------------------------------------
north_devices="[device north1]
url = http://127.0.0.1:$(sed -n 1p "$CS_TMP/north.ports")
username = admin
site = north
[device north2]
url = http://127.0.0.1:$(sed -n 2p "$CS_TMP/north.ports")
username = admin
site = north
[site north]
endpoint = tcp://10.213.0.2:5561
server_key = $(pub north)
[sync]
scan_interval = 10s
lease = 10s"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='D00r!' CARDSYNC_DEVICE_DOOR2_PASSWORD='D00r!'
write_config --poll 1s door1 door2 --pipeline "differ_in = tcp://10.213.0.1:5560
curve_cert = $K/central.cert_secret
curve_server_key = $(pub central)
curve_clients_dir = $CS_TMP/trusted-here
heartbeat_interval = 1s" -- "$north_devices"
# the north host: the same devices and site, its own [pipeline]
north_config () {   # north_config CERT [LINE]: the north host's config, with that certificate
    sed -e '/^\[pipeline\]/,/^\[/{/^\[pipeline\]/!{/^\[/!d}}' "$CS_CONFIG" | sed "/^\[pipeline\]/a\\
run_dir = $CS_TMP/north-$1/run\\
state_dir = $CS_TMP/north-$1/state\\
site = north\\
differ_in = tcp://10.213.0.1:5560\\
curve_cert = $K/$1.cert_secret\\
curve_server_key = $(pub central)\\
curve_clients_dir = $CS_TMP/trusted-north\\
heartbeat_interval = 1s${2:+\\
$2}"
}
north_config north > "$CS_TMP/north.ini"
run "$CS_BIN/cardsync-differ" --config "$CS_CONFIG" --print-config
check "the differ's input is tcp, not ipc" grep -qx 'differ_in = tcp://10.213.0.1:5560' "$_out"
check "north's pusher is at a tcp endpoint" grep -qx 'endpoint = tcp://10.213.0.2:5561' "$_out"
run env -u CARDSYNC_DEVICE_DOOR1_PASSWORD -u CARDSYNC_DEVICE_DOOR2_PASSWORD CARDSYNC_DEVICE_NORTH1_PASSWORD='N0rth!' \
    CARDSYNC_DEVICE_NORTH2_PASSWORD='N0rth!' "$CS_BIN/cardsync-pusher" --config "$CS_TMP/north.ini" --print-config
expect_rc 0 "north's pusher needs only north's passwords"
check "and binds its site's tcp endpoint" grep -qx 'pusher_in = tcp://10.213.0.2:5561' "$_out"

start_pipeline auditor differ pusher producer
start_north () {    # start_north CERT: north's pusher, in its namespace
    ip netns exec "$NS" env CARDSYNC_DEVICE_NORTH1_PASSWORD='N0rth!' CARDSYNC_DEVICE_NORTH2_PASSWORD='N0rth!' \
        "$CS_BIN/cardsync-pusher" --config "$CS_TMP/north-$1.ini" >> "$CS_TMP/north-$1.log" 2>&1 &
    PID[north-$1]=$!
    _pids+=($!)
}
cp "$CS_TMP/north.ini" "$CS_TMP/north-north.ini"
start_north north

# --- every door converges ------------------------------------------------------------------------
wait_until "door1 renewed by the local pusher" 40 is "$(DAY 31)T23:59:59" valid_until door1 11
wait_until "door2 too" 10 is "$(DAY 33)T23:59:59" valid_until door2 13
wait_until "north1 renewed by north's pusher, across the veth" 30 is "$(DAY 31)T23:59:59" north_until north1 21
wait_until "north1's other persons" 10 is "$(DAY 35)T23:59:59" north_until north1 25
wait_until "north2 too" 10 is "$(DAY 36)T23:59:59" north_until north2 26
check "the sockets really cross the veth (an established tcp connection to north)" \
    sh -c "ss -tnH state established | grep -q '10.213.0.2:5561'"
wait_until "status: all well, both pushers alive" 15 is "True" status \
    '[s.get("site") for s in j["stages"] if s["name"] == "pusher" and s["alive"]] == [None, "north"] and not j["attention"]'
check "status names north's devices' site" is "north north" status \
    '" ".join(d.get("site", "-") for d in j["devices"] if d["name"].startswith("north"))'
check "each pusher wrote to its own doors only" sh -c "
    ! grep -q 'device=north' '$CS_TMP/pusher.log' && ! grep -q 'device=door' '$CS_TMP/north-north.log' &&
    grep -q 'device=north1' '$CS_TMP/north-north.log' && grep -q 'device=door1' '$CS_TMP/pusher.log'"
check "and was never sent another site's device" sh -c "! grep -q unknown_device '$CS_TMP/pusher.log' '$CS_TMP/north-north.log'"

# --- a pusher whose key nobody trusts -------------------------------------------------------------------
north_config rogue "pusher_in = tcp://10.213.0.2:5562" > "$CS_TMP/north-rogue.ini"
start_north rogue
wait_until "the differ refuses it and says so" 15 grep -q 'event=peer_refused.*10.213.0.1:5560' "$CS_TMP/differ.log"
check "once, not a line per attempt" test "$(grep -c 'event=peer_refused' "$CS_TMP/differ.log")" = 1
wait_until "and the refused pusher says what to do" 15 grep -q 'event=refused_by_peer.*copy this host' "$CS_TMP/north-rogue.log"
kill "${PID[north-rogue]}"; wait "${PID[north-rogue]}"
check "the refused pusher is gone" sh -c "! pgrep -f 'north-[r]ogue.ini' >/dev/null"

# --- the veth cut for 30 s -------------------------------------------------------------------------------
events_before=$(audit 'SELECT max (seq) FROM event')
ip -n "$NS" link set csB down
cut_at=$(date +%s)
check "a renewal at the north site while it is cut" scripts/cardskipper-ctl extend --omid 1004 --end "$(DAY 200)"
check "and one here" scripts/cardskipper-ctl extend --omid 1002 --end "$(DAY 201)"
wait_until "the local door is written meanwhile" 20 is "$(DAY 201)T23:59:59" valid_until door1 12
wait_until "status names the silent site pusher" 20 sh -c \
    "'$CS_BIN/cardsync-auditor' --config '$CS_CONFIG' status | grep -q 'the pusher at site north (tcp://10.213.0.2:5561) is silent'"
check "status --json: north's pusher not alive, the local one alive" is "[True, False]" status \
    '[s["alive"] for s in j["stages"] if s["name"] == "pusher"]'
check "status: north's doors as last heard, the local ones not" sh -c "
    '$CS_BIN/cardsync-auditor' --config '$CS_CONFIG' status > '$CS_TMP/status.txt';
    grep -q '^  north1 .*(as last heard: its pusher is silent).*; at site north\$' '$CS_TMP/status.txt' &&
    grep '^  door1 ' '$CS_TMP/status.txt' | grep -vq 'as last heard'"
check "north's door still has the old date" is "$(DAY 34)T23:59:59" north_until north1 24
sleep $((30 - ($(date +%s) - cut_at)))
ip -n "$NS" link set csB up
wait_until "the north renewal arrives once the veth is back" 60 is "$(DAY 200)T23:59:59" north_until north1 24
wait_until "status: all well again" 30 is "[]" status 'j["attention"]'
check "north's pusher alive again" is "[True, True]" status '[s["alive"] for s in j["stages"] if s["name"] == "pusher"]'
wait_until "the audit is complete: nothing waits in the outbox" 20 is 0 status 'j["outbox"]'
check "no stretch of the audit was lost" is 0 count_events 'e.get("kind") == "audit_gap"'
check "the audit has the north renewal" is 1 audit "SELECT count (*) >= 1 FROM event WHERE seq > $events_before AND kind = 'applied' AND device = 'north1'"
check "the seqs have no hole" is 1 audit 'SELECT max (seq) - min (seq) + 1 = count (*) FROM event'
check "neither pusher got the other's device, after all that" sh -c "
    ! grep -q unknown_device '$CS_TMP/pusher.log' '$CS_TMP/north-north.log' && ! grep -q 'device=north' '$CS_TMP/pusher.log'"
finish
