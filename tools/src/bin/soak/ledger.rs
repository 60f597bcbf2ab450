//! The soak run's ledger: every message the harness sent and what became of
//! it. It alone decides "lost = 0", so it is pure (times come in as
//! arguments) and unit-tested below.
//!
//! A message is `Pending` until the receiver reads it (`Delivered`) or its
//! sender reads an EXPIRE for the pair (`Expired`). When the run is over, a
//! message still pending is "in flight at the restart" if it was sent in the
//! `IN_FLIGHT_MS` before its sender's or receiver's socket dropped, or if it
//! was queued and its receiver came back on a socket that then dropped before
//! the message could expire (the server may have flushed it into that socket,
//! as the reference does), "expired while its sender was offline" if it was
//! queued and its sender dropped before the expiry could reach it, and lost
//! otherwise.

use std::collections::{BTreeSet, HashMap};

/// A frame sent this long before its socket dropped may have died with it.
pub const IN_FLIGHT_MS: u64 = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Pending,
    Delivered,
    Expired,
}

/// One message the harness sent, and what became of it.
#[derive(Debug)]
pub struct Sent {
    pub src: usize,
    pub dst: usize,
    pub sent_ms: u64,
    /// The sender's connection it went out on, and the receiver's at that
    /// time (`None`: the receiver was away, so the server queues it).
    pub src_conn: u64,
    pub dst_conn: Option<u64>,
    pub fate: Fate,
    /// When its sender read the EXPIRE that settled it.
    pub expired_at_ms: Option<u64>,
}

/// A relayed frame as its receiver read it.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    pub receiver: usize,
    /// The sender named by `src`, if it is one of ours.
    pub src: Option<usize>,
    /// `dst` names the receiver.
    pub to_me: bool,
    pub seq: Option<u64>,
    pub latency_ms: f64,
}

/// Every message, by seq, plus each sender's unsettled seqs (for EXPIRE).
#[derive(Default)]
pub struct Ledger {
    pub sent: Vec<Sent>,
    pending_by_src: HashMap<usize, BTreeSet<u64>>,
    /// Send to receipt, for messages whose receiver was online when sent.
    pub relay_latency_ms: Vec<f64>,
    /// Send to receipt, for messages the server queued for an absent peer.
    pub queued_latency_ms: Vec<f64>,
    pub delivered: u64,
    pub expired: u64,
    pub duplicated: u64,
    pub misrouted: u64,
    pub delivered_after_expire: u64,
    pub expire_without_pending: u64,
    /// Connection id -> when it dropped without the harness closing it.
    dropped_conns: HashMap<u64, u64>,
    /// Peer -> when each of its connections dropped, for queued messages
    /// (they name no receiver connection).
    drops_by_peer: HashMap<usize, Vec<u64>>,
}

/// How the messages still pending at the end of the run are judged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    pub lost: u64,
    pub in_flight_at_restart: u64,
    pub expired_while_sender_offline: u64,
    /// The first few lost messages' seqs, for the report.
    pub lost_seqs: Vec<u64>,
}

/// What became of the messages the server held queued when the rooms tier died.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueuedAtKill {
    pub queued_at_kill: usize,
    pub queued_delivered: usize,
    pub queued_expired_reported: usize,
    pub queued_expired_sender_offline: usize,
    pub queued_in_flight: usize,
    pub queued_lost: usize,
}

impl Ledger {
    /// Records a message about to be sent; returns its seq.
    pub fn record(
        &mut self,
        src: usize,
        dst: usize,
        sent_ms: u64,
        src_conn: u64,
        dst_conn: Option<u64>,
    ) -> u64 {
        let seq = self.sent.len() as u64;
        self.sent.push(Sent {
            src,
            dst,
            sent_ms,
            src_conn,
            dst_conn,
            fate: Fate::Pending,
            expired_at_ms: None,
        });
        self.pending_by_src.entry(src).or_default().insert(seq);
        seq
    }

    /// `sender` read an EXPIRE naming `unreachable`. EXPIRE names no
    /// message: it settles every unsettled one of the pair. One still on its
    /// way when the server expired the pair is queued afresh and settles
    /// later: a delivery then overrides this (`delivered_after_expire`), a
    /// second EXPIRE finds nothing (`expire_without_pending`).
    pub fn expire(&mut self, sender: usize, unreachable: usize, at_ms: u64) {
        let pending: Vec<u64> = self
            .pending_by_src
            .get(&sender)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let mut matched = 0;
        for seq in pending {
            let Some(m) = self.sent.get_mut(seq as usize) else {
                continue;
            };
            if m.dst == unreachable {
                m.fate = Fate::Expired;
                m.expired_at_ms = Some(at_ms);
                matched += 1;
                if let Some(s) = self.pending_by_src.get_mut(&sender) {
                    s.remove(&seq);
                }
            }
        }
        self.expired += matched;
        if matched == 0 {
            self.expire_without_pending += 1;
        }
    }

