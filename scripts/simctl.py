"""Shared plumbing of scripts/cardskipper-ctl and scripts/isapi-ctl: JSON over
HTTP to a simulator's control port (127.0.0.1 only)."""
import json
import os
import sys
import urllib.error
import urllib.request


def control_url(arg, env_name):
    url = arg or os.environ.get(env_name, "")
    if not url:
        sys.exit(f"give --control URL|PORT or set {env_name}")
    if url.isdigit():
        url = f"http://127.0.0.1:{url}"
    return url.rstrip("/")


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            text = json.loads(text).get("error", text)
        except ValueError:
            pass
        sys.exit(f"{method} {path}: {e.code}: {text}")
    except urllib.error.URLError as e:
        sys.exit(f"cannot reach the simulator at {base}: {e.reason}")


def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def assignments(items):
    """key=value items as a dict; dotted keys nest (Valid.endTime=...)."""
    out = {}
    for item in items:
        if "=" not in item:
            sys.exit(f"expected key=value, not '{item}'")
        key, value = item.split("=", 1)
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parse_value(value)
    return out


def read_json(path):
    if path == "-":
        return json.load(sys.stdin)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def show(value):
    json.dump(value, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
