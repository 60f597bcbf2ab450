//! What a hostile room member or a stranger with a sub-less ticket can and
//! cannot do, driven through the in-memory Durable Object double.

use signaling_core::double::Harness;
use signaling_core::frame::DropReason;
use signaling_core::metrics::Counter;
use signaling_core::peer::Limits;

fn room() -> Harness {
    Harness::new(Limits::default())
}

fn offer(dst: &str, sdp: &str) -> String {
    format!(r#"{{"type":"OFFER","dst":"{dst}","payload":{{"sdp":"{sdp}"}}}}"#)
}

#[test]
fn an_unproven_join_never_takes_over_a_stale_proven_holder() {
    let mut h = room();
    let watcher = h.join("w", false);
    let victim = h.join("a", true);
    // The victim's network stalls: no heartbeats past the alive timeout.
    h.advance(Limits::default().alive_timeout_ms + 1_000);
    h.heartbeat(watcher);
    let thief = h.join("a", false);
    assert_eq!(h.types(thief), ["ID-TAKEN"], "a sub-less join is refused");
    assert!(h.sockets[victim].open && h.sockets[victim].close.is_none());
    // A ticket that proves the id still may.
    let owner = h.join("a", true);
    assert_eq!(h.types(owner), ["OPEN"]);
}

#[test]
fn an_unproven_join_cannot_claim_a_proven_id_in_its_leave_grace() {
    let mut h = room();
    let watcher = h.join("w", false);
    let bob = h.join("b", false);
    let victim = h.join("a", true);
    h.client_close(victim);
    // Bob's OFFER to the victim waits in the queue during the grace.
    h.send(bob, &offer("a", "secret-candidates"));
    h.advance(500);
    let thief = h.join("a", false);
    assert_eq!(h.types(thief), ["ID-TAKEN"]);
    assert!(
        h.sockets[thief]
            .received
            .iter()
            .all(|f| !f.contains("secret-candidates")),
        "the queued OFFER is not handed to the thief"
    );
    h.advance(2_000);
    assert!(
        h.types(watcher).contains(&"LEAVE".to_owned()),
        "the others still hear that the victim left: {:?}",
        h.types(watcher)
    );
    // The owner coming back in the grace with its ticket is welcome.
    let mut h = room();
    let victim = h.join("a", true);
    h.client_close(victim);
    let back = h.join("a", true);
    assert_eq!(h.types(back), ["OPEN"]);
}

#[test]
fn one_member_cannot_starve_the_others_of_the_offline_queue() {
    let mut h = room();
    let mallory = h.join("m", false);
    let bob = h.join("b", false);
    // 128 tiny OFFERs to an absent id, inside the per-peer rate (100/s).
    for second in 0..2 {
        for i in 0..64 {
            h.send(mallory, &offer("nobody", &format!("{second}-{i}")));
        }
        h.advance(1_000);
    }
    for i in 0..6 {
        h.send(bob, &offer("carol", &format!("bob-{i}")));
    }
    let carol = h.join("carol", false);
    let offers = h
        .got(carol)
        .into_iter()
        .filter(|(t, src)| t == "OFFER" && src.as_deref() == Some("b"))
        .count();
    assert_eq!(
        offers,
        6,
        "bob's queued OFFERs reach carol: {:?}",
        h.types(carol)
    );
    assert!(
        h.count(Counter::Dropped(DropReason::QueueFull)) > 0,
        "mallory was capped"
    );
}

#[test]
fn a_few_large_frames_from_one_member_do_not_fill_the_queue_bytes() {
    let mut h = room();
    let mallory = h.join("m", false);
    let bob = h.join("b", false);
    let big = "p".repeat(60_000);
    for _ in 0..9 {
        h.send(mallory, &offer("nobody", &big));
    }
    for i in 0..3 {
        h.send(
            bob,
            &offer("carol", &format!("bob-{i}-{}", "x".repeat(20_000))),
        );
    }
    let carol = h.join("carol", false);
    let offers = h
        .got(carol)
        .into_iter()
        .filter(|(t, src)| t == "OFFER" && src.as_deref() == Some("b"))
        .count();
    assert_eq!(offers, 3, "bob's queued OFFERs reach carol");
}

#[test]
fn open_namespace_an_unproven_token_never_replaces_a_proven_id() {
    use signaling_core::double::open::OpenNet;
    let mut net = OpenNet::new(Limits::default());
    let watcher = net.connect("w", "tok-w");
    let victim = net.connect_as("a", "ticket-of-a", true);
    net.advance(Limits::default().alive_timeout_ms + 1_000);
    net.heartbeat(watcher);
    let thief = net.connect("a", "tok-thief");
    assert_eq!(net.types(thief), ["ID-TAKEN"], "stale but proven");
    net.close(victim);
    let thief = net.connect("a", "tok-thief");
    assert_eq!(net.types(thief), ["ID-TAKEN"], "in the leave grace");
    let owner = net.connect_as("a", "ticket-of-a", true);
    assert_eq!(net.types(owner), ["OPEN"]);
}

fn warn_lines(h: &Harness) -> usize {
    use signaling_core::log::Level;
    h.logs
        .iter()
        .filter(|l| matches!(l.level, Level::Warn | Level::Error))
        .count()
}

#[test]
fn a_peer_sending_garbage_is_closed_with_a_reason_not_logged_forever() {
    let mut h = room();
    let watcher = h.join("w", false);
    let bad = h.join("m", false);
    // 50 malformed frames a second (half the rate limit) for a minute.
    for _ in 0..60 {
        for _ in 0..50 {
            h.send(bad, "{not json");
        }
        h.advance(1_000);
    }
    let close = h.sockets[bad].close.clone();
    assert_eq!(close.as_ref().map(|c| c.0), Some(1008), "closed: {close:?}");
    assert!(
        h.sockets[bad]
            .received
            .iter()
            .any(|f| f.contains("Too many invalid messages")),
        "the client is told why: {:?}",
        h.sockets[bad].received
    );
    assert!(warn_lines(&h) <= 3, "{} warn lines", warn_lines(&h));
    assert!(h.types(watcher).contains(&"LEAVE".to_owned()));
}

#[test]
fn a_peer_repeating_oversized_frames_is_closed_with_1009() {
    let mut h = room();
    let _watcher = h.join("w", false);
    let bad = h.join("m", false);
    let huge = offer("w", &"x".repeat(70_000));
    for _ in 0..10 {
        h.send(bad, &huge);
    }
    assert_eq!(h.sockets[bad].close.as_ref().map(|c| c.0), Some(1009));
    assert!(h.sockets[bad]
        .received
        .iter()
        .any(|f| f.contains("Messages too big")));
    assert_eq!(
        h.count(Counter::Dropped(DropReason::TooLarge)),
        4,
        "3 forgiven, the 4th closes"
    );
}

#[test]
fn a_member_hitting_a_full_queue_is_logged_once_per_window_and_kept() {
    let mut h = room();
    let member = h.join("m", false);
    // Its share of the queue fills at once; then a minute of refusals.
    for i in 0..60 {
        for j in 0..50 {
            h.send(member, &offer("nobody", &format!("{i}-{j}")));
        }
        h.advance(1_000);
    }
    assert!(h.sockets[member].open && h.sockets[member].close.is_none());
    let drops = h.count(Counter::Dropped(DropReason::QueueFull));
    assert!(drops > 2_000, "{drops} drops");
    assert!(
        warn_lines(&h) <= 8,
        "{} warn lines for {drops} drops",
        warn_lines(&h)
    );
}

#[test]
fn a_client_ignoring_close_frames_cannot_grow_the_socket_list_without_bound() {
    let mut h = room();
    h.clients_ignore_close = true;
    let other = h.join("b", false);
    // The same ticket takes its id over again and again, never completing a close.
    let mut refused = None;
    for attempt in 0..100 {
        let s = h.join("a", true);
        if h.types(s) != ["OPEN"] {
            refused = Some((attempt, s));
            break;
        }
    }
    let (attempt, s) = refused.expect("the takeovers stop being accepted");
    let listed = h.sockets.iter().filter(|s| s.open).count();
    assert!(
        listed <= 12,
        "{listed} sockets listed after {attempt} takeovers"
    );
    assert!(h.sockets[s].received[0].contains("still closing; retry later"));
    assert_eq!(h.sockets[s].close.as_ref().map(|c| c.0), Some(1013));
    // Other ids are unaffected.
    let c = h.join("c", false);
    assert_eq!(h.types(c), ["OPEN"]);
    assert!(h.sockets[other].close.is_none());
}
