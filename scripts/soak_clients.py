"""The soak's crowd: many mostly idle clients of the pooler, some over TLS, with storms.

Usage: soak_clients.py --port P --db D --user U --clients N --end EPOCH --status FILE
       --errors FILE [--tls-every K] [--query-every S] [--storm-every S] [--storm-share F]

Each client connects (every K-th over TLS, certificate not verified), then until EPOCH runs
`SELECT 1` at random times, on average every S seconds, as an idle application connection
does. Every --storm-every seconds a share of the clients drop their connections at once and
reconnect at once (a reconnect storm). A failed connect or query is an error: one line in
--errors (epoch seconds, client, what), then the client waits a second and reconnects.
--status is rewritten every 2 s with the counts (JSON). Needs asyncpg (build/venv).
"""

import argparse
import asyncio
import json
import os
import random
import resource
import ssl
import time

import asyncpg

CONNECT_AT_ONCE = 64
TIMEOUT = 30


class Crowd:
    def __init__(self, args):
        self.args = args
        self.connected = 0
        self.errors = 0
        self.queries = 0
        self.reconnects = 0
        self.storms = 0
        self.conns = {}
        # A client caught in a storm is woken through its event and reconnects at once.
        self.kicks = {}
        self.gate = asyncio.Semaphore(CONNECT_AT_ONCE)
        self.errors_file = open(args.errors, "a", buffering=1)
        self.tls = ssl.create_default_context()
        self.tls.check_hostname = False
        self.tls.verify_mode = ssl.CERT_NONE

    def error(self, client, what):
        self.errors += 1
        text = " ".join(str(what).split())[:300]
        self.errors_file.write(f"{int(time.time())} client {client}: {text}\n")

    async def connect(self, i):
        tls = self.args.tls_every > 0 and i % self.args.tls_every == 0
        async with self.gate:
            return await asyncpg.connect(
                host="127.0.0.1",
                port=self.args.port,
                user=self.args.user,
                database=self.args.db,
                ssl=self.tls if tls else False,
                timeout=TIMEOUT,
                statement_cache_size=0,
            )

    async def client(self, i):
        end = self.args.end
        first = True
        while time.time() < end:
            try:
                conn = await self.connect(i)
            except Exception as e:  # noqa: BLE001 - every failure is counted and told
                self.error(i, f"connect: {e!r}")
                await asyncio.sleep(1)
                continue
            if not first:
                self.reconnects += 1
            first = False
            self.conns[i] = conn
            self.kicks[i] = asyncio.Event()
            self.connected += 1
            try:
                await self.idle(i, conn, end, self.kicks[i])
            finally:
                self.connected -= 1
                self.conns.pop(i, None)
                self.kicks.pop(i, None)
                if not conn.is_closed():
                    conn.terminate()

    async def idle(self, i, conn, end, kick):
        """Queries now and then until the end, or until a storm kicks the client."""
        while time.time() < end:
            pause = random.uniform(0, 2 * self.args.query_every)
            try:
                await asyncio.wait_for(kick.wait(), min(pause, max(0.0, end - time.time())))
                return  # kicked by a storm: reconnect now
            except asyncio.TimeoutError:
                pass
            if time.time() >= end:
                return
            try:
                value = await asyncio.wait_for(conn.fetchval("SELECT 1"), TIMEOUT)
                if value != 1:
                    self.error(i, f"SELECT 1 returned {value!r}")
                self.queries += 1
            except Exception as e:  # noqa: BLE001
                self.error(i, f"query: {e!r}")
                await asyncio.sleep(1)
                return

    async def storm(self):
        every = self.args.storm_every
        while every > 0 and time.time() + every < self.args.end:
            await asyncio.sleep(every)
            victims = random.sample(
                list(self.kicks.items()),
                int(len(self.kicks) * self.args.storm_share),
            )
            for _, kick in victims:
                kick.set()
            self.storms += 1

    def status(self):
        return {
            "connected": self.connected,
            "errors": self.errors,
            "queries": self.queries,
            "reconnects": self.reconnects,
            "storms": self.storms,
        }

    async def report(self):
        while True:
            tmp = self.args.status + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.status(), f)
            os.replace(tmp, self.args.status)
            await asyncio.sleep(2)


async def main(args):
    crowd = Crowd(args)
    reporter = asyncio.create_task(crowd.report())
    storm = asyncio.create_task(crowd.storm())
    await asyncio.gather(*(crowd.client(i) for i in range(args.clients)))
    storm.cancel()
    reporter.cancel()
    with open(args.status, "w") as f:
        json.dump(crowd.status(), f)


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--end", type=float, required=True)
    p.add_argument("--status", required=True)
    p.add_argument("--errors", required=True)
    p.add_argument("--tls-every", type=int, default=3)
    p.add_argument("--query-every", type=float, default=60)
    p.add_argument("--storm-every", type=float, default=300)
    p.add_argument("--storm-share", type=float, default=0.1)
    return p.parse_args()


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(parse()))
