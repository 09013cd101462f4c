//! The `hba_file`: a pg_hba.conf subset deciding, after routing and before authentication,
//! whether a client may go on. Lines are `local DB USER METHOD`,
//! `host|hostssl|hostnossl DB USER ADDR/LEN METHOD` or `... ADDR MASK METHOD`.

use std::net::IpAddr;

use super::address::{AddressRange, CidrError};
use super::diag::{Diagnostic, Pos};
use super::rule::{ConnType, RuleKey, Transport};

/// What a matching line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaAction {
    /// `allow`/`trust`: go on with the rule's own authentication.
    Allow,
    /// `deny`/`reject`.
    Deny,
}

/// Which names a line takes: a comma list whose items may be the keywords `all` and (for
/// databases) `sameuser`, as upstream reads each item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HbaNames {
    /// `all` is among the items.
    pub all: bool,
    /// `sameuser` is among them (databases only): the database named like the user.
    pub same_user: bool,
    /// The other items.
    pub list: Vec<String>,
}

impl HbaNames {
    /// Whether `name` is taken; `other` is the user for a database (`sameuser`).
    pub fn admits(&self, name: &str, other: &str) -> bool {
        self.all || (self.same_user && name == other) || self.list.iter().any(|n| n == name)
    }
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRule {
    /// Its line.
    pub pos: Pos,
    /// `local`, `host`, `hostssl` or `hostnossl`.
    pub conn_type: ConnType,
    /// Databases.
    pub databases: HbaNames,
    /// Users.
    pub users: HbaNames,
    /// Client network (`Any` for `local`).
    pub address: AddressRange,
    /// Allow or deny.
    pub action: HbaAction,
}

/// Parses the file text; the first bad line fails the whole file, as upstream.
pub fn parse(src_name: &std::sync::Arc<str>, text: &str) -> Result<Vec<HbaRule>, Diagnostic> {
    let mut rules = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let pos = Pos {
            file: src_name.clone(),
            line: n as u32 + 1,
            column: 1,
        };
        let line = raw.split('#').next().unwrap_or("");
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        rules.push(parse_line(&fields, pos.clone()).map_err(|e| Diagnostic::error(&pos, e))?);
    }
    Ok(rules)
}

fn parse_line(f: &[&str], pos: Pos) -> Result<HbaRule, String> {
    let conn_type = match f[0] {
        "local" => ConnType::Local,
        "host" => ConnType::Host,
        "hostssl" => ConnType::HostSsl,
        "hostnossl" => ConnType::HostNoSsl,
        other => return Err(format!("unknown connection type '{other}'")),
    };
    let need = if conn_type == ConnType::Local { 4 } else { 5 };
    if f.len() < need {
        return Err(format!(
            "too few fields (got {}, expected at least {need})",
            f.len()
        ));
    }
    if f.len() > 6 || (conn_type == ConnType::Local && f.len() > 4) {
        return Err(format!("too many fields (got {})", f.len()));
    }
    let databases = names(f[1], true);
    let users = names(f[2], false);
    let (address, method) = match (conn_type, f.len()) {
        (ConnType::Local, _) => (AddressRange::Any, f[3]),
        (_, 5) => (network(f[3])?, f[4]),
        _ => (masked_network(f[3], f[4])?, f[5]),
    };
    let action = match method {
        "allow" | "trust" => HbaAction::Allow,
        "deny" | "reject" => HbaAction::Deny,
        other => {
            return Err(format!(
                "unknown auth method '{other}' (only allow/trust/deny/reject supported)"
            ));
        }
    };
    Ok(HbaRule {
        pos,
        conn_type,
        databases,
        users,
        address,
        action,
    })
}

fn names(field: &str, databases: bool) -> HbaNames {
    let mut names = HbaNames::default();
    for item in field.split(',').filter(|s| !s.is_empty()) {
        match item {
            "all" => names.all = true,
            "sameuser" if databases => names.same_user = true,
            name => names.list.push(name.to_string()),
        }
    }
    names
}

fn network(field: &str) -> Result<AddressRange, String> {
    let (addr, len) = field
        .split_once('/')
        .ok_or_else(|| "expected network mask and auth method".to_string())?;
    AddressRange::network(addr, len).map_err(|e| match e {
        CidrError::Address => format!("invalid IP address '{addr}'"),
        CidrError::PrefixLength => format!("invalid prefix length '{len}'"),
    })
}

