// One login over TLS with node-postgres, verifying the pooler's certificate against a CA,
// for test/tests/tls_drivers.rs.
//
// Usage: node node_pg_tls.js HOST PORT USER DB CA_FILE
// Prints "ssl=true answer=<value>"; any error exits 1. Bounded by DRIVER_TIMEOUT seconds.
const fs = require('fs');
const { Client } = require('pg');

const [host, port, user, database, caFile] = process.argv.slice(2);
const timeout = Number(process.env.DRIVER_TIMEOUT || 30) * 1000;
setTimeout(() => { console.error('timed out'); process.exit(1); }, timeout).unref();

async function main() {
  const client = new Client({
    host, port: Number(port), user, database, connectionTimeoutMillis: 10000,
    ssl: { ca: fs.readFileSync(caFile), servername: 'localhost', rejectUnauthorized: true },
  });
  await client.connect();
  const res = await client.query("select 'tls ' || current_user as answer");
  const ssl = client.connection.stream.encrypted === true;
  console.log(`ssl=${ssl} answer=${res.rows[0].answer}`);
  await client.end();
}

main().catch((e) => { console.error(e.message); process.exit(1); });
