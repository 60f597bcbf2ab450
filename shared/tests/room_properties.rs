//! Property tests: random event sequences against two rooms keep the invariants.
//! - every relayed frame's `src` is its sender's id;
//! - nothing is delivered across rooms;
//! - the offline queue stays within its bounds;
//! - never more live peers than the room size;
//! - every queued message is delivered once or expired once, never both.

use proptest::prelude::*;
use signaling_core::double::{Event, Harness};
use signaling_core::machine::{Input, Join};
use signaling_core::metrics::Counter;
use signaling_core::peer::Limits;

const IDS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const KINDS: [&str; 5] = ["OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"];

/// A frame whose marker names the room and a claimed sender, so a delivery
/// in the wrong room or with the wrong src is caught.
fn marked_frame(room: usize, kind: usize, dst: usize, seq: u32) -> Vec<u8> {
    format!(
        r#"{{"type":"{}","src":"spoof","dst":"{}","payload":{{"room":{},"seq":{}}}}}"#,
        KINDS[kind], IDS[dst], room, seq
    )
    .into_bytes()
}

/// One event for one of two rooms (`Advance` moves both rooms' time): the
/// double's own [`Event`], carrying the machine's [`Input`].
fn event() -> impl Strategy<Value = (usize, Event)> {
    let input = |i: Input<usize>| Event::Input(i);
    prop_oneof![
        3 => (0..2usize, 0..6usize, any::<bool>()).prop_map(move |(room, id, proven)| {
            let join = Join { id: IDS[id].to_owned(), proven, holder: None };
            (room, input(Input::Join(join)))
        }),
        6 => (0..2usize, 0..12usize, 0..6usize, 0..5usize, any::<u32>())
            .prop_map(move |(room, from, dst, kind, seq)| {
                (room, input(Input::Frame { from, bytes: marked_frame(room, kind, dst, seq) }))
            }),
        1 => (0..2usize, 0..12usize).prop_map(move |(room, from)| {
            (room, input(Input::Frame { from, bytes: b"{not json".to_vec() }))
        }),
        1 => (0..2usize, 0..12usize, 70_000..200_000usize).prop_map(move |(room, from, len)| {
            (room, input(Input::TooLarge { from, len }))
        }),
        2 => (0..2usize, 0..12usize).prop_map(|(room, socket)| (room, Event::Heartbeat(socket))),
        2 => (0..2usize, 0..12usize).prop_map(move |(room, socket)| (room, input(Input::Closed { socket }))),
        1 => (0..2usize).prop_map(move |room| (room, input(Input::Alarm))),
        1 => (0..2usize, 0..6usize, proptest::option::of(1..60u64)).prop_map(move |(room, id, block_secs)| {
            (room, input(Input::Remove { id: IDS[id].to_owned(), block_secs }))
        }),
        2 => (0..20_000u64).prop_map(|ms| (0, Event::Advance(ms))),
        1 => (0..2usize).prop_map(|room| (room, Event::Evict)),
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
    fn invariants_hold_for_any_sequence(
        events in proptest::collection::vec(event(), 1..120),
        shard_sweeps in any::<bool>(),
    ) {
        // The sweep on the room's own alarm, or called by its stats shard.
        let cfg = Limits { shard_sweeps, ..config() };
        let mut rooms = [Harness::new(cfg.clone()), Harness::new(cfg.clone())];
        for (room, event) in events {
            match event {
                Event::Advance(ms) => { for h in rooms.iter_mut() { h.handle(Event::Advance(ms)); } }
                event => { rooms[room].handle(event); }
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
