//! Non-ASCII, very long (1 MiB) and odd SQL through every pool mode, in the simple and the
//! extended protocol: answered exactly as PostgreSQL answers it, and the session goes on.

use odyssey_test::pg::{Client, SimpleQueryMessage};
use odyssey_test::tx::{TxPoolConfig, TxSetup};

const MIB: usize = 1 << 20;
const UNICODE: &str = "Привет, 世界 🐘 — ñ\u{301} \u{200d}";

/// The first column of every row of a simple query, as text.
fn simple(client: &mut Client, sql: &str) -> Vec<Option<String>> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{}: {e}", &sql[..sql.len().min(80)]))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

fn one(client: &mut Client, sql: &str) -> String {
    let rows = simple(client, sql);
    assert_eq!(rows.len(), 1, "{}", &sql[..sql.len().min(80)]);
    rows[0].clone().expect("not NULL")
}

fn odd_sql_in(mode: &'static str) {
    let setup = TxSetup::start(&TxPoolConfig::new(mode, 2), "").expect("setup");
    let mut c = setup.connect().unwrap();

    // Non-ASCII in literals, identifiers and parameters.
    let quoted = format!("SELECT '{UNICODE}' AS \"столбец 🐘\"");
    assert_eq!(one(&mut c, &quoted), UNICODE, "{mode}");
    let row = c.query_one("SELECT $1::text || '✓'", &[&UNICODE]).unwrap();
    assert_eq!(row.get::<_, String>(0), format!("{UNICODE}✓"), "{mode}");

    // 1 MiB of SQL: a literal, a comment, and a parameter.
    let long = "é".repeat(MIB / 2);
    let sql = format!("SELECT length('{long}')::text");
    assert!(sql.len() > MIB);
    assert_eq!(one(&mut c, &sql), (MIB / 2).to_string(), "{mode}");
    let commented = format!("/* {} */ SELECT 'after the comment'", "x".repeat(MIB));
    assert_eq!(one(&mut c, &commented), "after the comment", "{mode}");
    let row = c.query_one("SELECT length($1::text)", &[&long]).unwrap();
    assert_eq!(row.get::<_, i32>(0), (MIB / 2) as i32, "{mode}");

    // Odd but valid: empty queries, only comments, semicolons and BEGIN inside literals,
    // dollar quotes, a NUL-free control character.
    assert!(simple(&mut c, "").is_empty(), "{mode}");
    assert!(simple(&mut c, ";;; -- nothing\n;").is_empty(), "{mode}");
    assert_eq!(
        one(&mut c, "SELECT ';BEGIN;' -- ; COMMIT"),
        ";BEGIN;",
        "{mode}"
    );
    assert_eq!(
        one(&mut c, "SELECT $q$ROLLBACK; 'x'$q$"),
        "ROLLBACK; 'x'",
        "{mode}"
    );
    assert_eq!(one(&mut c, "SELECT E'\\x01\\t'"), "\u{1}\t", "{mode}");
    // An error in the middle of it all leaves the session usable.
    assert!(c.simple_query("SELECT 'Ошибка' + 1").is_err(), "{mode}");
    assert_eq!(one(&mut c, "SELECT 'still here'"), "still here", "{mode}");
}

#[test]
fn odd_sql_in_session_pooling() {
    odd_sql_in("session");
}

#[test]
fn odd_sql_in_transaction_pooling() {
    odd_sql_in("transaction");
}

#[test]
fn odd_sql_in_statement_pooling() {
    odd_sql_in("statement");
}
