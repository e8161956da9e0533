# Helpers for the integration tests (sourced). Each test is a bash script that
# exits 0 when every expectation held; `finish` reports the count.
cd "$(dirname "${BASH_SOURCE[0]}")/../../.." || exit 1
CS_BIN=${CS_BIN:-$PWD/bin}
read -r -a CS_WRAP <<< "${CS_TEST_WRAP:-}"
_failures=0
_checks=0
_out=$(mktemp)
_err=$(mktemp)

cs_bin () {
    echo "$CS_BIN/cardsync-$1"
}

# run CMD...: runs it (under valgrind for make memcheck), keeping rc, stdout, stderr.
run () {
    "${CS_WRAP[@]}" "$@" >"$_out" 2>"$_err"
    rc=$?
}

_fail () {
    _failures=$((_failures + 1))
    echo "FAILED: $*"
    echo "  stdout: $(head -c 2000 "$_out")"
    echo "  stderr: $(head -c 2000 "$_err")"
}

expect_rc () {
    _checks=$((_checks + 1))
    [ "$rc" = "$1" ] || _fail "$2: exit $rc, expected $1"
}

expect_out () {
    _checks=$((_checks + 1))
    grep -qF -- "$1" "$_out" || _fail "$2: stdout lacks '$1'"
}

expect_err () {
    _checks=$((_checks + 1))
    grep -qF -- "$1" "$_err" || _fail "$2: stderr lacks '$1'"
}

expect_no () {
    _checks=$((_checks + 1))
    ! grep -qF -- "$1" "$_out" "$_err" || _fail "$2: output has '$1'"
}

finish () {
    echo "$_checks checks, $_failures failed"
    [ "$_failures" = 0 ]
}

