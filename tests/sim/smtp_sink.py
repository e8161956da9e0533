#!/usr/bin/env python3
"""A local SMTP server for the tests: EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL,
RCPT, DATA, RSET, NOOP, QUIT. Listens on 127.0.0.1 only. Every message it
accepts becomes DIR/NNNN.json: envelope, the login used, whether TLS was on,
when it arrived and the message text.

  smtp_sink.py --dir DIR --port-file F [--port N] [--cert C --key K]
               [--require-tls] [--user U --password P]
"""
import argparse
import base64
import os
import socket
import socketserver
import ssl
import sys
import time

import sink_store

args = None


def save(record):
    sink_store.save(args.dir, record)


class Session(socketserver.StreamRequestHandler):
    def send(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(4096)
        if not line:
            raise EOFError
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        self.tls = False
        self.user = None
        self.reset()
        self.send("220 127.0.0.1 cardsync test sink")
        try:
            while True:
                line = self.readline()
                verb = line.split(" ", 1)[0].upper()
                arg = line[len(verb):].strip()
                if not self.command(verb, arg):
                    return
        except (EOFError, ConnectionError, ssl.SSLError):
            return

    def reset(self):
        self.sender = None
        self.rcpt = []

    def command(self, verb, arg):
        if verb in ("EHLO", "HELO"):
            lines = ["250-127.0.0.1"]
            if args.cert and not self.tls:
                lines.append("250-STARTTLS")
            if args.user and (self.tls or not args.require_tls):
                lines.append("250-AUTH PLAIN LOGIN")
            lines.append("250 8BITMIME")
            for l in lines:
                self.send(l)
        elif verb == "STARTTLS" and args.cert and not self.tls:
            self.send("220 ready for TLS")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
            conn = ctx.wrap_socket(self.connection, server_side=True)
            self.connection = self.request = conn
            self.rfile = conn.makefile("rb")
            self.wfile = conn.makefile("wb")
            self.tls = True
            self.reset()
        elif verb == "AUTH":
            parts = arg.split()
            mech = parts[0].upper() if parts else ""
            if mech == "PLAIN":
                blob = parts[1] if len(parts) > 1 else (self.send("334 ") or self.readline())
                fields = base64.b64decode(blob).split(b"\0")
                user, password = fields[1].decode(), fields[2].decode()
            elif mech == "LOGIN":
                self.send("334 VXNlcm5hbWU6")
                user = base64.b64decode(self.readline()).decode()
                self.send("334 UGFzc3dvcmQ6")
                password = base64.b64decode(self.readline()).decode()
            else:
                self.send("504 unknown mechanism")
                return True
            if (user, password) == (args.user, args.password):
                self.user = user
                self.send("235 authenticated")
            else:
                self.send("535 authentication failed")
        elif verb == "MAIL":
            if args.require_tls and not self.tls:
                self.send("530 Must issue a STARTTLS command first")
            elif args.user and not self.user:
                self.send("530 authentication required")
            else:
                self.sender = arg.split(":", 1)[1].strip().strip("<>").split(">")[0]
                self.send("250 ok")
        elif verb == "RCPT":
            if self.sender is None:
                self.send("503 MAIL first")
            else:
                self.rcpt.append(arg.split(":", 1)[1].strip().strip("<>").split(">")[0])
                self.send("250 ok")
        elif verb == "DATA":
            if not self.rcpt:
                self.send("503 RCPT first")
                return True
            self.send("354 end with .")
            lines = []
            while True:
                l = self.readline()
                if l == ".":
                    break
                lines.append(l[1:] if l.startswith("..") else l)
            save({"from": self.sender, "to": self.rcpt, "user": self.user, "tls": self.tls,
                  "time": time.time(), "data": "\n".join(lines)})
            self.send("250 queued")
            self.reset()
        elif verb == "RSET":
            self.reset()
            self.send("250 ok")
        elif verb == "NOOP":
            self.send("250 ok")
        elif verb == "QUIT":
            self.send("221 bye")
            return False
        else:
            self.send("502 not implemented")
        return True


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    global args
    p = argparse.ArgumentParser(description="a local SMTP sink for the tests")
    p.add_argument("--dir", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    srv = Server(("127.0.0.1", args.port), Session)
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
