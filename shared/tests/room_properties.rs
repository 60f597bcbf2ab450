//! Property tests: random event sequences against two rooms keep the invariants.
//! - every relayed frame's `src` is its sender's id;
//! - nothing is delivered across rooms;
//! - the offline queue stays within its bounds;
//! - never more live peers than the room size;
//! - every queued message is delivered once or expired once, never both.

use proptest::prelude::*;
use signaling_core::double::Harness;
use signaling_core::metrics::Counter;
use signaling_core::peer::Limits;

#[derive(Debug, Clone)]
enum Step {
    Join {
        room: usize,
        id: usize,
        proven: bool,
    },
    Send {
        room: usize,
        socket: usize,
        dst: usize,
        kind: usize,
    },
    Garbage {
        room: usize,
        socket: usize,
    },
    Heartbeat {
        room: usize,
        socket: usize,
    },
    Close {
        room: usize,
        socket: usize,
    },
    Advance {
        ms: u64,
    },
    Evict {
        room: usize,
    },
}

const IDS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const KINDS: [&str; 5] = ["OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize, 0..6usize, any::<bool>()).prop_map(|(room, id, proven)| Step::Join { room, id, proven }),
        6 => (0..2usize, 0..12usize, 0..6usize, 0..5usize)
            .prop_map(|(room, socket, dst, kind)| Step::Send { room, socket, dst, kind }),
        1 => (0..2usize, 0..12usize).prop_map(|(room, socket)| Step::Garbage { room, socket }),
        2 => (0..2usize, 0..12usize).prop_map(|(room, socket)| Step::Heartbeat { room, socket }),
        2 => (0..2usize, 0..12usize).prop_map(|(room, socket)| Step::Close { room, socket }),
        2 => (0..20_000u64).prop_map(|ms| Step::Advance { ms }),
        1 => (0..2usize).prop_map(|room| Step::Evict { room }),
    ]
}

fn config() -> Limits {
    Limits {
        max_queued_messages: 5,
        max_queued_bytes: 600,
        alive_timeout_ms: 15_000,
        ..Limits::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn invariants_hold_for_any_sequence(steps in proptest::collection::vec(step(), 1..120)) {
        let cfg = config();
        let mut rooms = [Harness::new(cfg.clone()), Harness::new(cfg.clone())];
        let mut seq = 0u64;
        for s in steps {
            match s {
                Step::Join { room, id, proven } => { rooms[room].join(IDS[id], proven); }
                Step::Send { room, socket, dst, kind } => {
                    let h = &mut rooms[room];
                    if socket < h.sockets.len() {
                        seq += 1;
                        // The marker names the room and the claimed sender, so a
                        // delivery in the wrong room or with the wrong src is caught.
                        let frame = format!(
                            r#"{{"type":"{}","src":"spoof","dst":"{}","payload":{{"room":{},"seq":{}}}}}"#,
                            KINDS[kind], IDS[dst], room, seq
                        );
                        h.send(socket, &frame);
                    }
                }
                Step::Garbage { room, socket } => {
                    if socket < rooms[room].sockets.len() { rooms[room].send(socket, "{not json"); }
                }
                Step::Heartbeat { room, socket } => {
                    if socket < rooms[room].sockets.len() { rooms[room].heartbeat(socket); }
                }
                Step::Close { room, socket } => {
                    if socket < rooms[room].sockets.len() { rooms[room].client_close(socket); }
                }
                Step::Advance { ms } => { for h in rooms.iter_mut() { h.advance(ms); } }
                Step::Evict { room } => rooms[room].evict(),
            }
            for (r, h) in rooms.iter().enumerate() {
                prop_assert!(h.live_count() <= cfg.max_peers, "too many live peers");
                prop_assert!(h.storage.len() <= cfg.max_queued_messages);
                prop_assert!(h.storage.values().map(String::len).sum::<usize>() <= cfg.max_queued_bytes);
                for socket in &h.sockets {
                    for text in &socket.received {
                        let v: serde_json::Value = serde_json::from_str(text).expect("JSON");
                        if let Some(payload_room) = v["payload"]["room"].as_u64() {
                            prop_assert_eq!(payload_room as usize, r, "delivered across rooms");
                        }
                        if let Some(src) = v["src"].as_str() {
                            prop_assert_ne!(src, "spoof", "src not overwritten");
                        }
                    }
                }
            }
        }
        // Let every pending expiry run, then count: queued = delivered-from-queue + expired.
        for h in rooms.iter_mut() {
            h.advance(60_000);
            prop_assert!(h.storage.is_empty(), "nothing left behind after expiry");
            let queued = h.count(Counter::Queued);
            let expired = h.count(Counter::Expired);
            prop_assert!(expired <= queued);
        }
    }

    #[test]
    fn each_queued_message_is_delivered_or_expired_exactly_once(
        sends in proptest::collection::vec((0..3usize, 0..3usize), 1..12),
        join_after in proptest::option::of(0..8_000u64),
    ) {
        let mut h = Harness::new(Limits { max_queued_messages: 100, ..Limits::default() });
        let a = h.join("a", false);
        let mut queued = 0;
        for (i, (dst, kind)) in sends.iter().enumerate() {
            let frame = format!(r#"{{"type":"{}","dst":"ghost{}","payload":{{"i":{}}}}}"#, KINDS[*kind], dst, i);
            h.send(a, &frame);
            queued += 1;
        }
        let mut delivered = 0;
        if let Some(wait) = join_after {
            h.advance(wait);
            for g in 0..3 {
                let s = h.join(&format!("ghost{g}"), false);
                delivered += h.types(s).iter().filter(|t| *t != "OPEN").count() as u64;
            }
        }
        h.advance(60_000);
        prop_assert_eq!(delivered + h.count(Counter::Expired), queued);
        prop_assert!(h.storage.is_empty());
    }
}
