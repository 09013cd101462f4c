// One login over TLS with pgjdbc, verifying the pooler's certificate (sslmode=verify-full
// against a CA file), for test/tests/tls_drivers.rs.
//
// Usage: java PgjdbcTls HOST PORT USER DB CA_FILE
// Prints "answer=<value>"; any error exits 1. The pooler's listen demands TLS, so a login at
// all is one over TLS.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.Properties;

public class PgjdbcTls {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[3];
        Properties props = new Properties();
        props.setProperty("user", args[2]);
        props.setProperty("sslmode", "verify-full");
        props.setProperty("sslrootcert", args[4]);
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "30");
        try (Connection conn = DriverManager.getConnection(url, props);
             ResultSet rs = conn.createStatement().executeQuery("select 'tls ' || current_user")) {
            rs.next();
            System.out.println("answer=" + rs.getString(1));
        } catch (Exception e) {
            System.err.println(e);
            System.exit(1);
        }
    }
}
