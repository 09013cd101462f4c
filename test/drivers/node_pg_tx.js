#!/usr/bin/env node
// node-postgres (`pg`) through the pooler: named queries ({name, text, values}), which pg
// prepares once per connection and then runs by name, over many transactions.
//
// Usage: node node_pg_tx.js [HOST PORT USER DB [CLIENTS [TXS]]]
// (defaults from PGHOST, PGPORT, PGUSER, PGDATABASE, CLIENTS=20, TXS=200; DRIVER_TIMEOUT
// seconds bounds the whole run, default 90). `pg` is found through NODE_PATH.
//
// Each of CLIENTS connections runs TXS transactions (BEGIN ... COMMIT, every 10th one
// ROLLBACK) of named INSERT/UPDATE/SELECT statements, then one named statement outside a
// transaction. Values are checked as they come back and the totals at the end; any
// mismatch or error exits 1. With CHECK_SERVER_PREPARED=1 (session pooling, where a client
// keeps its server) each client also checks that its server holds its prepared statements.
'use strict';

const { Client } = require('pg');

const NAME = 'node_pg_tx';
const TABLE = 'node_pg_ledger';
const COUNTER = 'node_pg_counter';

const argv = process.argv.slice(2);
const env = [
  process.env.PGHOST || '127.0.0.1',
  process.env.PGPORT || '6432',
  process.env.PGUSER || 'postgres',
  process.env.PGDATABASE || 'postgres',
  process.env.CLIENTS || '20',
  process.env.TXS || '200',
];
const [host, port, user, database, clients, txs] = argv.concat(env.slice(argv.length));
const CLIENTS = Number(clients);
const TXS = Number(txs);
const TIMEOUT = Number(process.env.DRIVER_TIMEOUT || '90');

function fail(message) {
  console.error(`${NAME}: FAIL: ${message}`);
  process.exit(1);
}

setTimeout(() => fail(`not done in ${TIMEOUT}s`), TIMEOUT * 1000).unref();

function check(what, got, want) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

const value = (client, n) => client * 100000 + n;

async function connect() {
  const conn = new Client({
    host, port: Number(port), user, database, ssl: false,
    connectionTimeoutMillis: 10000, query_timeout: 30000,
  });
  await conn.connect();
  return conn;
}

const INSERT = {
  name: 'ins',
  text: `INSERT INTO ${TABLE} (client, n, v) VALUES ($1, $2, $3) RETURNING v`,
};
const UPDATE = {
  name: 'upd',
  text: `UPDATE ${COUNTER} SET total = total + $2 WHERE client = $1 RETURNING total`,
};
const COUNT_SUM = {
  name: 'stmt1',
  text: `SELECT count(*)::int AS c, coalesce(sum(v), 0)::bigint AS s FROM ${TABLE} WHERE client = $1`,
};
const ADD = { name: 'add', text: 'SELECT $1::int + $2::int AS r' };

async function named(conn, stmt, values) {
  return (await conn.query({ name: stmt.name, text: stmt.text, values })).rows;
}

async function client(cid) {
  const conn = await connect();
  try {
    let total = 0;
    let rows = 0;
    let vsum = 0;
    for (let n = 0; n < TXS; n++) {
      const v = value(cid, n);
      await conn.query('BEGIN');
      let r = await named(conn, INSERT, [cid, n, v]);
      check(`client ${cid} tx ${n} INSERT RETURNING`, Number(r[0].v), v);
      r = await named(conn, UPDATE, [cid, v]);
      check(`client ${cid} tx ${n} UPDATE RETURNING`, Number(r[0].total), total + v);
      r = await named(conn, COUNT_SUM, [cid]);
      check(`client ${cid} tx ${n} count/sum`, [r[0].c, Number(r[0].s)], [rows + 1, vsum + v]);
      if (n % 10 === 9) {
        await conn.query('ROLLBACK');
      } else {
        await conn.query('COMMIT');
        total += v;
        rows += 1;
        vsum += v;
      }
      r = await named(conn, ADD, [cid, n]);
      check(`client ${cid} after tx ${n} SELECT`, r[0].r, cid + n);
    }
    const r = await named(conn, COUNT_SUM, [cid]);
    check(`client ${cid} final count/sum`, [r[0].c, Number(r[0].s)], [rows, vsum]);
    if (process.env.CHECK_SERVER_PREPARED === '1') {
      const p = await conn.query('SELECT count(*)::int AS c FROM pg_prepared_statements');
      check(`client ${cid} server holds its 4 prepared statements`, p.rows[0].c >= 4, true);
    }
    return [rows, vsum];
  } finally {
    await conn.end();
  }
}

async function main() {
  const setup = await connect();
  try {
    await setup.query(
      `DROP TABLE IF EXISTS ${TABLE}, ${COUNTER}; ` +
        `CREATE TABLE ${TABLE} (client int NOT NULL, n int NOT NULL, v bigint NOT NULL); ` +
        `CREATE TABLE ${COUNTER} (client int PRIMARY KEY, total bigint NOT NULL); ` +
        `INSERT INTO ${COUNTER} SELECT g, 0 FROM generate_series(0, ${CLIENTS - 1}) g`,
    );
  } finally {
    await setup.end();
  }

  const ids = Array.from({ length: CLIENTS }, (_, i) => i);
  const results = await Promise.allSettled(ids.map(client));
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) {
    throw new Error(`${failed.length} of ${CLIENTS} clients failed; first: ${failed[0].reason}`);
  }
  const rows = results.reduce((a, r) => a + r.value[0], 0);
  const vsum = results.reduce((a, r) => a + r.value[1], 0);

  const conn = await connect();
  try {
    const r = await conn.query(
      `SELECT count(*)::int AS c, coalesce(sum(v), 0)::bigint AS s, ` +
        `(SELECT sum(total)::bigint FROM ${COUNTER}) AS t FROM ${TABLE}`,
    );
    const row = r.rows[0];
    check('table totals (rows, sum, counters)', [row.c, Number(row.s), Number(row.t)], [rows, vsum, vsum]);
  } finally {
    await conn.end();
  }
  const version = require('pg/package.json').version;
  console.log(`${NAME}: ok: ${CLIENTS} clients x ${TXS} transactions, ${rows} rows committed, pg ${version}`);
}

main().then(
  () => process.exit(0),
  (e) => fail(e && e.stack ? e.stack : String(e)),
);
