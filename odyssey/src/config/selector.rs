//! Rule selectors: which database, user, client address and connection type a rule takes,
//! read from `database "db" { user "u" ["addr"] [conn_type] { ... } }`.

use std::fmt;

use super::address::AddressRange;
use super::convert::Reader;
use super::diag::Pos;
use super::model::{Arg, Item, Value};
use super::rule::Body;

/// A database or user name in a rule key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Name {
    /// A literal name (sorts before `Default`).
    Named(String),
    /// `default`: any name.
    Default,
}

impl Name {
    /// The literal name, if any.
    pub fn as_named(&self) -> Option<&str> {
        match self {
            Name::Named(s) => Some(s),
            Name::Default => None,
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Named(s) => f.write_str(s),
            Name::Default => f.write_str("<default>"),
        }
    }
}

/// The connection-type selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnType {
    /// Every connection (selector omitted or `default`).
    Default,
    /// TCP, with or without TLS.
    Host,
    /// TCP with TLS.
    HostSsl,
    /// TCP without TLS.
    HostNoSsl,
    /// Unix socket.
    Local,
}

/// How a client is connected, as the connection-type selectors see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A unix socket.
    Unix,
    /// TCP; `tls` once an SSLRequest was accepted.
    Tcp {
        /// Whether TLS is on.
        tls: bool,
    },
}

impl ConnType {
    /// Whether a client on `t` matches this selector.
    pub fn admits(self, t: Transport) -> bool {
        match (self, t) {
            (ConnType::Default, _) => true,
            (ConnType::Local, Transport::Unix) => true,
            (ConnType::Host, Transport::Tcp { .. }) => true,
            (ConnType::HostSsl, Transport::Tcp { tls }) => tls,
            (ConnType::HostNoSsl, Transport::Tcp { tls }) => !tls,
            _ => false,
        }
    }
}

/// What selects a rule's clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleKey {
    /// Where the rule starts (its `user`/`group`/`watchdog` line).
    pub pos: Pos,
    /// Position in the config, for `sequential_routing`.
    pub order: usize,
    /// Database selector.
    pub db: Name,
    /// User selector; a group rule's user is `group_<name>`.
    pub user: Name,
    /// For group rules, the group name.
    pub group: Option<String>,
    /// Address selector.
    pub address: AddressRange,
    /// Connection-type selector.
    pub conn_type: ConnType,
}

impl RuleKey {
    /// The key of an internal rule such as the watchdog's.
    pub fn internal(db: &str, user: &str, pos: Pos) -> RuleKey {
        RuleKey {
            pos,
            order: 0,
            db: Name::Named(db.to_string()),
            user: Name::Named(user.to_string()),
            group: None,
            address: AddressRange::Any,
            conn_type: ConnType::Default,
        }
    }

    /// `rule 'db.user'` as upstream names rules in messages.
    pub fn label(&self) -> String {
        let db = self.db.as_named().unwrap_or("default_db");
        let user = self.user.as_named().unwrap_or("default_user");
        format!("rule '{db}.{user}'")
    }
}

pub(super) fn name(r: &mut Reader, item: &Item, arg: &Arg) -> Option<Name> {
    match &arg.value {
        Value::Word(w) if w == "default" => Some(Name::Default),
        Value::Str(s, _) if s.is_empty() => {
            r.error(&arg.pos, format!("invalid name for {}: empty", item.name()));
            None
        }
        _ => r.string_value(item, arg).map(Name::Named),
    }
}

/// `user "u"|default ["addr"] [conn_type]` (either order) or `group "g" ...`.
pub(super) fn selector(
    r: &mut Reader,
    item: &Item,
    db: Name,
    body: Body,
    order: usize,
) -> Option<RuleKey> {
    let (first, rest) = match item.args.split_first() {
        Some(split) => split,
        None => {
            r.expected(
                item.pos(),
                format!("a name after {}", item.name()),
                "nothing",
            );
            return None;
        }
    };
    let (user, group) = match (body, name(r, item, first)?) {
        (Body::Group, Name::Named(g)) => (Name::Named(format!("group_{g}")), Some(g)),
        (Body::Group, Name::Default) => {
            r.expected(&first.pos, "a quoted group name", "default");
            return None;
        }
        (_, user) => (user, None),
    };
    let mut key = RuleKey {
        pos: item.pos().clone(),
        order,
        db,
        user,
        group,
        address: AddressRange::Any,
        conn_type: ConnType::Default,
    };
    let (mut has_addr, mut has_type) = (false, false);
    for arg in rest {
        match &arg.value {
            Value::Str(s, _) if !has_addr => {
                has_addr = true;
                match AddressRange::parse(s) {
                    Ok(a) => key.address = a,
                    Err(e) => r.error(&arg.pos, e),
                }
            }
            Value::Word(w) if !has_type => {
                has_type = true;
                key.conn_type = match w.as_str() {
                    "default" => ConnType::Default,
                    "host" => ConnType::Host,
                    "hostssl" => ConnType::HostSsl,
                    "hostnossl" => ConnType::HostNoSsl,
                    "local" => ConnType::Local,
                    _ => {
                        r.expected(
                            &arg.pos,
                            "a connection type (default, host, hostssl, hostnossl, local)",
                            format!("'{w}'"),
                        );
                        return None;
                    }
                }
            }
            other => {
                r.expected(
                    &arg.pos,
                    "an address, a connection type or '{'",
                    other.describe(),
                );
                return None;
            }
        }
    }
    Some(key)
}
