#!/usr/bin/env bash
# isapi-sim against a client nobody here wrote: curl --digest.
# Paging across 95 users under both page caps, every write and its error
# bodies, format=json, the lockout sequence, concurrency and down faults.
set -u
. "$(dirname "$0")/lib/common.sh"

start_isapi_sim --device door1:0 --device door2:0:old --password 'S3cret!' --seed 7
PW='S3cret!'
CTL=scripts/isapi-ctl

# isapi DEV METHOD PATH [BODY] [USER:PASS]: sets http (status) and curl_rc; body in $CS_TMP/body
isapi () {
    local url=${DEV_URL[$1]}$3 creds=${5:-admin:$PW}
    local args=(-s -o "$CS_TMP/body" -D "$CS_TMP/headers" -w '%{http_code}' --digest -u "$creds"
                -X "$2" -H 'Content-Type: application/json')
    [ -n "${4:-}" ] && args+=(--data-binary "$4")
    http=$(curl "${args[@]}" "$url")
    curl_rc=$?
}
body_has () { grep -qF -- "$1" "$CS_TMP/body"; }
expect () {     # expect NAME HTTP TEXT...
    local name=$1 want=$2
    shift 2
    _checks=$((_checks + 1))
    local ok=1 t
    [ "$http" = "$want" ] || ok=0
    for t in "$@"; do body_has "$t" || ok=0; done
    if [ $ok = 0 ]; then
        _failures=$((_failures + 1))
        echo "FAILED: $name: HTTP $http (want $want); body: $(head -c 600 "$CS_TMP/body")"
    fi
}
user_json () {  # user_json NO END [NAME]
    printf '{"UserInfo":{"employeeNo":"%s","name":"%s","userType":"normal","Valid":{"enable":true,"beginTime":"2025-01-01T00:00:00","endTime":"%s","timeType":"local"},"doorRight":"1","RightPlan":[{"doorNo":1,"planTemplateNo":"1"}],"PersonInfoExtends":[{"value":"m%s@example.se"}]}}' "$1" "${3:-Member $1}" "$2" "$1"
}
SEARCH=/ISAPI/AccessControl/UserInfo/Search?format=json

# --- seed 95 persons on both devices ---------------------------------------
python3 -c '
import json
print(json.dumps([{"employeeNo": str(1000 + i), "name": "Person %d" % i,
                   "Valid": {"enable": True, "beginTime": "2025-01-01T00:00:00",
                             "endTime": "2026-01-01T23:59:59"}} for i in range(95)]))' > "$CS_TMP/users.json"
check "seed door1" $CTL seed door1 "$CS_TMP/users.json"
check "seed door2" $CTL seed door2 "$CS_TMP/users.json"

# --- discovery --------------------------------------------------------------
isapi door1 GET /ISAPI/System/deviceInfo
expect "deviceInfo" 200 "<model>DS-K1T342MFX-E1</model>" "<deviceType>ACS</deviceType>"
check "realm is the model" grep -qiE 'WWW-Authenticate: Digest .*realm="DS-K1T342MFX-E1"' "$CS_TMP/headers"
check "qop auth (no algorithm: MD5)" grep -qiE 'WWW-Authenticate: Digest qop="auth", realm=".*", nonce="[0-9a-f]{32}", stale="FALSE"' "$CS_TMP/headers"
isapi door2 GET "/ISAPI/AccessControl/UserInfo/capabilities?format=json"
expect "capabilities (old)" 200 '"maxResults":{"@min":1,"@max":10}' '"maxRecordNum":3000'
isapi door1 GET "/ISAPI/AccessControl/UserInfo/Count?format=json"
expect "count" 200 '"userNumber":95'

# --- paging: cap 30, silently --------------------------------------------------
pos=0; seen=0; pages=0
while :; do
    isapi door1 POST "$SEARCH" "{\"UserInfoSearchCond\":{\"searchID\":\"1\",\"searchResultPosition\":$pos,\"maxResults\":50}}"
    [ "$http" = 200 ] || break
    n=$(json_get 'j["UserInfoSearch"]["numOfMatches"]' < "$CS_TMP/body")
    st=$(json_get 'j["UserInfoSearch"]["responseStatusStrg"]' < "$CS_TMP/body")
    tot=$(json_get 'j["UserInfoSearch"]["totalMatches"]' < "$CS_TMP/body")
    json_get '"\n".join(u["employeeNo"] for u in j["UserInfoSearch"].get("UserInfo", []))' < "$CS_TMP/body" >> "$CS_TMP/seen1"
    pages=$((pages + 1)); seen=$((seen + n)); pos=$((pos + n))
    [ "$st" = MORE ] || break
    [ $pages -lt 20 ] || break