    /// A relayed frame arrived.
    pub fn relayed(&mut self, r: Receipt) {
        let Some(seq) = r.seq else {
            self.misrouted += 1;
            return;
        };
        let (fate, was_queued) = match self.sent.get(seq as usize) {
            Some(m) if Some(m.src) == r.src && m.dst == r.receiver && r.to_me => {
                (m.fate, m.dst_conn.is_none())
            }
            _ => {
                self.misrouted += 1;
                return;
            }
        };
        if fate == Fate::Delivered {
            self.duplicated += 1;
            return;
        }
        if fate == Fate::Expired {
            self.delivered_after_expire += 1;
            self.expired -= 1;
        }
        if let Some(m) = self.sent.get_mut(seq as usize) {
            m.fate = Fate::Delivered;
        }
        if let Some(s) = r.src.and_then(|s| self.pending_by_src.get_mut(&s)) {
            s.remove(&seq);
        }
        self.delivered += 1;
        if was_queued {
            self.queued_latency_ms.push(r.latency_ms);
        } else {
            self.relay_latency_ms.push(r.latency_ms);
        }
    }

    /// Connection `conn` dropped at `at_ms` without the harness closing it.
    pub fn dropped(&mut self, peer: usize, conn: u64, at_ms: u64) {
        self.dropped_conns.insert(conn, at_ms);
        self.drops_by_peer.entry(peer).or_default().push(at_ms);
    }

    /// Messages of `sender` not settled yet.
    pub fn unsettled_of(&self, sender: usize) -> usize {
        self.pending_by_src.get(&sender).map_or(0, |s| s.len())
    }

    pub fn any_unsettled(&self) -> bool {
        self.pending_by_src.values().any(|s| !s.is_empty())
    }

    /// Judges every message still pending; see the module header.
    pub fn settle(&self, expire_ms: u64) -> Settlement {
        let mut out = Settlement::default();
        for (seq, m) in self.sent.iter().enumerate() {
            if m.fate != Fate::Pending {
                continue;
            }
            if self.in_restart_window(m, expire_ms) {
                out.in_flight_at_restart += 1;
            } else if self.expired_while_offline(m, expire_ms) {
                out.expired_while_sender_offline += 1;
            } else {
                out.lost += 1;
                if out.lost_seqs.len() < 10 {
                    out.lost_seqs.push(seq as u64);
                }
            }
        }
        out
    }

    /// The messages sent to an absent peer before `kill_ms` and not yet
    /// expired then (the server held them), and what became of them.
    pub fn queued_at_kill(&self, kill_ms: u64, expire_ms: u64) -> QueuedAtKill {
        let queued: Vec<&Sent> = self
            .sent
            .iter()
            .filter(|m| {
                m.dst_conn.is_none() && m.sent_ms < kill_ms && m.sent_ms + expire_ms > kill_ms
            })
            .collect();
        let count = |f: Fate| queued.iter().filter(|m| m.fate == f).count();
        let unsettled: Vec<&&Sent> = queued.iter().filter(|m| m.fate == Fate::Pending).collect();
        let in_flight = unsettled
            .iter()
            .filter(|m| self.in_restart_window(m, expire_ms))
            .count();
        let sender_offline = unsettled
            .iter()
            .filter(|m| {
                !self.in_restart_window(m, expire_ms) && self.expired_while_offline(m, expire_ms)
            })
            .count();
        QueuedAtKill {
            queued_at_kill: queued.len(),
            queued_delivered: count(Fate::Delivered),
            queued_expired_reported: count(Fate::Expired),
            queued_expired_sender_offline: sender_offline,
            queued_in_flight: in_flight,
            queued_lost: unsettled.len() - in_flight - sender_offline,
        }
    }

