//! MD5 password authentication: the stored hash `md5` + md5(password + user) and the salted
//! answer `md5` + md5(hex hash + salt) that a client sends for AuthenticationMD5Password.

use md5::{Digest, Md5};

/// Prefix of an MD5 password hash and of an MD5 answer.
pub const MD5_PREFIX: &str = "md5";

/// Length of `md5` + 32 hex digits.
pub const MD5_HASH_LEN: usize = 35;

/// The hash PostgreSQL stores for an MD5 password: `md5` + hex(md5(password + user)).
pub fn md5_password_hash(user: &[u8], password: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(password);
    h.update(user);
    prefixed_hex(&h.finalize())
}

/// Whether `s` looks like a stored MD5 hash (`md5` + 32 hex digits).
pub fn is_md5_hash(s: &[u8]) -> bool {
    s.len() == MD5_HASH_LEN
        && s.starts_with(MD5_PREFIX.as_bytes())
        && s.get(3..)
            .unwrap_or_default()
            .iter()
            .all(u8::is_ascii_hexdigit)
}

/// The answer to AuthenticationMD5Password for a plaintext password.
pub fn md5_response(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
    md5_response_from_hash(&md5_password_hash(user, password), salt)
}

/// The answer to AuthenticationMD5Password from a stored hash (`md5` + 32 hex digits).
///
/// A value without the `md5` prefix is hashed as it is, as PostgreSQL would.
pub fn md5_response_from_hash(hash: &str, salt: [u8; 4]) -> String {
    let hex = hash.strip_prefix(MD5_PREFIX).unwrap_or(hash);
    let mut h = Md5::new();
    h.update(hex.as_bytes());
    h.update(salt);
    prefixed_hex(&h.finalize())
}

/// Compares a client's answer with the expected one in constant time.
pub fn md5_verify(expected: &str, received: &[u8]) -> bool {
    expected.len() == received.len() && openssl::memcmp::eq(expected.as_bytes(), received)
}

fn prefixed_hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(MD5_HASH_LEN);
    out.push_str(MD5_PREFIX);
    for &b in digest {
        // Both indexes are below 16, the table's length.
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // md5("password" + "postgres"), as `CREATE ROLE postgres PASSWORD 'password'` stores.
        let hash = md5_password_hash(b"postgres", b"password");
        assert_eq!(hash, "md532e12f215ba27cb750c9e093ce4b5127");
        assert!(is_md5_hash(hash.as_bytes()));
        // md5("32e12f215ba27cb750c9e093ce4b5127" + 01 02 03 04), computed independently.
        let answer = md5_response(b"postgres", b"password", [1, 2, 3, 4]);
        assert_eq!(answer, "md598511ceaec347a656f032c7f2a16ef17");
        assert_eq!(answer, md5_response_from_hash(&hash, [1, 2, 3, 4]));
        assert!(md5_verify(&answer, answer.as_bytes()));
        assert!(!md5_verify(&answer, b"md5"));
    }
}