done
check "cap 30: 4 pages" test "$pages" = 4
check "cap 30: 95 seen, total 95" test "$seen:$tot" = 95:95
check "cap 30: each once" test "$(sort -u "$CS_TMP/seen1" | grep -c .)" = 95
check "cap 30: last page OK" test "$st" = OK

# --- paging: cap 10, strict -----------------------------------------------------
isapi door2 POST "$SEARCH" '{"UserInfoSearchCond":{"searchID":"1","searchResultPosition":0,"maxResults":30}}'
expect "cap 10: 30 refused" 400 '"subStatusCode":"badParameters"' '"errorCode":1610612737' '"errorMsg":"maxResults"'
pos=0; pages=0
while :; do
    isapi door2 POST "$SEARCH" "{\"UserInfoSearchCond\":{\"searchID\":\"7\",\"searchResultPosition\":$pos,\"maxResults\":10}}"
    n=$(json_get 'j["UserInfoSearch"]["numOfMatches"]' < "$CS_TMP/body")
    st=$(json_get 'j["UserInfoSearch"]["responseStatusStrg"]' < "$CS_TMP/body")
    json_get '"\n".join(u["employeeNo"] for u in j["UserInfoSearch"].get("UserInfo", []))' < "$CS_TMP/body" >> "$CS_TMP/seen2"
    pages=$((pages + 1)); pos=$((pos + n))
    [ "$st" = MORE ] || break
    [ $pages -lt 20 ] || break
done
check "cap 10: 10 pages, 95 once" test "$pages:$(sort -u "$CS_TMP/seen2" | grep -c .)" = 10:95

# --- NO MATCH, search conditions -------------------------------------------------
isapi door1 POST "$SEARCH" '{"UserInfoSearchCond":{"searchID":"1","searchResultPosition":0,"maxResults":30,"EmployeeNoList":[{"employeeNo":"nobody"}]}}'
expect "no match" 200 '"responseStatusStrg":"NO MATCH"' '"numOfMatches":0'
check "no match: no UserInfo key" bash -c "! grep -q '\"UserInfo\"' '$CS_TMP/body'"
isapi door1 POST "$SEARCH" '{"UserInfoSearchCond":{"searchID":"1","searchResultPosition":95,"maxResults":30}}'
expect "past the end" 200 '"responseStatusStrg":"NO MATCH"'
isapi door1 POST "$SEARCH" '{"UserInfoSearchCond":{"searchID":"1","searchResultPosition":0,"maxResults":30,"EmployeeNoList":[{"employeeNo":"1003"},{"employeeNo":"1090"}]}}'
expect "by employeeNo" 200 '"numOfMatches":2' '"employeeNo":"1003"' '"employeeNo":"1090"'
isapi door1 POST "$SEARCH" '{"UserInfoSearchCond":{"searchID":"6f1c2d3e-aaaa-bbbb-cccc-123456789abc","searchResultPosition":0,"maxResults":30}}'
expect "UUID searchID refused" 400 '"errorMsg":"searchID"'
isapi door1 POST "$SEARCH" '{"UserInfoSearchCond":{"searchResultPosition":0,"maxResults":30}}'
expect "searchID required" 400 '"subStatusCode":"MessageParametersLack"' '"errorMsg":"searchID"'
isapi door1 GET "$SEARCH"
expect "GET on Search" 404

# --- format=json ------------------------------------------------------------------
isapi door1 POST /ISAPI/AccessControl/UserInfo/Search '{"UserInfoSearchCond":{"searchID":"1","searchResultPosition":0,"maxResults":30}}'
expect "format=json missing" 400 '"statusCode":5' '"subStatusCode":"badJsonFormat"' '"errorCode":1342177282'

