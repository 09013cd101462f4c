//! Fuzz target `decode`: every kiwi decoder on arbitrary bytes.
//!
//! The first byte picks the stream (startup packet, client stream, server stream, SCRAM server
//! input); the rest is fed to it. Nothing may panic, and every message that decodes must encode
//! back to exactly the bytes it came from.
#![no_main]

use kiwi::header::{Frame, Frames};
use kiwi::scram::{SCRAM_SHA_256, ScramServer, ScramVerifier};
use kiwi::{BackendMessage, FrontendMessage, StartupPacket};
use libfuzzer_sys::fuzz_target;

/// A small limit so that length checks are exercised too.
const MAX_LEN: u32 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => startup(input),
        1 => stream(input, |frame, out| {
            FrontendMessage::from_frame(frame)
                .map(|m| m.encode(out))
                .is_ok()
        }),
        2 => stream(input, |frame, out| {
            BackendMessage::from_frame(frame)
                .map(|m| m.encode(out))
                .is_ok()
        }),
        _ => scram(input),
    }
});

fn startup(input: &[u8]) {
    if let Ok(Some((packet, used))) = StartupPacket::parse(input) {
        let mut out = Vec::new();
        packet.encode(&mut out);
        assert_eq!(out, input[..used]);
    }
}

/// Splits `input` into frames; each frame that `decode_encode` decodes must re-encode exactly.
fn stream(input: &[u8], decode_encode: impl Fn(&Frame<'_>, &mut Vec<u8>) -> bool) {
    let mut out = Vec::new();
    for frame in Frames::new(input, MAX_LEN) {
        let Ok(frame) = frame else { return };
        out.clear();
        if decode_encode(&frame, &mut out) {
            assert_eq!(out, frame.bytes);
        }
    }
}

fn scram(input: &[u8]) {
    let Ok(verifier) = ScramVerifier::from_password(b"pw", b"salt", 1) else {
        return;
    };
    let mut server = ScramServer::new(verifier);
    let (first, last) = input.split_at(input.len() / 2);
    let _ = server.handle_client_first(SCRAM_SHA_256, first);
    let _ = server.handle_client_final(last);
}
