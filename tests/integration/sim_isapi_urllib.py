"""isapi-sim against Python's standard urllib Digest handler (a client nobody
here wrote): paging across 95 users under both page caps, a write and its
error body, and the lockout as urllib meets it."""
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CS_BIN", os.path.join(ROOT, "bin"))
failures = []
checks = 0


def check(name, cond, detail=""):
    global checks
    checks += 1
    if not cond:
        failures.append(name)
        print(f"FAILED: {name} {detail}")


def opener(url, user, password):
    mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    mgr.add_password(None, url, user, password)
    return urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(mgr))


def call(op, url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with op.open(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def control(ctl, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(ctl + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read().decode())


def page_all(op, url, page):
    seen, pos, pages = [], 0, 0
    while pages < 30:
        status, text = call(op, url + "/ISAPI/AccessControl/UserInfo/Search?format=json", "POST",
                            {"UserInfoSearchCond": {"searchID": "1", "searchResultPosition": pos,
                                                    "maxResults": page}})
        if status != 200:
            return None, f"HTTP {status}: {text}"
        s = json.loads(text)["UserInfoSearch"]
        pages += 1
        seen += [u["employeeNo"] for u in s.get("UserInfo", [])]
        pos += s["numOfMatches"]
        if s["responseStatusStrg"] != "MORE":
            return (seen, pages, s["totalMatches"]), ""
    return None, "too many pages"


def main():
    tmp = tempfile.mkdtemp()
    ports_file = os.path.join(tmp, "ports")
    sim = subprocess.Popen([os.path.join(BIN, "isapi-sim"), "--device", "new:0",
                            "--device", "old:0:old", "--port-file", ports_file,
                            "--password", "pw-123"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(ports_file) and len(open(ports_file).read().split()) == 3:
                break
            time.sleep(0.05)
        new, old, ctl = ["http://127.0.0.1:" + p for p in open(ports_file).read().split()]
        users = [{"employeeNo": str(5000 + i), "name": f"U{i}"} for i in range(95)]
        control(ctl, "POST", "/devices/new/users", users)
        control(ctl, "POST", "/devices/old/users", users)

        op = opener(new, "admin", "pw-123")
        result, why = page_all(op, new, 30)
        check("cap 30 pages", result is not None, why)
        if result:
            seen, pages, total = result
            check("cap 30: 95 once, 4 pages", (len(set(seen)), len(seen), pages, total) == (95, 95, 4, 95),
                  str((len(seen), pages, total)))
        op_old = opener(old, "admin", "pw-123")
        result, why = page_all(op_old, old, 10)
        check("cap 10 pages", result is not None, why)
        if result:
            seen, pages, total = result
            check("cap 10: 95 once, 10 pages", (len(set(seen)), pages) == (95, 10), str((len(seen), pages)))
        status, text = call(op_old, old + "/ISAPI/AccessControl/UserInfo/Search?format=json", "POST",
                            {"UserInfoSearchCond": {"searchID": "1", "searchResultPosition": 0,
                                                    "maxResults": 30}})
        check("cap 10: 30 is a 400", status == 400 and '"badParameters"' in text, f"{status} {text}")

        user = {"UserInfo": {"employeeNo": "5001", "userType": "normal",
                             "Valid": {"enable": True, "beginTime": "2025-01-01T00:00:00",
                                       "endTime": "2025-11-01T23:59:59", "timeType": "local"}}}
        status, text = call(op, new + "/ISAPI/AccessControl/UserInfo/Modify?format=json", "PUT", user)
        check("modify via urllib", status == 200 and '"statusCode":1' in text, text)
        stored = control(ctl, "GET", "/devices/new/users/5001")
        check("modify stored", stored["Valid"]["endTime"] == "2025-11-01T23:59:59", str(stored))
        status, text = call(op, new + "/ISAPI/AccessControl/UserInfo/Record?format=json", "POST", user)
        body = json.loads(text)
        check("record twice via urllib", status == 400 and body["subStatusCode"] == "employeeNoAlreadyExist"
              and body["errorCode"] == 1610637344, text)

        # urllib answers each fresh challenge again (up to 5 times in one call), so
        # a single call with a wrong password is enough to lock a device out
        bad = opener(new, "admin", "nope")
        status, text = call(bad, new + "/ISAPI/System/deviceInfo")
        check("a wrong password is a 401", status == 401, str(status))
        stats = control(ctl, "GET", "/devices/new/stats")
        check("locked after five bad logins", (stats["bad_logins"], stats["lockouts"]) == (5, 1),
              str(stats))
        status, text = call(op, new + "/ISAPI/System/deviceInfo")
        check("locked out with the right password", status == 401, str(status))
        plain = urllib.request.build_opener()
        status, text = call(plain, new + "/ISAPI/System/deviceInfo")
        check("the lock body", status == 401 and "<lockStatus>lock</lockStatus>" in text
              and "<retryLoginTime>0</retryLoginTime>" in text, text)
        # a nonce past its lifetime: 401 with stale=TRUE and the JSON body, by hand
        control(ctl, "POST", "/devices/old/faults", {"nonce_lifetime_s": 1})
        port = int(old.rsplit(":", 1)[1])
        path = "/ISAPI/System/deviceInfo"

        def digest_get(nonce, nc):
            ha1 = hashlib.md5(b"admin:DS-K1T8003MF:pw-123").hexdigest()
            ha2 = hashlib.md5(f"GET:{path}".encode()).hexdigest()
            resp = hashlib.md5(f"{ha1}:{nonce}:{nc:08x}:abc:auth:{ha2}".encode()).hexdigest()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", path, headers={"Authorization":
                      f'Digest username="admin", realm="DS-K1T8003MF", nonce="{nonce}", uri="{path}", '
                      f'response="{resp}", qop=auth, nc={nc:08x}, cnonce="abc"'})
            r = c.getresponse()
            out = r.status, r.getheader("WWW-Authenticate", ""), r.read().decode()
            c.close()
            return out

        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", path)
        r = c.getresponse()
        challenge = r.getheader("WWW-Authenticate")
        r.read()
        c.close()
        nonce = challenge.split('nonce="')[1].split('"')[0]
        status, _, text = digest_get(nonce, 1)
        check("a fresh nonce works", status == 200 and "<model>DS-K1T8003MF" in text, f"{status} {text}")
        status, _, _ = digest_get(nonce, 2)
        check("and again with the next nc", status == 200, str(status))
        time.sleep(1.3)
        status, header, text = digest_get(nonce, 3)
        check("a retired nonce is refused", status == 401 and 'stale="TRUE"' in header
              and '"subStatusCode":"invalidOperation"' in text, f"{status} {header} {text}")
        stats = control(ctl, "GET", "/devices/old/stats")
        check("which is not a bad login", stats["bad_logins"] == 0, str(stats))
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print(f"{checks} checks, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
