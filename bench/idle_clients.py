#!/usr/bin/env python3
"""Opens N idle client connections to a PostgreSQL-speaking server and holds them.

Each connection sends a StartupMessage, answers a cleartext/MD5 password request if asked, and
waits for ReadyForQuery; then all of them stay idle. When they are all up, the script prints
"ready <ok> <failed>" on stdout and holds them until stdin closes or --hold seconds pass.
Used by `make bench` to measure the pooler's memory per idle client. Loopback only.
"""
import argparse
import hashlib
import selectors
import socket
import struct
import sys
import time


def startup(user, db):
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", db)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def password_message(user, password, req, body):
    if req == 3:
        pw = password.encode()
    else:  # 5: md5
        inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
        pw = b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode()
    payload = pw + b"\0"
    return b"p" + struct.pack("!I", len(payload) + 4) + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--password", default="")
    ap.add_argument("--db", default="postgres")
    ap.add_argument("--hold", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    sel = selectors.DefaultSelector()
    conns = {}
    ok = failed = 0
    deadline = time.monotonic() + a.timeout
    for _ in range(a.n):
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
        except OSError:
            failed += 1
            continue
        s.setblocking(False)
        s.send(startup(a.user, a.db))
        conns[s] = b""
        sel.register(s, selectors.EVENT_READ)
        # Drain answers as we go so the pooler's queues stay short.
        for key, _ in sel.select(timeout=0):
            ok, failed = step(sel, conns, key.fileobj, a, ok, failed)
    while ok + failed < a.n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            ok, failed = step(sel, conns, key.fileobj, a, ok, failed)
    print("ready %d %d" % (ok, a.n - ok), flush=True)
    end = time.monotonic() + a.hold
    sel2 = selectors.DefaultSelector()
    try:
        sel2.register(sys.stdin, selectors.EVENT_READ)
    except (PermissionError, ValueError):
        sel2 = None  # stdin is /dev/null or a file: hold for --hold seconds
    while time.monotonic() < end:
        if sel2 is None:
            time.sleep(0.5)
        elif sel2.select(timeout=0.5) and not sys.stdin.readline():
            break
    for s in list(conns):
        s.close()


def step(sel, conns, s, a, ok, failed):
    try:
        data = s.recv(65536)
    except OSError:
        data = b""
    if not data:
        sel.unregister(s)
        del conns[s]
        return ok, failed + 1
    buf = conns[s] + data
    while len(buf) >= 5:
        typ, ln = buf[0:1], struct.unpack("!I", buf[1:5])[0]
        if len(buf) < ln + 1:
            break
        body, buf = buf[5:ln + 1], buf[ln + 1:]
        if typ == b"R":
            req = struct.unpack("!I", body[:4])[0]
            if req in (3, 5):
                s.send(password_message(a.user, a.password, req, body))
        elif typ == b"Z":
            sel.unregister(s)
            conns[s] = b""
            return ok + 1, failed
        elif typ == b"E":
            sel.unregister(s)
            del conns[s]
            s.close()
            return ok, failed + 1
    conns[s] = buf
    return ok, failed


if __name__ == "__main__":
    main()
