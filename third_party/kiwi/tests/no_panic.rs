//! Property tests: arbitrary bytes never panic a decoder, and whatever decodes re-encodes to
//! exactly the bytes it came from.

use kiwi::backend::ErrorFields;
use kiwi::header::{DEFAULT_MAX_MESSAGE, Frames};
use kiwi::scram::{SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramServer, ScramVerifier};
use kiwi::{BackendMessage, FrontendMessage, StartupPacket};
use proptest::collection::vec;
use proptest::prelude::*;

/// Frames `body` under `tag` as it would be on the wire.
fn framed(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn frontend_decode(tag in any::<u8>(), body in vec(any::<u8>(), 0..64)) {
        if let Ok(m) = FrontendMessage::decode(tag, &body) {
            let mut out = Vec::new();
            m.encode(&mut out);
            prop_assert_eq!(out, framed(tag, &body));
        }
    }

    #[test]
    fn backend_decode(tag in any::<u8>(), body in vec(any::<u8>(), 0..64)) {
        if let Ok(m) = BackendMessage::decode(tag, &body) {
            let mut out = Vec::new();
            m.encode(&mut out);
            prop_assert_eq!(out, framed(tag, &body));
        }
    }

    #[test]
    fn error_fields_decode(body in vec(any::<u8>(), 0..64)) {
        if let Ok(e) = ErrorFields::decode(&body) {
            let _ = (e.severity(), e.code(), e.position(), e.to_string());
        }
    }

    #[test]
    fn startup_decode(body in vec(any::<u8>(), 0..64)) {
        let mut packet = (body.len() as u32 + 4).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        if let Ok(Some((m, used))) = StartupPacket::parse(&packet) {
            let mut out = Vec::new();
            m.encode(&mut out);
            prop_assert_eq!(&out[..], &packet[..used]);
        }
        let _ = StartupPacket::parse(&body);
    }

    #[test]
    fn frames_of_any_stream(buf in vec(any::<u8>(), 0..256)) {
        let mut frames = Frames::new(&buf, 128);
        let mut total = 0;
        for frame in frames.by_ref() {
            let Ok(frame) = frame else { break };
            total += frame.bytes.len();
            let _ = FrontendMessage::from_frame(&frame);
            let _ = BackendMessage::from_frame(&frame);
        }
        prop_assert!(total + frames.rest().len() <= buf.len());
        let _ = FrontendMessage::parse(&buf, DEFAULT_MAX_MESSAGE);
        let _ = BackendMessage::parse(&buf, DEFAULT_MAX_MESSAGE);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn scram_server_input(first in vec(any::<u8>(), 0..64), last in vec(any::<u8>(), 0..64), plus in any::<bool>()) {
        let verifier = ScramVerifier::from_password(b"pw", b"salt", 1).unwrap();
        let mut server = ScramServer::new(verifier).channel_binding(vec![1; 32]);
        let mechanism = if plus { SCRAM_SHA_256_PLUS } else { SCRAM_SHA_256 };
        let _ = server.handle_client_first(mechanism, &first);
        let _ = server.handle_client_final(&last);
        let _ = ScramVerifier::parse(&String::from_utf8_lossy(&first));
    }
}