    /// Expiries the server may have made in the `window_ms` before
    /// `kill_ms` and counted only in memory: a room reports its counter
    /// deltas every few seconds, so a crash loses the last ones. Those read
    /// as EXPIRE then, and those due then whose sender was offline.
    pub fn expiries_near_kill(&self, kill_ms: u64, window_ms: u64, expire_ms: u64) -> u64 {
        let near = |t: u64| t + window_ms >= kill_ms && t <= kill_ms + IN_FLIGHT_MS;
        self.sent
            .iter()
            .filter(|m| match (m.fate, m.expired_at_ms) {
                (Fate::Expired, Some(at)) => near(at),
                (Fate::Pending, _) => {
                    !self.in_restart_window(m, expire_ms)
                        && self.expired_while_offline(m, expire_ms)
                        && near(m.sent_ms + expire_ms)
                }
                _ => false,
            })
            .count() as u64
    }

    /// A queued message whose sender dropped before it could expire: the
    /// server expires it, but an EXPIRE cannot reach a sender that is not
    /// connected (same in the reference server). The report checks these in
    /// aggregate against the server's own expired counter.
    fn expired_while_offline(&self, m: &Sent, expire_ms: u64) -> bool {
        m.dst_conn.is_none()
            && self.dropped_conns.get(&m.src_conn).is_some_and(|drop_ms| {
                *drop_ms >= m.sent_ms && *drop_ms <= m.sent_ms + expire_ms + IN_FLIGHT_MS
            })
    }

    /// Sent shortly before its sender's or receiver's socket dropped, or
    /// queued for a receiver whose socket dropped before the expiry.
    fn in_restart_window(&self, m: &Sent, expire_ms: u64) -> bool {
        let died_soon_after = |conn: u64| {
            self.dropped_conns.get(&conn).is_some_and(|drop_ms| {
                m.sent_ms + IN_FLIGHT_MS >= *drop_ms && m.sent_ms <= *drop_ms
            })
        };
        died_soon_after(m.src_conn)
            || m.dst_conn.is_some_and(died_soon_after)
            || self.flushed_into_a_dropped_socket(m, expire_ms)
    }