# --- writes ---------------------------------------------------------------------
REC=/ISAPI/AccessControl/UserInfo/Record?format=json
MOD=/ISAPI/AccessControl/UserInfo/Modify?format=json
SET=/ISAPI/AccessControl/UserInfo/SetUp?format=json
DEL=/ISAPI/AccessControl/UserInfo/Delete?format=json
isapi door1 POST "$REC" "$(user_json 2001 2025-11-01T23:59:59 'Åsa Öberg-Ståhl')"
expect "record" 200 '"statusCode":1' '"subStatusCode":"ok"'
check "record stored" bash -c "$CTL user door1 2001 | grep -q '\"endTime\": \"2025-11-01T23:59:59\"'"
check "record echoes defaults" bash -c "$CTL user door1 2001 | grep -q '\"gender\": \"unknown\"'"
isapi door1 POST "$REC" "$(user_json 2001 2025-11-01T23:59:59)"
expect "record twice" 400 '"statusCode":6' '"subStatusCode":"employeeNoAlreadyExist"' '"errorCode":1610637344' '"errorMsg":"checkUser"'
isapi door1 PUT "$MOD" "$(user_json 2001 2025-12-01T23:59:59)"
expect "modify" 200 '"statusCode":1'
check "modify stored" bash -c "$CTL user door1 2001 | grep -q '2025-12-01T23:59:59'"
isapi door1 PUT "$MOD" "$(user_json 2999 2025-12-01T23:59:59)"
expect "modify absent" 400 '"subStatusCode":"employeeNoNotExist"' '"errorCode":1610637343'
isapi door1 PUT "$MOD" "$(user_json 2998 2025-12-01T23:59:59 | sed 's/"userType"/"addUser":true,"userType"/')"
expect "modify absent with addUser" 200 '"statusCode":1'
isapi door1 PUT "$SET" "$(user_json 2997 2025-12-01T23:59:59)"
expect "setup creates" 200 '"statusCode":1'
isapi door1 PUT "$SET" "$(user_json 2997 2026-02-01T23:59:59)"
expect "setup updates" 200 '"statusCode":1'
check "setup stored" bash -c "$CTL user door1 2997 | grep -q '2026-02-01T23:59:59'"
isapi door1 PUT "$SET" "$(user_json 2997 2026-02-01T23:59:59 | sed 's/"userType"/"deleteUser":true,"userType"/')"
expect "setup deletes" 200 '"statusCode":1'
isapi door1 PUT "$DEL" '{"UserInfoDelCond":{"EmployeeNoList":[{"employeeNo":"2998"}]}}'
expect "delete" 200 '"statusCode":1'
check "deleted" bash -c "! $CTL user door1 2998 2>/dev/null"
isapi door1 POST "$MOD" "$(user_json 2001 2025-12-01T23:59:59)"
expect "POST on Modify" 403 '"statusCode":4' '"subStatusCode":"methodNotAllowed"'

# validation errors, each with the device's own words
isapi door1 PUT "$MOD" "$(user_json 2001 2024-12-31T23:59:59)"
expect "end before begin" 400 '"statusCode":4' '"subStatusCode":"invalidOperation"' '"errorCode":1073741830'
isapi door1 PUT "$MOD" "$(user_json 2001 2025-12-01T23:59:59+01:00)"
expect "zone suffix" 400 '"subStatusCode":"timeFormatError"' '"errorMsg":"endTime"'
isapi door1 PUT "$MOD" "$(user_json 2001 2038-01-19T03:14:07)"
expect "beyond 2037" 400 '"subStatusCode":"beyondARGSRangeLimit"'
isapi door1 POST "$REC" "$(user_json a-b 2025-12-01T23:59:59)"
expect "dash in employeeNo" 400 '"subStatusCode":"badJsonContent"' 'the parameter content of the node is wrong.employeeNo'
long=$(printf 'x%.0s' $(seq 1 129))
isapi door1 POST "$REC" "$(user_json 2100 2025-12-01T23:59:59 "$long")"
expect "long name" 400 '"subStatusCode":"nameIsOverlong"' '"errorCode":1610612765'
isapi door1 POST "$REC" '{"UserInfo":{"employeeNo":"2101","userType":"normal"}}'
expect "Valid missing" 400 '"subStatusCode":"MessageParametersLack"' '"errorMsg":"Valid"'
isapi door1 POST "$REC" '{"UserInfo":{"employeeNo":"2102","userType":"boss","Valid":{"enable":true,"beginTime":"2025-01-01T00:00:00","endTime":"2025-02-01T00:00:00"}}}'
expect "bad userType" 400 '"subStatusCode":"badParameters"' '"errorMsg":"userType"'
isapi door1 POST "$REC" '{"UserInfo": {"employeeNo": '
expect "broken JSON" 400 '"subStatusCode":"badJsonFormat"'
check "capacity set" $CTL fault door1 capacity=96
isapi door1 POST "$REC" "$(user_json 2103 2025-12-01T23:59:59)"
expect "device full" 400 '"subStatusCode":"deviceUserFull"' '"errorCode":1610641408'
check "errors as HTTP 200" $CTL fault door1 errors_200=true
isapi door1 POST "$REC" "$(user_json 2001 2025-12-01T23:59:59)"
expect "already exists, HTTP 200 style" 200 '"subStatusCode":"employeeNoAlreadyExist"'
check "reset door1" $CTL reset door1

