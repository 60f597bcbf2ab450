//! Every rule of the room, driven through the in-memory Durable Object double.

use signaling_core::double::Harness;
use signaling_core::frame::{DropReason, RelayKind};
use signaling_core::metrics::{Counter, LeaveCause};
use signaling_core::peer::{Limits, CLOSE_POLICY, CLOSE_REPLACED, CLOSE_TIMEOUT};

fn room() -> Harness {
    Harness::new(Limits::default())
}

fn offer(dst: &str) -> String {
    format!(r#"{{"type":"OFFER","dst":"{dst}","payload":{{"sdp":"v=0"}}}}"#)
}

#[test]
fn join_sends_open_and_a_full_room_refuses_with_a_reason() {
    let mut h = room();
    let peers: Vec<usize> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| h.join(id, false))
        .collect();
    for p in &peers {
        assert_eq!(h.types(*p)[0], "OPEN");
    }
    let fifth = h.join("e", false);
    assert_eq!(h.types(fifth), ["ERROR"]);
    assert!(h.sockets[fifth].received[0].contains("Room is full (4 peers)"));
    assert_eq!(
        h.sockets[fifth].close.as_ref().map(|c| c.0),
        Some(CLOSE_POLICY)
    );
    assert_eq!(h.live_count(), 4);
    h.send(peers[0], &offer("d"));
    assert_eq!(
        h.got(peers[3]).last(),
        Some(&("OFFER".into(), Some("a".into())))
    );
}

#[test]
fn a_live_id_is_taken_unless_proven_or_stale() {
    let mut h = room();
    let a = h.join("a", false);
    let dup = h.join("a", false);
    assert_eq!(h.types(dup), ["ID-TAKEN"]);
    assert!(h.sockets[a].open);

    // A ticket with sub = id takes over: OPEN for the new socket, the old one closed.
    let proven = h.join("a", true);
    assert_eq!(h.types(proven), ["OPEN"]);
    assert_eq!(
        h.sockets[a].close.as_ref().map(|c| c.0),
        Some(CLOSE_REPLACED)
    );
    assert_eq!(h.count(Counter::Takeover), 1);
}

