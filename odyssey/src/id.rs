//! Client and server ids: `c` or `s` and 12 hex digits, as upstream prints them in logs and in
//! every error a client receives (`odyssey: c…: `).

use std::fmt;

/// A client connection's id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId([u8; 6]);

/// A server connection's id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerId([u8; 6]);

fn random6() -> [u8; 6] {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]]
}

fn write_hex(f: &mut fmt::Formatter<'_>, prefix: char, bytes: &[u8; 6]) -> fmt::Result {
    write!(f, "{prefix}")?;
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl ClientId {
    /// A new random id.
    pub fn new() -> ClientId {
        ClientId(random6())
    }
}

impl Default for ClientId {
    fn default() -> Self {
        ClientId::new()
    }
}

impl ServerId {
    /// A new random id.
    pub fn new() -> ServerId {
        ServerId(random6())
    }
}

impl Default for ServerId {
    fn default() -> Self {
        ServerId::new()
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, 'c', &self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, 's', &self.0)
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_prefix_and_twelve_hex_digits() {
        let c = ClientId::new().to_string();
        let s = ServerId::new().to_string();
        assert_eq!(c.len(), 13);
        assert!(c.starts_with('c') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit()));
        assert!(s.starts_with('s') && s[1..].chars().all(|ch| ch.is_ascii_hexdigit()));
        assert_ne!(ClientId::new(), ClientId::new());
    }
}
