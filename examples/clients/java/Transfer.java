// The transfer initiator in Java, with JDBC (Debian libpostgresql-jdbc-java).
//
//   javac -d classes Transfer.java
//   PGHOST=... PGPORT=... PGDATABASE=coord PGUSER=... \
//   BANK1_URL=http://127.0.0.1:18201 BANK2_URL=http://127.0.0.1:18202 \
//       java -cp classes:/usr/share/java/postgresql.jar Transfer KEY
//
// Moves 10.00 from account 1 (bank1) to account 2 (bank2) with business key
// KEY-1, then tries the same to account 3, which bank2 does not have: its
// try is refused (SQLSTATE TC001), the local transaction rolls back with
// the transfers row, and the coordinator cancels bank1's branch.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Properties;

public class Transfer {
    private static final String BANK1 = System.getenv("BANK1_URL");
    private static final String BANK2 = System.getenv("BANK2_URL");

    /** The single value of a query. */
    private static String value(Connection conn, String sql, Object... params)
            throws SQLException {
        try (PreparedStatement st = conn.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) {
                st.setObject(i + 1, params[i]);
            }
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }

    /** One global transaction; returns its gid once the decision commits. */
    static String transfer(Connection conn, String key, int from, int to,
                           BigDecimal amount) throws SQLException {
        conn.setAutoCommit(false);
        try {
            String gid = value(conn,
                "SELECT tcc_begin(kind => 'transfer', business_key => ?)", key);
            String[] banks = {BANK1, BANK2};
            int[] accounts = {from, to};
            for (int i = 0; i < 2; i++) {
                String payload = String.format(
                    "{\"account\": %d, \"amount\": \"%s\"}", accounts[i], amount);
                value(conn, "SELECT tcc_branch(?::uuid, ?, ?, ?, ?::jsonb, name => ?)",
                      gid, banks[i] + "/try", banks[i] + "/confirm",
                      banks[i] + "/cancel", payload, "account " + accounts[i]);
            }
            // the initiator's own write, committed together with the decision
            try (PreparedStatement st = conn.prepareStatement(
                    "INSERT INTO transfers (business_key, gid, from_account,"
                    + " to_account, amount) VALUES (?, ?::uuid, ?, ?, ?)")) {
                st.setString(1, key);
                st.setString(2, gid);
                st.setInt(3, from);
                st.setInt(4, to);
                st.setBigDecimal(5, amount);
                st.executeUpdate();
            }
            value(conn, "SELECT tcc_finish(?::uuid)", gid);
            conn.commit();
            return gid;
        } catch (SQLException e) {
            conn.rollback();
            throw e;
        } finally {
            conn.setAutoCommit(true);
        }
    }

    public static void main(String[] args) throws SQLException {
        String key = args[0];
        String url = String.format("jdbc:postgresql://%s:%s/%s",
            System.getenv().getOrDefault("PGHOST", "localhost"),
            System.getenv().getOrDefault("PGPORT", "5432"),
            System.getenv().getOrDefault("PGDATABASE", "postgres"));
        Properties props = new Properties();
        props.setProperty("user", System.getenv().getOrDefault("PGUSER", "postgres"));
        if (System.getenv("PGPASSWORD") != null) {
            props.setProperty("password", System.getenv("PGPASSWORD"));
        }
        BigDecimal amount = new BigDecimal("10.00");
        try (Connection conn = DriverManager.getConnection(url, props)) {
            String gid = transfer(conn, key + "-1", 1, 2, amount);
            System.out.println(key + "-1: "
                + value(conn, "SELECT tcc_wait(?::uuid)", gid));
            try {
                transfer(conn, key + "-2", 1, 3, amount);
                System.out.println(key + "-2: not refused");
            } catch (SQLException e) {
                if (!"TC001".equals(e.getSQLState())) {
                    throw e;
                }
                System.out.println(key + "-2: refused (" + e.getSQLState() + ")");
            }
        }
    }
}
