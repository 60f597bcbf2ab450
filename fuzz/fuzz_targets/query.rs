//! Any query string: never a panic; an accepted one has a valid id and a bounded token.
#![no_main]
use libfuzzer_sys::fuzz_target;
use signaling_core::{ids, query};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = query::parse_upgrade(text, "peerjs") {
        assert!(ids::is_valid_peer_id(&q.id));
        assert!(q.token.len() <= query::MAX_TOKEN_BYTES);
    }
});