#[test]
fn a_replaced_socket_is_told_why_before_it_is_closed() {
    // The same player in a second tab (a ticket with sub = id): the first
    // tab's client must not take its id straight back, so it is told in
    // words the helper and the stock client can show.
    let mut h = room();
    let first = h.join("a", false);
    let second = h.join("a", true);
    assert_eq!(h.types(second), ["OPEN"]);
    assert_eq!(h.types(first), ["OPEN", "ERROR"]);
    let error: serde_json::Value =
        serde_json::from_str(h.sockets[first].received.last().map_or("", String::as_str))
            .unwrap_or_default();
    let msg = error["payload"]["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("another tab or device"), "{msg}");
    assert_eq!(
        h.sockets[first].close.as_ref().map(|c| c.0),
        Some(CLOSE_REPLACED)
    );
}

#[test]
fn a_stale_holder_is_taken_over_without_leave() {
    let mut h = room();
    let watcher = h.join("w", false);
    let old = h.join("a", false);
    let alive = Limits::default().alive_timeout_ms;
    h.advance(alive - 5_000);
    h.heartbeat(watcher);
    // Not stale yet 5 s before the alive timeout.
    let early = h.join("a", false);
    assert_eq!(h.types(early), ["ID-TAKEN"]);
    h.advance(6_000);
    h.heartbeat(watcher);
    let fresh = h.join("a", false);
    assert_eq!(h.types(fresh), ["OPEN"]);
    assert_eq!(
        h.sockets[old].close.as_ref().map(|c| c.0),
        Some(CLOSE_REPLACED)
    );
    // The old socket's close event arrives later and changes nothing.
    h.client_close(old);
    h.advance(5_000);
    assert!(
        !h.types(watcher).contains(&"LEAVE".to_owned()),
        "a takeover sends no LEAVE"
    );
}

#[test]
fn heartbeats_keep_a_holder_alive() {
    let mut h = room();
    let a = h.join("a", false);
    for _ in 0..10 {
        h.advance(5_000);
        h.heartbeat(a);
    }
    let dup = h.join("a", false);
    assert_eq!(h.types(dup), ["ID-TAKEN"]);
}

#[test]
fn relay_overwrites_src_and_splices_the_payload() {
    let mut h = room();
    let a = h.join("a", false);
    let b = h.join("b", false);
    h.send(
        a,
        r#"{"type":"ANSWER","src":"evil","dst":"b","payload":{"k": [1, 2]}}"#,
    );
    assert_eq!(
        h.sockets[b].received.last().map(String::as_str),
        Some(r#"{"type":"ANSWER","src":"a","dst":"b","payload":{"k": [1, 2]}}"#)
    );
    h.send(a, &offer("a"));
    assert_eq!(
        h.got(a).last(),
        Some(&("OFFER".into(), Some("a".into()))),
        "self-delivery"
    );
    assert_eq!(h.count(Counter::Relayed(RelayKind::Answer)), 1);
}

#[test]
fn offline_messages_wait_then_arrive_in_order_after_open() {
    let mut h = room();
    let a = h.join("a", false);
    h.send(a, &offer("late"));
    h.send(a, r#"{"type":"CANDIDATE","dst":"late","payload":{"n":1}}"#);
    h.send(a, r#"{"type":"LEAVE","dst":"late"}"#);
    assert_eq!(h.count(Counter::Dropped(DropReason::OfflineNotQueued)), 1);
    h.advance(2_000);
    let late = h.join("late", false);
    assert_eq!(h.types(late), ["OPEN", "OFFER", "CANDIDATE"]);
    assert!(h.storage.is_empty(), "delivered messages are deleted");
    h.advance(10_000);
    assert!(!h.types(a).contains(&"EXPIRE".to_owned()));
}

#[test]
fn expired_messages_get_one_expire_per_pair() {
    let mut h = room();
    let a = h.join("a", false);
    let b = h.join("b", false);
    h.send(a, &offer("ghost"));
    h.send(a, &offer("ghost"));
    h.send(b, &offer("ghost"));
    h.advance(4_900);
    assert!(!h.types(a).contains(&"EXPIRE".to_owned()));
    h.advance(200);
    assert_eq!(
        h.got(a)
            .iter()
            .filter(|(t, _)| t == "EXPIRE")
            .collect::<Vec<_>>(),
        [&("EXPIRE".to_owned(), Some("ghost".to_owned()))]
    );
    assert_eq!(h.types(b).iter().filter(|t| *t == "EXPIRE").count(), 1);
    assert_eq!(h.count(Counter::Expired), 3);
    assert!(h.storage.is_empty());
}

#[test]
fn the_queue_is_bounded_by_count_and_bytes() {
    // One seat, so the one sender's fair share is the whole queue.
    let mut h = Harness::new(Limits {
        max_peers: 1,
        max_queued_messages: 3,
        max_queued_bytes: 10_000,
        ..Limits::default()
    });
    let a = h.join("a", false);
    for _ in 0..5 {
        h.send(a, &offer("x"));
    }
    assert_eq!(h.storage.len(), 3);
    assert_eq!(h.count(Counter::Dropped(DropReason::QueueFull)), 2);
    let big = format!(
        r#"{{"type":"OFFER","dst":"y","payload":"{}"}}"#,
        "p".repeat(9_000)
    );
    h.send(a, &big);
    assert_eq!(
        h.count(Counter::Dropped(DropReason::QueueFull)),
        3,
        "byte bound"
    );
}

#[test]
fn a_closed_peer_is_announced_after_the_grace_unless_it_returns() {
    let mut h = room();
    let a = h.join("a", false);
    let b = h.join("b", false);
    let c = h.join("c", false);
    h.client_close(b);
    h.advance(1_999);
    assert!(!h.types(a).contains(&"LEAVE".to_owned()));
    h.advance(1);
    assert_eq!(h.got(a).last(), Some(&("LEAVE".into(), Some("b".into()))));
    assert_eq!(h.got(c).last(), Some(&("LEAVE".into(), Some("b".into()))));
    assert_eq!(h.count(Counter::Leave(LeaveCause::Closed)), 1);

    h.client_close(c);
    h.advance(1_000);
    let _c2 = h.join("c", false);
    h.advance(5_000);
    assert_eq!(
        h.types(a).iter().filter(|t| *t == "LEAVE").count(),
        1,
        "c came back in time"
    );
}

#[test]
fn a_message_to_a_peer_in_its_grace_period_waits_for_its_return() {
    let mut h = room();
    let a = h.join("a", false);
    let b = h.join("b", false);
    h.client_close(b);
    h.send(a, &offer("b"));
    h.advance(1_000);
    let b2 = h.join("b", false);
    assert_eq!(h.types(b2), ["OPEN", "OFFER"]);
    h.advance(10_000);
    assert!(!h.types(a).contains(&"LEAVE".to_owned()));
    assert!(!h.types(a).contains(&"EXPIRE".to_owned()));
}

/// Limits with the sweep called by the stats shard (the Worker's default
/// when reports are on) or planned on the room's own alarm.
fn limits(shard_sweeps: bool) -> Limits {
    Limits {
        shard_sweeps,
        ..Limits::default()
    }
}

#[test]
fn the_sweep_closes_silent_peers_and_announces_them_within_alive_plus_sweep() {
    for shard_sweeps in [false, true] {
        let cfg = limits(shard_sweeps);
        let promised = cfg.alive_timeout_ms + cfg.sweep_interval_ms;
        let mut h = Harness::new(cfg);
        let a = h.join("a", false);
        let silent = h.join("s", false);
        let went_silent = h.now;
        let mut announced_after = None;
        for second in 1..=(promised / 1_000 + 60) {
            h.advance(1_000);
            if second % 5 == 0 {
                h.heartbeat(a);
            }
            if announced_after.is_none() && h.types(a).contains(&"LEAVE".to_owned()) {
                announced_after = Some(h.now - went_silent);
            }
        }
        let after = announced_after.expect("the silent peer was announced");
        assert!(
            after <= promised + 1_000,
            "announced {after} ms after it fell silent (shard sweeps: {shard_sweeps})"
        );
        assert_eq!(
            h.sockets[silent].close.as_ref().map(|c| c.0),
            Some(CLOSE_TIMEOUT)
        );
        assert_eq!(h.got(a).last(), Some(&("LEAVE".into(), Some("s".into()))));
        assert_eq!(h.count(Counter::Leave(LeaveCause::Timeout)), 1);
        assert!(h.sockets[a].open);
    }
}

/// An hour of four heartbeating peers; answers the harness.
fn idle_hour(cfg: Limits) -> (Harness, Vec<usize>, (u64, u64)) {
    let mut h = Harness::new(cfg);
    let peers: Vec<usize> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| h.join(id, false))
        .collect();
    let after_joins = (h.record_writes, h.alarm_writes);
    for second in 1..=3_600 {
        h.advance(1_000);
        if second % 5 == 0 {
            peers.iter().for_each(|p| h.heartbeat(*p));
        }
    }
    assert!(peers.iter().all(|p| h.sockets[*p].open), "nobody was swept");
    (h, peers, after_joins)
}

#[test]
fn an_idle_room_of_heartbeating_peers_wakes_under_60_times_an_hour() {
    let (h, _, _) = idle_hour(limits(false));
    assert!(
        h.alarms_fired < 60,
        "{} alarms in an idle hour",
        h.alarms_fired
    );
    assert!(h.alarms_fired > 0, "the room still sweeps");
}

#[test]
fn an_idle_room_swept_by_its_shard_writes_nothing_in_an_hour() {
    let (h, _, after_joins) = idle_hour(limits(true));
    assert_eq!(
        (h.record_writes, h.alarm_writes),
        after_joins,
        "record and alarm writes after the joins, over an idle hour"
    );
    assert_eq!(h.alarms_fired, 0, "no alarm: the shard calls the sweep");
    assert!(
        (1..60).contains(&h.sweeps_called),
        "{} sweeps in an idle hour",
        h.sweeps_called
    );
    // On its own alarm the same hour rewrites the record and the alarm at
    // every sweep: a row each on the bill.
    let (own, _, own_after_joins) = idle_hour(limits(false));
    assert!(
        own.record_writes - own_after_joins.0 >= own.alarms_fired,
        "the own-alarm room wrote its record {} times in {} sweeps",
        own.record_writes - own_after_joins.0,
        own.alarms_fired
    );
}

#[test]
fn a_stale_peer_frees_its_seat_for_a_newcomer() {
    let mut h = room();
    let ids = ["a", "b", "c", "d"];
    let peers: Vec<usize> = ids.iter().map(|id| h.join(id, false)).collect();
    h.advance(Limits::default().alive_timeout_ms + 1_000);
    for p in &peers[1..] {
        h.heartbeat(*p);
    }
    let newcomer = h.join("e", false);
    assert_eq!(h.types(newcomer), ["OPEN"]);
    assert_eq!(
        h.sockets[peers[0]].close.as_ref().map(|c| c.0),
        Some(CLOSE_TIMEOUT)
    );
    h.advance(1); // the LEAVE goes out on the alarm set for "now"
    assert_eq!(
        h.got(peers[1]).last(),
        Some(&("LEAVE".into(), Some("a".into())))
    );
}

#[test]
fn bad_frames_are_dropped_and_counted_never_answered() {
    let mut h = room();
    let a = h.join("a", false);
    let _b = h.join("b", false);
    for frame in [
        "x",
        "{}",
        r#"{"type":"OPEN","dst":"b"}"#,
        r#"{"type":"OFFER"}"#,
    ] {
        h.send(a, frame);
    }
    h.send(
        a,
        &format!(
            r#"{{"type":"OFFER","dst":"b","payload":"{}"}}"#,
            "x".repeat(70_000)
        ),
    );
    assert_eq!(h.types(a), ["OPEN"], "nothing sent back");
    assert_eq!(h.count(Counter::Dropped(DropReason::Malformed)), 1);
    assert_eq!(h.count(Counter::Dropped(DropReason::MissingType)), 1);
    assert_eq!(h.count(Counter::Dropped(DropReason::UnknownType)), 1);
    assert_eq!(h.count(Counter::Dropped(DropReason::MissingDst)), 1);
    assert_eq!(h.count(Counter::Dropped(DropReason::TooLarge)), 1);
}

#[test]
fn a_flooder_is_limited_then_kicked_and_announced() {
    let mut h = Harness::new(Limits {
        peer_msgs_per_sec: 10,
        ..Limits::default()
    });
    let flooder = h.join("f", false);
    let b = h.join("b", false);
    for _ in 0..100 {
        h.send(flooder, &offer("b"));
    }
    assert_eq!(
        h.types(b).iter().filter(|t| *t == "OFFER").count(),
        10,
        "the burst passes"
    );
    assert!(h.sockets[flooder]
        .received
        .iter()
        .any(|t| t.contains("Rate limit exceeded")));
    assert_eq!(
        h.sockets[flooder].close.as_ref().map(|c| c.0),
        Some(CLOSE_POLICY)
    );
    h.advance(2_000);
    assert_eq!(h.got(b).last(), Some(&("LEAVE".into(), Some("f".into()))));
    assert!(h.count(Counter::Dropped(DropReason::RateLimited)) > 30);
}

#[test]
fn an_emptied_room_leaves_no_storage_and_no_alarm() {
    let mut h = room();
    let a = h.join("a", false);
    let b = h.join("b", false);
    h.send(a, &offer("ghost"));
    assert!(h.alarm.is_some());
    h.client_close(a);
    h.client_close(b);
    h.advance(10_000);
    assert!(h.storage.is_empty());
    assert_eq!(h.stored_record, None);
    assert_eq!(h.alarm, None);
}

#[test]
fn state_survives_eviction_between_any_two_events() {
    let mut h = room();
    let a = h.join("a", false);
    h.send(a, &offer("late"));
    h.evict();
    let b = h.join("b", false);
    h.client_close(b);
    h.evict();
    h.advance(2_500);
    assert_eq!(h.got(a).last(), Some(&("LEAVE".into(), Some("b".into()))));
    h.evict();
    h.advance(3_000);
    assert_eq!(
        h.got(a).last(),
        Some(&("EXPIRE".into(), Some("late".into())))
    );
}

#[test]
fn the_roster_lists_live_peers_only() {
    use signaling_core::machine::Machine;
    use signaling_core::peer::PeerView;
    use signaling_core::placement::Placement;
    use signaling_core::socket::PeerState;
    let cfg = Limits {
        alive_timeout_ms: 15_000,
        ..Limits::default()
    };
    let state = |id: &str, closing: bool, seen: u64| PeerState {
        id: id.into(),
        proven: false,
        joined_ms: 0,
        seen_ms: seen,
        closing,
        holder: None,
        correspondents: Vec::new(),
    };
    let views = vec![
        PeerView {
            socket: 0,
            state: state("b", false, 100_000),
            heartbeat_ms: None,
        },
        PeerView {
            socket: 1,
            state: state("a", false, 0),
            heartbeat_ms: Some(99_000),
        },
        PeerView {
            socket: 2,
            state: state("closing", true, 100_000),
            heartbeat_ms: None,
        },
        PeerView {
            socket: 3,
            state: state("stale", false, 50_000),
            heartbeat_ms: Some(60_000),
        },
    ];
    let room = Machine::new(&cfg, Placement::Room);
    assert_eq!(room.roster(&views, 100_000), ["a", "b"]);
}
