//! `tls_protocols`: the TLS versions a listen or storage allows, as a set of names
//! (`"tlsv1.2"`, `"tlsv1.2, tlsv1.3"`, `"tlsv1.2 tlsv1.3"`), applied to the OpenSSL context as
//! its lowest and highest version with any version between them that the list leaves out
//! switched off. Upstream parses the string and never applies it.

use std::fmt;

use openssl::ssl::{SslContextBuilder, SslOptions, SslVersion};

/// The versions a `tls_protocols` list names, lowest first; never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    /// Bit `i` set: `VERSIONS[i]` is allowed.
    allowed: u8,
}

/// The versions by name, lowest first, with the option that switches each off.
const VERSIONS: [(&str, SslVersion, SslOptions); 4] = [
    ("tlsv1", SslVersion::TLS1, SslOptions::NO_TLSV1),
    ("tlsv1.1", SslVersion::TLS1_1, SslOptions::NO_TLSV1_1),
    ("tlsv1.2", SslVersion::TLS1_2, SslOptions::NO_TLSV1_2),
    ("tlsv1.3", SslVersion::TLS1_3, SslOptions::NO_TLSV1_3),
];

/// A name in a `tls_protocols` list that is no TLS version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProtocol(pub String);

impl fmt::Display for UnknownProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown TLS protocol \"{}\"", self.0)
    }
}

/// What `tls_protocols` accepts, for diagnostics.
pub const EXPECTED: &str =
    "TLS versions separated by commas or spaces (tlsv1, tlsv1.1, tlsv1.2, tlsv1.3, secure, all)";

impl Protocols {
    /// Parses a list of names, any case, separated by commas, colons or white space;
    /// `tlsv1.0` is `tlsv1`, `secure` is `tlsv1.2` and `tlsv1.3`, `all` every version.
    /// `None` for an empty list: OpenSSL's defaults.
    pub fn parse(list: &str) -> Result<Option<Protocols>, UnknownProtocol> {
        let mut allowed = 0u8;
        let names = list
            .split(|c: char| c == ',' || c == ':' || c.is_whitespace())
            .filter(|n| !n.is_empty());
        for name in names {
            allowed |= match name.to_ascii_lowercase().as_str() {
                "tlsv1" | "tlsv1.0" => 0b0001,
                "tlsv1.1" => 0b0010,
                "tlsv1.2" => 0b0100,
                "tlsv1.3" => 0b1000,
                "secure" => 0b1100,
                "all" => 0b1111,
                _ => return Err(UnknownProtocol(name.to_string())),
            };
        }
        Ok((allowed != 0).then_some(Protocols { allowed }))
    }

    /// Limits `b` to these versions.
    pub fn apply(self, b: &mut SslContextBuilder) -> Result<(), openssl::error::ErrorStack> {
        let on = |i: usize| self.allowed & (1 << i) != 0;
        let lowest = (0..VERSIONS.len()).find(|&i| on(i)).unwrap_or(0);
        let highest = (0..VERSIONS.len()).rfind(|&i| on(i)).unwrap_or(3);
        b.set_min_proto_version(Some(VERSIONS[lowest].1))?;
        b.set_max_proto_version(Some(VERSIONS[highest].1))?;
        for (i, (_, _, off)) in VERSIONS.iter().enumerate().take(highest).skip(lowest) {
            if !on(i) {
                b.set_options(*off);
            }
        }
        Ok(())
    }

    /// The allowed versions' names, lowest first.
    pub fn names(self) -> Vec<&'static str> {
        (0..VERSIONS.len())
            .filter(|&i| self.allowed & (1 << i) != 0)
            .map(|i| VERSIONS[i].0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<&'static str> {
        Protocols::parse(list)
            .unwrap()
            .map(Protocols::names)
            .unwrap_or_default()
    }

    #[test]
    fn lists_in_any_separator_and_case() {
        assert_eq!(names("tlsv1.3"), ["tlsv1.3"]);
        assert_eq!(names("TLSv1.2,TLSv1.3"), ["tlsv1.2", "tlsv1.3"]);
        assert_eq!(names(" tlsv1.2  tlsv1.3 "), ["tlsv1.2", "tlsv1.3"]);
        assert_eq!(names("tlsv1.0:tlsv1.3"), ["tlsv1", "tlsv1.3"]);
        assert_eq!(names("secure"), ["tlsv1.2", "tlsv1.3"]);
        assert_eq!(names("all").len(), 4);
        assert_eq!(Protocols::parse(" , ").unwrap(), None);
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = Protocols::parse("tlsv1.2, sslv3").unwrap_err();
        assert_eq!(e.to_string(), "unknown TLS protocol \"sslv3\"");
        assert!(Protocols::parse("tlsv1.4").is_err());
    }

    #[test]
    fn applied_as_a_range_with_gaps_switched_off() {
        let mut b = SslContextBuilder::new(openssl::ssl::SslMethod::tls_server()).unwrap();
        let p = Protocols::parse("tlsv1.1 tlsv1.3").unwrap().unwrap();
        p.apply(&mut b).unwrap();
        assert_eq!(b.min_proto_version(), Some(SslVersion::TLS1_1));
        assert_eq!(b.max_proto_version(), Some(SslVersion::TLS1_3));
        assert!(b.options().contains(SslOptions::NO_TLSV1_2));
        assert!(!b.options().contains(SslOptions::NO_TLSV1_1));
    }
}
