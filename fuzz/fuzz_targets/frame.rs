//! Any bytes as a client frame: never a panic; a relay is valid JSON whose
//! `src` is the sender and whose payload is the one sent, byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use signaling_core::frame::{parse_client_frame, render_relay, ClientFrame};

fuzz_target!(|data: &[u8]| {
    if let Ok(ClientFrame::Relay { kind, dst, payload }) = parse_client_frame(data, 65_536) {
        let out = render_relay(kind, "sender", &dst, payload);
        let v: serde_json::Value = serde_json::from_str(&out).expect("a relay is valid JSON");
        assert_eq!(v["src"], "sender");
        assert_eq!(v["dst"].as_str(), Some(dst.as_ref()));
        if let Some(p) = payload {
            assert!(out.contains(p.get()));
        }
    }
});
