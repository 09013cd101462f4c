#!/usr/bin/env python3
"""psycopg 3 through the pooler with prepare_threshold=0: every statement prepared.

Usage: psycopg_tx.py [HOST PORT USER DB [CLIENTS [TXS]]]
(defaults from PGHOST, PGPORT, PGUSER, PGDATABASE, CLIENTS=20, TXS=200; DRIVER_TIMEOUT
seconds bounds the whole run, default 90).

Each of CLIENTS connections (one thread each, autocommit, `prepare_threshold=0`, so psycopg
prepares every query as a named statement on first use and reuses it after) runs TXS
transactions in `conn.transaction()` blocks, and one statement outside a transaction after
each. Every 10th transaction is rolled back. Values are checked as they come back and the
totals at the end; any mismatch or error exits 1. With CHECK_SERVER_PREPARED=1 (session
pooling, where a client keeps its server) each client also checks that its server holds its
prepared statements, so a run that prepared nothing cannot pass.
"""

import os
import signal
import sys
import threading
import time

import psycopg

from drivers_common import (Mismatch, check, check_server_prepared, params, schema,
                            timeout, value)

NAME = "psycopg_tx"
TABLE = "psycopg_ledger"
COUNTER = "psycopg_counter"


def connect(host, port, user, db):
    conn = psycopg.connect(host=host, port=port, user=user, dbname=db, sslmode="disable",
                           connect_timeout=10, autocommit=True)
    conn.prepare_threshold = 0
    return conn


def client(cid, txs, conninfo, results):
    try:
        with connect(*conninfo) as conn:
            total, rows, vsum = 0, 0, 0
            for n in range(txs):
                v = value(cid, n)
                with conn.transaction() as tx:
                    got = conn.execute(
                        f"INSERT INTO {TABLE} (client, n, v) VALUES (%s, %s, %s) RETURNING v",
                        (cid, n, v)).fetchone()
                    check(f"client {cid} tx {n} INSERT RETURNING", got, (v,))
                    got = conn.execute(
                        f"UPDATE {COUNTER} SET total = total + %s WHERE client = %s "
                        "RETURNING total", (v, cid)).fetchone()
                    check(f"client {cid} tx {n} UPDATE RETURNING", got, (total + v,))
                    got = conn.execute(
                        f"SELECT count(*), coalesce(sum(v), 0)::bigint FROM {TABLE} "
                        "WHERE client = %s", (cid,)).fetchone()
                    check(f"client {cid} tx {n} count/sum", got, (rows + 1, vsum + v))
                    if n % 10 == 9:
                        raise psycopg.Rollback(tx)
                    total, rows, vsum = total + v, rows + 1, vsum + v
                got = conn.execute("SELECT %s::int + %s::int", (cid, n)).fetchone()
                check(f"client {cid} after tx {n} SELECT", got, (cid + n,))
            got = conn.execute(
                f"SELECT count(*), coalesce(sum(v), 0)::bigint FROM {TABLE} WHERE client = %s",
                (cid,)).fetchone()
            check(f"client {cid} final count/sum", got, (rows, vsum))
            if check_server_prepared():
                # Session pooling only: this server holds what psycopg prepared (psycopg
                # sends DEALLOCATE ALL after a ROLLBACK, so at least the two statements
                # run since the last one).
                got = conn.execute("SELECT count(*) >= 2 FROM pg_prepared_statements",
                                   prepare=False).fetchone()
                check(f"client {cid} server has its prepared statements", got, (True,))
            results[cid] = (rows, vsum)
    except Exception as e:
        results[cid] = e


def main():
    host, port, user, db, clients, txs = params()
    bound = timeout()
    deadline = time.monotonic() + bound
    conninfo = (host, port, user, db)
    with connect(*conninfo) as conn:
        conn.execute(schema(TABLE, COUNTER, clients), prepare=False)

    results = [None] * clients
    threads = [threading.Thread(target=client, args=(c, txs, conninfo, results), daemon=True)
               for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise Mismatch(f"not done in {bound:.0f}s")
    errors = [(c, r) for c, r in enumerate(results) if isinstance(r, Exception)]
    if errors:
        c, e = errors[0]
        raise Mismatch(f"{len(errors)} of {clients} clients failed; client {c}: "
                       f"{type(e).__name__}: {e}")

    rows = sum(r for r, _ in results)
    vsum = sum(s for _, s in results)
    with connect(*conninfo) as conn:
        got = conn.execute(
            f"SELECT count(*), coalesce(sum(v), 0)::bigint, "
            f"(SELECT sum(total)::bigint FROM {COUNTER}) FROM {TABLE}").fetchone()
        check("table totals (rows, sum, counters)", got, (rows, vsum, vsum))
    print(f"{NAME}: ok: {clients} clients x {txs} transactions, {rows} rows committed, "
          f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__})")


if __name__ == "__main__":
    signal.alarm(int(timeout()) + 15)  # the last resort if a thread is stuck in C
    try:
        main()
    except Exception as e:
        print(f"{NAME}: FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.stdout.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)
