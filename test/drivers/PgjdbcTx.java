// pgjdbc through the pooler with prepareThreshold=1: every PreparedStatement becomes a named
// server-side statement on its first execution and is reused by name after.
//
// Usage: java -cp <postgresql.jar>:<dir> PgjdbcTx [HOST PORT USER DB [CLIENTS [TXS]]]
// (defaults from PGHOST, PGPORT, PGUSER, PGDATABASE, CLIENTS=20, TXS=200; DRIVER_TIMEOUT
// seconds bounds the whole run, default 90).
//
// Each of CLIENTS connections (one thread each) prepares its statements once, then runs TXS
// explicit transactions (setAutoCommit(false); commit, every 10th one rollback) reusing them,
// and after each one a PreparedStatement in autocommit mode. Values are checked as they come
// back and the totals at the end; any mismatch or error exits 1. With
// CHECK_SERVER_PREPARED=1 (session pooling, where a client keeps its server) each client also
// checks that its server holds its prepared statements.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

public class PgjdbcTx {
    static final String NAME = "PgjdbcTx";
    static final String TABLE = "pgjdbc_ledger";
    static final String COUNTER = "pgjdbc_counter";

    static String url;
    static Properties props = new Properties();

    static void fail(String message) {
        System.err.println(NAME + ": FAIL: " + message);
        System.err.flush();
        Runtime.getRuntime().halt(1);
    }

    static void check(String what, Object got, Object want) {
        if (!got.equals(want)) {
            throw new IllegalStateException(what + ": got " + got + ", want " + want);
        }
    }

    static long value(int client, int n) {
        return client * 100_000L + n;
    }

    static Connection connect() throws SQLException {
        return DriverManager.getConnection(url, props);
    }

    /** Runs `ps` with `params` (Integer: int4, Long: int8); its one row, columns joined by '/'. */
    static String row(PreparedStatement ps, Object... params) throws SQLException {
        for (int i = 0; i < params.length; i++) {
            ps.setObject(i + 1, params[i]);
        }
        try (ResultSet rs = ps.executeQuery()) {
            if (!rs.next()) {
                throw new IllegalStateException("no row from " + ps);
            }
            StringBuilder out = new StringBuilder();
            for (int c = 1; c <= rs.getMetaData().getColumnCount(); c++) {
                out.append(c > 1 ? "/" : "").append(rs.getString(c));
            }
            return out.toString();
        }
    }

    static String arg(String[] args, int i, String env, String dflt) {
        if (args.length > i) {
            return args[i];
        }
        String v = System.getenv(env);
        return v != null ? v : dflt;
    }

    @SuppressWarnings("deprecation") // PGStatement.isUseServerPrepare: the check wanted here
    static long[] client(int cid, int txs) throws SQLException {
        try (Connection conn = connect();
                PreparedStatement ins = conn.prepareStatement(
                        "INSERT INTO " + TABLE + " (client, n, v) VALUES (?, ?, ?) RETURNING v");
                PreparedStatement upd = conn.prepareStatement(
                        "UPDATE " + COUNTER + " SET total = total + ? WHERE client = ? RETURNING total");
                PreparedStatement cnt = conn.prepareStatement(
                        "SELECT count(*), coalesce(sum(v), 0)::bigint FROM " + TABLE + " WHERE client = ?");
                PreparedStatement add = conn.prepareStatement("SELECT ?::int + ?::int")) {
            long total = 0, rows = 0, vsum = 0;
            for (int n = 0; n < txs; n++) {
                long v = value(cid, n);
                conn.setAutoCommit(false);
                check("client " + cid + " tx " + n + " INSERT RETURNING", row(ins, cid, n, v), "" + v);
                check("client " + cid + " tx " + n + " UPDATE RETURNING", row(upd, v, cid),
                        "" + (total + v));
                check("client " + cid + " tx " + n + " count/sum", row(cnt, cid),
                        (rows + 1) + "/" + (vsum + v));
                if (n % 10 == 9) {
                    conn.rollback();
                } else {
                    conn.commit();
                    total += v;
                    rows += 1;
                    vsum += v;
                }
                // Autocommit: each statement is its own transaction.
                conn.setAutoCommit(true);
                check("client " + cid + " after tx " + n + " SELECT", row(add, cid, n), "" + (cid + n));
            }
            check("client " + cid + " final count/sum", row(cnt, cid), rows + "/" + vsum);
            check("client " + cid + " server-prepared INSERT",
                    ins.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare(), true);
            if ("1".equals(System.getenv("CHECK_SERVER_PREPARED"))) {
                try (Statement s = conn.createStatement();
                        ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_prepared_statements")) {
                    rs.next();
                    check("client " + cid + " server holds its 4 prepared statements",
                            rs.getLong(1) >= 4, true);
                }
            }
            return new long[] {rows, vsum};
        }
    }

