"""Prints the TCP options of another process's sockets, as that process set them.

Usage: sockopts.py PID PORT...

Each socket of PID whose local or remote TCP port is one of PORT is copied into this process
with pidfd_getfd(2) (allowed for a child of the caller's user) and read with getsockopt.
One JSON object per socket on stdout: the ports, whether it listens, and the options.
"""

import ctypes
import json
import os
import socket
import sys

SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438
TCP_LISTEN = "0A"

libc = ctypes.CDLL(None, use_errno=True)


def syscall(number, *args):
    result = libc.syscall(number, *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def socket_fds(pid):
    """fd -> socket inode, for every socket fd of pid."""
    fds = {}
    base = f"/proc/{pid}/fd"
    for name in os.listdir(base):
        try:
            target = os.readlink(f"{base}/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            fds[int(name)] = int(target[len("socket:[") : -1])
    return fds


def tcp_sockets(pid):
    """inode -> (local port, remote port, listening), from pid's network namespace."""
    table = {}
    for name in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{name}") as f:
            next(f)
            for line in f:
                cols = line.split()
                local = int(cols[1].rsplit(":", 1)[1], 16)
                remote = int(cols[2].rsplit(":", 1)[1], 16)
                table[int(cols[9])] = (local, remote, cols[3] == TCP_LISTEN)
    return table


def options(sock):
    tcp = socket.IPPROTO_TCP
    sol = socket.SOL_SOCKET
    return {
        "nodelay": sock.getsockopt(tcp, socket.TCP_NODELAY),
        "user_timeout_ms": sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT),
        "keepalive": sock.getsockopt(sol, socket.SO_KEEPALIVE),
        "keepidle": sock.getsockopt(tcp, socket.TCP_KEEPIDLE),
        "keepintvl": sock.getsockopt(tcp, socket.TCP_KEEPINTVL),
        "keepcnt": sock.getsockopt(tcp, socket.TCP_KEEPCNT),
        "reuseport": sock.getsockopt(sol, socket.SO_REUSEPORT),
    }


def main():
    pid = int(sys.argv[1])
    ports = {int(p) for p in sys.argv[2:]}
    tcp = tcp_sockets(pid)
    pidfd = syscall(SYS_PIDFD_OPEN, pid, 0)
    try:
        for fd, inode in sorted(socket_fds(pid).items()):
            if inode not in tcp:
                continue
            local, remote, listening = tcp[inode]
            if local not in ports and remote not in ports:
                continue
            copy = syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
            sock = socket.socket(fileno=copy)
            try:
                row = {"local": local, "remote": remote, "listen": listening}
                row.update(options(sock))
            finally:
                sock.close()
            print(json.dumps(row), flush=True)
    finally:
        os.close(pidfd)


if __name__ == "__main__":
    main()
