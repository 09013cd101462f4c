#!/usr/bin/env python3
"""One login over TLS with psycopg 3 (libpq) or asyncpg, for test/tests/tls_drivers.rs.

Usage: tls_login.py psycopg|asyncpg DSN
Connects with DSN (a libpq URI or key=value string: sslmode, sslrootcert, sslnegotiation,
channel_binding, ...), runs `select 'tls ' || current_user`, and prints
"ssl=<True|False> answer=<value>" where ssl says whether the client's own connection is
TLS. Any error exits 1. Bounded by DRIVER_TIMEOUT seconds (default 30).
"""

import asyncio
import os
import sys

SQL = "select 'tls ' || current_user"
TIMEOUT = float(os.environ.get("DRIVER_TIMEOUT", "30"))


def with_psycopg(dsn):
    import psycopg

    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        answer = conn.execute(SQL).fetchone()[0]
        return conn.pgconn.ssl_in_use, answer


async def with_asyncpg(dsn):
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        answer = await conn.fetchval(SQL)
        ssl = conn._transport.get_extra_info("ssl_object") is not None
        return ssl, answer
    finally:
        await conn.close()


def main():
    driver, dsn = sys.argv[1], sys.argv[2]
    if driver == "psycopg":
        ssl, answer = with_psycopg(dsn)
    else:
        ssl, answer = asyncio.run(asyncio.wait_for(with_asyncpg(dsn), TIMEOUT))
    print(f"ssl={ssl} answer={answer}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the test prints what the driver said
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
