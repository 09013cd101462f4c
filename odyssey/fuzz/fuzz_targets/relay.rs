//! The relay fed arbitrary client and server byte streams, in arbitrary pieces, in every pool
//! mode. `relay::harness::Pair` plays the session and checks, from the outside, that nothing
//! panics, the server is sent a well-framed stream, and a server is never released inside a
//! transaction, an open extended sequence, or with a request unanswered.
//!
//! Input: one byte picks the mode (and named-statement mapping); then chunks of
//! `[side][length][bytes]`, `side` even for the client, odd for the server.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odyssey::config::PoolMode;
use odyssey::relay::harness::Pair;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let mode = match pick % 3 {
        0 => PoolMode::Session,
        1 => PoolMode::Transaction,
        _ => PoolMode::Statement,
    };
    let mut pair = Pair::new(mode, pick & 4 != 0);
    // What each side sent and the relay has not taken yet (a session keeps it buffered).
    let (mut client, mut server) = (Vec::new(), Vec::new());
    while let [side, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (chunk, after) = tail.split_at(n);
        rest = after;
        if side % 2 == 0 {
            client.extend_from_slice(chunk);
            let Ok(left) = pair.client(&client) else {
                return; // a protocol violation ends the session
            };
            client.drain(..client.len() - left);
            if pair.terminated {
                return;
            }
        } else if pair.attached {
            server.extend_from_slice(chunk);
            let Ok(left) = pair.server(&server) else {
                return; // a server that breaks the framing is closed
            };
            server.drain(..server.len() - left);
        }
        if !pair.attached {
            // Bytes of a released server never reach the next one.
            server.clear();
        }
    }
});
