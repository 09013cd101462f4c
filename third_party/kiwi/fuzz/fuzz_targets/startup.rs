//! Fuzz target `startup`: the first packet of a connection (StartupMessage, SSLRequest,
//! GSSENCRequest, CancelRequest) split off arbitrary bytes, as the pooler's accept path does.
//!
//! Nothing may panic; a packet that parses re-encodes to exactly its bytes, never claims more
//! bytes than it was given, and parses the same from any longer buffer (a pipelined client).
#![no_main]

use kiwi::StartupPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((packet, used))) = StartupPacket::parse(data) else {
        return;
    };
    assert!(used <= data.len());
    let mut out = Vec::new();
    packet.encode(&mut out);
    assert_eq!(out, data[..used]);
    if let StartupPacket::Startup(startup) = &packet {
        // Lookups walk the parameter list the pooler routes on.
        let _ = (startup.param("user"), startup.param("database"));
    }
    // Fewer bytes than the packet are "more needed", never another packet.
    if used > 4 {
        assert!(matches!(StartupPacket::parse(&data[..used - 1]), Ok(None)));
    }
});
