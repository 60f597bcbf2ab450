//! The whole room state machine driven by arbitrary sequences of the
//! double's events (the machine's own inputs, heartbeats, time, eviction), with the
//! invariants checked after every step: no panic, `src` always the sender,
//! no delivery across rooms, queue within bounds, never more live peers than
//! the room size, and every queued message delivered or expired exactly once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use signaling_core::double::{Event, Harness};
use signaling_core::machine::{Input, Join};
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
        let from = usize::from(y) % (rooms[r].sockets.len() + 1);
        let event = match op % 10 {
            0 => Event::Input(Input::Join(Join {
                id: IDS[usize::from(y) % 6].to_owned(),
                proven: z & 1 == 1,
                holder: None,
            })),
            1 | 2 => {
                seq += 1;
                let frame = format!(
                    r#"{{"type":"{}","src":"spoof","dst":"{}","payload":{{"room":{r},"seq":{seq}}}}}"#,
                    KINDS[usize::from(z) % 6],
                    IDS[usize::from(z / 6) % 6]
                );
                Event::Input(Input::Frame { from, bytes: frame.into_bytes() })
            }
            3 => Event::Input(Input::Frame { from, bytes: chunk.to_vec() }),
            4 => Event::Heartbeat(from),
            5 => Event::Input(Input::Closed { socket: from }),
            6 => Event::Advance(u64::from(y) * 250),
            7 => Event::Input(Input::TooLarge { from, len: 65_537 + usize::from(z) }),
            8 => Event::Input(Input::Remove {
                id: IDS[usize::from(y) % 6].to_owned(),
                block_secs: (z > 128).then_some(u64::from(z)),
            }),
            _ => Event::Evict,
        };
        match event {
            Event::Advance(ms) => {
                for h in rooms.iter_mut() {
                    h.handle(Event::Advance(ms));
                }
            }
            event => {
                rooms[r].handle(event);
            }
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