    public static void main(String[] args) throws Exception {
        String host = arg(args, 0, "PGHOST", "127.0.0.1");
        String port = arg(args, 1, "PGPORT", "6432");
        String user = arg(args, 2, "PGUSER", "postgres");
        String db = arg(args, 3, "PGDATABASE", "postgres");
        int clients = Integer.parseInt(arg(args, 4, "CLIENTS", "20"));
        int txs = Integer.parseInt(arg(args, 5, "TXS", "200"));
        String t = System.getenv("DRIVER_TIMEOUT");
        long timeout = t != null ? Long.parseLong(t) : 90;

        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(timeout * 1000);
                fail("not done in " + timeout + "s");
            } catch (InterruptedException e) {
                // done in time
            }
        });
        watchdog.setDaemon(true);
        watchdog.start();

        url = "jdbc:postgresql://" + host + ":" + port + "/" + db;
        props.setProperty("user", user);
        props.setProperty("sslmode", "disable");
        props.setProperty("prepareThreshold", "1");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "30");

        try {
            try (Connection conn = connect(); Statement s = conn.createStatement()) {
                s.execute("DROP TABLE IF EXISTS " + TABLE + ", " + COUNTER);
                s.execute("CREATE TABLE " + TABLE
                        + " (client int NOT NULL, n int NOT NULL, v bigint NOT NULL)");
                s.execute("CREATE TABLE " + COUNTER + " (client int PRIMARY KEY, total bigint NOT NULL)");
                s.execute("INSERT INTO " + COUNTER + " SELECT g, 0 FROM generate_series(0, "
                        + (clients - 1) + ") g");
            }

            ExecutorService pool = Executors.newFixedThreadPool(clients);
            List<Future<long[]>> futures = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                final int cid = c;
                futures.add(pool.submit(() -> client(cid, txs)));
            }
            pool.shutdown();
            long rows = 0, vsum = 0;
            int failed = 0;
            String first = null;
            for (int c = 0; c < clients; c++) {
                try {
                    long[] r = futures.get(c).get();
                    rows += r[0];
                    vsum += r[1];
                } catch (java.util.concurrent.ExecutionException e) {
                    failed++;
                    if (first == null) {
                        first = "client " + c + ": " + e.getCause();
                    }
                }
            }
            pool.awaitTermination(5, TimeUnit.SECONDS);
            if (failed > 0) {
                fail(failed + " of " + clients + " clients failed; " + first);
            }

            String version;
            try (Connection conn = connect();
                    PreparedStatement p = conn.prepareStatement(
                            "SELECT count(*), coalesce(sum(v), 0)::bigint, (SELECT sum(total)::bigint FROM "
                                    + COUNTER + ") FROM " + TABLE)) {
                check("table totals (rows/sum/counters)", row(p), rows + "/" + vsum + "/" + vsum);
                version = conn.getMetaData().getDriverVersion();
            }
            System.out.println(NAME + ": ok: " + clients + " clients x " + txs + " transactions, "
                    + rows + " rows committed, pgjdbc " + version);
            System.out.flush();
            Runtime.getRuntime().halt(0);
        } catch (Exception e) {
            fail(e.toString());
        }
    }
}
