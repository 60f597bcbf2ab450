//! The whole room state machine driven by arbitrary event sequences, with the
//! invariants checked after every step: no panic, `src` always the sender,
//! no delivery across rooms, queue within bounds, never more live peers than
//! the room size, and every queued message delivered or expired exactly once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use signaling_core::double::Harness;
use signaling_core::metrics::Counter;
use signaling_core::peer::Limits;

const IDS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const KINDS: [&str; 6] = [
    "OFFER",
    "ANSWER",
    "CANDIDATE",
    "LEAVE",
    "EXPIRE",
    "HEARTBEAT",
];

fuzz_target!(|data: &[u8]| {
    let cfg = Limits {
        max_queued_messages: 4,
        max_queued_bytes: 500,
        peer_msgs_per_sec: 20,
        ..Limits::default()
    };
    let mut rooms = [Harness::new(cfg.clone()), Harness::new(cfg.clone())];
    let mut seq = 0u32;
    // Frames already checked, per room and socket (each is checked once).
    let mut checked: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for chunk in data.chunks(4) {
        let [op, x, y, z] = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
            *chunk.get(3).unwrap_or(&0),
        ];
        let r = usize::from(x & 1);
        let h = &mut rooms[r];
        let socket = usize::from(y) % (h.sockets.len() + 1);
        match op % 8 {
            0 => {
                h.join(IDS[usize::from(y) % 6], z & 1 == 1);
            }
            1 | 2 => {
                if socket < h.sockets.len() {
                    seq += 1;
                    let frame = format!(
                        r#"{{"type":"{}","src":"spoof","dst":"{}","payload":{{"room":{r},"seq":{seq}}}}}"#,
                        KINDS[usize::from(z) % 6],
                        IDS[usize::from(z / 6) % 6]
                    );
                    h.send(socket, &frame);
                }
            }
            3 => {
                if socket < h.sockets.len() {
                    h.send(socket, &String::from_utf8_lossy(chunk));
                }
            }
            4 => {
                if socket < h.sockets.len() {
                    h.heartbeat(socket);
                }
            }
            5 => {
                if socket < h.sockets.len() {
                    h.client_close(socket);
                }
            }
            6 => {
                let ms = u64::from(y) * 250;
                for h in rooms.iter_mut() {
                    h.advance(ms);
                }
            }
            _ => h.evict(),
        }
        for (index, h) in rooms.iter().enumerate() {
            assert!(h.live_count() <= cfg.max_peers);
            assert!(h.storage.len() <= cfg.max_queued_messages);
            assert!(h.storage.values().map(String::len).sum::<usize>() <= cfg.max_queued_bytes);
            checked[index].resize(h.sockets.len(), 0);
            for (i, s) in h.sockets.iter().enumerate() {
                let from = checked[index][i];
                checked[index][i] = s.received.len();
                for text in &s.received[from..] {
                    let v: serde_json::Value =
                        serde_json::from_str(text).expect("server frames are JSON");
                    assert_ne!(v["src"], "spoof");
                    if let Some(room) = v["payload"]["room"].as_u64() {
                        assert_eq!(room as usize, index, "delivered across rooms");
                    }
                }
            }
        }
    }
    for h in rooms.iter_mut() {
        h.advance(600_000);
        assert!(h.storage.is_empty());
        assert!(h.count(Counter::Expired) <= h.count(Counter::Queued));
    }
});
