#!/usr/bin/env python3
"""asyncpg through the pooler: prepared statements the asyncpg way, over many transactions.

Usage: asyncpg_tx.py [HOST PORT USER DB [CLIENTS [TXS]]]
(defaults from PGHOST, PGPORT, PGUSER, PGDATABASE, CLIENTS=20, TXS=200; DRIVER_TIMEOUT
seconds bounds the whole run, default 90).

Each of CLIENTS connections runs TXS transactions with `conn.fetchval`/`conn.fetchrow` (the
default statement cache: every query becomes a named prepared statement on first use and is
reused after) and one statement prepared explicitly with `conn.prepare` on the first
transaction and reused in every later one. Every 10th transaction is rolled back. Values are
checked as they come back and the totals at the end; any mismatch or error exits 1. With
CHECK_SERVER_PREPARED=1 (session pooling, where a client keeps its server) each client also
checks that its server holds its prepared statements, so a run that prepared nothing cannot
pass.
"""

import asyncio
import signal
import sys

import asyncpg

from drivers_common import check, check_server_prepared, params, schema, timeout, value

NAME = "asyncpg_tx"
TABLE = "asyncpg_ledger"
COUNTER = "asyncpg_counter"


class Rollback(Exception):
    """Raised inside a transaction to roll it back on purpose."""


async def connect(host, port, user, db):
    return await asyncpg.connect(host=host, port=port, user=user, database=db,
                                 ssl=False, timeout=10, command_timeout=30)


async def client(cid, txs, conninfo):
    conn = await connect(*conninfo)
    try:
        count_sum = None  # explicitly prepared on the first transaction, reused afterwards
        total, rows, vsum = 0, 0, 0
        for n in range(txs):
            v = value(cid, n)
            try:
                async with conn.transaction():
                    got = await conn.fetchval(
                        f"INSERT INTO {TABLE} (client, n, v) VALUES ($1, $2, $3) RETURNING v",
                        cid, n, v)
                    check(f"client {cid} tx {n} INSERT RETURNING", got, v)
                    got = await conn.fetchval(
                        f"UPDATE {COUNTER} SET total = total + $2 WHERE client = $1 "
                        "RETURNING total", cid, v)
                    check(f"client {cid} tx {n} UPDATE RETURNING", got, total + v)
                    if count_sum is None:
                        count_sum = await conn.prepare(
                            f"SELECT count(*), coalesce(sum(v), 0)::bigint FROM {TABLE} "
                            "WHERE client = $1")
                    row = await count_sum.fetchrow(cid)
                    check(f"client {cid} tx {n} count/sum", tuple(row), (rows + 1, vsum + v))
                    if n % 10 == 9:
                        raise Rollback()
                total, rows, vsum = total + v, rows + 1, vsum + v
            except Rollback:
                pass
            # A statement outside any transaction (autocommit), from the cache too.
            got = await conn.fetchval("SELECT $1::int + $2::int", cid, n)
            check(f"client {cid} after tx {n} SELECT", got, cid + n)
        row = await count_sum.fetchrow(cid)
        check(f"client {cid} final count/sum", tuple(row), (rows, vsum))
        if check_server_prepared():
            # Session pooling only: this server holds what asyncpg prepared.
            got = await conn.fetchval("SELECT count(*) >= 4 FROM pg_prepared_statements")
            check(f"client {cid} server has its prepared statements", got, True)
        return rows, vsum
    finally:
        await conn.close(timeout=5)


async def main():
    host, port, user, db, clients, txs = params()
    conninfo = (host, port, user, db)
    setup = await connect(*conninfo)
    try:
        await setup.execute(schema(TABLE, COUNTER, clients))
    finally:
        await setup.close(timeout=5)

    results = await asyncio.gather(*(client(c, txs, conninfo) for c in range(clients)))

    rows = sum(r for r, _ in results)
    vsum = sum(s for _, s in results)
    check_conn = await connect(*conninfo)
    try:
        got = await check_conn.fetchrow(
            f"SELECT count(*), coalesce(sum(v), 0)::bigint, "
            f"(SELECT sum(total)::bigint FROM {COUNTER}) FROM {TABLE}")
        check("table totals (rows, sum, counters)", tuple(got), (rows, vsum, vsum))
    finally:
        await check_conn.close(timeout=5)
    print(f"{NAME}: ok: {clients} clients x {txs} transactions, {rows} rows committed, "
          f"asyncpg {asyncpg.__version__}")


if __name__ == "__main__":
    bound = timeout()
    signal.alarm(int(bound) + 15)  # the last resort if the event loop itself is stuck
    try:
        asyncio.run(asyncio.wait_for(main(), bound))
    except asyncio.TimeoutError:
        print(f"{NAME}: FAIL: not done in {bound:.0f}s", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # any driver error or mismatch
        print(f"{NAME}: FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
