//! The open namespace's rules, through the in-memory double: many homes
//! (one per peer id) and the frames they hand each other.

use signaling_core::double::open::{Client, OpenNet};
use signaling_core::frame::DropReason;
use signaling_core::metrics::{Counter, RefuseReason};
use signaling_core::peer::Limits;

fn offer(dst: &str) -> String {
    format!(r#"{{"type":"OFFER","dst":"{dst}","payload":{{"sdp":"x"}}}}"#)
}

fn candidate(dst: &str, n: u32) -> String {
    format!(r#"{{"type":"CANDIDATE","dst":"{dst}","payload":{{"n":{n}}}}}"#)
}

fn net() -> OpenNet {
    OpenNet::new(Limits::default())
}

fn payloads(net: &OpenNet, client: Client, kind: &str) -> Vec<serde_json::Value> {
    net.socket(client)
        .received
        .iter()
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .filter(|v| v["type"] == kind)
        .map(|v| v["payload"].clone())
        .collect()
}

#[test]
fn peers_with_their_own_random_tokens_reach_each_other_by_id() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    assert_eq!(net.types(alice), ["OPEN"]);
    assert_eq!(net.types(bob), ["OPEN"]);
    // A spoofed src is overwritten with the sender's id.
    net.send(
        alice,
        r#"{"type":"OFFER","src":"mallory","dst":"bob","payload":{"sdp":"x"}}"#,
    );
    net.send(
        bob,
        r#"{"type":"ANSWER","dst":"alice","payload":{"sdp":"y"}}"#,
    );
    assert_eq!(
        net.got(bob)[1],
        ("OFFER".to_owned(), Some("alice".to_owned()))
    );
    assert_eq!(
        net.got(alice)[1],
        ("ANSWER".to_owned(), Some("bob".to_owned()))
    );
}

#[test]
fn the_same_token_replaces_a_live_socket_and_another_token_is_refused() {
    let mut net = net();
    let first = net.connect("alice", "tok-a");
    let thief = net.connect("alice", "tok-other");
    assert_eq!(net.types(thief), ["ID-TAKEN"]);
    assert_eq!(net.socket(thief).close.as_ref().map(|c| c.0), Some(1008));
    assert!(net.socket(first).open, "the holder keeps its socket");
    assert_eq!(
        net.count(Counter::ConnectionRefused(RefuseReason::IdTaken)),
        1
    );

    let again = net.connect("alice", "tok-a");
    assert_eq!(net.types(again), ["OPEN"], "a reconnect gets OPEN");
    assert_eq!(net.socket(first).close.as_ref().map(|c| c.0), Some(4001));
    // Told why first, so a client that is still there does not take it back.
    assert_eq!(net.types(first), ["OPEN", "ERROR"]);
    // The replaced socket's close is not a departure: nobody is told.
    let bob = net.connect("bob", "tok-b");
    net.send(bob, &offer("alice"));
    net.close(first);
    net.advance(10_000);
    assert!(!net.types(bob).contains(&"LEAVE".to_owned()));
    assert_eq!(net.types(again), ["OPEN", "OFFER"]);
}

#[test]
fn a_stale_holder_is_replaced_by_anyone_and_a_proven_ticket_replaces_a_live_one() {
    let mut net = net();
    let alive = Limits::default().alive_timeout_ms;
    let silent = net.connect("alice", "tok-a");
    net.advance(alive - 1_000);
    let early = net.connect("alice", "tok-b");
    assert_eq!(net.types(early), ["ID-TAKEN"], "not stale yet");
    net.advance(2_000);
    let late = net.connect("alice", "tok-b");
    assert_eq!(net.types(late), ["OPEN"]);
    assert_eq!(net.socket(silent).close.as_ref().map(|c| c.0), Some(4001));

    let proven = net.connect_as("alice", "a-ticket", true);
    assert_eq!(net.types(proven), ["OPEN"]);
    assert!(!net.socket(late).open);
}

#[test]
fn messages_wait_for_an_id_that_is_not_connected_yet_and_arrive_after_open_in_order() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    net.send(alice, &offer("bob"));
    for n in 0..3 {
        net.send(alice, &candidate("bob", n));
    }
    net.advance(1_000);
    let bob = net.connect("bob", "tok-b");
    assert_eq!(
        net.types(bob),
        ["OPEN", "OFFER", "CANDIDATE", "CANDIDATE", "CANDIDATE"]
    );
    let ns: Vec<_> = payloads(&net, bob, "CANDIDATE")
        .iter()
        .map(|p| p["n"].as_u64())
        .collect();
    assert_eq!(ns, [Some(0), Some(1), Some(2)]);
    assert_eq!(net.count(Counter::Queued), 4);
    assert!(
        net.homes["bob"].storage.is_empty(),
        "delivered frames are deleted"
    );
}

