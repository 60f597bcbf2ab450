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

/// How many recent correspondents one id remembers for its `LEAVE`.
pub const MAX_CORRESPONDENTS: usize = 32;
/// A correspondent not heard from or written to for this long is forgotten.
pub const CORRESPONDENT_TTL_MS: u64 = 10 * 60_000;
/// A known correspondent's time is refreshed (a record write) at most this often.
const CORRESPONDENT_REFRESH_MS: u64 = CORRESPONDENT_TTL_MS / 4;

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
        ids.sort();
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

    /// A socket wants to hold `join.id`: refused while too many of its
    /// sockets are still closing, while it is blocked, while a proven id's
    /// grace runs, or while a holder it may not replace is live (see
    /// [`may_replace`]); in a room, also when the room is full after stale
    /// peers were retired. Then OPEN, and whatever waited for the id.
    fn join(&mut self, join: Join) {
        let (fx, id) = (&mut self.fx, join.id.as_str());
        if let Some(msg) = too_many_closing(self.peers, id) {
            return refuse_try_again(fx, id, msg);
        }
        if let Some(until_ms) = blocked_until(&self.rec, id, join.holder.as_deref(), self.now) {
            return refuse_blocked(fx, id, until_ms, self.now);
        }
        if claims_proven_grace(&self.rec.leaves, id, join.proven) {
            return refuse_id_taken(fx, id, "proven_in_grace");
        }
        let mut closed: Vec<S> = Vec::new();
        for holder in self.live().filter(|p| p.state.id == id) {
            let same_client = self.m.placement.same_client_replaces()
                && join.holder.is_some()
                && holder.state.holder == join.holder;
            let stale = holder.is_stale(self.now, self.limits);
            if !may_replace(holder.state.proven, join.proven, same_client || stale) {
                let why = if holder.state.proven {
                    "proven_holder"
                } else {
                    "id_taken"
                };
                return refuse_id_taken(&mut self.fx, id, why);
            }
            let why = match (same_client, join.proven) {
                (true, _) => "same_token",
                (false, true) => "ticket",
                (false, false) => "stale",
            };
            replace_socket(&mut self.fx, holder);
            closed.push(holder.socket);
            self.fx.count(Counter::Takeover, 1);
            self.fx.log(
                LogEvent::new(Level::Info, "takeover")
                    .peer(id)
                    .field("why", why),
            );
        }

        let mut live: Vec<&PeerView<S>> = self
            .live()
            .filter(|p| !closed.contains(&p.socket))
            .collect();
        if let Some((capacity, full)) = self.m.placement.capacity(self.limits) {
            // Stale peers holding seats are retired lazily, only when needed.
            if live.len() >= capacity {
                let (now, limits) = (self.now, self.limits);
                for stale in live.iter().filter(|p| p.is_stale(now, limits)) {
                    self.retire(stale, LeaveCause::Timeout, None);
                    closed.push(stale.socket);
                }
                live.retain(|p| !closed.contains(&p.socket));
            }
            if live.len() >= capacity {
                let refusal = Refusal {
                    frame: frame::render_error(&full),
                    code: CLOSE_POLICY,
                    reason: full,
                    counted: RefuseReason::RoomFull,
                    level: Level::Info,
                    logged: ("room_full", None),
                };
                refuse(&mut self.fx, id, refusal);
                return self.plan_alarm(oldest_seen(live.into_iter()));
            }
        }

        // Welcome: OPEN first, then whatever waited for this id, in order.
        self.fx.op(SocketOp::Accept {
            state: PeerState {
                id: join.id.clone(),
                proven: join.proven,
                joined_ms: self.now,
                seen_ms: self.now,
                closing: false,
                holder: join.holder.clone(),
            },
        });
        self.fx.op(SocketOp::Send {
            to: Recipient::Joiner,
            text: frame::OPEN.to_owned(),
        });
        self.fx.count(Counter::ConnectionAccepted, 1);
        self.fx.log(
            LogEvent::new(Level::Info, "open")
                .peer(id)
                .field("proven", join.proven)
                .field("peers", live.len() + 1),
        );
        // Back within the grace period: no LEAVE for this id.
        if self.rec.leaves.iter().any(|l| l.id == id) {
            self.rec.leaves.retain(|l| l.id != id);
        }
        if self.rec.queue.iter().any(|q| q.dst == id) {
            let (waiting, kept) = std::mem::take(&mut self.rec.queue)
                .into_iter()
                .partition::<Vec<Queued>, _>(|q| q.dst == id);
            self.rec.queue = kept;
            for q in &waiting {
                self.remember(id, &q.src);
            }
            let keys: Vec<String> = waiting.iter().map(Queued::key).collect();
            self.fx.deletes.extend(keys.iter().cloned());
            self.fx.log(
                LogEvent::new(Level::Debug, "deliver_queued")
                    .peer(id)
                    .field("count", keys.len()),
            );
            self.fx.op(SocketOp::Deliver {
                to: Recipient::Joiner,
                keys,
            });
        }
        // The joiner is seen now.
        let oldest = oldest_seen(live.into_iter()).map_or(self.now, |o| o.min(self.now));
        self.plan_alarm(Some(oldest));
    }

    /// A frame arrived on `from`: relayed to a live peer here, queued for an
    /// absent id that lives here, or forwarded to the object of an id that
    /// lives elsewhere. Judges no staleness, so it never reads
    /// `heartbeat_ms`: the host may leave it `None` and skip a runtime call
    /// per socket per frame.
    fn frame(&mut self, from: S, bytes: &[u8]) {
        let limits = self.limits;
        let flood = &mut *self.flood;
        let (sender, kind, dst, payload) = match admit_frame(
            &mut self.fx,
            limits,
            self.peers,
            from,
            bytes,
            flood,
            self.now,
        ) {
            Admitted::Relay {
                sender,
                kind,
                dst,
                payload,
            } => (sender, kind, dst, payload),
            Admitted::Kick { sender, why } => return self.kick(sender, why),
            Admitted::Done => return,
        };
        let id = sender.state.id.as_str();
        let placement = self.m.placement;
        if placement.bounds_destinations() && dst.as_ref() != id {
            let limit = self.limits.max_new_destinations_per_minute;
            if !self.flood.may_reach(id, &dst, limit, self.now) {
                let (flood, reason) = (&mut *self.flood, DropReason::RateLimited);
                judge_drop(&mut self.fx, flood, id, reason, bytes.len(), self.now);
                return self.kick(sender, Some(KickFor::Destinations));
            }
        }
        let text = frame::render_relay(kind, id, &dst, payload);
        if !placement.lives_here(&dst) {
            if kind.is_queueable() {
                self.remember(id, &dst);
                self.plan_alarm(oldest_attached_seen(self.live()));
            }
            let parcel = Parcel {
                src: id.to_owned(),
                dst: dst.into_owned(),
                kind,
                text,
                notice: false,
            };
            let to = placement.object_of(&parcel.dst).to_owned();
            self.fx.forwards.push(Forward { to, parcel });
            return;
        }
        if let Some(target) = self.live_holder(&dst) {
            self.fx.op(SocketOp::Send {
                to: Recipient::Peer(target.socket),
                text,
            });
            self.fx.count(Counter::Relayed(kind), 1);
            if kind.is_queueable() {
                self.remember(id, &dst);
                self.remember(&dst, id);
            }
            return;
        }
        if kind.is_queueable() {
            self.remember(id, &dst);
        }
        self.queue(id, &dst, kind, text, bytes.len());
    }

    /// A message for `dst`, an absent id that lives here: it waits, within
    /// the placement's bounds (answers `true`), or is dropped and judged; a
    /// queueable one dropped for a full queue is answered with EXPIRE, as
    /// if it had waited and expired, so no sender waits for it in vain.
    fn queue(
        &mut self,
        src: &str,
        dst: &str,
        kind: RelayKind,
        text: String,
        judged_bytes: usize,
    ) -> bool {
        if !kind.is_queueable() {
            self.drop_relay(src, dst, DropReason::OfflineNotQueued, judged_bytes);
            return false;
        }
        if !self
            .m
            .placement
            .may_queue(self.limits, &self.rec, src, text.len())
        {
            self.drop_relay(src, dst, DropReason::QueueFull, judged_bytes);
            self.expire_back(src, dst);
            return false;
        }
        let queued = Queued {
            seq: self.rec.next_seq,
            src: src.to_owned(),
            dst: dst.to_owned(),
            bytes: text.len(),
            queued_ms: self.now,
        };
        self.rec.next_seq += 1;
        self.fx.puts.push((queued.key(), text));
        self.fx.count(Counter::Queued, 1);
        self.fx.log(
            LogEvent::new(Level::Debug, "queue")
                .peer(src)
                .field("dst", dst)
                .field("type", kind.as_str()),
        );
        self.rec.queue.push(queued);
        self.plan_alarm(oldest_attached_seen(self.live()));
        true
    }

    /// Drops a relay from `src` to `dst`: a sender here is judged for it
    /// (its drops logged once per window); one from another object is only
    /// counted and logged at debug here, and its own object logs it
    /// ([`Input::DroppedAway`]).
    fn drop_relay(&mut self, src: &str, dst: &str, reason: DropReason, bytes: usize) {
        if self.m.placement.lives_here(src) {
            let flood = &mut *self.flood;
            judge_drop(&mut self.fx, flood, src, reason, bytes, self.now);
            return;
        }
        self.fx.count(Counter::Dropped(reason), 1);
        self.fx.log(
            LogEvent::new(Level::Debug, "drop")
                .peer(src)
                .field("dst", dst)
                .field("reason", reason.label())
                .field("bytes", bytes),
        );
        if !self.dropped_from.iter().any(|s| s == src) {
            self.dropped_from.push(src.to_owned());
        }
    }

    /// The object `to` dropped relays from `senders`: one warn line per
    /// sender per window, as for a drop here.
    fn dropped_away(&mut self, to: &str, senders: Vec<String>) {
        for src in senders {
            let level = match self.flood.note_drop(&src, DropKind::Blameless, self.now) {
                DropVerdict::Quiet => Level::Debug,
                _ => Level::Warn,
            };
            self.fx.log(
                LogEvent::new(level, "drop")
                    .peer(&src)
                    .field("reason", "dropped_by_destination")
                    .field("dst", to),
            );
        }
    }

    /// Tells `src` that its message to `dst` is lost (`EXPIRE` from `dst`),
    /// once per pair in a while ([`PeerFloodGuard::first_expire`]).
    fn expire_back(&mut self, src: &str, dst: &str) {
        if !self.flood.first_expire(src, dst, self.now) {
            return;
        }
        let live: Vec<&PeerView<S>> = self.live().collect();
        let text = frame::render_expire(dst, src);
        self.notify(dst, src, RelayKind::Expire, text, &live);
        self.fx.log(
            LogEvent::new(Level::Debug, "expire")
                .peer(src)
                .field("dst", dst)
                .field("cause", "dropped"),
        );
    }

    /// Parcels of this object's that never reached their object: counted,
    /// and each queueable one's sender told EXPIRE.
    fn undelivered(&mut self, parcels: Vec<Parcel>, reason: DropReason) {
        for parcel in parcels {
            if parcel.notice {
                self.fx.count(Counter::Dropped(DropReason::NoticeLost), 1);
                continue;
            }
            self.fx.count(Counter::Dropped(reason), 1);
            if parcel.kind.is_queueable() {
                self.expire_back(&parcel.src, &parcel.dst);
            }
        }
    }

    /// A frame of `len` bytes, over the limit and so never copied: dropped
    /// and judged like an oversized frame that was copied, without the copy.
    fn too_large(&mut self, from: S, len: usize) {
        let flood = &mut *self.flood;
        let judged = judge_too_large(&mut self.fx, self.peers, from, len, flood, self.now);
        if let Some((sender, why)) = judged {
            self.kick(sender, Some(why));
        }
    }

    /// Closes a peer for flooding (`why` `None`: already told) or for what
    /// it kept sending ([`judge_drop`]'s verdict, told here with an ERROR
    /// that says why); its LEAVE follows the grace.
    fn kick(&mut self, sender: &PeerView<S>, why: Option<KickFor>) {
        let ending = why.map(|why| {
            self.flood.forget(&sender.state.id);
            kick_notice(
                &mut self.fx,
                sender.socket,
                &sender.state.id,
                why,
                self.limits,
            )
        });
        self.retire(sender, LeaveCause::Kicked, ending);
        let others = self.live().filter(|p| p.socket != sender.socket);
        self.plan_alarm(oldest_attached_seen(others));
    }

    /// Closes a live peer for `cause` and schedules its LEAVE.
    fn retire(&mut self, peer: &PeerView<S>, cause: LeaveCause, ending: Option<(u16, &str)>) {
        let leave = retire_peer(&mut self.fx, self.limits, peer, cause, ending, self.now);
        self.rec.leaves.retain(|l| l.id != leave.id);
        self.rec.leaves.push(leave);
    }

    /// A socket closed or errored. A socket the server already closed
    /// (takeover, timeout, kick, refusal) was accounted for then; a live one
    /// starts its id's grace, unless the id is back on another socket. Like
    /// a frame, it never reads `heartbeat_ms`.
    fn closed(&mut self, socket: S) {
        let Some(gone) = self.peers.iter().find(|p| p.socket == socket) else {
            return;
        };
        let others: Vec<&PeerView<S>> = self.live().filter(|p| p.socket != socket).collect();
        if gone.is_live() {
            let id = gone.state.id.as_str();
            self.fx.log(LogEvent::new(Level::Info, "close").peer(id));
            if !others.iter().any(|p| p.state.id == id) {
                self.flood.forget(id);
                self.rec.leaves.retain(|l| l.id != id);
                self.rec.leaves.push(PendingLeave {
                    id: id.to_owned(),
                    due_ms: self.now + self.limits.leave_grace_ms,
                    cause: LeaveCause::Closed,
                    proven: gone.state.proven,
                });
            }
        }
        self.plan_alarm(oldest_attached_seen(others.into_iter()));
    }

    /// Parcels from another object, each for an id that lives here: onto
    /// its live socket, or into the queue (within the placement's bounds),
    /// or dropped. A delivery never forwards anything, so no frame travels
    /// twice and no loop is possible.
    fn deliver(&mut self, parcels: Vec<Parcel>) {
        let mut report = DeliveryReport::default();
        for parcel in parcels {
            let (src, dst) = (parcel.src.as_str(), parcel.dst.as_str());
            if !self.m.placement.lives_here(dst) {
                self.fx.count(Counter::Dropped(DropReason::Unreachable), 1);
                self.fx.log(
                    LogEvent::new(Level::Warn, "drop")
                        .peer(src)
                        .field("reason", "misrouted")
                        .field("dst", dst),
                );
                report.dropped += 1;
                continue;
            }
            if let Some(holder) = self.live_holder(dst) {
                self.fx.op(SocketOp::Send {
                    to: Recipient::Peer(holder.socket),
                    text: parcel.text.clone(),
                });
                if !parcel.notice {
                    self.fx.count(Counter::Relayed(parcel.kind), 1);
                    if parcel.kind.is_queueable() {
                        self.remember(dst, src);
                    }
                } else if parcel.kind == RelayKind::Leave {
                    self.forget(dst, src);
                }
                report.sent += 1;
                continue;
            }
            if parcel.notice {
                report.dropped += 1; // news for an id that is gone: nobody to tell
                continue;
            }
            let len = parcel.text.len();
            if self.queue(src, dst, parcel.kind, parcel.text, len) {
                report.queued += 1;
            } else {
                report.dropped += 1;
            }
        }
        self.plan_alarm(oldest_attached_seen(self.live()));
        report.dropped_from = std::mem::take(&mut self.dropped_from);
        self.fx.answer = Some(Answer::Delivered(report));
    }

    /// The alarm fired: the runtime cleared it; each due timer is handled
    /// in [`Timer::ALL`]'s order, each judged after the ones before (a
    /// sweep's timeout LEAVE is due at once), then the alarm is planned again.
    fn alarm(&mut self) {
        self.rec.alarm_fired();
        let mut retired: Vec<S> = Vec::new();
        for timer in Timer::ALL {
            let due = TimerTable::of(&self.rec, self.limits).get(timer);
            if due.is_none_or(|at| at > self.now) {
                continue;
            }
            match timer {
                Timer::Unblock => {
                    let now = self.now;
                    self.rec.blocks.retain(|b| b.until_ms > now);
                }
                Timer::Sweep => {
                    self.rec.sweep_due_ms = None;
                    let stale: Vec<&PeerView<S>> = self
                        .live()
                        .filter(|p| p.is_stale(self.now, self.limits))
                        .collect();
                    for peer in stale {
                        self.retire(peer, LeaveCause::Timeout, None);
                        retired.push(peer.socket);
                    }
                }
                Timer::Leave => self.announce_leaves(&retired),
                Timer::Expire => self.expire(&retired),
            }
        }
        self.forget_unowned_correspondents(&retired);
        let live = self.live().filter(|p| !retired.contains(&p.socket));
        self.plan_alarm(oldest_seen(live));
    }

    /// Announces the LEAVEs that are due, of ids not back since: to
    /// everyone here in a room, to the leaver's recent correspondents in the
    /// open namespace (here, or through their objects).
    fn announce_leaves(&mut self, retired: &[S]) {
        let now = self.now;
        let (due, later): (Vec<PendingLeave>, Vec<PendingLeave>) =
            std::mem::take(&mut self.rec.leaves)
                .into_iter()
                .partition(|l| l.due_ms <= now);
        self.rec.leaves = later;
        let live: Vec<&PeerView<S>> = self
            .live()
            .filter(|p| !retired.contains(&p.socket))
            .collect();
        for leave in due {
            if live.iter().any(|p| p.state.id == leave.id) {
                continue; // came back
            }
            let told = if self.m.placement.keeps_correspondents() {
                self.tell_correspondents(&leave.id, &live)
            } else {
                for p in &live {
                    self.fx.op(SocketOp::Send {
                        to: Recipient::Peer(p.socket),
                        text: frame::render_leave(&leave.id, &p.state.id),
                    });
                }
                live.len()
            };
            self.fx.count(Counter::Leave(leave.cause), 1);
            self.fx.log(
                LogEvent::new(Level::Info, "leave")
                    .peer(&leave.id)
                    .field("cause", leave.cause.label())
                    .field("told", told),
            );
        }
    }

    /// Sends `gone`'s LEAVE to its recent correspondents and forgets them;
    /// answers how many were told.
    fn tell_correspondents(&mut self, gone: &str, live: &[&PeerView<S>]) -> usize {
        let home = self.m.placement.home();
        let now = self.now;
        if !self.rec.correspondents.iter().any(|c| c.is_of(gone, home)) {
            return 0;
        }
        let (theirs, kept): (Vec<Correspondent>, Vec<Correspondent>) =
            std::mem::take(&mut self.rec.correspondents)
                .into_iter()
                .partition(|c| c.is_of(gone, home));
        self.rec.correspondents = kept;
        let fresh = theirs
            .into_iter()
            .filter(|c| now.saturating_sub(c.seen_ms) < CORRESPONDENT_TTL_MS);
        let mut told = 0;
        for c in fresh {
            told += 1;
            let text = frame::render_leave(gone, &c.id);
            self.notify(gone, &c.id, RelayKind::Leave, text, live);
        }
        told
    }

    /// A notice from `src` for `dst`: onto `dst`'s socket if it lives here
    /// and is live, else to its object if it lives elsewhere.
    fn notify(
        &mut self,
        src: &str,
        dst: &str,
        kind: RelayKind,
        text: String,
        live: &[&PeerView<S>],
    ) {
        let placement = self.m.placement;
        if placement.lives_here(dst) {
            if let Some(p) = live.iter().find(|p| p.state.id == dst) {
                self.fx.op(SocketOp::Send {
                    to: Recipient::Peer(p.socket),
                    text,
                });
            }
            return;
        }
        let parcel = Parcel {
            src: src.to_owned(),
            dst: dst.to_owned(),
            kind,
            text,
            notice: true,
        };
        let to = placement.object_of(dst).to_owned();
        self.fx.forwards.push(Forward { to, parcel });
    }

    /// EXPIRE: once a (sender, destination) pair has an expired message, the
    /// whole pair goes, and the sender is told once.
    fn expire(&mut self, retired: &[S]) {
        let (now, expire) = (self.now, self.limits.expire_timeout_ms);
        let mut pairs: Vec<(String, String)> = self
            .rec
            .queue
            .iter()
            .filter(|q| q.queued_ms + expire <= now)
            .map(|q| (q.src.clone(), q.dst.clone()))
            .collect();
        pairs.sort();
        pairs.dedup();
        let (gone, kept): (Vec<Queued>, Vec<Queued>) = std::mem::take(&mut self.rec.queue)
            .into_iter()
            .partition(|q| pairs.contains(&(q.src.clone(), q.dst.clone())));
        self.rec.queue = kept;
        let live: Vec<&PeerView<S>> = self
            .live()
            .filter(|p| !retired.contains(&p.socket))
            .collect();
        for (src, dst) in &pairs {
            let text = frame::render_expire(dst, src);
            self.notify(dst, src, RelayKind::Expire, text, &live);
            self.fx.log(
                LogEvent::new(Level::Info, "expire")
                    .peer(src)
                    .field("dst", dst.as_str()),
            );
        }
        self.fx.count(Counter::Expired, gone.len() as u64);
        self.fx.deletes.extend(gone.iter().map(Queued::key));
    }

    /// Notes that `of` (an id here) exchanged signaling with `id`; writes the
    /// record only for a new correspondent or a refresh that is due.
    fn remember(&mut self, of: &str, id: &str) {
        if !self.m.placement.keeps_correspondents() || id == of {
            return;
        }
        let (home, now) = (self.m.placement.home(), self.now);
        let known = self
            .rec
            .correspondents
            .iter()
            .position(|c| c.is_of(of, home) && c.id == id);
        if let Some(i) = known {
            if now.saturating_sub(self.rec.correspondents[i].seen_ms) >= CORRESPONDENT_REFRESH_MS {
                self.rec.correspondents[i].seen_ms = now;
            }
            return;
        }
        let fresh = |c: &Correspondent| now.saturating_sub(c.seen_ms) < CORRESPONDENT_TTL_MS;
        if !self.rec.correspondents.iter().all(fresh) {
            self.rec.correspondents.retain(fresh);
        }
        let theirs = self.rec.correspondents.iter().filter(|c| c.is_of(of, home));
        if theirs.count() >= MAX_CORRESPONDENTS {
            // The least recently seen makes room.
            let oldest = self
                .rec
                .correspondents
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_of(of, home))
                .min_by_key(|(_, c)| c.seen_ms)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.rec.correspondents.remove(i);
            }
        }
        self.rec.correspondents.push(Correspondent {
            of: of.to_owned(),
            id: id.to_owned(),
            seen_ms: now,
        });
    }

    /// `id` is gone (its object told `of`): no LEAVE of `of`'s is owed to it.
    fn forget(&mut self, of: &str, id: &str) {
        let home = self.m.placement.home();
        let theirs = |c: &Correspondent| c.is_of(of, home) && c.id == id;
        if self.rec.correspondents.iter().any(theirs) {
            self.rec.correspondents.retain(|c| !theirs(c));
        }
    }

    /// Correspondents of an id that is neither live here nor owed a LEAVE
    /// are worth nothing: nobody will be told.
    fn forget_unowned_correspondents(&mut self, retired: &[S]) {
        let home = self.m.placement.home();
        let live: Vec<&str> = self
            .live()
            .filter(|p| !retired.contains(&p.socket))
            .map(|p| p.state.id.as_str())
            .collect();
        let owned = |c: &Correspondent, leaves: &[PendingLeave]| {
            live.iter().any(|id| c.is_of(id, home)) || leaves.iter().any(|l| c.is_of(&l.id, home))
        };
        let leaves = self.rec.leaves.clone();
        if !self.rec.correspondents.iter().all(|c| owned(c, &leaves)) {
            self.rec.correspondents.retain(|c| owned(c, &leaves));
        }
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