# --- simulators ------------------------------------------------------------
CS_TMP=$(mktemp -d)
_pids=()
_cleanup () {
    local p
    for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${_pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$CS_TMP" "$_out" "$_err"
}
trap _cleanup EXIT

# _wait_file FILE LINES: until FILE has LINES lines (10 s at most).
_wait_file () {
    local i
    for i in $(seq 1 200); do
        [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    echo "timed out waiting for $1"
    return 1
}

# start_cardskipper_sim ARGS...: sets CS_API (base URL) and CARDSKIPPER_SIM_CONTROL.
start_cardskipper_sim () {
    local pf=$CS_TMP/cardskipper.ports
    rm -f "$pf"
    "$CS_BIN/cardskipper-sim" --port-file "$pf" "$@" >"$CS_TMP/cardskipper-sim.log" 2>&1 &
    _pids+=($!)
    _wait_file "$pf" 2 || { cat "$CS_TMP/cardskipper-sim.log"; exit 1; }
    CS_API=http://127.0.0.1:$(sed -n 1p "$pf")
    export CARDSKIPPER_SIM_CONTROL=http://127.0.0.1:$(sed -n 2p "$pf")
}

# start_isapi_sim --device NAME:0[:PROFILE] ...: sets DEV_URL[NAME] and ISAPI_SIM_CONTROL.
declare -A DEV_URL
start_isapi_sim () {
    local pf=$CS_TMP/isapi.ports
    rm -f "$pf"
    local names=() a
    for a in "$@"; do
        case "$a" in --device) ;; *:*) names+=("${a%%:*}") ;; esac
    done
    "$CS_BIN/isapi-sim" --port-file "$pf" "$@" >"$CS_TMP/isapi-sim.log" 2>&1 &
    _pids+=($!)
    _wait_file "$pf" $((${#names[@]} + 1)) || { cat "$CS_TMP/isapi-sim.log"; exit 1; }
    local i=1 n
    for n in "${names[@]}"; do
        DEV_URL[$n]=http://127.0.0.1:$(sed -n ${i}p "$pf")
        i=$((i + 1))
    done
    export ISAPI_SIM_CONTROL=http://127.0.0.1:$(sed -n ${i}p "$pf")
}

# device_sections NAME...: a config's [device NAME] sections for the simulated
# doors started by start_isapi_sim (their url, user admin, defaults otherwise).
device_sections () {
    local n
    for n in "$@"; do
        printf '[device %s]\nurl = %s\nusername = admin\n' "$n" "${DEV_URL[$n]}"
    done
}

# start_smtp_sink ARGS...: tests/sim/smtp_sink.py; mails land in $CS_TMP/mail.
# Sets SMTP_PORT (pass --port N to reuse one) and SMTP_PID.
start_smtp_sink () {
    local pf=$CS_TMP/smtp.port
    rm -f "$pf"
    python3 tests/sim/smtp_sink.py --dir "$CS_TMP/mail" --port-file "$pf" "$@" \
        >>"$CS_TMP/smtp-sink.log" 2>&1 &
    SMTP_PID=$!
    _pids+=($SMTP_PID)
    _wait_file "$pf" 1 || { cat "$CS_TMP/smtp-sink.log"; exit 1; }
    SMTP_PORT=$(cat "$pf")
}

# check NAME COMMAND...: an expectation that is a command's success.
check () {
    local name=$1
    shift
    _checks=$((_checks + 1))
    if ! "$@" >"$CS_TMP/check.out" 2>&1; then
        _failures=$((_failures + 1))
        echo "FAILED: $name"
        sed 's/^/  /' "$CS_TMP/check.out" | head -20
    fi
}

# json_get EXPR: evaluates a Python expression over the JSON on stdin (as j).
json_get () {
    python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

# --- supervisord -------------------------------------------------------------
# start_group CONFIG [STARTSECS]: the cardsync group under supervisord, from
# scripts/supervisord.conf, with its files in $CS_TMP/sup. Sets SUPCONF.
start_group () {
    local dir=$CS_TMP/sup
    mkdir -p "$dir"
    SUPCONF=$dir/supervisord.conf
    sed -e "s#@ROOT@/bin/#$CS_BIN/#g" -e "s#@STATE@#$dir#g" -e "s#@CONFIG@#$1#g" \
        -e "s#@AUTOSTART@#true#g" -e "s#@WEB_AUTOSTART@#false#g" -e "s#startsecs = 2#startsecs = ${2:-2}#" \
        scripts/supervisord.conf > "$SUPCONF"
    supervisord -c "$SUPCONF" > "$dir/supervisord.out" 2>&1 &
    _pids+=($!)
    for _ in $(seq 1 100); do
        supervisorctl -c "$SUPCONF" status >/dev/null 2>&1 && return 0
        [ $? = 3 ] && return 0        # some programs not running yet: still up
        sleep 0.1
    done
    echo "supervisord did not start"; cat "$dir/supervisord.out"
    return 1
}
sup () { supervisorctl -c "$SUPCONF" "$@"; }

# --- the pipeline: one config, one launch, one wait --------------------------------
# write_config [--poll D] [--full D] [--orgs LIST] [--all-members] [--cardskipper KEYS] [--pipeline KEYS]
#              [--device KEYS] DEVICE... [-- SECTIONS]
# writes $CS_TMP/cardsync.ini (sets CS_CONFIG) for the simulators started: the
# Cardskipper simulator, the named doors (user admin; each one's password from
# CARDSYNC_DEVICE_<NAME>_PASSWORD), run and state in $CS_TMP. KEYS are more
# lines for [cardskipper], [pipeline] or every [device]; SECTIONS (after --) are whole
# sections appended as they are ([sync], [auditor], [notify] ...).
write_config () {
    local poll=1s full=1h orgs=1234 active=true devices=() extra="" csk="" dev="" pl="" n
    while [ $# -gt 0 ]; do
        case "$1" in
            --poll) poll=$2; shift 2 ;;
            --full) full=$2; shift 2 ;;
            --orgs) orgs=$2; shift 2 ;;
            --all-members) active=false; shift ;;
            --cardskipper) csk=$2; shift 2 ;;
            --device) dev=$2; shift 2 ;;
            --pipeline) pl=$2; shift 2 ;;
            --) extra=$2; shift 2 ;;
            *) devices+=("$1"); shift ;;
        esac
    done
    CS_CONFIG=$CS_TMP/cardsync.ini
    {
        printf '[cardskipper]\nurl = %s\nusername = api@club.example\norganisation_ids = %s\n' "$CS_API" "$orgs"
        printf 'only_active = %s\npoll_interval = %s\nfull_interval = %s\n' "$active" "$poll" "$full"
        [ -n "$csk" ] && printf '%s\n' "$csk"
        printf '[pipeline]\nrun_dir = %s/run\nstate_dir = %s/state\n' "$CS_TMP" "$CS_TMP"
        [ -n "$pl" ] && printf '%s\n' "$pl"
        for n in "${devices[@]}"; do
            device_sections "$n"
            [ -n "$dev" ] && printf '%s\n' "$dev"
        done
        [ -n "$extra" ] && printf '%s\n' "$extra"
    } > "$CS_CONFIG"
    export CARDSYNC_CARDSKIPPER_PASSWORD=${CARDSYNC_CARDSKIPPER_PASSWORD:-secret}
}