#[test]
fn an_unanswered_id_sends_one_expire_per_sender_and_its_home_empties_itself() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let carol = net.connect("carol", "tok-c");
    net.send(alice, &offer("ghost"));
    net.send(alice, &candidate("ghost", 1));
    net.send(carol, &offer("ghost"));
    net.advance(4_000);
    assert!(!net.types(alice).contains(&"EXPIRE".to_owned()));
    net.advance(2_000);
    assert_eq!(
        net.got(alice)[1],
        ("EXPIRE".to_owned(), Some("ghost".to_owned()))
    );
    assert_eq!(net.types(alice).len(), 2, "one EXPIRE for the pair");
    assert_eq!(net.types(carol), ["OPEN", "EXPIRE"]);
    assert_eq!(net.count(Counter::Expired), 3);
    assert!(net.homes["ghost"].is_gone(), "no storage, no alarm left");
}

#[test]
fn one_sender_cannot_fill_another_peers_inbox() {
    let mut net = net();
    let per_sender = net.cfg.max_queued_per_sender;
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    for n in 0..(per_sender as u32 + 10) {
        net.send(alice, &candidate("carol", n));
        if n % 50 == 49 {
            net.advance(1_000); // stay under the per-peer rate
        }
    }
    net.send(bob, &offer("carol"));
    let carol = net.connect("carol", "tok-c");
    let from: Vec<_> = net.got(carol).into_iter().skip(1).collect();
    let from_alice = from
        .iter()
        .filter(|(_, s)| s.as_deref() == Some("alice"))
        .count();
    assert_eq!(from_alice, per_sender);
    assert_eq!(
        from.last(),
        Some(&("OFFER".to_owned(), Some("bob".to_owned())))
    );
    assert_eq!(net.count(Counter::Dropped(DropReason::QueueFull)), 10);
}

#[test]
fn a_peer_that_does_not_come_back_is_announced_to_those_it_signaled_with() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    let carol = net.connect("carol", "tok-c");
    net.send(alice, &offer("bob")); // bob learns of alice by receiving
    net.send(carol, &offer("alice")); // carol learns of alice by sending... to alice
    let dave = net.connect("dave", "tok-d"); // never talked to alice
    net.close(alice);
    net.advance(1_000);
    assert!(
        !net.types(bob).contains(&"LEAVE".to_owned()),
        "still in grace"
    );
    net.advance(2_000);
    assert_eq!(
        net.got(bob).last(),
        Some(&("LEAVE".to_owned(), Some("alice".to_owned())))
    );
    assert_eq!(
        net.got(carol).last(),
        Some(&("LEAVE".to_owned(), Some("alice".to_owned())))
    );
    assert_eq!(net.types(dave), ["OPEN"]);
    assert!(net.homes["alice"].is_gone());
}

#[test]
fn back_within_the_grace_means_no_leave() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    net.send(alice, &offer("bob"));
    net.close(alice);
    net.advance(1_000);
    let back = net.connect("alice", "a-new-page-token");
    net.advance(10_000);
    assert_eq!(net.types(back), ["OPEN"]);
    assert!(!net.types(bob).contains(&"LEAVE".to_owned()));
}

