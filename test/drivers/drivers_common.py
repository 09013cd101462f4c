"""What the Python driver programs share: arguments, checks, the values they write."""

import os
import sys


class Mismatch(Exception):
    """A value came back other than the one written."""


def check(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, want {want!r}")


def value(client, n):
    """The value client `client` writes in its transaction `n`."""
    return client * 100_000 + n


def params():
    """HOST PORT USER DB CLIENTS TXS from argv, the rest from the environment."""
    argv = sys.argv[1:]
    env = [os.environ.get(k, d) for k, d in
           [("PGHOST", "127.0.0.1"), ("PGPORT", "6432"), ("PGUSER", "postgres"),
            ("PGDATABASE", "postgres"), ("CLIENTS", "20"), ("TXS", "200")]]
    host, port, user, db, clients, txs = (argv + env[len(argv):])[:6]
    return host, int(port), user, db, int(clients), int(txs)


def timeout():
    """DRIVER_TIMEOUT: the whole run's bound in seconds."""
    return float(os.environ.get("DRIVER_TIMEOUT", "90"))


def check_server_prepared():
    """CHECK_SERVER_PREPARED=1: each client checks its server holds its statements (session
    pooling only, where a client keeps its server)."""
    return os.environ.get("CHECK_SERVER_PREPARED") == "1"


def schema(table, counter, clients):
    """The SQL that makes the ledger and the per-client counters afresh."""
    return (f"DROP TABLE IF EXISTS {table}, {counter}; "
            f"CREATE TABLE {table} (client int NOT NULL, n int NOT NULL, v bigint NOT NULL); "
            f"CREATE TABLE {counter} (client int PRIMARY KEY, total bigint NOT NULL); "
            f"INSERT INTO {counter} SELECT g, 0 FROM generate_series(0, {clients - 1}) g")
