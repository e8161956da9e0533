#!/usr/bin/env bash
# cardskipper-sim against curl -u: Basic auth, routes, strict request
# validation, the filters (OnlyActive, RoleId, ChangedAt, organisations),
# the attribute-based response, the fault knobs and the generator.
set -u
. "$(dirname "$0")/lib/common.sh"

start_cardskipper_sim --members-file tests/fixtures/members.json --today 2025-09-15 \
                      --user api@club.example --password 'pä$$ word'
CTL=scripts/cardskipper-ctl
CREDS='api@club.example:pä$$ word'

# cs METHOD PATH [BODY] [CURL ARGS...]: sets http and curl_rc; body in $CS_TMP/body
cs () {
    local method=$1 path=$2 body=${3:-}
    shift 3 2>/dev/null || shift $#
    local args=(-s -o "$CS_TMP/body" -D "$CS_TMP/headers" -w '%{http_code}' -X "$method")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/xml; charset=utf-8' --data-binary "$body")
    http=$(curl "${args[@]}" "$@" "$CS_API$path")
    curl_rc=$?
}
expect_http () {
    _checks=$((_checks + 1))
    [ "$http" = "$2" ] || { _failures=$((_failures + 1)); echo "FAILED: $1: HTTP $http, want $2: $(head -c 300 "$CS_TMP/body")"; }
}
crit () {   # crit 'CRITERIA XML': the documented request form
    printf '<Cardskipper xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n  <SearchCriteriaMember>\n    %s\n  </SearchCriteriaMember>\n</Cardskipper>' "$1"
}
export_of () {   # export_of 'CRITERIA' [CURL ARGS] -> summary JSON in $CS_TMP/sum
    local c=$1
    shift
    cs POST /Member/Export "$(crit "$c")" -u "$CREDS" "$@"
    python3 tests/integration/lib/export_summary.py < "$CS_TMP/body" > "$CS_TMP/sum"
}
omids () { json_get '" ".join(str(o) for o in j["omids"])' < "$CS_TMP/sum"; }
same () {   # same NAME GOT WANT
    _checks=$((_checks + 1))
    [ "$2" = "$3" ] || { _failures=$((_failures + 1)); echo "FAILED: $1: got '$2', want '$3'"; }
}

# --- authentication ------------------------------------------------------------
cs GET /Organisation/Info
expect_http "no credentials" 401
check "Basic challenge" grep -qi 'WWW-Authenticate: Basic realm="Cardskipper"' "$CS_TMP/headers"
cs GET /Organisation/Info "" -u 'api@club.example:wrong'
expect_http "wrong password" 401
cs POST /Member/Export "$(crit '<OrganisationId value="1234"/>')" -u 'api@club.example:wrong'
expect_http "export with a wrong password" 401

# --- routes ---------------------------------------------------------------------
cs GET /Organisation/Info "" -u "$CREDS"
expect_http "organisation info" 200
check "info lists organisation 1234, its roles and child" python3 -c '
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
o = [o for o in r.iter("Organisation") if o.get("Id") == "1234"][0]
assert o.get("Name") == "Föreningen Exempel"
assert {x.get("Id") for x in o.iter("Role")} == {"3126", "3127", "3128"}
assert [c.get("Id") for c in o.iter("CardskipperOrganisationChildren")] == ["1240"]
' "$CS_TMP/body"
cs GET /organisation/INFO/ "" -u "$CREDS"
expect_http "case-insensitive route with a trailing slash" 200
cs GET /Member/Export "" -u "$CREDS"
expect_http "GET on Member/Export" 405
cs GET /Member/Nothing "" -u "$CREDS"
expect_http "unknown path" 404
cs GET /Basedata/Country "" -u "$CREDS"
expect_http "base data" 200

# --- request validation -------------------------------------------------------------
cs POST /Member/Export '<SearchCriteriaMember><OrganisationId>1234</OrganisationId><OnlyActive>true</OnlyActive></SearchCriteriaMember>' -u "$CREDS"
expect_http "the seeds' element-text form" 400
cs POST /Member/Export "$(crit '<OnlyActive value="true"/>')" -u "$CREDS"
expect_http "OrganisationId missing" 400
check "says why" grep -q "OrganisationId is required" "$CS_TMP/body"
cs POST /Member/Export "$(crit '<OrganisationId value="1234"/><OnlyActive value="maybe"/>')" -u "$CREDS"
expect_http "bad boolean" 400
cs POST /Member/Export "$(crit '<OrganisationId value="1234"/><OnlyActive/>')" -u "$CREDS"
expect_http "criterion without a value" 400
cs POST /Member/Export "$(crit '<OrganisationId value="1234"/><Shoesize value="44"/>')" -u "$CREDS"
expect_http "unknown criterion" 400
cs POST /Member/Export "$(crit '<OrganisationId value="1234"/><ChangedAt value="yesterday"/>')" -u "$CREDS"
expect_http "bad date" 400
cs POST /Member/Export '<Cardskipper><SearchCriteriaMember>' -u "$CREDS"
expect_http "not well-formed" 400
cs POST /Member/Export '<!DOCTYPE Cardskipper [<!ENTITY x "1234">]><Cardskipper><SearchCriteriaMember><OrganisationId value="&x;"/></SearchCriteriaMember></Cardskipper>' -u "$CREDS"
expect_http "DOCTYPE refused" 400
cs POST /Member/Export "" -u "$CREDS" -H 'Content-Type: text/plain' --data-binary "$(crit '<OrganisationId value="1234"/>')"
expect_http "text/plain refused" 415
cs POST /Member/Export "" -u "$CREDS" -H 'Content-Type:' --data-binary "$(crit '<OrganisationId value="1234"/><OnlyActive value="True"/>')"
expect_http "no Content-Type, .NET-style True" 200
cs POST /Member/Export '   <Cardskipper><SearchCriteriaMember><OrganisationId value="1234"/><OnlyActive value="1"/></SearchCriteriaMember></Cardskipper>' -u "$CREDS"
expect_http "no namespaces, leading blanks, 1 for true" 200
cs POST /Member/Export/ "$(printf '<?xml version="1.0" encoding="utf-8"?>\n%s' "$(crit '<OrganisationId value="1234"/>')")" -u "$CREDS"
expect_http "declaration and trailing slash" 200

