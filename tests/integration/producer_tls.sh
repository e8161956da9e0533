#!/usr/bin/env bash
# The producer verifies Cardskipper's certificate: an untrusted one is refused
# (a clear error, not a retry loop), and ca_file makes a private CA trusted.
set -u
. "$(dirname "$0")/lib/common.sh"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1" -keyout "$CS_TMP/key.pem" -out "$CS_TMP/cert.pem" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$port" -cert "$CS_TMP/cert.pem" -key "$CS_TMP/key.pem" -www -quiet \
        > "$CS_TMP/s_server.log" 2>&1 &
_pids+=($!)
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

mkdir -p "$CS_TMP/run"
export CARDSYNC_CARDSKIPPER_PASSWORD=secret
write () {
    cat > "$CS_TMP/cardsync.ini" <<INI
[cardskipper]
url = https://127.0.0.1:$port
username = api@club.example
organisation_ids = 1234
timeout = 5s
$1
[device door1]
url = http://127.0.0.1:9
username = admin
[pipeline]
run_dir = $CS_TMP/run
state_dir = $CS_TMP/state
INI
}
write ""
run "$(cs_bin producer)" --config "$CS_TMP/cardsync.ini" --check
expect_rc 69 "an untrusted certificate"
expect_out "the server's certificate is not trusted; see [cardskipper] ca_file" "says why and what to set"
write "ca_file = $CS_TMP/cert.pem"
run "$(cs_bin producer)" --config "$CS_TMP/cardsync.ini" --check
# trusted now: the TLS handshake works and the (non-Cardskipper) server's answer is judged
expect_no "not trusted" "ca_file makes it trusted"
expect_out "the answer is not a Cardskipper document" "reached the server over TLS and judged its answer"
finish
