//! The one state machine of every object that holds sockets: a game room
//! and a home of the open namespace alike. It runs over the peer ids that
//! share one object; the [`Placement`] says which ids live here and what
//! the object owes them, and nothing else differs.
//!
//! Sans-IO, one entry point: the host (the rooms Worker's `host.rs`, or an
//! in-memory double) builds one [`Input`] per event and calls
//! [`Machine::handle_input`] with:
//! - `record`: the object's durable record ([`Record`]), changed in place;
//! - `peers`: a view of the object's sockets, from their attachments
//!   ([`crate::socket::PeerState`]) and the runtime's auto-response times;
//! - the flood guard (in memory: losing it at eviction forgives a flooder);
//! - `now` in milliseconds.
//!
//! It answers a [`Step`]: the socket operations in order, the storage
//! writes, counts, logs and forwards, and whether the record and its alarm
//! changed, which the record's own [`Tracked`] wrapper knows. Nothing that
//! matters lives in memory between events, so the object can be evicted at
//! any moment. Every deadline is one entry of the record's [`TimerTable`]:
//! the earliest is the alarm, and [`Input::Alarm`] handles those due.

use crate::answer::{Answer, DeliveryReport, RoomSummary};
use crate::delivery::{Forward, Parcel};
use crate::flood::{DropKind, DropVerdict, KickFor, PeerFloodGuard};
use crate::frame::{self, DropReason, RelayKind};
use crate::log::{Level, LogEvent};
use crate::metrics::{Counter, LeaveCause, RefuseReason};
use crate::moderation::{self, blocked_until, refuse_blocked};
use crate::peer::{
    admit_frame, claims_proven_grace, judge_drop, judge_too_large, kick_notice, may_replace,
    oldest_attached_seen, oldest_seen, refuse, refuse_id_taken, refuse_try_again, replace_socket,
    retire_peer, too_many_closing, Admitted, Limits, PeerView, Refusal, CLOSE_POLICY,
};
use crate::placement::Placement;
use crate::record::{Correspondent, PendingLeave, Queued, Record, Tracked};
use crate::socket::{PeerState, Recipient};
use crate::step::{SocketOp, Step};
use crate::timers::{self, Timer, TimerTable};

// The machine's work, one concern per file; each is an `impl Turn`.
mod alarm;
mod correspondents;
mod membership;
mod relay;

pub use crate::record::{CORRESPONDENT_TTL_MS, MAX_CORRESPONDENTS};

/// A join, as the router checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub id: String,
    /// A ticket whose `sub` is this id proved the identity.
    pub proven: bool,
    /// What identifies the client holding the id, kept in its socket's
    /// attachment: in a room, the ticket it was admitted with (a block
    /// covers it as well as the id; `None` without signed tickets); in the
    /// open namespace, the digest of its own token ([`token_digest`]).
    pub holder: Option<String>,
}

/// The digest of a client's token, as the router sends it and the
/// attachment keeps it: the token itself is never stored.
pub fn token_digest(token: &str) -> String {
    crate::secret::sha256_hex(token)
}

/// One event for the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<S> {
    /// A new socket wants to join.
    Join(Join),
    /// A frame of `bytes` from the socket `from` (text, or binary holding JSON).
    Frame { from: S, bytes: Vec<u8> },
    /// A frame over the size limit from `from`: only its length was read
    /// (the runtime accepts frames of up to 32 MiB).
    TooLarge { from: S, len: usize },
    /// The socket closed or errored; `peers` lists it, with its attachment.
    Closed { socket: S },
    /// The object's alarm fired.
    Alarm,
    /// The object's stats shard calls its sweep ([`Limits::shard_sweeps`]):
    /// silent peers are retired and what else is due is done, as at an
    /// alarm; the step answers when the next sweep is wanted
    /// ([`Answer::Swept`]).
    Sweep,
    /// Parcels from another object (open namespace).
    Deliver(Vec<Parcel>),
    /// The object `to` dropped relays from these senders of this object's
    /// (its delivery report said so): each is logged here, sampled per
    /// sender.
    DroppedAway { to: String, senders: Vec<String> },
    /// Parcels this object made that could not reach their object (its
    /// outbox was full, or the delivery failed after its retries), dropped
    /// for `reason`: the sender of each queueable one is told EXPIRE.
    Undelivered {
        parcels: Vec<Parcel>,
        reason: DropReason,
    },
    /// A moderator looks at the room.
    Inspect,
    /// A moderator removes `id`, blocking it for `block_secs` if given.
    Remove { id: String, block_secs: Option<u64> },
    /// A moderator closes the room.
    CloseRoom,
}

/// The machine of one object.
pub struct Machine<'c> {
    pub limits: &'c Limits,
    pub placement: Placement<'c>,
}

impl<'c> Machine<'c> {
    pub fn new(limits: &'c Limits, placement: Placement<'c>) -> Self {
        Machine { limits, placement }
    }

