#!/usr/bin/env python3
"""A local HTTP endpoint for the alert tests (a webhook, a dead-man ping).
Listens on 127.0.0.1 only. Every request it answers becomes DIR/NNNN.json:
method, path, headers, body (text), when it arrived, the status it got.
How it answers is read from DIR/mode at each request: "ok" (the default,
200), "fail" (503) or "hang" (holds the request 8 s, then 503: a slow endpoint
that is down).

  http_sink.py --dir DIR --port-file F
"""
import argparse
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sink_store

args = None


def mode():
    try:
        with open(os.path.join(args.dir, "mode")) as f:
            return f.read().strip() or "ok"
    except OSError:
        return "ok"


def save(record):
    sink_store.save(args.dir, record)


class Handler(BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        m = mode()
        if m == "hang":
            time.sleep(8)
        status = 503 if m in ("fail", "hang") else 200
        save({"method": self.command, "path": self.path, "headers": dict(self.headers),
              "body": body, "at": time.time(), "status": status})
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_HEAD = answer

    def log_message(self, *a):
        pass


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port-file", required=True)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.serve_forever()


main()
