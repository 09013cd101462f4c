#!/usr/bin/env node
// node-postgres (`pg`) LISTEN/NOTIFY through a transaction pool.
//
// Usage: node node_pg_listen.js HOST PORT USER DB
// (DRIVER_TIMEOUT seconds bounds the whole run, default 90). `pg` is found through NODE_PATH.
//
// A client LISTENs; three clients loop on transactions while another sends 30 notifications:
// all reach the listener's 'notification' event, in order, on the right channel. Then, with
// the pool quiet, one more arrives with the notifier's pid as pg knows it (processID, from
// BackendKeyData). Any mismatch or error exits 1.
'use strict';

const { Client } = require('pg');

const [host, port, user, database] = process.argv.slice(2);
const TIMEOUT = Number(process.env.DRIVER_TIMEOUT || '90');

function fail(message) {
  console.error(`node_pg_listen: FAIL: ${message}`);
  process.exit(1);
}

async function connect() {
  const c = new Client({ host, port: Number(port), user, database, ssl: false });
  await c.connect();
  return c;
}

// Resolves with the next `n` notifications, or rejects after `ms`.
function collect(client, n, ms) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(
      () => reject(new Error(`${got.length} of ${n} notifications in ${ms} ms`)), ms);
    const on = (msg) => {
      got.push(msg);
      if (got.length === n) {
        clearTimeout(timer);
        client.removeListener('notification', on);
        resolve(got);
      }
    };
    client.on('notification', on);
  });
}

async function busy(stop) {
  const c = await connect();
  while (!stop.done) {
    await c.query('BEGIN');
    await c.query('SELECT pg_sleep(0.002)');
    await c.query('COMMIT');
  }
  await c.end();
}

async function main() {
  setTimeout(() => fail(`no result within ${TIMEOUT} s`), TIMEOUT * 1000).unref();
  const listener = await connect();
  const notifier = await connect();
  await listener.query('LISTEN node_ch');

  const stop = { done: false };
  const workers = [busy(stop), busy(stop), busy(stop)];
  const loaded = collect(listener, 30, 20000);
  for (let k = 0; k < 30; k++) {
    await notifier.query('SELECT pg_notify($1, $2)', ['node_ch', `n${k}`]);
  }
  const got = await loaded;
  stop.done = true;
  await Promise.all(workers);
  const payloads = got.map((m) => `${m.channel}:${m.payload}`).join(',');
  const want = Array.from({ length: 30 }, (_, k) => `node_ch:n${k}`).join(',');
  if (payloads !== want) fail(`under load: got ${payloads}, want ${want}`);

  const quiet = collect(listener, 1, 10000);
  await notifier.query("NOTIFY node_ch, 'quiet'");
  const [m] = await quiet;
  if (m.payload !== 'quiet' || m.processId !== notifier.processID) {
    fail(`quiet: got ${m.payload} from ${m.processId}, want quiet from ${notifier.processID}`);
  }
  await listener.end();
  await notifier.end();
  console.log('node-postgres: 31 notifications with the sender pid ok');
}

main().catch((e) => fail(e.stack || String(e)));
