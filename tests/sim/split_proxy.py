#!/usr/bin/env python3
"""A device that answers in two TCP segments, for tests and benchmarks.

Many embedded web servers (and Python's http.server) write an answer's head
and body in two writes, with Nagle's algorithm on. On a kept-alive connection
the body then waits until the client ACKs the head, and a client in delayed-ACK
mode sends that ACK only after ~40 ms. libmicrohttpd (isapi-sim) never does
this, so this proxy sits in front of an isapi-sim device and does: each
answer's head, then its body, as two separate writes, TCP_NODELAY off.

usage: split_proxy.py --to PORT [--to PORT ...] [--port-file F]
Listens on 127.0.0.1, one port for each --to (in order), and writes the ports
to F one a line. Only 127.0.0.1: it is a test tool.
"""
import argparse
import os
import socket
import sys
import threading


def read_head(sock, buf):
    """Reads until the end of an HTTP head; returns (head, rest) or (None, buf)."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    end = buf.index(b"\r\n\r\n") + 4
    return buf[:end], buf[end:]


def body_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def answers(upstream, client):
    """Device to client: each answer's head and body in two writes."""
    buf = b""
    try:
        while True:
            head, buf = read_head(upstream, buf)
            if head is None:
                break
            n = body_length(head)
            if n is None:                       # no length: as it comes
                client.sendall(head)
                if buf:
                    client.sendall(buf)
                    buf = b""
                continue
            while len(buf) < n:
                data = upstream.recv(65536)
                if not data:
                    break
                buf += data
            body, buf = buf[:n], buf[n:]
            client.sendall(head)                # one segment ...
            if body:
                client.sendall(body)            # ... and, after the head's ACK, another
    except OSError:
        pass
    finally:
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def requests(client, upstream):
    """Client to device, unchanged."""
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            upstream.sendall(data)
    except OSError:
        pass
    finally:
        try:
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(listener, port):
    while True:
        client, _ = listener.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        try:
            upstream = socket.create_connection(("127.0.0.1", port))
        except OSError:
            client.close()
            continue
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=requests, args=(client, upstream), daemon=True).start()
        threading.Thread(target=answers, args=(upstream, client), daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--to", type=int, action="append", required=True, metavar="PORT",
                    help="an isapi-sim device port on 127.0.0.1")
    ap.add_argument("--port-file", help="write the listening ports here, one a line")
    args = ap.parse_args()
    ports = []
    for to in args.to:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        ports.append(listener.getsockname()[1])
        threading.Thread(target=serve, args=(listener, to), daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(f"{p}\n" for p in ports))
        os.rename(tmp, args.port_file)
    else:
        print(" ".join(map(str, ports)), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
