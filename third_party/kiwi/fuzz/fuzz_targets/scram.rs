//! Fuzz target `scram`: the server side of a SCRAM-SHA-256(-PLUS) exchange fed arbitrary
//! client-first and client-final messages.
//!
//! Input: one byte of options (bit 0: the server offers -PLUS; bit 1: the client picks it),
//! then client-first, a NUL, client-final. The server runs against RFC 7677's verifier with its
//! fixed server nonce, so the committed seed (RFC 7677's exchange) reaches the proof check and
//! succeeds. Nothing may panic; a finished exchange always has keys, a failed one never does.
#![no_main]

use std::sync::OnceLock;

use kiwi::scram::{SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramServer, ScramVerifier};
use libfuzzer_sys::fuzz_target;

const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

/// RFC 7677's salt, `W22ZaJ0SNY7soEsUEjb6gQ==`.
const RFC_SALT: [u8; 16] = [
    91, 109, 153, 104, 157, 18, 53, 142, 236, 160, 75, 20, 18, 54, 250, 129,
];

/// RFC 7677's verifier ("pencil", 4096 iterations): derived once, not per input.
fn verifier() -> ScramVerifier {
    static VERIFIER: OnceLock<ScramVerifier> = OnceLock::new();
    VERIFIER
        .get_or_init(|| ScramVerifier::from_password(b"pencil", &RFC_SALT, 4096).unwrap())
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let (first, last) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let mut server = ScramServer::new(verifier()).with_server_nonce(RFC_SERVER_NONCE);
    if options & 1 != 0 {
        server = server.channel_binding(vec![0x5a; 32]);
    }
    let mechanism = match options & 2 {
        0 => SCRAM_SHA_256,
        _ => SCRAM_SHA_256_PLUS,
    };
    let Ok(server_first) = server.handle_client_first(mechanism, first) else {
        assert!(server.keys().is_none());
        return;
    };
    assert!(server_first.starts_with(b"r="));
    let finished = server.handle_client_final(last);
    assert_eq!(finished.is_ok(), server.is_done());
    assert_eq!(server.keys().is_some(), server.is_done());
});