    /// A queued message whose receiver lost a socket between the send and
    /// the expiry: the receiver may have come back, been handed the queue,
    /// and lost the socket before reading it. The server counts that as
    /// relayed, so it is neither lost nor expired.
    fn flushed_into_a_dropped_socket(&self, m: &Sent, expire_ms: u64) -> bool {
        m.dst_conn.is_none()
            && self.drops_by_peer.get(&m.dst).is_some_and(|drops| {
                drops
                    .iter()
                    .any(|at| *at >= m.sent_ms && *at <= m.sent_ms + expire_ms + IN_FLIGHT_MS)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRE_MS: u64 = 5_000;

    fn receipt(receiver: usize, src: usize, seq: u64) -> Receipt {
        Receipt {
            receiver,
            src: Some(src),
            to_me: true,
            seq: Some(seq),
            latency_ms: 1.0,
        }
    }

    #[test]
    fn a_delivered_message_settles_once_and_a_second_copy_is_a_duplicate() {
        let mut l = Ledger::default();
        let seq = l.record(0, 1, 1_000, 10, Some(11));
        assert_eq!(l.unsettled_of(0), 1);
        l.relayed(receipt(1, 0, seq));
        assert_eq!((l.delivered, l.unsettled_of(0)), (1, 0));
        l.relayed(receipt(1, 0, seq));
        assert_eq!((l.delivered, l.duplicated), (1, 1));
        assert_eq!(l.settle(EXPIRE_MS), Settlement::default());
        assert_eq!(l.relay_latency_ms.len(), 1);
    }

    #[test]
    fn a_frame_for_someone_else_from_someone_else_or_unknown_is_misrouted() {
        let mut l = Ledger::default();
        let seq = l.record(0, 1, 1_000, 10, Some(11));
        l.relayed(receipt(2, 0, seq)); // read by the wrong peer
        l.relayed(receipt(1, 3, seq)); // wrong src
        l.relayed(Receipt {
            to_me: false,
            ..receipt(1, 0, seq)
        });
        l.relayed(Receipt {
            seq: None,
            ..receipt(1, 0, seq)
        });
        l.relayed(receipt(1, 0, 99)); // never sent
        assert_eq!((l.misrouted, l.delivered), (5, 0));
        assert_eq!(
            l.settle(EXPIRE_MS).lost,
            1,
            "still pending, nobody dropped: lost"
        );
    }

    #[test]
    fn an_expire_settles_every_pending_message_of_the_pair_only() {
        let mut l = Ledger::default();
        let to_b1 = l.record(0, 1, 1_000, 10, None);
        let to_b2 = l.record(0, 1, 1_100, 10, None);
        let to_c = l.record(0, 2, 1_200, 10, None);
        l.expire(0, 1, 7_000);
        assert_eq!(l.expired, 2);
        assert_eq!(l.sent[to_b1 as usize].fate, Fate::Expired);
        assert_eq!(l.sent[to_b2 as usize].fate, Fate::Expired);
        assert_eq!(l.sent[to_c as usize].fate, Fate::Pending);
        l.expire(0, 1, 7_000);
        assert_eq!(l.expire_without_pending, 1);
        // A late delivery of an expired one overrides the EXPIRE.
        l.relayed(receipt(1, 0, to_b2));
        assert_eq!(
            (l.expired, l.delivered, l.delivered_after_expire),
            (1, 1, 1)
        );
        assert_eq!(l.queued_latency_ms.len(), 1, "sent while b was away");
    }

    #[test]
    fn pending_at_a_drop_is_in_flight_and_otherwise_lost() {
        let mut l = Ledger::default();
        // Sent 500 ms before the sender's socket dropped: may have died with it.
        let in_flight = l.record(0, 1, 10_000, 10, Some(11));
        // Sent 500 ms before the receiver's socket dropped.
        let towards_dropped = l.record(2, 1, 10_000, 12, Some(11));
        // Sent 3 s before the drop: should have arrived.
        let lost = l.record(3, 2, 7_000, 13, Some(14));
        l.dropped(0, 10, 10_500);
        l.dropped(1, 11, 10_500);
        let s = l.settle(EXPIRE_MS);
        assert_eq!(s.in_flight_at_restart, 2, "{in_flight} {towards_dropped}");
        assert_eq!((s.lost, s.lost_seqs.clone()), (1, vec![lost]));
    }

    #[test]
    fn a_queued_message_whose_sender_dropped_before_its_expiry_expired_unseen() {
        let mut l = Ledger::default();
        // Queued (receiver away) at 10 s; the sender drops at 13 s, before
        // the 5 s expiry could reach it.
        l.record(0, 1, 10_000, 10, None);
        // Queued too, but the sender dropped 20 s later: its EXPIRE was due
        // long before, so its absence is a loss.
        l.record(2, 1, 10_000, 12, None);
        l.dropped(0, 10, 13_000);
        l.dropped(2, 12, 30_000);
        let s = l.settle(EXPIRE_MS);
        assert_eq!((s.expired_while_sender_offline, s.lost), (1, 1));
        let at_kill = l.queued_at_kill(12_000, EXPIRE_MS);
        assert_eq!(at_kill.queued_at_kill, 2);
        assert_eq!(at_kill.queued_expired_sender_offline, 1);
        assert_eq!(at_kill.queued_lost, 1);
    }

    #[test]
    fn a_queued_message_whose_receiver_came_back_and_dropped_may_have_died_with_it() {
        let mut l = Ledger::default();
        // Queued for peer 1 at 10 s; peer 1's next socket dies at 13 s
        // (before the 5 s expiry), and so does the sender's at the same kill,
        // 3 s after the send (outside the in-flight window).
        l.record(0, 1, 10_000, 10, None);
        // Queued for peer 3, whose sockets never dropped: the sender's drop
        // explains it only as an unseen expiry.
        l.record(2, 3, 10_000, 12, None);
        l.dropped(1, 21, 13_000);
        l.dropped(0, 10, 13_000);
        l.dropped(2, 12, 13_000);
        let s = l.settle(EXPIRE_MS);
        assert_eq!(
            (
                s.in_flight_at_restart,
                s.expired_while_sender_offline,
                s.lost
            ),
            (1, 1, 0)
        );
    }

    #[test]
    fn expiries_just_before_the_kill_are_the_ones_the_counter_may_have_lost() {
        let mut l = Ledger::default();
        // Read as EXPIRE 1 s before the kill at 20 s, and 10 s before it.
        l.record(0, 1, 14_000, 10, None);
        l.record(2, 3, 4_000, 12, None);
        l.expire(0, 1, 19_000);
        l.expire(2, 3, 10_000);
        // Queued at 16 s, due at 21 s (EXPIRE_MS 5 s), its sender dropped at
        // the kill: due within the in-flight margin after it, so at risk.
        l.record(4, 5, 16_000, 14, None);
        // Queued at 13.5 s, due 18.5 s, sender dropped at the kill: at risk.
        l.record(6, 7, 13_500, 16, None);
        l.dropped(4, 14, 20_000);
        l.dropped(6, 16, 20_000);
        assert_eq!(l.expiries_near_kill(20_000, 4_000, EXPIRE_MS), 3);
        assert_eq!(
            l.expiries_near_kill(20_000, 500, EXPIRE_MS),
            1,
            "only the due-at-21 s one"
        );
    }
}
