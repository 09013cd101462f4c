//! The address selector of a rule: any address, a CIDR network, or a host name matched
//! against the client's (forward-confirmed) reverse DNS name.

use std::fmt;
use std::net::IpAddr;

/// Which client addresses a rule takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressRange {
    /// Every address (selector omitted).
    Any,
    /// A network: `addr/prefix`.
    Network {
        /// The address as written (host bits may be set, as in `10.13.37.10/24`).
        addr: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
    /// A host name, or a `.suffix` that matches every name ending with it.
    Hostname(String),
}

/// Which half of an `addr/len` network is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    /// The address is no IPv4 or IPv6 address.
    Address,
    /// The prefix length is no number or too long for the address family.
    PrefixLength,
}

impl AddressRange {
    /// The network `addr/len`, from its two halves (shared by rule selectors and hba_file).
    pub fn network(addr: &str, len: &str) -> Result<AddressRange, CidrError> {
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::Address)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = len
            .parse::<u8>()
            .ok()
            .filter(|&p| p <= max)
            .ok_or(CidrError::PrefixLength)?;
        Ok(AddressRange::Network { addr, prefix })
    }

    /// Parses a selector string; the error says what is wrong, in upstream's words.
    pub fn parse(s: &str) -> Result<AddressRange, String> {
        if let Some((addr, len)) = s.split_once('/') {
            return AddressRange::network(addr, len).map_err(|e| match e {
                CidrError::Address => format!("invalid address or hostname: '{s}'"),
                CidrError::PrefixLength => format!("invalid network prefix length in '{s}'"),
            });
        }
        if s.parse::<IpAddr>().is_ok() {
            return Err(format!("expected network mask in '{s}'"));
        }
        let name = s.strip_prefix('.').unwrap_or(s);
        let labels_ok = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !labels_ok {
            return Err(format!("invalid address or hostname: '{s}'"));
        }
        Ok(AddressRange::Hostname(s.to_string()))
    }

    /// Whether a client at `ip`, whose confirmed host name is `hostname`, falls in the range.
    pub fn contains(&self, ip: Option<IpAddr>, hostname: Option<&str>) -> bool {
        match self {
            AddressRange::Any => true,
            AddressRange::Network { addr, prefix } => {
                ip.is_some_and(|ip| in_network(ip, *addr, *prefix))
            }
            AddressRange::Hostname(want) => hostname.is_some_and(|h| {
                let h = h.trim_end_matches('.');
                if want.starts_with('.') {
                    h.len() > want.len()
                        && h.to_ascii_lowercase().ends_with(&want.to_ascii_lowercase())
                } else {
                    h.eq_ignore_ascii_case(want)
                }
            }),
        }
    }

    /// Whether this is the "any address" selector.
    pub fn is_any(&self) -> bool {
        matches!(self, AddressRange::Any)
    }
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let ip = match (ip, net) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return false,
        },
        _ => ip,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            masked(u32::from(a).into(), u32::from(b).into(), prefix, 32)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => masked(a.into(), b.into(), prefix, 128),
        _ => false,
    }
}

fn masked(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    let shift = bits - u32::from(prefix);
    if shift >= 128 {
        return true;
    }
    (a >> shift) == (b >> shift)
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressRange::Any => f.write_str("<default>"),
            AddressRange::Network { addr, prefix } => write!(f, "{addr}/{prefix}"),
            AddressRange::Hostname(h) => f.write_str(h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn networks_contain_their_addresses() {
        let r = AddressRange::parse("10.13.37.10/24").unwrap();
        assert!(r.contains(ip("10.13.37.200"), None));
        assert!(!r.contains(ip("10.13.38.1"), None));
        assert!(r.contains(ip("::ffff:10.13.37.1"), None));
        assert!(
            AddressRange::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("1.2.3.4"), None)
        );
        assert!(
            AddressRange::parse("::1/128")
                .unwrap()
                .contains(ip("::1"), None)
        );
        assert!(!r.contains(None, Some("x")));
    }

    #[test]
    fn parse_errors_use_upstream_words() {
        assert!(
            AddressRange::parse("10.0.0.1")
                .unwrap_err()
                .contains("expected network mask")
        );
        assert!(
            AddressRange::parse("10.0.0.1/33")
                .unwrap_err()
                .contains("prefix length")
        );
        assert!(
            AddressRange::parse("bad host!")
                .unwrap_err()
                .contains("invalid address")
        );
    }

    #[test]
    fn hostnames_and_suffixes() {
        let r = AddressRange::parse("localhost").unwrap();
        assert!(r.contains(None, Some("LOCALHOST")));
        let s = AddressRange::parse(".example.com").unwrap();
        assert!(s.contains(None, Some("db.example.com.")));
        assert!(!s.contains(None, Some("example.com")));
    }
}
