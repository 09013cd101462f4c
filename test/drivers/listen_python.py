#!/usr/bin/env python3
"""LISTEN/NOTIFY through a transaction pool, with psycopg 3 and asyncpg.

Usage: listen_python.py HOST PORT USER DB
(DRIVER_TIMEOUT seconds bounds the whole run, default 90).

psycopg: a client LISTENs (psycopg sends it over the extended protocol); its pooled server
must not be listening; a NOTIFY from another client reaches it with the payload and, as no
one else uses the pool meanwhile, with the notifier's pid as psycopg knows it (its
BackendKeyData). Then three clients loop on transactions while 50 notifications go out: all
reach the listener, in order. A LISTEN in a rolled-back transaction delivers nothing; after
UNLISTEN nothing arrives.

asyncpg: `add_listener` (a simple-protocol LISTEN); 20 notifications reach the callback in
order, with the notifier's pid as asyncpg knows it.

Any mismatch or error exits 1; prints one line per part on success.
"""

import asyncio
import signal
import sys
import threading

import asyncpg
import psycopg

from drivers_common import Mismatch, check, timeout

HOST, PORT, USER, DB = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def psy():
    return psycopg.connect(host=HOST, port=PORT, user=USER, dbname=DB, sslmode="disable",
                           connect_timeout=10, autocommit=True)


def notes(conn, n, wait):
    """Up to n notifications within wait seconds: (channel, payload, pid)."""
    return [(x.channel, x.payload, x.pid) for x in conn.notifies(timeout=wait, stop_after=n)]


def busy(stop, errors, i):
    try:
        with psy() as c:
            while not stop.is_set():
                with c.transaction():
                    c.execute("SELECT pg_sleep(0.002)")
    except Exception as e:  # reported by the main thread
        errors.append(f"busy client {i}: {e!r}")


def psycopg_part():
    with psy() as listener, psy() as notifier:
        listener.execute("LISTEN psy_ch")
        n = listener.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0]
        check("psycopg: channels its pooled server listens to", n, 0)

        notifier.execute("NOTIFY psy_ch, 'quiet'")
        got = notes(listener, 1, 5)
        check("psycopg: the quiet notification", got,
              [("psy_ch", "quiet", notifier.info.backend_pid)])

        stop, errors = threading.Event(), []
        workers = [threading.Thread(target=busy, args=(stop, errors, i)) for i in range(3)]
        for w in workers:
            w.start()
        try:
            for k in range(50):
                notifier.execute("SELECT pg_notify('psy_ch', %s)", (f"m{k}",))
            got = notes(listener, 50, 20)
        finally:
            stop.set()
            for w in workers:
                w.join()
        if errors:
            raise Mismatch("; ".join(errors))
        check("psycopg: payloads under load", [p for _, p, _ in got],
              [f"m{k}" for k in range(50)])

        try:
            with listener.transaction():
                listener.execute("LISTEN psy_rolled")
                raise psycopg.Rollback()
        except psycopg.Rollback:
            pass
        listener.execute("UNLISTEN psy_ch")
        notifier.execute("NOTIFY psy_ch, 'after unlisten'; NOTIFY psy_rolled, 'rolled back'")
        check("psycopg: after UNLISTEN and ROLLBACK", notes(listener, 1, 1), [])
    print("psycopg: 52 notifications, sender pid, ROLLBACK and UNLISTEN ok")


async def asyncpg_part():
    kw = dict(host=HOST, port=PORT, user=USER, database=DB, ssl=False,
              statement_cache_size=0)
    listener = await asyncpg.connect(**kw)
    notifier = await asyncpg.connect(**kw)
    got = asyncio.Queue()
    await listener.add_listener("apg_ch", lambda _c, pid, ch, payload:
                                got.put_nowait((ch, payload, pid)))
    for k in range(20):
        await notifier.execute(f"NOTIFY apg_ch, 'a{k}'")
    seen = [await asyncio.wait_for(got.get(), 10) for _ in range(20)]
    want = [("apg_ch", f"a{k}", notifier.get_server_pid()) for k in range(20)]
    check("asyncpg: notifications", seen, want)
    await listener.close()
    await notifier.close()
    print("asyncpg: 20 notifications with the sender pid ok")


def main():
    signal.alarm(int(timeout()))
    try:
        psycopg_part()
        asyncio.run(asyncpg_part())
    except (Mismatch, psycopg.Error, asyncpg.PostgresError, OSError,
            asyncio.TimeoutError) as e:
        print(f"FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