#[test]
fn correspondents_follow_the_id_across_a_reload_a_return_and_a_takeover() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    let carol = net.connect("carol", "tok-c");
    net.send(alice, &offer("bob"));
    // A reload: the same token takes the id over while it is live.
    let reloaded = net.connect("alice", "tok-a");
    assert_eq!(net.types(reloaded), ["OPEN"]);
    net.send(reloaded, &offer("carol"));
    // Gone, back within the grace on a new page, then gone for good.
    net.close(reloaded);
    net.advance(1_000);
    let back = net.connect("alice", "a-new-page-token");
    assert_eq!(net.types(back), ["OPEN"]);
    net.evict_all();
    net.close(back);
    net.advance(5_000);
    for (who, name) in [(bob, "bob"), (carol, "carol")] {
        assert_eq!(
            net.got(who).last(),
            Some(&("LEAVE".to_owned(), Some("alice".to_owned()))),
            "{name} signaled with alice and hears she left"
        );
    }
    assert!(net.homes["alice"].is_gone());
}

#[test]
fn a_correspondent_costs_no_storage_write_and_a_busy_id_keeps_its_most_recent() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let joined = net.homes["alice"].record_writes;
    let many = signaling_core::machine::MAX_CORRESPONDENTS + 4;
    let mut peers = Vec::new();
    for n in 0..many {
        let id = format!("peer{n:02}");
        peers.push((net.connect(&id, "tok"), id.clone()));
        net.send(alice, &offer(&id));
        net.advance(1_000);
    }
    assert_eq!(
        net.homes["alice"].record_writes, joined,
        "nothing stored while alice is live"
    );
    net.close(alice);
    net.advance(5_000);
    let told: Vec<&String> = peers
        .iter()
        .filter(|(c, _)| net.types(*c).contains(&"LEAVE".to_owned()))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(told.len(), signaling_core::machine::MAX_CORRESPONDENTS);
    assert_eq!(
        told.first().map(|s| s.as_str()),
        Some("peer04"),
        "the oldest made room"
    );
}

#[test]
fn a_silent_socket_is_swept_and_announced() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    net.send(bob, &offer("alice"));
    // The promise with default settings: announced within alive + sweep
    // (2 minutes) of silence, at the next 5 s step.
    let cfg = Limits::default();
    for _ in 0..=(cfg.alive_timeout_ms + cfg.sweep_interval_ms) / 5_000 {
        net.advance(5_000);
        net.heartbeat(bob); // bob heartbeats, alice went silent
    }
    assert_eq!(net.socket(alice).close.as_ref().map(|c| c.0), Some(4002));
    assert_eq!(
        net.got(bob).last(),
        Some(&("LEAVE".to_owned(), Some("alice".to_owned())))
    );
    assert!(net.socket(bob).open);
}

#[test]
fn eviction_between_any_two_events_loses_nothing() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    net.evict_all();
    net.send(alice, &offer("bob"));
    net.evict_all();
    net.send(alice, &candidate("bob", 1));
    net.evict_all();
    net.advance(500);
    net.evict_all();
    let bob = net.connect("bob", "tok-b");
    assert_eq!(net.types(bob), ["OPEN", "OFFER", "CANDIDATE"]);
    net.evict_all();
    net.close(alice);
    net.evict_all();
    net.advance(5_000);
    assert_eq!(
        net.got(bob).last(),
        Some(&("LEAVE".to_owned(), Some("alice".to_owned())))
    );
    // The second holder of bob's id still gets bob's replacement rules.
    net.evict_all();
    let thief = net.connect("bob", "tok-x");
    assert_eq!(net.types(thief), ["ID-TAKEN"]);
}

