#!/usr/bin/env bash
# The window in a real browser (headless Chromium through Selenium): the
# overview, the devices page and a member page render what the pipeline knows
# (checked in the DOM, with screenshots kept in build/test-output/web_browser);
# a write that failed while a door was down is replayed by clicking its
# button, and reaches the door; the live page shows a new event as it
# happens; a form posted without its token is refused.
set -u
. "$(dirname "$0")/lib/common.sh"

OUT=${CS_TEST_OUT:-$PWD/build/test-output}/web_browser
rm -rf "$OUT"
mkdir -p "$OUT"
python3 - "$CS_TMP" <<'PY'
import datetime, json, sys
t = datetime.date.today()
d = lambda n: (t + datetime.timedelta(days=n)).isoformat()
m = lambda omid, email, first, end: {"omid": omid, "first": first, "last": "Berg", "email": email,
    "changed": "2025-01-01T00:00:00", "roles": [{"org": 1234, "role": 3126, "start": d(-20), "end": d(end)}]}
json.dump([m(6001, "asa@example.se", "Åsa", 60), m(6002, "erik@example.se", "Erik", 30),
           m(6003, "nils@example.se", "Nils", 90)], open(sys.argv[1] + "/m.json", "w"))
p = lambda no, tag, end: {"employeeNo": no, "name": "P " + no, "PersonInfoExtends": [{"value": tag}],
    "Valid": {"enable": True, "beginTime": d(-20) + "T00:00:00", "endTime": d(end) + "T23:59:59"}}
json.dump([p("6001", "asa@example.se", 60), p("6002", "erik@example.se", 30)], open(sys.argv[1] + "/p.json", "w"))
PY
start_cardskipper_sim --members-file "$CS_TMP/m.json"
start_isapi_sim --device door1:0 --device door2:0 --password 'Br-1'
check "seed door1" scripts/isapi-ctl seed door1 "$CS_TMP/p.json"
check "seed door2" scripts/isapi-ctl seed door2 "$CS_TMP/p.json"
export CARDSYNC_DEVICE_DOOR1_PASSWORD='Br-1' CARDSYNC_DEVICE_DOOR2_PASSWORD='Br-1'
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_config --poll 1s door1 door2 -- "[sync]
max_retry_age = 3s
[web]
listen = 127.0.0.1:$PORT"
start_pipeline
"$CS_BIN/cardsync-auditor" --config "$CS_CONFIG" serve > "$CS_TMP/serve.log" 2>&1 &
_pids+=($!)
URL=http://127.0.0.1:$PORT
wait_until "the window answers" 15 curl -sf "$URL/api/status"
wait_until "all well" 30 sh -c "curl -s $URL/api/status | grep -q '\"attention\":\[\]'"

# a renewal while door2 is down: it fails there after max_retry_age
ERIK_TO=$(DAY 400)
check "door2 down" scripts/isapi-ctl fault door2 down=true
check "Erik renews" scripts/cardskipper-ctl extend --email erik@example.se --end "$ERIK_TO"
failed_one () { [ "$(audit "SELECT count (*) FROM event WHERE kind = 'failed' AND email = 'erik@example.se'")" -ge 1 ]; }
wait_until "the write to door2 fails" 40 failed_one
check "door2 back" scripts/isapi-ctl fault door2 down=false

# a form posted without its token is refused, and changes nothing
check "a POST without the token: 403" is 403 curl -s -o /dev/null -w '%{http_code}' -X POST -d all=1 "$URL/replay"
check "with a session but a wrong token: 403" is 403 curl -s -o /dev/null -w '%{http_code}' \
    -b "cs_session=0123456789abcdef0123456789abcdef" -d "all=1&csrf=00" "$URL/replay"
check "nothing replayed" is 0 audit "SELECT count (*) FROM event WHERE kind = 'replay'"