# start_pipeline [PROG[:ARGS]...]: the programs (default: all four, the auditor
# first) on $CS_CONFIG, each logging to $CS_TMP/PROG.log; PID[PROG] is its pid.
declare -A PID
start_pipeline () {
    local progs=("$@") p args
    [ ${#progs[@]} -eq 0 ] && progs=(auditor differ pusher producer)
    for p in "${progs[@]}"; do
        args=${p#*:}; [ "$args" = "$p" ] && args=""
        p=${p%%:*}
        # shellcheck disable=SC2086
        "$CS_BIN/cardsync-$p" --config "$CS_CONFIG" $args >> "$CS_TMP/$p.log" 2>&1 &
        PID[$p]=$!
        _pids+=($!)
    done
}

# stop_pipeline [PROG...]: SIGTERM, and wait until each has exited.
stop_pipeline () {
    local progs=("$@") p
    [ ${#progs[@]} -eq 0 ] && progs=(producer pusher differ auditor)
    for p in "${progs[@]}"; do [ -n "${PID[$p]:-}" ] && kill "${PID[$p]}" 2>/dev/null; done
    for p in "${progs[@]}"; do [ -n "${PID[$p]:-}" ] && wait "${PID[$p]}" 2>/dev/null; PID[$p]=""; done
}

# wait_until NAME SECONDS COMMAND...: an expectation that COMMAND succeeds
# within SECONDS; on failure, the programs' last log lines.
wait_until () {
    local name=$1 secs=$2 p
    shift 2
    _checks=$((_checks + 1))
    local deadline=$(( $(date +%s) + secs ))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        [ "$(date +%s)" -ge "$deadline" ] && break
        sleep 0.2
    done
    _failures=$((_failures + 1))
    echo "FAILED: $name (after ${secs}s: $("$@" 2>&1 | head -c 300))"
    for p in producer differ pusher auditor; do
        [ -f "$CS_TMP/$p.log" ] && tail -3 "$CS_TMP/$p.log"
    done
    return 1
}

# is WANT COMMAND...: COMMAND prints exactly WANT (for wait_until and check).
is () {
    local got
    got=$("${@:2}" 2>&1)
    [ "$got" = "$1" ] || { echo "got '$got', want '$1'"; return 1; }
}

# DAY N: today + N days, YYYY-MM-DD.
DAY () { date -d "today $1 days" +%F; }

# audit SQL: a query on audit.db, which operators may read (README).
audit () { sqlite3 "$CS_TMP/state/audit.db" "$1" 2>/dev/null; }

# person DEV EMPLOYEENO EXPR: EXPR over the door's record of the person (as u).
person () {
    scripts/isapi-ctl user "$1" "$2" 2>/dev/null | python3 -c "import json,sys; u=json.load(sys.stdin); print($3)"
}
valid_until () { person "$1" "$2" 'u["Valid"]["endTime"]'; }
device_writes () { scripts/isapi-ctl stats "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["writes"])'; }

# status EXPR: EXPR over `cardsync-auditor status --json` (as j).
status () {
    "$CS_BIN/cardsync-auditor" --config "$CS_CONFIG" status --json 2>/dev/null \
        | python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

# events [TAIL-ARGS...]: the audit's events as JSON lines (`auditor tail --json -n 0`
# prints none; this prints them all).
events () { "$CS_BIN/cardsync-auditor" --config "$CS_CONFIG" tail --json -n 1000000 "$@"; }
# count_events PYTHON-CONDITION [TAIL-ARGS...]: how many events satisfy the condition (as e).
count_events () {
    local cond=$1
    shift
    events "$@" | python3 -c "import json,sys; print(sum(1 for l in sys.stdin if (lambda e: $cond)(json.loads(l))))"
}

# rescan DEV: asks the running pusher to scan a door now (as the differ does).
rescan () {
    echo "{\"t\":\"command\",\"id\":$RANDOM,\"dev\":\"$1\",\"op\":\"scan\"}" \
        | "$CS_BIN/msgdump" --send "ipc://$CS_TMP/run/pusher.in"
}