#[test]
fn a_flood_to_random_ids_leaves_bounded_work_and_nothing_behind() {
    let mut net = OpenNet::new(Limits {
        peer_msgs_per_sec: 50,
        ..Limits::default()
    });
    let mallory = net.connect("mallory", "tok-m");
    for n in 0..2_000 {
        net.send(mallory, &offer(&format!("nobody{n}")));
    }
    // The per-peer limit cut the sender off long before 2,000 ids.
    assert!(!net.socket(mallory).open);
    let touched = net.homes.len() - 1;
    assert!(touched <= 2 * 50, "{touched} homes touched");
    net.advance(60_000);
    let left: Vec<_> = net
        .homes
        .iter()
        .filter(|(_, h)| !h.is_gone())
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        left.is_empty(),
        "homes left with storage or an alarm: {left:?}"
    );
}

#[test]
fn frames_the_server_makes_or_that_cannot_wait_are_never_forwarded_again() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    // LEAVE and EXPIRE to an offline id: dropped at its home, not queued.
    net.send(alice, r#"{"type":"LEAVE","dst":"ghost"}"#);
    net.send(alice, r#"{"type":"EXPIRE","dst":"ghost"}"#);
    assert_eq!(net.count(Counter::Dropped(DropReason::OfflineNotQueued)), 2);
    assert!(net.homes["ghost"].is_gone());
    // A HEARTBEAT or a malformed frame goes nowhere and keeps the socket.
    net.send(alice, r#"{"type":"HEARTBEAT"}"#);
    net.send(alice, "not json");
    assert_eq!(net.count(Counter::Dropped(DropReason::Malformed)), 1);
    assert!(net.socket(alice).open);
    assert_eq!(net.types(alice), ["OPEN"]);
}

// Groups (`OPEN_GROUP_SEPARATOR`): a game's ids share one object.

#[test]
fn grouped_ids_reach_each_other_without_a_hop_and_any_id_reaches_any_id() {
    let mut net = OpenNet::grouped(Limits::default(), Some('-'));
    let alice = net.connect("g1-alice", "tok-a");
    let bob = net.connect("g1-bob", "tok-b");
    let carol = net.connect("g2-carol", "tok-c");
    let dave = net.connect("dave", "tok-d");
    assert_eq!(
        net.homes.keys().collect::<Vec<_>>(),
        ["dave", "g1", "g2"],
        "one object per group, and one for an id without the separator"
    );
    net.send(alice, &offer("g1-bob"));
    assert_eq!(net.got(bob)[1], ("OFFER".into(), Some("g1-alice".into())));
    assert_eq!(net.deliveries, 0, "within a group: no hop");
    net.send(alice, &offer("g2-carol"));
    net.send(carol, &offer("dave"));
    net.send(dave, &offer("g1-bob"));
    assert_eq!(net.got(carol)[1], ("OFFER".into(), Some("g1-alice".into())));
    assert_eq!(net.got(dave)[1], ("OFFER".into(), Some("g2-carol".into())));
    assert_eq!(net.got(bob)[2], ("OFFER".into(), Some("dave".into())));
    assert_eq!(net.deliveries, 3, "across objects: one hop each");
}

/// One session of signaling as clients see it: relays within and across
/// groups, messages for an id that joins later, an id taken, a LEAVE after
/// the grace and an EXPIRE, and what each client received.
fn signaling_session(mut net: OpenNet) -> Vec<Vec<(String, Option<String>)>> {
    let alice = net.connect("g1-alice", "tok-a");
    let bob = net.connect("g1-bob", "tok-b");
    let carol = net.connect("g2-carol", "tok-c");
    net.send(alice, &offer("g1-bob"));
    net.send(
        bob,
        r#"{"type":"ANSWER","dst":"g1-alice","payload":{"sdp":"y"}}"#,
    );
    net.send(alice, &offer("g2-carol"));
    net.send(carol, &candidate("g1-alice", 1));
    net.send(carol, &offer("g1-late"));
    net.send(alice, &offer("g3-never"));
    let thief = net.connect("g1-bob", "tok-thief");
    let late = net.connect("g1-late", "tok-l");
    net.send(
        late,
        r#"{"type":"ANSWER","dst":"g2-carol","payload":{"sdp":"z"}}"#,
    );
    for client in [alice, bob, carol, late] {
        net.heartbeat(client);
    }
    net.close(bob);
    net.advance(net.cfg.leave_grace_ms + 1_000);
    for client in [alice, carol, late] {
        net.heartbeat(client);
    }
    net.advance(net.cfg.expire_timeout_ms);
    [alice, bob, carol, thief, late]
        .into_iter()
        .map(|c| net.got(c))
        .collect()
}

#[test]
fn clients_see_the_same_with_and_without_groups() {
    let without = signaling_session(OpenNet::new(Limits::default()));
    let with = signaling_session(OpenNet::grouped(Limits::default(), Some('-')));
    assert_eq!(with, without);
    // The session says something: relays, a LEAVE, an EXPIRE, an ID-TAKEN.
    let all: Vec<&String> = without.iter().flatten().map(|(t, _)| t).collect();
    for kind in [
        "OFFER",
        "ANSWER",
        "CANDIDATE",
        "LEAVE",
        "EXPIRE",
        "ID-TAKEN",
    ] {
        assert!(all.iter().any(|t| *t == kind), "no {kind} in {all:?}");
    }
}

#[test]
fn a_full_group_refuses_a_join_with_a_reason_and_other_groups_are_untouched() {
    let cfg = Limits {
        max_peers_per_group: 2,
        ..Limits::default()
    };
    let mut net = OpenNet::grouped(cfg, Some('-'));
    net.connect("g1-a", "t1");
    net.connect("g1-b", "t2");
    let third = net.connect("g1-c", "t3");
    assert_eq!(net.types(third), ["ERROR"]);
    let error: serde_json::Value =
        serde_json::from_str(&net.socket(third).received[0]).unwrap_or_default();
    assert!(
        error["payload"]["msg"]
            .as_str()
            .is_some_and(|m| m.contains("share the id prefix \"g1\"")),
        "{error}"
    );
    assert_eq!(net.socket(third).close.as_ref().map(|c| c.0), Some(1008));
    assert_eq!(
        net.count(Counter::ConnectionRefused(RefuseReason::RoomFull)),
        1
    );
    let other = net.connect("g2-a", "t4");
    assert_eq!(net.types(other), ["OPEN"]);
}

// No silent loss: every queueable message the server drops is answered.

#[test]
fn a_sender_whose_message_finds_the_inbox_full_is_told_expire() {
    let mut net = OpenNet::new(Limits {
        max_queued_messages: 2,
        ..Limits::default()
    });
    let alice = net.connect("alice", "tok-a");
    let carol = net.connect("carol", "tok-c");
    net.send(alice, &offer("ghost"));
    net.send(alice, &candidate("ghost", 1));
    net.send(carol, &offer("ghost"));
    assert_eq!(
        net.got(carol).last(),
        Some(&("EXPIRE".to_owned(), Some("ghost".to_owned()))),
        "the dropped OFFER is answered at once, not left to hang"
    );
    assert_eq!(net.types(alice), ["OPEN"], "queued ones wait");
}

#[test]
fn a_few_large_frames_from_one_sender_do_not_fill_an_inbox_for_the_others() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    let sdp = "x".repeat(63 * 1024); // frames just under the 64 KiB limit
    for n in 0..8 {
        let big =
            format!(r#"{{"type":"OFFER","dst":"ghost","payload":{{"n":{n},"sdp":"{sdp}"}}}}"#);
        net.send(alice, &big);
    }
    // A real OFFER's SDP is a few KiB.
    let sdp = "y".repeat(8 * 1024);
    let offer_of_bob = format!(r#"{{"type":"OFFER","dst":"ghost","payload":{{"sdp":"{sdp}"}}}}"#);
    net.send(bob, &offer_of_bob);
    assert_eq!(net.types(bob), ["OPEN"], "no EXPIRE: bob's OFFER waits");
    let ghost = net.connect("ghost", "tok-g");
    let from_bob = net
        .got(ghost)
        .iter()
        .filter(|(_, src)| src.as_deref() == Some("bob"))
        .count();
    assert_eq!(from_bob, 1, "bob's OFFER waited beside alice's");
    let expired = net.types(alice).iter().filter(|t| *t == "EXPIRE").count();
    assert_eq!(expired, 1, "alice is told once that her surplus is lost");
}

#[test]
fn a_delivery_that_cannot_reach_its_object_is_answered_with_expire_and_lost_notices_are_counted() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    net.connect("bob", "tok-b");
    net.unreachable.insert("bob".to_owned());
    net.send(alice, &offer("bob"));
    net.send(alice, &candidate("bob", 1));
    assert_eq!(
        net.got(alice)[1..],
        [("EXPIRE".to_owned(), Some("bob".to_owned()))],
        "one EXPIRE for the pair"
    );
    assert_eq!(net.count(Counter::Dropped(DropReason::Unreachable)), 2);
    net.close(alice);
    net.advance(net.cfg.leave_grace_ms + 1_000);
    assert_eq!(
        net.count(Counter::Dropped(DropReason::NoticeLost)),
        1,
        "alice's LEAVE for bob could not be delivered: counted"
    );
}

#[test]
fn the_destination_answers_what_it_did_with_each_delivery() {
    use signaling_core::answer::DeliveryReport;
    let mut net = OpenNet::new(Limits {
        max_queued_messages: 1,
        ..Limits::default()
    });
    let alice = net.connect("alice", "tok-a");
    net.connect("bob", "tok-b");
    net.send(alice, &offer("bob"));
    net.send(alice, &offer("ghost"));
    net.send(alice, &candidate("ghost", 1));
    let report = |sent, queued, dropped| DeliveryReport {
        sent,
        queued,
        dropped,
        dropped_from: if dropped > 0 {
            vec!["alice".into()]
        } else {
            vec![]
        },
    };
    assert_eq!(
        net.delivery_reports,
        [
            report(1, 0, 0),
            report(0, 1, 0),
            report(0, 0, 1),
            report(1, 0, 0)
        ],
        "sent, queued, dropped, and the EXPIRE back to alice's home"
    );
}

#[test]
fn drops_at_many_destinations_make_one_warn_line_per_sender_per_window() {
    use signaling_core::log::Level;
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    for n in 0..100 {
        // LEAVE to an id nobody holds: dropped at its home, not queued.
        net.send(alice, &format!(r#"{{"type":"LEAVE","dst":"ghost{n}"}}"#));
        net.advance(100);
        net.heartbeat(alice);
    }
    assert_eq!(
        net.count(Counter::Dropped(DropReason::OfflineNotQueued)),
        100,
        "every drop is counted"
    );
    let warns = net
        .logs
        .iter()
        .filter(|l| l.event == "drop" && matches!(l.level, Level::Warn))
        .count();
    assert_eq!(
        warns, 1,
        "one warn line for alice in the 10 s window, not one per destination"
    );
}

#[test]
fn a_sender_paced_under_the_rate_limit_reaches_a_bounded_number_of_new_ids() {
    let limit = Limits::default().max_new_destinations_per_minute;
    let mut net = net();
    let mallory = net.connect("mallory", "tok-m");
    let mut sent = 0;
    // Five frames a second, well under the rate limit, each to a new id.
    while net.socket(mallory).open && sent < 600 {
        net.send(mallory, &offer(&format!("nobody{sent}")));
        net.heartbeat(mallory);
        net.advance(200);
        sent += 1;
    }
    let touched = net.homes.len() - 1;
    assert!(
        touched <= limit,
        "{touched} homes touched, the limit is {limit}"
    );
    assert!(!net.socket(mallory).open, "closed after {sent} frames");
    let error = net
        .socket(mallory)
        .received
        .iter()
        .find(|t| t.contains("\"ERROR\""))
        .cloned()
        .unwrap_or_default();
    assert!(error.contains("Too many new destinations"), "{error}");
    assert_eq!(net.socket(mallory).close.as_ref().map(|c| c.0), Some(1008));
}

#[test]
fn a_peer_talking_to_the_same_few_ids_is_never_limited() {
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    for n in 0..1_000 {
        net.send(alice, &candidate("bob", n));
        net.heartbeat(alice);
        net.heartbeat(bob);
        net.advance(100);
    }
    assert!(net.socket(alice).open);
    assert_eq!(payloads(&net, bob, "CANDIDATE").len(), 1_000);
}

/// Rows a namespace wrote so far: records, alarms and queued frames.
fn rows_written(net: &OpenNet) -> u64 {
    net.homes
        .values()
        .map(|h| h.record_writes + h.alarm_writes + h.entry_writes)
        .sum()
}

#[test]
fn what_a_relay_and_a_frame_to_nobody_cost_in_deliveries_and_rows() {
    // Two live ids talking: one delivery per relay, and no row written:
    // each side's correspondent is kept in its socket's attachment.
    let mut net = net();
    let alice = net.connect("alice", "tok-a");
    let bob = net.connect("bob", "tok-b");
    let joined = rows_written(&net);
    for n in 0..100 {
        net.send(alice, &candidate("bob", n));
        net.send(bob, &candidate("alice", n));
        net.heartbeat(alice);
        net.heartbeat(bob);
        net.advance(1_000);
    }
    assert_eq!(payloads(&net, bob, "CANDIDATE").len(), 100);
    assert_eq!(net.deliveries, 200, "one delivery per relay");
    assert_eq!(rows_written(&net) - joined, 0, "no row for a correspondent");

    // The same ids in one group: no delivery at all.
    let mut grouped = OpenNet::grouped(Limits::default(), Some('-'));
    let alice = grouped.connect("g1-alice", "tok-a");
    let bob = grouped.connect("g1-bob", "tok-b");
    for n in 0..100 {
        grouped.send(alice, &candidate("g1-bob", n));
        grouped.send(bob, &candidate("g1-alice", n));
        grouped.advance(1_000);
        grouped.heartbeat(alice);
        grouped.heartbeat(bob);
    }
    assert_eq!(payloads(&grouped, bob, "CANDIDATE").len(), 100);
    assert_eq!(
        grouped.deliveries, 0,
        "a frame within a group never leaves its object"
    );

    // A frame that cannot wait (LEAVE) to an id nobody holds: one
    // delivery, nothing stored anywhere.
    let mut net = OpenNet::new(Limits::default());
    let alice = net.connect("alice", "tok-a");
    let joined = rows_written(&net);
    net.send(alice, r#"{"type":"LEAVE","dst":"nobody"}"#);
    net.advance(60_000);
    assert_eq!((net.deliveries, rows_written(&net) - joined), (1, 0));
    assert!(net.homes["nobody"].is_gone());

    // A queueable one waits for the id as the reference's queue does: the
    // frame, its record and its EXPIRE deadline are stored, then removed;
    // the EXPIRE comes back.
    let mut net = OpenNet::new(Limits::default());
    let alice = net.connect("alice", "tok-a");
    let joined = rows_written(&net);
    net.send(alice, &offer("nobody"));
    net.advance(60_000);
    assert_eq!(net.types(alice), ["OPEN", "EXPIRE"]);
    let nobody = &net.homes["nobody"];
    assert_eq!(
        (
            nobody.record_writes,
            nobody.entry_writes,
            nobody.alarm_writes
        ),
        (2, 2, 1),
        "record and frame put then deleted, the deadline set once"
    );
    assert_eq!(rows_written(&net) - joined, 5);
    assert!(nobody.is_gone());
    assert_eq!(net.deliveries, 2, "there and the EXPIRE back");
}