start=$(date +%s)
check "the browser's checks" timeout 120 /usr/bin/python3 - "$URL" "$OUT" "$(DAY 60)T23:59:59" "$ERIK_TO" "$(DAY 500)" <<'PY'
import subprocess, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, out, asa_end, erik_to, asa_renewed = sys.argv[1:6]
o = Options()
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
    o.add_argument(a)
o.binary_location = "/usr/bin/chromium"
b = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
wait = WebDriverWait(b, 20)
try:
    b.get(url + "/")
    verdict = b.find_element(By.ID, "verdict").text
    assert "attention" in verdict, verdict          # Erik's failure is in the failed queue
    devs = [r.get_attribute("data-device") for r in b.find_elements(By.CSS_SELECTOR, "#devices tr[data-device]")]
    assert devs == ["door1", "door2"], devs
    assert "1 failed" in b.find_element(By.ID, "targets").text, b.find_element(By.ID, "targets").text
    b.save_screenshot(out + "/overview.png")

    b.get(url + "/devices")
    rows = {r.get_attribute("data-device"): [c.text for c in r.find_elements(By.TAG_NAME, "td")]
            for r in b.find_elements(By.CSS_SELECTOR, "#devices tr[data-device]")}
    assert rows["door1"][1] == "ok" and rows["door1"][2].startswith("2 "), rows
    assert rows["door2"][4] == "1" and rows["door1"][4] == "0", rows      # failed, per door
    b.save_screenshot(out + "/devices.png")

    b.get(url + "/member?email=ASA@example.se")
    ends = {r.get_attribute("data-device"): r.find_element(By.CLASS_NAME, "end").text
            for r in b.find_elements(By.CSS_SELECTOR, "table.persons tr[data-device]")}
    assert ends == {"door1": asa_end, "door2": asa_end}, ends
    assert "Åsa Berg" in b.find_element(By.CLASS_NAME, "member").text
    assert len(b.find_elements(By.CSS_SELECTOR, "#history tr")) >= 2
    b.save_screenshot(out + "/member.png")

    b.get(url + "/failed")
    row = b.find_element(By.CSS_SELECTOR, "#failed tr[data-id]")
    assert "erik@example.se" in row.text and "door2" in row.text, row.text
    row.find_element(By.NAME, "replay").click()
    flash = wait.until(lambda d: d.find_elements(By.ID, "flash"))[0].text
    assert flash.startswith("Replayed: 1 re-sent"), flash
    b.save_screenshot(out + "/replayed.png")

    b.get(url + "/live")
    rows = lambda: [r.text for r in b.find_elements(By.CSS_SELECTOR, "#events tr")[1:]]
    assert any("cycle" in r for r in rows()), rows()          # rendered by the server
    wait.until(lambda d: d.find_element(By.ID, "stream").text.startswith("live:"))
    assert not any(asa_renewed in r for r in rows())
    subprocess.run(["scripts/cardskipper-ctl", "extend", "--email", "asa@example.se", "--end", asa_renewed],
                   check=True, stdout=subprocess.DEVNULL)
    wait.until(lambda d: sum(asa_renewed in r and "applied" in r for r in rows()) == 2)   # both doors, live
    b.save_screenshot(out + "/live.png")

    # the replay went through and door2 answers again: the overview says so
    for _ in range(40):
        b.get(url + "/")
        if b.find_element(By.ID, "verdict").text.startswith("All well"):
            break
        time.sleep(0.5)
    assert b.find_element(By.ID, "verdict").text.startswith("All well"), b.find_element(By.ID, "verdict").text
    b.save_screenshot(out + "/overview-all-well.png")
finally:
    b.quit()
PY
echo "the browser took $(( $(date +%s) - start )) s"
check "the replay reached door2" is "${ERIK_TO}T23:59:59" valid_until door2 6002
check "screenshots kept" test -s "$OUT/overview.png" -a -s "$OUT/devices.png" -a -s "$OUT/member.png"
finish
