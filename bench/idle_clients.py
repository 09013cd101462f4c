#!/usr/bin/env python3
"""Opens N idle client connections to a PostgreSQL-speaking server and holds them.

Each connection (over TLS with --tls: SSLRequest, then a handshake that verifies nothing, as
sslmode=require) sends a StartupMessage, answers a cleartext, MD5 or SCRAM-SHA-256 password
request if asked, and waits for ReadyForQuery; then all of them stay idle. When they are all up, the script prints
"ready <ok> <failed>" on stdout and holds them until stdin closes or --hold seconds pass.
Used by `make bench` to measure the pooler's memory per idle client. Loopback only.
"""
import argparse
import base64
import hashlib
import hmac
import os
import selectors
import socket
import ssl
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


def sasl_message(payload, mechanism=None):
    """SASLInitialResponse (with a mechanism) or SASLResponse ('p' messages)."""
    if mechanism is not None:
        payload = mechanism + b"\0" + struct.pack("!I", len(payload)) + payload
    return b"p" + struct.pack("!I", len(payload) + 4) + payload


class Scram:
    """Client side of one SCRAM-SHA-256 exchange (RFC 5802/7677, no channel binding)."""

    # PBKDF2 is the costly part and every login of a user sees the same salt: derive it once.
    salted_cache = {}

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18))
        self.first_bare = b"n=,r=" + self.nonce

    def first(self):
        return sasl_message(b"n,," + self.first_bare, b"SCRAM-SHA-256")

    def final(self, server_first):
        attrs = dict(kv.split(b"=", 1) for kv in server_first.split(b","))
        salt, iters = base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
        key = (self.password, salt, iters)
        if key not in Scram.salted_cache:
            Scram.salted_cache[key] = hashlib.pbkdf2_hmac("sha256", self.password, salt, iters)
        client_key = hmac.new(Scram.salted_cache[key], b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = b"c=biws,r=" + attrs[b"r"]
        auth_message = self.first_bare + b"," + server_first + b"," + without_proof
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return sasl_message(without_proof + b",p=" + base64.b64encode(proof))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--password", default="")
    ap.add_argument("--db", default="postgres")
    ap.add_argument("--hold", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--tls", action="store_true")
    a = ap.parse_args()
    tls = None
    if a.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    sel = selectors.DefaultSelector()
    conns = {}
    a.scram = {}  # socket -> Scram while its exchange is in progress
    ok = failed = 0
    deadline = time.monotonic() + a.timeout
    for _ in range(a.n):
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            if tls is not None:
                s = encrypt(s, tls)
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


def encrypt(s, tls):
    """SSLRequest, 'S', then the handshake (blocking, within the socket's timeout)."""
    s.sendall(struct.pack("!II", 8, 80877103))
    if s.recv(1) != b"S":
        s.close()
        raise OSError("the server refused TLS")
    return tls.wrap_socket(s)


def step(sel, conns, s, a, ok, failed):
    try:
        data = s.recv(65536)
    except ssl.SSLWantReadError:
        return ok, failed  # a TLS record not complete yet
    except OSError:
        data = b""
    if not data:
        sel.unregister(s)
        del conns[s]
        a.scram.pop(s, None)
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
            elif req == 10:  # AuthenticationSASL: mechanism list
                a.scram[s] = Scram(a.password)
                s.send(a.scram[s].first())
            elif req == 11:  # AuthenticationSASLContinue: server-first-message
                s.send(a.scram[s].final(body[4:]))
            elif req == 12:  # AuthenticationSASLFinal (the server signature is not checked)
                a.scram.pop(s, None)
        elif typ == b"Z":
            sel.unregister(s)
            conns[s] = b""
            return ok + 1, failed
        elif typ == b"E":
            sel.unregister(s)
            del conns[s]
            a.scram.pop(s, None)
            s.close()
            return ok, failed + 1
    conns[s] = buf
    return ok, failed


if __name__ == "__main__":
    main()