check "writes counted" bash -c "test \"\$($CTL stats door1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"writes\"])')\" = 7"

# --- lockout ------------------------------------------------------------------------
check "short lockout" $CTL fault door2 lockout_s=2
for i in 1 2 3 4; do
    isapi door2 GET /ISAPI/System/deviceInfo "" admin:wrong
    expect "bad login $i" 401 "<retryLoginTime>$((5 - i))</retryLoginTime>" '<lockStatus>unlock</lockStatus>'
done
isapi door2 GET /ISAPI/System/deviceInfo "" admin:wrong
expect "fifth bad login locks" 401 '<lockStatus>lock</lockStatus>' '<unlockTime>2</unlockTime>' '<retryLoginTime>0</retryLoginTime>'
isapi door2 GET /ISAPI/System/deviceInfo
expect "locked: even the right password" 401 '<lockStatus>lock</lockStatus>'
check "stats: 5 bad logins, 1 lockout" bash -c "$CTL stats door2 | python3 -c 'import json,sys; j=json.load(sys.stdin); assert (j[\"bad_logins\"], j[\"lockouts\"]) == (5, 1), j'"
sleep 2.5
isapi door2 GET /ISAPI/System/deviceInfo
expect "after the lock time" 200 '<model>DS-K1T8003MF</model>'

# --- concurrency, down, busy ---------------------------------------------------------
check "slow and single" $CTL fault door1 max_concurrent=1 latency_ms=400
par=()
for i in 1 2 3; do
    curl -s -o /dev/null -w '%{http_code}\n' --digest -u "admin:$PW" "${DEV_URL[door1]}/ISAPI/System/deviceInfo" >> "$CS_TMP/par" &
    par+=($!)
done
wait "${par[@]}"
check "extras get a 401 without a challenge" bash -c "$CTL stats door1 | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j[\"plain_401\"] >= 1 and j[\"max_concurrency\"] >= 2, j'"
check "reset door1 again" $CTL reset door1
check "down" $CTL fault door1 down=true
isapi door1 GET /ISAPI/System/deviceInfo
check "connection refused while down" test "$curl_rc" = 7
check "up" $CTL fault door1 down=false
isapi door1 GET /ISAPI/System/deviceInfo
expect "back up" 200 "<model>"
check "always busy" $CTL fault door1 busy_rate=1.0
isapi door1 GET "/ISAPI/AccessControl/UserInfo/Count?format=json"
expect "deviceBusy" 503 '"statusCode":2' '"subStatusCode":"deviceBusy"'
check "always failing" $CTL fault door1 busy_rate=0 error_rate=1.0
isapi door1 GET "/ISAPI/AccessControl/UserInfo/Count?format=json"
check "5xx injected" bash -c "[ $http = 500 ] || [ $http = 503 ]"
check "reset door1 at the end" $CTL reset door1

# --- a reboot: refused, then 401s without a challenge, then normal ------------------
check "reboot" $CTL fault door1 reboot_s=1 storm_s=1
isapi door1 GET /ISAPI/System/deviceInfo
check "refused while rebooting" test "$curl_rc" = 7
sleep 1.3
isapi door1 GET /ISAPI/System/deviceInfo
expect "a 401 storm after the reboot" 401 "Unauthorized"
check "without a challenge" bash -c "! grep -qi 'WWW-Authenticate' '$CS_TMP/headers'"
sleep 1.2
isapi door1 GET /ISAPI/System/deviceInfo
expect "then normal" 200 "<model>"

# --- the control port's view -----------------------------------------------------------
check "stats per endpoint and method" bash -c "$CTL stats door1 | grep -q '\"POST /ISAPI/AccessControl/UserInfo/Search\": [1-9]'"
check "drift by hand" $CTL set-user door1 1000 Valid.endTime=2030-01-01T23:59:59
check "drift stored" bash -c "$CTL user door1 1000 | grep -q 2030-01-01T23:59:59"

finish