fn masked_network(addr: &str, mask: &str) -> Result<AddressRange, String> {
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid IP address '{addr}'"))?;
    let m: IpAddr = mask
        .parse()
        .map_err(|_| format!("invalid network mask '{mask}'"))?;
    let bits: u128 = match m {
        IpAddr::V4(v4) if ip.is_ipv4() => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) if ip.is_ipv6() => v6.into(),
        _ => return Err(format!("invalid network mask '{mask}'")),
    };
    let prefix = bits.leading_ones();
    let total = if ip.is_ipv4() { 32 } else { 128 };
    if bits.count_ones() != prefix || prefix > total {
        return Err(format!("invalid network mask '{mask}'"));
    }
    Ok(AddressRange::Network {
        addr: ip,
        prefix: prefix as u8,
    })
}

/// The names a rule goes by in the hba check: `default_db`/`default_user` for a default
/// rule's `default` (upstream matches `client->rule->db_name`, not the client's names).
pub fn rule_names(key: &RuleKey) -> (&str, &str) {
    (
        key.db.as_named().unwrap_or("default_db"),
        key.user.as_named().unwrap_or("default_user"),
    )
}

/// Decides for a client of `transport` at `ip`, routed to a rule named `db`.`user` (the rule's
/// names: `default_db`/`default_user` for default rules). No matching line means deny.
pub fn decide(
    rules: &[HbaRule],
    transport: Transport,
    ip: Option<IpAddr>,
    db: &str,
    user: &str,
) -> HbaAction {
    let hit = rules.iter().find(|r| {
        r.conn_type.admits(transport)
            && (transport == Transport::Unix || r.address.contains(ip, None))
            && r.databases.admits(db, user)
            && r.users.admits(user, db)
    });
    hit.map_or(HbaAction::Deny, |r| r.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Vec<HbaRule>, Diagnostic> {
        parse(&"hba".into(), text)
    }

    #[test]
    fn first_matching_line_decides() {
        let rules = file(
            "local hba_db user_allow allow\nlocal hba_db user_reject deny\n\
             host hba_db user_allow 127.0.0.0/24 allow # c\nhost all all 10.0.0.0 255.0.0.0 trust\n",
        )
        .unwrap();
        let lo = "127.0.0.1".parse().ok();
        assert_eq!(
            decide(&rules, Transport::Unix, None, "hba_db", "user_allow"),
            HbaAction::Allow
        );
        assert_eq!(
            decide(&rules, Transport::Unix, None, "hba_db", "user_reject"),
            HbaAction::Deny
        );
        assert_eq!(
            decide(
                &rules,
                Transport::Tcp { tls: false },
                lo,
                "hba_db",
                "user_allow"
            ),
            HbaAction::Allow
        );
        assert_eq!(
            decide(&rules, Transport::Tcp { tls: false }, lo, "hba_db", "x"),
            HbaAction::Deny
        );
        let ten = "10.1.2.3".parse().ok();
        assert_eq!(
            decide(&rules, Transport::Tcp { tls: true }, ten, "any", "x"),
            HbaAction::Allow
        );
    }

    const TCP: Transport = Transport::Tcp { tls: false };
    const TLS: Transport = Transport::Tcp { tls: true };

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn one(line: &str, t: Transport, addr: Option<IpAddr>, db: &str, user: &str) -> HbaAction {
        decide(&file(line).unwrap(), t, addr, db, user)
    }

    #[test]
    fn connection_types() {
        let lo = ip("127.0.0.1");
        let allow = |line, t, addr| one(line, t, addr, "d", "u") == HbaAction::Allow;
        assert!(allow("local all all allow", Transport::Unix, None));
        assert!(!allow("local all all allow", TCP, lo));
        assert!(!allow(
            "host all all 0.0.0.0/0 allow",
            Transport::Unix,
            None
        ));
        assert!(allow("host all all 0.0.0.0/0 allow", TCP, lo));
        assert!(allow("host all all 0.0.0.0/0 allow", TLS, lo));
        assert!(!allow("hostssl all all 0.0.0.0/0 allow", TCP, lo));
        assert!(allow("hostssl all all 0.0.0.0/0 allow", TLS, lo));
        assert!(allow("hostnossl all all 0.0.0.0/0 allow", TCP, lo));
        assert!(!allow("hostnossl all all 0.0.0.0/0 allow", TLS, lo));
    }

    #[test]
    fn databases_and_users() {
        let u = Transport::Unix;
        assert_eq!(
            one("local a,b all trust", u, None, "b", "x"),
            HbaAction::Allow
        );
        assert_eq!(
            one("local a,b all trust", u, None, "c", "x"),
            HbaAction::Deny
        );
        assert_eq!(
            one("local sameuser all allow", u, None, "x", "x"),
            HbaAction::Allow
        );
        assert_eq!(
            one("local sameuser all allow", u, None, "y", "x"),
            HbaAction::Deny
        );
        assert_eq!(
            one("local all u1,u2 allow", u, None, "d", "u2"),
            HbaAction::Allow
        );
        assert_eq!(
            one("local all u1,u2 allow", u, None, "d", "u3"),
            HbaAction::Deny
        );
        // Keywords inside a list count, as upstream reads each item; `sameuser` only for
        // databases.
        assert_eq!(
            one("local x,all u allow", u, None, "d", "u"),
            HbaAction::Allow
        );
        assert_eq!(
            one("local sameuser,d all allow", u, None, "d", "u"),
            HbaAction::Allow
        );
        assert_eq!(
            one("local all sameuser allow", u, None, "u", "u"),
            HbaAction::Deny
        );
        assert_eq!(
            one("local all sameuser allow", u, None, "d", "sameuser"),
            HbaAction::Allow
        );
        // The first matching line decides, a later one is not reached.
        let text = "local all u reject
local all all allow";
        assert_eq!(one(text, u, None, "d", "u"), HbaAction::Deny);
        assert_eq!(one(text, u, None, "d", "v"), HbaAction::Allow);
        // No line at all refuses.
        assert_eq!(one("", u, None, "d", "u"), HbaAction::Deny);
    }

    #[test]
    fn addresses() {
        let allow = |line, addr: &str| one(line, TCP, ip(addr), "d", "u") == HbaAction::Allow;
        assert!(allow("host all all 127.0.0.1/32 allow", "127.0.0.1"));
        assert!(!allow("host all all 127.0.0.1/32 allow", "127.0.0.2"));
        assert!(allow("host all all 10.0.0.0/8 allow", "10.200.0.1"));
        assert!(!allow("host all all 10.0.0.0/8 allow", "127.0.0.1"));
        assert!(allow("host all all 10.1.0.0 255.255.0.0 allow", "10.1.9.9"));
        assert!(!allow(
            "host all all 10.1.0.0 255.255.0.0 allow",
            "10.2.0.1"
        ));
        assert!(allow("host all all ::1/128 allow", "::1"));
        assert!(!allow("host all all ::1/128 allow", "127.0.0.1"));
    }

    #[test]
    fn default_rules_go_by_default_names() {
        let key = RuleKey {
            pos: Pos {
                file: "c".into(),
                line: 1,
                column: 1,
            },
            order: 0,
            db: super::super::rule::Name::Default,
            user: super::super::rule::Name::Default,
            group: None,
            address: AddressRange::Any,
            conn_type: ConnType::Default,
        };
        assert_eq!(rule_names(&key), ("default_db", "default_user"));
        let named = RuleKey::internal("db", "user", key.pos.clone());
        assert_eq!(rule_names(&named), ("db", "user"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = file("\nlocal all all\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "hba:2:1: too few fields (got 3, expected at least 4)"
        );
        assert!(
            file("peer all all allow")
                .unwrap_err()
                .to_string()
                .contains("unknown connection type")
        );
        assert!(
            file("host all all 1.2.3.4/40 allow")
                .unwrap_err()
                .to_string()
                .contains("prefix length")
        );
        assert!(
            file("host all all 1.2.3.4 255.0.255.0 allow")
                .unwrap_err()
                .to_string()
                .contains("network mask")
        );
        assert!(
            file("host all all 1.2.3.4/8 md5")
                .unwrap_err()
                .to_string()
                .contains("unknown auth method")
        );
        assert!(
            file("host all all nothere/8 allow")
                .unwrap_err()
                .to_string()
                .contains("invalid IP address")
        );
    }
}
