//! Any token: never a panic, and never admitted without the secret's signature
//! (a forged token would need an HMAC-SHA256 collision).
#![no_main]
use libfuzzer_sys::fuzz_target;
use signaling_core::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let settings = Settings::new(|name| match name {
        "ROOM_TICKET_SECRET" => Some("fuzz-secret-0123456789abcdef012345".to_owned()),
        _ => None,
    });
    let Ok(cfg) = settings.router() else { return };
    assert!(cfg.tickets.admit(token, "a", 1_800_000_000).is_err());
    let _ = signaling_core::config::Settings::new(|_| None)
        .router()
        .map(|c| c.tickets.admit(token, "a", 0));
});
