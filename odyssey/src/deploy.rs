//! Deploy: make the server's session parameters the client's before the client's first
//! message runs on it — `SET` what differs, `RESET` what an earlier client set and this one
//! did not — and remember what the server now has.

use kiwi::var::Vars;

/// The SQL to run on the server and the server's parameters once it has run; None when
/// nothing differs (the usual case, a server going back to a client like its last one: then
/// nothing is allocated). `defaults` are the values the server reported when it connected.
pub fn deploy(
    client: &Vars,
    server: &Vars,
    defaults: &Vars,
    smart_search_path: bool,
) -> Option<(Vec<u8>, Vars)> {
    let mut sql = client.deploy(server, smart_search_path);
    let left = |&(name, value): &(&'static str, &[u8])| {
        client.get(name).is_none()
            && kiwi::var::is_deployed(name)
            && defaults.get(name) != Some(value)
    };
    if sql.is_empty() && !server.iter().any(|v| left(&v)) {
        return None;
    }
    let mut after = server.clone();
    for (name, value) in client.iter() {
        if kiwi::var::is_deployed(name) {
            let _ = after.set(name.as_bytes(), value);
        }
    }
    for (name, _) in server.iter().filter(left) {
        sql.extend_from_slice(b"RESET ");
        sql.extend_from_slice(name.as_bytes());
        sql.push(b';');
        match defaults.get(name) {
            Some(d) => {
                let _ = after.set(name.as_bytes(), d);
            }
            None => after.unset(name.as_bytes()),
        }
    }
    Some((sql, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let mut v = Vars::new();
        for (n, val) in pairs {
            v.set(n.as_bytes(), val.as_bytes()).unwrap();
        }
        v
    }

    #[test]
    fn sets_what_differs_and_resets_what_a_previous_client_left() {
        let defaults = vars(&[("application_name", ""), ("TimeZone", "UTC")]);
        let server = vars(&[
            ("application_name", "old"),
            ("TimeZone", "UTC"),
            ("statement_timeout", "5s"),
        ]);
        let client = vars(&[("application_name", "new")]);
        let (sql, after) = deploy(&client, &server, &defaults, false).expect("differs");
        let sql = String::from_utf8(sql).unwrap();
        assert!(sql.contains("SET application_name=E'new';"), "{sql}");
        assert!(sql.contains("RESET statement_timeout;"), "{sql}");
        assert!(!sql.contains("TimeZone"), "{sql}");
        assert_eq!(after.get("statement_timeout"), None);
        assert_eq!(after.get("application_name"), Some(&b"new"[..]));
        assert!(
            deploy(&client, &after, &defaults, false).is_none(),
            "a second deploy has nothing to do"
        );
    }
}
