//! What a moderator's calls do to a live room (`moderation.rs`), driven
//! through the in-memory Durable Object double: who is told what, with
//! which close code, and what is left in storage.

use signaling_core::double::Harness;
use signaling_core::metrics::{Counter, LeaveCause, RefuseReason};
use signaling_core::moderation::REMOVED_MESSAGE;
use signaling_core::moderation::ROOM_CLOSED_MESSAGE;
use signaling_core::peer::{Limits, CLOSE_REMOVED, CLOSE_ROOM_CLOSED};

fn room() -> Harness {
    Harness::new(Limits::default())
}

fn offer(dst: &str) -> String {
    format!(r#"{{"type":"OFFER","dst":"{dst}","payload":{{"sdp":"x"}}}}"#)
}

#[test]
fn inspect_lists_the_live_peers_with_join_time_and_last_activity() {
    let mut h = room();
    let a = h.join("a", true);
    h.advance(3_000);
    let _b = h.join("b", false);
    h.advance(2_000);
    h.heartbeat(a);
    let seen = h.inspect();
    let ids: Vec<&str> = seen.peers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(seen.peers[0].joined_ms, 1_000_000);
    assert_eq!(
        seen.peers[0].last_seen_ms, 1_005_000,
        "the heartbeat counts as activity"
    );
    assert!(seen.peers[0].proven && !seen.peers[1].proven);
    assert_eq!(seen.peers[1].joined_ms, 1_003_000);
    assert!(!seen.is_empty());
    assert!(
        Harness::new(Limits::default()).inspect().is_empty(),
        "a room nobody is in"
    );
}

#[test]
fn a_removed_peer_gets_an_error_and_its_own_close_code_and_the_others_leave_at_once() {
    let mut h = room();
    let a = h.join("a", true);
    let b = h.join("b", true);
    let c = h.join("c", true);
    let removal = h.remove("b", None).expect("b is in the room");
    assert_eq!((removal.closed, removal.told), (1, 2));
    assert_eq!(h.types(b).last().map(String::as_str), Some("ERROR"));
    assert!(h.sockets[b]
        .received
        .last()
        .is_some_and(|f| f.contains(REMOVED_MESSAGE)));
    assert_eq!(
        h.sockets[b].close.as_ref().map(|c| c.0),
        Some(CLOSE_REMOVED)
    );
    for other in [a, c] {
        assert_eq!(
            h.got(other).last(),
            Some(&("LEAVE".to_owned(), Some("b".to_owned()))),
            "LEAVE without waiting for the grace"
        );
    }
    assert_eq!(h.count(Counter::Leave(LeaveCause::Removed)), 1);
    // The grace passing later sends no second LEAVE.
    h.client_close(b);
    h.advance(10_000);
    let leaves = h.types(a).iter().filter(|t| *t == "LEAVE").count();
    assert_eq!(leaves, 1);
    // Without a block, the id may come back.
    let back = h.join("b", true);
    assert_eq!(h.types(back), ["OPEN"]);
}

#[test]
fn removing_someone_who_is_not_there_changes_nothing() {
    let mut h = room();
    let a = h.join("a", false);
    assert_eq!(h.remove("ghost", Some(60)), None);
    assert_eq!(h.types(a), ["OPEN"]);
    assert!(h.record.blocks.is_empty(), "no block for an absent id");
}

#[test]
fn a_block_refuses_the_rejoin_with_the_time_left_then_ends_and_leaves_nothing_stored() {
    let mut h = room();
    let watcher = h.join("w", false);
    let _b = h.join("b", true);
    let removal = h.remove("b", Some(30)).expect("b is in the room");
    assert_eq!(removal.blocked_until_ms, Some(1_030_000));
    h.advance(10_000);
    h.heartbeat(watcher);
    // Even a ticket for the id does not get past the block.
    let again = h.join("b", true);
    assert_eq!(h.types(again), ["ERROR"]);
    assert!(
        h.sockets[again].received[0].contains("rejoin in 20 s"),
        "{:?}",
        h.sockets[again].received
    );
    assert_eq!(
        h.sockets[again].close.as_ref().map(|c| c.0),
        Some(CLOSE_REMOVED)
    );
    assert_eq!(
        h.count(Counter::ConnectionRefused(RefuseReason::Blocked)),
        1
    );
    h.advance(20_001);
    h.heartbeat(watcher);
    let later = h.join("b", true);
    assert_eq!(h.types(later), ["OPEN"], "the block has ended");
    // Once everybody is gone, the room stores nothing.
    h.client_close(later);
    h.client_close(watcher);
    h.advance(120_000);
    assert_eq!(h.stored_record, None);
    assert_eq!(h.alarm, None);
}

#[test]
fn a_block_covers_the_ticket_so_the_player_cannot_come_back_under_another_id() {
    let mut h = room();
    let watcher = h.join_with_ticket("w", false, Some("ticket-w"));
    let _b = h.join_with_ticket("b", false, Some("ticket-b"));
    h.remove("b", Some(30)).expect("b is in the room");
    // The same ticket (it names no id) under another id: still removed.
    let disguised = h.join_with_ticket("b2", false, Some("ticket-b"));
    assert_eq!(h.types(disguised), ["ERROR"]);
    assert!(
        h.sockets[disguised].received[0].contains("rejoin in 30 s"),
        "{:?}",
        h.sockets[disguised].received
    );
    // Another player's ticket, and the watcher, are not affected.
    let other = h.join_with_ticket("c", false, Some("ticket-c"));
    assert_eq!(h.types(other), ["OPEN"]);
    assert!(h.sockets[watcher].open);
    // Without signed tickets nothing but the id is known: another id gets in.
    let mut dev = room();
    let _x = dev.join("x", false);
    dev.remove("x", Some(30));
    let y = dev.join("y", false);
    assert_eq!(dev.types(y), ["OPEN"]);
    // Once the block ends, the ticket works again.
    h.advance(30_001);
    h.heartbeat(watcher);
    let back = h.join_with_ticket("b2", false, Some("ticket-b"));
    assert_eq!(h.types(back), ["OPEN"]);
}

#[test]
fn a_block_alone_keeps_the_record_until_it_ends() {
    let mut h = room();
    let b = h.join("b", false);
    h.remove("b", Some(5));
    h.client_close(b);
    assert!(h
        .stored_record
        .as_ref()
        .is_some_and(|m| m.blocks.len() == 1));
    h.advance(5_001);
    assert_eq!(
        h.stored_record, None,
        "the ended block is forgotten by the alarm"
    );
    assert_eq!(h.alarm, None);
}

#[test]
fn a_removal_racing_a_reconnect_catches_the_peer_in_its_grace() {
    // The socket dropped a moment before the moderator's call; the client
    // is about to reconnect with the same id and ticket.
    let mut h = room();
    let a = h.join("a", true);
    let b = h.join("b", true);
    h.client_close(b);
    let removal = h.remove("b", Some(60)).expect("b is in its leave grace");
    assert_eq!(removal.closed, 0);
    assert_eq!(
        h.got(a).last(),
        Some(&("LEAVE".to_owned(), Some("b".to_owned())))
    );
    let reconnect = h.join("b", true);
    assert_eq!(h.types(reconnect), ["ERROR"], "the reconnect is refused");
    h.advance(5_000);
    let leaves = h.types(a).iter().filter(|t| *t == "LEAVE").count();
    assert_eq!(leaves, 1, "the grace's own LEAVE was cancelled");
    // And the other order: the reconnect lands first, the removal finds
    // the new socket.
    let mut h = room();
    let _a = h.join("a", true);
    let old = h.join("b", true);
    h.client_close(old);
    let new = h.join("b", true);
    let removal = h.remove("b", Some(60)).expect("b is back");
    assert_eq!(removal.closed, 1);
    assert_eq!(
        h.sockets[new].close.as_ref().map(|c| c.0),
        Some(CLOSE_REMOVED)
    );
    assert_eq!(h.live_count(), 1);
}

#[test]
fn closing_a_room_tells_and_closes_everyone_and_empties_storage() {
    let mut h = room();
    let a = h.join("a", true);
    let b = h.join("b", true);
    // Messages for someone not here yet, a pending LEAVE and a block.
    h.send(a, &offer("late"));
    h.send(b, &offer("later"));
    let c = h.join("c", false);
    h.client_close(c);
    let _d = h.join("d", false);
    h.remove("d", Some(600));
    assert!(h.storage.len() >= 2 && h.stored_record.is_some());
    let closure = h.close_room().expect("people are in the room");
    assert_eq!((closure.closed, closure.dropped_messages), (2, 2));
    for peer in [a, b] {
        assert!(h.sockets[peer]
            .received
            .last()
            .is_some_and(|f| f.contains(ROOM_CLOSED_MESSAGE)));
        assert_eq!(
            h.sockets[peer].close.as_ref().map(|c| c.0),
            Some(CLOSE_ROOM_CLOSED)
        );
    }
    assert!(
        h.storage.is_empty(),
        "queued frames left: {:?}",
        h.storage.keys()
    );
    assert_eq!(h.stored_record, None);
    assert_eq!(h.alarm, None);
    assert_eq!(h.live_count(), 0);
    // Their close events and the passing time send nothing more.
    h.client_close(a);
    h.client_close(b);
    h.advance(60_000);
    assert_eq!(h.stored_record, None);
    // The room can be used again, and the block went with it.
    let again = h.join("d", false);
    assert_eq!(h.types(again), ["OPEN"]);
    // Closing a room with nobody in it is a miss, not a change.
    let mut empty = room();
    assert_eq!(empty.close_room(), None);
}