# --- filters and the response ---------------------------------------------------------
export_of '<OrganisationId value="1234"/>'
same "full export: every member of 1234, by id" "$(omids)" "1001 1002 1003 1004 1005 1006 1007 1008 1010 1011 1012 1013 3000000001"
export_of '<OrganisationId value="1234"/><OnlyActive value="true"/>'
same "OnlyActive (today 2025-09-15, end == today counts)" "$(omids)" "1001 1002 1003 1007 1010 1011 1012 1013 3000000001"
export_of '<OrganisationId value="1234"/><RoleId value="3128"/><OnlyActive value="true"/>'
same "RoleId" "$(omids)" "1011 1012"
export_of '<OrganisationId value="1234"/><RoleId value="3126"/><OnlyActive value="true"/>'
same "RoleId with only an expired role of it" "$(omids)" "1001 1002 1007 1010 3000000001"
export_of '<OrganisationId value="1234"/><ChangedAt value="2025-09-01T00:00:00"/>'
same "ChangedAt" "$(omids)" "1002 3000000001"
export_of '<OrganisationId value="1240"/>'
same "the child organisation" "$(omids)" "1009 1010"
same "only that organisation's roles" "$(json_get 'j["members"]["1010"]["roles"]' < "$CS_TMP/sum")" "[['4001', '2025-06-01T00:00:00', '2026-05-31T00:00:00', None]]"
export_of '<OrganisationId value="2000"/>'
same "an organisation without members" "$(json_get '(j["has_members"], j["omids"])' < "$CS_TMP/sum")" "(True, [])"
check "empty Members element" grep -q '<Members/>' "$CS_TMP/body"

export_of '<OrganisationId value="1234"/>'
same "Swedish letters" "$(json_get 'j["members"]["1001"]["first"] + " " + j["members"]["1001"]["last"]' < "$CS_TMP/sum")" "Åsa Öberg-Ståhl"
same "an & in a name" "$(json_get 'j["members"]["1003"]["last"]' < "$CS_TMP/sum")" "Bröderna Lind & Co"
check "escaped in the XML" grep -q 'Lastname="Bröderna Lind &amp; Co"' "$CS_TMP/body"
same "no ContactInfo" "$(json_get 'j["members"]["1003"]["contact"]' < "$CS_TMP/sum")" "False"
same "a phone but no e-mail" "$(json_get '(j["members"]["1002"]["phone"], j["members"]["1002"]["email"])' < "$CS_TMP/sum")" "('+45 70 111 222', None)"
same "e-mail as stored, blanks and case included" "$(json_get 'repr(j["members"]["1007"]["email"])' < "$CS_TMP/sum")" "' Today.Ends@Example.SE '"
same "Inactive attribute" "$(json_get 'j["members"]["1006"]["inactive"]' < "$CS_TMP/sum")" "true"
same "role dates and Type" "$(json_get 'j["members"]["1003"]["roles"]' < "$CS_TMP/sum")" "[['3127', '2025-01-01T00:00:00', '2025-12-31T00:00:00', 'Ungdom']]"
check "xsi and xsd declarations" grep -q 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' "$CS_TMP/body"
check "XML content type" grep -qi 'Content-Type: application/xml; charset=utf-8' "$CS_TMP/headers"

# --- permissions ------------------------------------------------------------------------
check "forbid org 1240" $CTL fault 'forbidden_orgs=[1240]'
export_of '<OrganisationId value="1240"/>'
expect_http "forbidden organisation" 403
export_of '<OrganisationId value="99"/>'
expect_http "unknown organisation" 403
check "no export right" $CTL fault forbid_export=true
export_of '<OrganisationId value="1234"/>'
expect_http "no API right for the export" 403
check "reset faults" $CTL reset-faults