    /// Every event, through one entry point.
    pub fn handle_input<S: Copy + Eq>(
        &self,
        record: &mut Record,
        peers: &[PeerView<S>],
        input: Input<S>,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let mut turn = Turn {
            m: self,
            limits: self.limits,
            fx: Step::default(),
            rec: Tracked::new(record),
            peers,
            flood,
            now: now_ms,
            dropped_from: Vec::new(),
        };
        match input {
            Input::Join(join) => turn.join(join),
            Input::Frame { from, bytes } => turn.frame(from, &bytes),
            Input::TooLarge { from, len } => turn.too_large(from, len),
            Input::Closed { socket } => turn.closed(socket),
            Input::Alarm => turn.alarm(),
            Input::Sweep => turn.sweep(),
            Input::Deliver(parcels) => turn.deliver(parcels),
            Input::Undelivered { parcels, reason } => turn.undelivered(parcels, reason),
            Input::DroppedAway { to, senders } => turn.dropped_away(&to, senders),
            // The moderator's calls are for rooms: a home answers none.
            _ if self.placement != Placement::Room => {}
            Input::Inspect => {
                let summary = self.inspect(&turn.rec, peers, now_ms);
                turn.fx.answer = (!summary.is_empty()).then_some(Answer::Summary(summary));
            }
            Input::Remove { id, block_secs } => {
                let rec = &mut turn.rec;
                let found = moderation::remove(
                    &mut turn.fx,
                    rec,
                    self.limits,
                    peers,
                    &id,
                    block_secs,
                    now_ms,
                );
                turn.fx.answer = found.map(Answer::Removed);
            }
            Input::CloseRoom => {
                let found =
                    moderation::close_room(&mut turn.fx, &mut turn.rec, self.limits, peers, now_ms);
                turn.fx.answer = found.map(Answer::Closed);
            }
        }
        let (changed, alarm_changed) = turn.rec.changes();
        turn.fx.record_changed = changed;
        turn.fx.alarm_changed = alarm_changed;
        turn.fx
    }

    /// The room as a moderator sees it. Reads heartbeat timestamps, so the
    /// host must pass fresh ones.
    pub fn inspect<S>(&self, record: &Record, peers: &[PeerView<S>], now_ms: u64) -> RoomSummary {
        moderation::inspect(self.limits, record, peers, now_ms)
    }

    /// The ids of the live peers, for `GET {mount}{key}/peers`: not closing,
    /// not stale. Sorted, no duplicates.
    pub fn roster<S>(&self, peers: &[PeerView<S>], now_ms: u64) -> Vec<String> {
        let mut ids: Vec<String> = peers
            .iter()
            .filter(|p| p.is_live() && !p.is_stale(now_ms, self.limits))
            .map(|p| p.state.id.clone())
            .collect();
        crate::order::sort_small_by(&mut ids, String::cmp);
        ids.dedup();
        ids
    }
}

/// One event in progress: what it reads, and the step it builds.
struct Turn<'a, S> {
    m: &'a Machine<'a>,
    limits: &'a Limits,
    fx: Step<S>,
    rec: Tracked<'a>,
    peers: &'a [PeerView<S>],
    flood: &'a mut PeerFloodGuard,
    now: u64,
    /// Senders of another object whose relays this event dropped.
    dropped_from: Vec<String>,
}

impl<'a, S: Copy + Eq> Turn<'a, S> {
    fn live(&self) -> impl Iterator<Item = &'a PeerView<S>> {
        self.peers.iter().filter(|p| p.is_live())
    }

    fn live_holder(&self, id: &str) -> Option<&'a PeerView<S>> {
        self.peers.iter().find(|p| p.is_live() && p.state.id == id)
    }

    /// Hands a parcel to the object its destination lives in.
    fn forward(&mut self, parcel: Parcel) {
        let to = self.m.placement.object_of(&parcel.dst).to_owned();
        self.fx.forwards.push(Forward { to, parcel });
    }

    /// Schedules `leave`, replacing any pending LEAVE of its id.
    fn schedule_leave(&mut self, leave: PendingLeave) {
        self.rec.leaves.retain(|l| l.id != leave.id);
        self.rec.leaves.push(leave);
    }

    /// Points the alarm at the earliest deadline (see [`timers::plan_alarm`]).
    fn plan_alarm(&mut self, seen: Option<u64>) {
        timers::plan_alarm(&mut self.rec, self.limits, seen, self.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(socket: usize, id: &str, heartbeat_ms: Option<u64>) -> PeerView<usize> {
        PeerView {
            socket,
            state: PeerState {
                id: id.to_owned(),
                proven: false,
                joined_ms: 0,
                seen_ms: 0,
                closing: false,
                holder: None,
                correspondents: Vec::new(),
            },
            heartbeat_ms,
        }
    }

    /// The rooms Worker skips heartbeat timestamps on frames and closes; a
    /// rule change that starts reading them there must fail here first.
    #[test]
    fn frame_and_close_ignore_heartbeat_timestamps() {
        let cfg = Limits::default();
        let room = Machine::new(&cfg, Placement::Room);
        // At 60 s without heartbeats both peers would be stale; with them, fresh.
        let now = 60_000;
        let with: Vec<_> = vec![view(0, "a", Some(now - 1)), view(1, "b", Some(now - 1))];
        let without: Vec<_> = vec![view(0, "a", None), view(1, "b", None)];
        let frames: [&[u8]; 3] = [
            br#"{"type":"OFFER","dst":"b","payload":{"sdp":"x"}}"#,
            br#"{"type":"OFFER","dst":"absent","payload":{"sdp":"x"}}"#,
            br#"{"type":"LEAVE","dst":"b"}"#,
        ];
        let run = |peers: &[PeerView<usize>], input: Input<usize>| {
            let mut record = Record::default();
            let mut flood = PeerFloodGuard::new(cfg.peer_msgs_per_sec);
            let fx = room.handle_input(&mut record, peers, input, &mut flood, now);
            (fx, record)
        };
        for bytes in frames {
            let input = || Input::Frame {
                from: 0,
                bytes: bytes.to_vec(),
            };
            assert_eq!(run(&with, input()), run(&without, input()));
        }
        let closed = || Input::Closed { socket: 1 };
        assert_eq!(run(&with, closed()), run(&without, closed()));
    }
}