# --- faults -------------------------------------------------------------------------------
check "one 503" $CTL fault fail_status=503 fail_count=1
export_of '<OrganisationId value="1234"/>'
expect_http "forced 503" 503
export_of '<OrganisationId value="1234"/>'
expect_http "then fine again" 200
check "HTML 500s" $CTL fault fail_status=500 html_errors=true
export_of '<OrganisationId value="1234"/>'
expect_http "forced 500" 500
check "as an HTML page" grep -qi 'Content-Type: text/html' "$CS_TMP/headers"
check "429" $CTL fault fail_status=429 html_errors=false
cs GET /Organisation/Info "" -u "$CREDS"
expect_http "forced 429" 429
check "reset" $CTL reset-faults
check "BOM" $CTL fault bom=true
export_of '<OrganisationId value="1234"/>'
check "starts with a BOM" bash -c "head -c 3 '$CS_TMP/body' | od -An -tx1 | grep -q 'ef bb bf'"
check "date-only dates" $CTL fault bom=false date_format=date
export_of '<OrganisationId value="1234"/>'
check "date only" grep -q 'StartDate="2025-01-01" EndDate="2025-10-01"' "$CS_TMP/body"
for f in fraction zulu offset; do
    $CTL fault date_format=$f >/dev/null
    export_of '<OrganisationId value="1234"/>'
    case $f in fraction) want='EndDate="2025-10-01T00:00:00.0000000"' ;; zulu) want='EndDate="2025-10-01T00:00:00Z"' ;; offset) want='EndDate="2025-10-01T00:00:00+01:00"' ;; esac
    check "date format $f" grep -q "$want" "$CS_TMP/body"
done
check "omit empty" $CTL fault date_format=midnight omit_empty_members=true
export_of '<OrganisationId value="2000"/>'
same "no Members element at all" "$(json_get 'j["has_members"]' < "$CS_TMP/sum")" "False"
check "empty export" $CTL fault omit_empty_members=false empty=true
export_of '<OrganisationId value="1234"/>'
same "an empty export" "$(omids)" ""
check "truncated" $CTL fault empty=false truncate_after=700
export_of '<OrganisationId value="1234"/>'
same "the connection drops mid-body (curl 18)" "$curl_rc" 18
check "what arrived is not a document" bash -c "! python3 tests/integration/lib/export_summary.py < '$CS_TMP/body' >/dev/null"
check "stalled" $CTL fault truncate_after=-1 stall_after=400 stall_ms=3000
export_of '<OrganisationId value="1234"/>' --max-time 1
same "a stalled stream times out (curl 28)" "$curl_rc" 28
check "reset" $CTL reset-faults

# --- changes from the control port -----------------------------------------------------------
check "renewal" $CTL extend --omid 1001 --end 2025-11-01
export_of '<OrganisationId value="1234"/><OnlyActive value="true"/>'
same "the new end date" "$(json_get 'j["members"]["1001"]["roles"][0][2]' < "$CS_TMP/sum")" "2025-11-01T00:00:00"
export_of '<OrganisationId value="1234"/><ChangedAt value="2026-01-01T00:00:00"/>'
same "changed now" "$(omids)" "1001"
check "renewal bought in advance" $CTL extend --email family@example.se --start 2026-01-01 --end 2026-12-31 --org 1234
export_of '<OrganisationId value="1234"/>'
same "a second role" "$(json_get 'len(j["members"]["1012"]["roles"])' < "$CS_TMP/sum")" "2"
check "criteria recorded" bash -c "$CTL stats | grep -q '\"OrganisationId\": \"1234\"'"
check "requests counted" bash -c "$CTL stats | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j[\"requests\"][\"POST /member/export\"] > 20, j'"
check "delete" $CTL delete 1004
export_of '<OrganisationId value="1234"/>'
check "deleted member gone" bash -c "! echo '$(omids)' | grep -qw 1004"

# --- the generator ----------------------------------------------------------------------------
check "generate" $CTL generate 3000 42
export_of '<OrganisationId value="1234"/>'
check "generated data is realistic" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
ms = j["members"].values()
n = len(j["omids"])
no_mail = sum(1 for m in ms if not m["email"])
emails = [m["email"].strip().lower() for m in ms if m["email"]]
dups = len(emails) - len(set(emails))
big = sum(1 for o in j["omids"] if o > 2**31)
swedish = sum(1 for m in ms if any(c in m["first"] + m["last"] for c in "åäöÅÄÖ"))
amp = sum(1 for m in ms if "&" in m["last"])
messy = sum(1 for m in ms if m["email"] and (m["email"] != m["email"].strip() or m["email"] != m["email"].lower()))
multi = sum(1 for m in ms if len(m["roles"]) > 1)
assert n > 2500, n
assert 0.01 * n < no_mail < 0.05 * n, no_mail
assert dups > 10 and big > 5 and swedish > n / 4 and amp > 2 and messy > 20 and multi > 100, (dups, big, swedish, amp, messy, multi)
assert j["omids"] == sorted(j["omids"])
' "$CS_TMP/sum"

finish
