//! The `GameRoom` state machine: who is in a room, what they may send, and
//! what the room owes them (queued messages, LEAVE, EXPIRE).
//!
//! Sans-IO. The Durable Object (or the test double in `tests/`) calls one
//! handler per Cloudflare event with:
//! - `peers`: a view of the room's sockets, built from their tags and
//!   attachments ([`PeerState`]) plus the runtime's auto-response timestamp;
//! - `meta`: the room's durable record ([`RoomMeta`]), which the caller loads
//!   from storage and writes back when the handler changed it;
//! - `now` in milliseconds.
//!
//! Each handler returns a [`Step`]: the socket operations to carry out in
//! order and what durable state changed (see `step.rs`). Nothing that
//! matters lives in memory between calls, so the object can be evicted at
//! any moment; only the flood guard is in-memory, and losing it is harmless.

use crate::flood::{Admit, DropKind, DropVerdict, KickFor, PeerFloodGuard};
use crate::frame::{self, ClientFrame, DropReason};
use crate::log::{Level, LogEvent};
use crate::metrics::{Counter, LeaveCause, RefuseReason};
use crate::step::{SocketOp, Step};
use serde::{Deserialize, Serialize};

/// Close code for a refused join (room full, id taken) and a flooding peer.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code for a socket replaced by a newer connection with the same id.
pub const CLOSE_REPLACED: u16 = 4001;
/// Close code for a peer that stopped heartbeating.
pub const CLOSE_TIMEOUT: u16 = 4002;
/// Close code for "try again later" (RFC 6455 1013).
pub const CLOSE_TRY_AGAIN: u16 = 1013;
/// Close code for a peer a moderator removed (and for its refused rejoin
/// while the removal blocks its id).
pub const CLOSE_REMOVED: u16 = 4003;
/// Close code for every peer of a room a moderator closed.
pub const CLOSE_ROOM_CLOSED: u16 = 4004;

/// Sockets of one id the server closed but whose clients have not
/// completed the close: the runtime keeps listing them (and every join,
/// close and alarm rereads the list) until they do. A client that ignores
/// close frames and keeps taking its id over would grow the list without
/// bound; past this many, its joins are refused until some complete.
pub const MAX_CLOSING_PER_ID: usize = 8;
/// The same bound for the whole room.
pub const MAX_CLOSING_PER_ROOM: usize = 32;

/// The refusal for a join while too many server-closed sockets linger
/// (see [`MAX_CLOSING_PER_ID`]), or `None`.
pub(crate) fn too_many_closing<S>(peers: &[PeerView<S>], id: &str) -> Option<&'static str> {
    let closing = peers.iter().filter(|p| p.state.closing);
    let (of_id, all) = closing.fold((0, 0), |(of_id, all), p| {
        (of_id + usize::from(p.state.id == id), all + 1)
    });
    if of_id >= MAX_CLOSING_PER_ID {
        Some("Too many connections for this id are still closing; retry later")
    } else if all >= MAX_CLOSING_PER_ROOM {
        Some("Too many connections are still closing; retry later")
    } else {
        None
    }
}

/// Refuses a join with a reason and `CLOSE_TRY_AGAIN`.
pub(crate) fn refuse_try_again<S>(fx: &mut Step<S>, id: &str, msg: &str) {
    fx.op(SocketOp::Refuse {
        frame: frame::render_error(msg),
        code: CLOSE_TRY_AGAIN,
        reason: msg.to_owned(),
    });
    fx.count(Counter::ConnectionRefused(RefuseReason::RateLimited), 1);
    fx.log(
        LogEvent::new(Level::Warn, "refuse")
            .peer(id)
            .field("reason", "closing_backlog"),
    );
}

/// The code the server echoes to finish a client-initiated close
/// handshake: the client's own, unless it is one that may not be sent
/// (1005 "no code", 1006 "abnormal", or outside 1000-4999), then 1000.
pub fn echo_close_code(client_code: Option<usize>) -> u16 {
    match client_code {
        Some(c) if (1000..=4999).contains(&c) && c != 1005 && c != 1006 => c as u16,
        _ => 1000,
    }
}

/// The room's knobs; their defaults are declared in `settings.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    pub max_peers: usize,
    pub max_message_bytes: usize,
    pub expire_timeout_ms: u64,
    pub leave_grace_ms: u64,
    pub alive_timeout_ms: u64,
    pub sweep_interval_ms: u64,
    pub max_queued_messages: usize,
    pub max_queued_bytes: usize,
    /// Open namespace: how many of one destination's queued messages one
    /// sender may hold, so one sender cannot fill another peer's inbox.
    pub max_queued_per_sender: usize,
    pub peer_msgs_per_sec: u32,
}

impl Default for RoomConfig {
    fn default() -> Self {
        use crate::settings as declared;
        RoomConfig {
            max_peers: declared::MAX_PEERS_PER_ROOM.number_default() as usize,
            max_message_bytes: declared::MAX_MESSAGE_BYTES.number_default() as usize,
            expire_timeout_ms: declared::EXPIRE_TIMEOUT_MS.number_default(),
            leave_grace_ms: declared::LEAVE_GRACE_MS.number_default(),
            alive_timeout_ms: declared::ALIVE_TIMEOUT_MS.number_default(),
            sweep_interval_ms: declared::LIVENESS_SWEEP_MS.number_default(),
            max_queued_messages: declared::MAX_QUEUED_MESSAGES.number_default() as usize,
            max_queued_bytes: declared::MAX_QUEUED_BYTES.number_default() as usize,
            max_queued_per_sender: declared::MAX_QUEUED_PER_SENDER.number_default() as usize,
            peer_msgs_per_sec: declared::PEER_MSGS_PER_SEC.number_default() as u32,
        }
    }
}

impl RoomConfig {
    /// When to sweep next, given the earliest last sign of life among the
    /// live peers: the latest moment that still finds a peer that falls
    /// silent right after it within `alive_timeout_ms + sweep_interval_ms`
    /// of its last sign of life. Peers that heartbeat (every 5 s) keep the
    /// sweeps about `alive + sweep - 5 s` apart, never less than a second.
    pub fn next_sweep_ms(&self, oldest_seen_ms: u64, now_ms: u64) -> u64 {
        (oldest_seen_ms + self.alive_timeout_ms + self.sweep_interval_ms).max(now_ms + 1_000)
    }
}

impl RoomConfig {
    /// Rooms namespace: the offline queue is shared fairly. One sender may
    /// hold at most `1 / max_peers` of its messages and of its bytes
    /// (rounded up), so a member that fills its share, however fast, leaves
    /// every other member's share untouched.
    pub fn within_sender_share(&self, queue: &[Queued], sender: &str, bytes: usize) -> bool {
        let peers = self.max_peers.max(1);
        let (held, held_bytes) = queue
            .iter()
            .filter(|q| q.src == sender)
            .fold((0, 0), |(n, b), q| (n + 1, b + q.bytes));
        held < self.max_queued_messages.div_ceil(peers)
            && held_bytes + bytes <= self.max_queued_bytes.div_ceil(peers)
    }

    /// Keeps `sweep_due` in step with the live peers (`oldest_seen`, `None`
    /// when there are none): cleared when nobody is left, planned by
    /// [`RoomConfig::next_sweep_ms`] when someone is and none is due.
    /// Answers whether it changed.
    pub(crate) fn plan_sweep(
        &self,
        sweep_due: &mut Option<u64>,
        oldest_seen: Option<u64>,
        now_ms: u64,
    ) -> bool {
        match (oldest_seen, *sweep_due) {
            (None, due) => {
                *sweep_due = None;
                due.is_some()
            }
            (Some(seen), None) => {
                *sweep_due = Some(self.next_sweep_ms(seen, now_ms));
                true
            }
            (Some(_), Some(_)) => false,
        }
    }
}

/// The earliest last sign of life among `peers` (`None` when there are
/// none), heartbeat timestamps included: for the rules that read them.
pub(crate) fn oldest_seen<'a, S: 'a>(peers: impl Iterator<Item = &'a PeerView<S>>) -> Option<u64> {
    peers.map(PeerView::last_seen_ms).min()
}

/// The same from the attachments alone, for frames and closes, which never
/// read heartbeat timestamps (the adapter does not fetch them there). It is
/// never later than [`oldest_seen`], so a sweep planned from it only comes
/// early.
pub(crate) fn oldest_attached_seen<'a, S: 'a>(
    peers: impl Iterator<Item = &'a PeerView<S>>,
) -> Option<u64> {
    peers.map(|p| p.state.seen_ms.max(p.state.joined_ms)).min()
}

/// Per-socket facts, kept as the socket's attachment so they survive hibernation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerState {
    pub id: String,
    /// The router verified a ticket whose `sub` is this id.
    pub proven: bool,
    pub joined_ms: u64,
    /// Last frame the object saw from this socket (refreshed at most once a second).
    pub seen_ms: u64,
    /// The server has closed (or refused) this socket; it no longer counts.
    pub closing: bool,
    /// Open namespace only: the digest of the client's own token, which
    /// lets the same client replace its socket (see `open.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_digest: Option<String>,
}

/// One socket as the core sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView<S> {
    pub socket: S,
    pub state: PeerState,
    /// When the runtime last auto-responded to this socket's HEARTBEAT.
    pub heartbeat_ms: Option<u64>,
}

impl<S> PeerView<S> {
    pub(crate) fn last_seen_ms(&self) -> u64 {
        self.state
            .seen_ms
            .max(self.heartbeat_ms.unwrap_or(0))
            .max(self.state.joined_ms)
    }

    pub(crate) fn is_stale(&self, now_ms: u64, cfg: &RoomConfig) -> bool {
        now_ms.saturating_sub(self.last_seen_ms()) >= cfg.alive_timeout_ms
    }

    pub(crate) fn is_live(&self) -> bool {
        !self.state.closing
    }
}

/// A message waiting in storage for its destination to join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub seq: u64,
    pub src: String,
    pub dst: String,
    pub bytes: usize,
    pub queued_ms: u64,
}

impl Queued {
    /// Storage key of the rendered frame; zero-padded so keys sort by `seq`.
    pub fn key(&self) -> String {
        queued_key(self.seq)
    }
}

/// Storage key of a queued frame.
pub fn queued_key(seq: u64) -> String {
    format!("q/{seq:020}")
}

/// A peer whose socket closed; LEAVE goes out at `due_ms` unless it is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLeave {
    pub id: String,
    pub due_ms: u64,
    pub cause: Cause,
    /// The id was proven: only a proven join may claim it during the grace.
    #[serde(default)]
    pub proven: bool,
}

/// May a join replace a holder of its id (a live socket, or one in its
/// leave grace)? A proof of the id always may; without one, never a proven
/// holder (stale or not: a stalled network must not hand the id, and the
/// SDP queued for it, to whoever asks), and an unproven one only when it is
/// the same client or has gone stale.
pub(crate) fn may_replace(
    holder_proven: bool,
    join_proven: bool,
    same_client_or_stale: bool,
) -> bool {
    join_proven || (!holder_proven && same_client_or_stale)
}

/// A proven id's leave grace is pending: an unproven join must wait it out.
pub(crate) fn claims_proven_grace(leaves: &[PendingLeave], id: &str, join_proven: bool) -> bool {
    !join_proven && leaves.iter().any(|l| l.id == id && l.proven)
}

/// Serializable mirror of [`LeaveCause`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cause {
    Closed,
    Timeout,
    Kicked,
    Removed,
}

impl From<Cause> for LeaveCause {
    fn from(c: Cause) -> Self {
        match c {
            Cause::Closed => LeaveCause::Closed,
            Cause::Timeout => LeaveCause::Timeout,
            Cause::Kicked => LeaveCause::Kicked,
            Cause::Removed => LeaveCause::Removed,
        }
    }
}

/// The room's durable record (one storage key). Empty means "nothing to
/// remember": the caller then deletes the key, so an empty room leaves no
/// storage behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMeta {
    pub next_seq: u64,
    pub queue: Vec<Queued>,
    pub leaves: Vec<PendingLeave>,
    /// When the next liveness sweep is due (only while sockets exist).
    pub sweep_due_ms: Option<u64>,
    /// The alarm currently set, as far as this record knows.
    pub alarm_ms: Option<u64>,
    /// Ids a moderator removed and blocked from rejoining, until when
    /// (see `moderation.rs`). Absent from records written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
}

/// An id that may not join the room before `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub id: String,
    /// The ticket the removed peer joined with (see [`JoinRequest::ticket`]):
    /// another id with the same ticket is refused too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    pub until_ms: u64,
}

impl RoomMeta {
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
            && self.leaves.is_empty()
            && self.blocks.is_empty()
            && self.sweep_due_ms.is_none()
            && self.alarm_ms.is_none()
    }

    pub fn queued_bytes(&self) -> usize {
        self.queue.iter().map(|q| q.bytes).sum()
    }
}

/// Who a frame goes to: an existing socket, or the one being joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<S> {
    Peer(S),
    Joiner,
}

/// A join request, already authenticated by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub id: String,
    /// A ticket with `sub == id` proved the identity.
    pub proven: bool,
    /// Which ticket admitted this peer ([`crate::ticket::RoomGrant::holder`]):
    /// a block covers it as well as the id. `None` without signed tickets.
    pub ticket: Option<String>,
}

/// The room rules, parameterised by configuration.
pub struct Room<'c> {
    pub cfg: &'c RoomConfig,
}

impl<'c> Room<'c> {
    pub fn new(cfg: &'c RoomConfig) -> Self {
        Room { cfg }
    }

    /// A new socket wants to join as `request.id`.
    pub fn join<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        request: JoinRequest,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        let mut closed: Vec<S> = Vec::new();

        // 1. The id: taken, or taken over.
        if let Some(msg) = too_many_closing(peers, &request.id) {
            refuse_try_again(&mut fx, &request.id, msg);
            return fx;
        }
        if let Some(until_ms) =
            crate::moderation::blocked_until(meta, &request.id, request.ticket.as_deref(), now_ms)
        {
            crate::moderation::refuse_blocked(&mut fx, &request.id, until_ms, now_ms);
            return fx;
        }
        if claims_proven_grace(&meta.leaves, &request.id, request.proven) {
            refuse_id_taken(&mut fx, &request.id, "proven_in_grace");
            return fx;
        }
        for holder in peers
            .iter()
            .filter(|p| p.is_live() && p.state.id == request.id)
        {
            let stale = holder.is_stale(now_ms, self.cfg);
            if !may_replace(holder.state.proven, request.proven, stale) {
                let why = if holder.state.proven {
                    "proven_holder"
                } else {
                    "id_taken"
                };
                refuse_id_taken(&mut fx, &request.id, why);
                return fx;
            }
            let why = if request.proven { "ticket" } else { "stale" };
            replace_socket(&mut fx, holder);
            closed.push(holder.socket);
            fx.count(Counter::Takeover, 1);
            fx.log(
                LogEvent::new(Level::Info, "takeover")
                    .peer(&request.id)
                    .field("why", why),
            );
        }

        // 2. Capacity, after lazily retiring stale peers that hold seats.
        let mut live: Vec<&PeerView<S>> = peers
            .iter()
            .filter(|p| p.is_live() && !closed.contains(&p.socket))
            .collect();
        if live.len() >= self.cfg.max_peers {
            for stale in live.iter().filter(|p| p.is_stale(now_ms, self.cfg)) {
                self.retire(&mut fx, meta, stale, Cause::Timeout, None, now_ms);
                closed.push(stale.socket);
            }
            live.retain(|p| !closed.contains(&p.socket));
        }
        if live.len() >= self.cfg.max_peers {
            let msg = format!("Room is full ({} peers)", self.cfg.max_peers);
            fx.op(SocketOp::Refuse {
                frame: frame::render_error(&msg),
                code: CLOSE_POLICY,
                reason: msg,
            });
            fx.count(Counter::ConnectionRefused(RefuseReason::RoomFull), 1);
            fx.log(
                LogEvent::new(Level::Info, "refuse")
                    .peer(&request.id)
                    .field("reason", "room_full"),
            );
            self.plan_alarm(&mut fx, meta, oldest_seen(live.iter().copied()), now_ms);
            return fx;
        }

        // 3. Welcome: OPEN first, then whatever waited for this id, in order.
        fx.op(SocketOp::Accept {
            state: PeerState {
                id: request.id.clone(),
                proven: request.proven,
                joined_ms: now_ms,
                seen_ms: now_ms,
                closing: false,
                token_digest: request.ticket.clone(),
            },
        });
        fx.op(SocketOp::Send {
            to: Target::Joiner,
            text: frame::OPEN.to_owned(),
        });
        fx.count(Counter::ConnectionAccepted, 1);
        fx.log(
            LogEvent::new(Level::Info, "open")
                .peer(&request.id)
                .field("proven", request.proven)
                .field("peers", live.len() + 1),
        );
        // Back within the grace period: no LEAVE for this id.
        if meta.leaves.iter().any(|l| l.id == request.id) {
            meta.leaves.retain(|l| l.id != request.id);
            fx.record_changed = true;
        }
        let keys: Vec<String> = meta
            .queue
            .iter()
            .filter(|q| q.dst == request.id)
            .map(Queued::key)
            .collect();
        if !keys.is_empty() {
            meta.queue.retain(|q| q.dst != request.id);
            fx.record_changed = true;
            fx.deletes.extend(keys.iter().cloned());
            fx.log(
                LogEvent::new(Level::Debug, "deliver_queued")
                    .peer(&request.id)
                    .field("count", keys.len()),
            );
            fx.op(SocketOp::Deliver {
                to: Target::Joiner,
                keys,
            });
        }
        // The joiner is seen now.
        let oldest = oldest_seen(live.iter().copied()).map_or(now_ms, |o| o.min(now_ms));
        self.plan_alarm(&mut fx, meta, Some(oldest), now_ms);
        fx
    }

    /// A frame arrived on `from` (text, or binary holding JSON).
    ///
    /// Judges no staleness, so it never reads `heartbeat_ms`: the adapter
    /// may leave it `None` and skip a runtime call per socket per frame.
    pub fn frame<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        from: S,
        bytes: &[u8],
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let sender = match live_sender(peers, from, bytes.len()) {
            Ok(sender) => sender,
            Err(step) => return step,
        };
        let mut fx = Step::default();
        let id = sender.state.id.as_str();
        match flood.admit(id, now_ms) {
            Admit::Pass => {}
            Admit::Drop => {
                drop_frame(&mut fx, id, DropReason::RateLimited, bytes.len());
                return fx;
            }
            Admit::Kick => {
                drop_frame(&mut fx, id, DropReason::RateLimited, bytes.len());
                fx.op(SocketOp::Send {
                    to: Target::Peer(from),
                    text: frame::render_error("Rate limit exceeded"),
                });
                fx.log(LogEvent::new(Level::Warn, "rate_limit").peer(id));
                flood.forget(id);
                self.retire(&mut fx, meta, sender, Cause::Kicked, None, now_ms);
                let others = peers.iter().filter(|p| p.is_live() && p.socket != from);
                self.plan_alarm(&mut fx, meta, oldest_attached_seen(others), now_ms);
                return fx;
            }
        }

        if now_ms.saturating_sub(sender.state.seen_ms) >= 1_000 {
            let mut state = sender.state.clone();
            state.seen_ms = now_ms;
            fx.op(SocketOp::SaveState {
                socket: from,
                state,
            });
        }

        let (kind, dst, payload) =
            match frame::parse_client_frame(bytes, self.cfg.max_message_bytes) {
                Ok(ClientFrame::Heartbeat) => return fx,
                Ok(ClientFrame::Relay { kind, dst, payload }) => (kind, dst, payload),
                Err(reason) => {
                    if let Some(why) = judge_drop(&mut fx, flood, id, reason, bytes.len(), now_ms) {
                        self.kick(&mut fx, meta, peers, sender, why, flood, now_ms);
                    }
                    return fx;
                }
            };

        let text = frame::render_relay(kind, id, &dst, payload);
        if let Some(target) = peers
            .iter()
            .find(|p| p.is_live() && p.state.id == dst.as_ref())
        {
            fx.op(SocketOp::Send {
                to: Target::Peer(target.socket),
                text,
            });
            fx.count(Counter::Relayed(kind), 1);
            return fx;
        }
        if !kind.is_queueable() {
            let reason = DropReason::OfflineNotQueued;
            judge_drop(&mut fx, flood, id, reason, bytes.len(), now_ms);
            return fx;
        }
        if meta.queue.len() >= self.cfg.max_queued_messages
            || meta.queued_bytes() + text.len() > self.cfg.max_queued_bytes
            || !self.cfg.within_sender_share(&meta.queue, id, text.len())
        {
            judge_drop(
                &mut fx,
                flood,
                id,
                DropReason::QueueFull,
                bytes.len(),
                now_ms,
            );
            return fx;
        }
        let queued = Queued {
            seq: meta.next_seq,
            src: id.to_owned(),
            dst: dst.into_owned(),
            bytes: text.len(),
            queued_ms: now_ms,
        };
        meta.next_seq += 1;
        fx.record_changed = true;
        fx.puts.push((queued.key(), text));
        fx.count(Counter::Queued, 1);
        fx.log(
            LogEvent::new(Level::Debug, "queue")
                .peer(id)
                .field("dst", queued.dst.as_str())
                .field("type", kind.as_str()),
        );
        meta.queue.push(queued);
        let live = peers.iter().filter(|p| p.is_live());
        self.plan_alarm(&mut fx, meta, oldest_attached_seen(live), now_ms);
        fx
    }

    /// A frame of `len` bytes arrived on `from` that the adapter did not copy
    /// because it is over `max_message_bytes` already (the runtime accepts
    /// frames of up to 32 MiB): dropped and judged like an oversized frame
    /// that was copied, without the copy.
    pub fn too_large<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        from: S,
        len: usize,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let sender = match live_sender(peers, from, len) {
            Ok(sender) => sender,
            Err(step) => return step,
        };
        let mut fx = Step::default();
        let id = sender.state.id.as_str();
        if let Some(why) = judge_drop(&mut fx, flood, id, DropReason::TooLarge, len, now_ms) {
            self.kick(&mut fx, meta, peers, sender, why, flood, now_ms);
        }
        fx
    }

    /// Closes a peer for what it kept sending ([`judge_drop`]'s verdict),
    /// with an ERROR that says why; the others get LEAVE after the grace.
    #[allow(clippy::too_many_arguments)]
    fn kick<S: Copy + Eq>(
        &self,
        fx: &mut Step<S>,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        sender: &PeerView<S>,
        why: KickFor,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) {
        let (code, reason) = kick_notice(fx, sender.socket, &sender.state.id, why, self.cfg);
        flood.forget(&sender.state.id);
        self.retire(
            fx,
            meta,
            sender,
            Cause::Kicked,
            Some((code, reason)),
            now_ms,
        );
        let others = peers
            .iter()
            .filter(|p| p.is_live() && p.socket != sender.socket);
        self.plan_alarm(fx, meta, oldest_attached_seen(others), now_ms);
    }

    /// A frame from a socket the server already closed (a kicked flooder's
    /// backlog, a replaced socket) is dropped: the step that says so, or
    /// `None` for a live sender. [`Room::frame`] applies it first; an adapter
    /// may apply it before loading anything, so such a backlog costs the
    /// room's other members nothing.
    pub fn from_closed_socket<S>(&self, sender: &PeerState, bytes: usize) -> Option<Step<S>> {
        closed_sender_drop(sender, bytes)
    }

    /// A socket closed or errored. `peers` may or may not still list it.
    /// Like [`Room::frame`], it never reads `heartbeat_ms`.
    pub fn closed<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        gone: &PeerView<S>,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        let others: Vec<&PeerView<S>> = peers
            .iter()
            .filter(|p| p.socket != gone.socket && p.is_live())
            .collect();
        if gone.is_live() {
            fx.log(LogEvent::new(Level::Info, "close").peer(&gone.state.id));
            // A socket the server already closed (takeover, timeout, kick,
            // refusal) was accounted for then; a live one starts the grace.
            let back_already = others.iter().any(|p| p.state.id == gone.state.id);
            if !back_already {
                flood.forget(&gone.state.id);
                fx.record_changed = true;
                meta.leaves.retain(|l| l.id != gone.state.id);
                meta.leaves.push(PendingLeave {
                    id: gone.state.id.clone(),
                    due_ms: now_ms + self.cfg.leave_grace_ms,
                    cause: Cause::Closed,
                    proven: gone.state.proven,
                });
            }
        }
        let others = others.iter().copied();
        self.plan_alarm(&mut fx, meta, oldest_attached_seen(others), now_ms);
        fx
    }

    /// The alarm fired: send due LEAVEs, expire old queued messages, sweep for stale peers.
    pub fn alarm<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        if meta.alarm_ms.take().is_some() {
            // The runtime cleared it by firing.
            fx.record_changed = true;
        }
        let mut retired: Vec<S> = Vec::new();
        if crate::moderation::forget_ended_blocks(meta, now_ms) {
            fx.record_changed = true;
        }

        if meta.sweep_due_ms.is_some_and(|due| due <= now_ms) {
            meta.sweep_due_ms = None;
            fx.record_changed = true;
            for stale in peers
                .iter()
                .filter(|p| p.is_live() && p.is_stale(now_ms, self.cfg))
            {
                self.retire(&mut fx, meta, stale, Cause::Timeout, None, now_ms);
                retired.push(stale.socket);
            }
        }
        let live: Vec<&PeerView<S>> = peers
            .iter()
            .filter(|p| p.is_live() && !retired.contains(&p.socket))
            .collect();

        // LEAVE for peers that did not come back in time.
        let (due, later): (Vec<PendingLeave>, Vec<PendingLeave>) = std::mem::take(&mut meta.leaves)
            .into_iter()
            .partition(|l| l.due_ms <= now_ms);
        if !due.is_empty() {
            fx.record_changed = true;
        }
        meta.leaves = later;
        for leave in due {
            if live.iter().any(|p| p.state.id == leave.id) {
                continue; // came back
            }
            for p in &live {
                fx.op(SocketOp::Send {
                    to: Target::Peer(p.socket),
                    text: frame::render_leave(&leave.id, &p.state.id),
                });
            }
            fx.count(Counter::Leave(leave.cause.into()), 1);
            fx.log(
                LogEvent::new(Level::Info, "leave")
                    .peer(&leave.id)
                    .field("cause", LeaveCause::from(leave.cause).label())
                    .field("told", live.len()),
            );
        }

        // EXPIRE: once a (sender, dst) pair has an expired message, the whole pair goes.
        let expired_pairs: Vec<(String, String)> = {
            let mut pairs: Vec<(String, String)> = meta
                .queue
                .iter()
                .filter(|q| q.queued_ms + self.cfg.expire_timeout_ms <= now_ms)
                .map(|q| (q.src.clone(), q.dst.clone()))
                .collect();
            pairs.sort();
            pairs.dedup();
            pairs
        };
        if !expired_pairs.is_empty() {
            let (gone, kept): (Vec<Queued>, Vec<Queued>) = std::mem::take(&mut meta.queue)
                .into_iter()
                .partition(|q| expired_pairs.contains(&(q.src.clone(), q.dst.clone())));
            meta.queue = kept;
            fx.record_changed = true;
            for (src, dst) in &expired_pairs {
                if let Some(sender) = live.iter().find(|p| &p.state.id == src) {
                    fx.op(SocketOp::Send {
                        to: Target::Peer(sender.socket),
                        text: frame::render_expire(dst, src),
                    });
                }
                fx.log(
                    LogEvent::new(Level::Info, "expire")
                        .peer(src)
                        .field("dst", dst.as_str()),
                );
            }
            fx.count(Counter::Expired, gone.len() as u64);
            fx.deletes.extend(gone.iter().map(Queued::key));
        }

        self.plan_alarm(&mut fx, meta, oldest_seen(live.iter().copied()), now_ms);
        fx
    }

    /// The ids of the live peers, for `GET {mount}{key}/peers`: not closing,
    /// not stale. Sorted, no duplicates.
    pub fn roster<S>(&self, peers: &[PeerView<S>], now_ms: u64) -> Vec<String> {
        let mut ids: Vec<String> = peers
            .iter()
            .filter(|p| p.is_live() && !p.is_stale(now_ms, self.cfg))
            .map(|p| p.state.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Removes a live peer for cause: closes it and schedules its LEAVE.
    pub(crate) fn retire<S: Copy>(
        &self,
        fx: &mut Step<S>,
        meta: &mut RoomMeta,
        peer: &PeerView<S>,
        cause: Cause,
        ending: Option<(u16, &str)>,
        now_ms: u64,
    ) {
        let (code, reason, due) = match cause {
            Cause::Timeout => (
                CLOSE_TIMEOUT,
                "No heartbeat within the alive timeout",
                now_ms,
            ),
            Cause::Kicked => (
                CLOSE_POLICY,
                "Rate limit exceeded",
                now_ms + self.cfg.leave_grace_ms,
            ),
            Cause::Closed => (1000, "Closed", now_ms + self.cfg.leave_grace_ms),
            Cause::Removed => (CLOSE_REMOVED, "Removed by a moderator", now_ms),
        };
        let (code, reason) = ending.unwrap_or((code, reason));
        close_socket(fx, peer, code, reason);
        fx.log(
            LogEvent::new(Level::Info, "retire")
                .peer(&peer.state.id)
                .field("cause", LeaveCause::from(cause).label()),
        );
        fx.record_changed = true;
        meta.leaves.retain(|l| l.id != peer.state.id);
        meta.leaves.push(PendingLeave {
            id: peer.state.id.clone(),
            due_ms: due,
            cause,
            proven: peer.state.proven,
        });
    }

    /// Chooses the next alarm: the earliest of the sweep (only while live
    /// peers exist; `oldest_seen` is the earliest last sign of life among
    /// them), pending LEAVEs, queue expiries and the end of the earliest
    /// block (so an expired block is forgotten and storage empties). Emits a
    /// set or delete only when it differs from what is already scheduled.
    pub(crate) fn plan_alarm<S>(
        &self,
        fx: &mut Step<S>,
        meta: &mut RoomMeta,
        oldest_seen: Option<u64>,
        now_ms: u64,
    ) {
        if self
            .cfg
            .plan_sweep(&mut meta.sweep_due_ms, oldest_seen, now_ms)
        {
            fx.record_changed = true;
        }
        let wanted = [
            meta.sweep_due_ms,
            meta.leaves.iter().map(|l| l.due_ms).min(),
            meta.queue
                .iter()
                .map(|q| q.queued_ms + self.cfg.expire_timeout_ms)
                .min(),
            meta.blocks.iter().map(|b| b.until_ms).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        if wanted == meta.alarm_ms {
            return;
        }
        meta.alarm_ms = wanted;
        fx.record_changed = true;
        fx.alarm_changed = true;
    }
}

/// Closes a socket on the server's initiative: mark it first, so that its
/// later close event and any view of it treat it as gone.
pub(crate) fn close_socket<S: Copy>(fx: &mut Step<S>, peer: &PeerView<S>, code: u16, reason: &str) {
    let mut state = peer.state.clone();
    state.closing = true;
    fx.op(SocketOp::SaveState {
        socket: peer.socket,
        state,
    });
    fx.op(SocketOp::Close {
        socket: peer.socket,
        code,
        reason: reason.to_owned(),
    });
}

/// What a socket replaced by a newer one of its id is told before its
/// close: the stock client shows it as a `server-error` and does not
/// reconnect by itself, and the room helper reports it in these words, so
/// two tabs of one player do not take the id from each other for ever.
pub const MSG_REPLACED: &str =
    "Replaced by a newer connection for this id: this player joined from another tab or device";

/// Tells `holder` it was replaced, then closes it with [`CLOSE_REPLACED`].
pub(crate) fn replace_socket<S: Copy>(fx: &mut Step<S>, holder: &PeerView<S>) {
    fx.op(SocketOp::Send {
        to: Target::Peer(holder.socket),
        text: frame::render_error(MSG_REPLACED),
    });
    close_socket(
        fx,
        holder,
        CLOSE_REPLACED,
        "Replaced by a newer connection for this id",
    );
}

/// The drop of a frame from a socket the server already closed, or `None`
/// for a live sender (see [`Room::from_closed_socket`]).
fn closed_sender_drop<S>(sender: &PeerState, bytes: usize) -> Option<Step<S>> {
    if !sender.closing {
        return None;
    }
    let mut fx = Step::default();
    drop_frame(&mut fx, &sender.id, DropReason::SenderNotLive, bytes);
    Some(fx)
}

/// The live peer that sent a frame of `bytes` on `from`; `Err` is the whole
/// step when there is none (an unknown socket: nothing; a socket the server
/// closed: its frame dropped). Rooms and homes alike start a frame here.
// The step is returned by value as every handler returns its step; boxing
// it would add an allocation for nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn live_sender<S: Copy + Eq>(
    peers: &[PeerView<S>],
    from: S,
    bytes: usize,
) -> Result<&PeerView<S>, Step<S>> {
    let sender = peers
        .iter()
        .find(|p| p.socket == from)
        .ok_or_else(Step::default)?;
    match closed_sender_drop(&sender.state, bytes) {
        Some(dropped) => Err(dropped),
        None => Ok(sender),
    }
}

/// Refuses a join whose id is held: `ID-TAKEN`, as the reference sends.
pub(crate) fn refuse_id_taken<S>(fx: &mut Step<S>, id: &str, why: &'static str) {
    fx.op(SocketOp::Refuse {
        frame: frame::ID_TAKEN.to_owned(),
        code: CLOSE_POLICY,
        reason: "ID is taken".to_owned(),
    });
    fx.count(Counter::ConnectionRefused(RefuseReason::IdTaken), 1);
    fx.log(
        LogEvent::new(Level::Info, "refuse")
            .peer(id)
            .field("reason", "id_taken")
            .field("why", why),
    );
}

/// Close code for a peer kicked for oversized frames (RFC 6455 "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Counts a dropped frame and judges its sender by it
/// ([`PeerFloodGuard::note_drop`]): one warn line per peer per window, the
/// rest at debug; `Some` when the sender is to be closed for it.
pub(crate) fn judge_drop<S>(
    fx: &mut Step<S>,
    flood: &mut PeerFloodGuard,
    peer: &str,
    reason: DropReason,
    bytes: usize,
    now_ms: u64,
) -> Option<KickFor> {
    fx.count(Counter::Dropped(reason), 1);
    let kind = match reason {
        DropReason::TooLarge => DropKind::Oversized,
        DropReason::Malformed
        | DropReason::MissingType
        | DropReason::UnknownType
        | DropReason::MissingDst
        | DropReason::InvalidDst => DropKind::Faulty,
        _ => DropKind::Blameless,
    };
    let verdict = flood.note_drop(peer, kind, now_ms);
    let level = match verdict {
        DropVerdict::Quiet => Level::Debug,
        DropVerdict::Log { .. } | DropVerdict::Kick(_) => Level::Warn,
    };
    let mut event = LogEvent::new(level, "drop")
        .peer(peer)
        .field("reason", reason.label())
        .field("bytes", bytes);
    if let DropVerdict::Log { unlogged_before } = verdict {
        if unlogged_before > 0 {
            event = event.field("unlogged_before", unlogged_before);
        }
    }
    fx.log(event);
    match verdict {
        DropVerdict::Kick(why) => Some(why),
        _ => None,
    }
}

/// Tells a peer it is being kicked for its drops (the ERROR the stock
/// client shows) and logs it; answers the close code and reason to use.
pub(crate) fn kick_notice<S>(
    fx: &mut Step<S>,
    socket: S,
    id: &str,
    why: KickFor,
    cfg: &RoomConfig,
) -> (u16, &'static str) {
    let (msg, code, reason) = kick_words(why, cfg);
    fx.op(SocketOp::Send {
        to: Target::Peer(socket),
        text: frame::render_error(&msg),
    });
    fx.log(
        LogEvent::new(Level::Warn, "kick")
            .peer(id)
            .field("reason", reason),
    );
    (code, reason)
}

/// What a peer kicked for its drops is told: the ERROR text (which the
/// stock client shows) and the close code and reason.
pub(crate) fn kick_words(why: KickFor, cfg: &RoomConfig) -> (String, u16, &'static str) {
    match why {
        KickFor::Faulty => (
            format!(
                "Too many invalid messages ({} in {} s)",
                crate::flood::MAX_FAULTY_FRAMES + 1,
                crate::flood::DROP_WINDOW_MS / 1000
            ),
            CLOSE_POLICY,
            "Too many invalid messages",
        ),
        KickFor::Oversized => (
            format!(
                "Messages too big (the limit is {} bytes)",
                cfg.max_message_bytes
            ),
            CLOSE_TOO_BIG,
            "Message too big",
        ),
    }
}

/// Counts and logs a dropped frame.
pub(crate) fn drop_frame<S>(fx: &mut Step<S>, peer: &str, reason: DropReason, bytes: usize) {
    fx.count(Counter::Dropped(reason), 1);
    // A flood must not turn into a flood of log lines: its frames are
    // logged at debug; the kick itself is logged at warn.
    let level = match reason {
        DropReason::RateLimited | DropReason::SenderNotLive => Level::Debug,
        _ => Level::Warn,
    };
    fx.log(
        LogEvent::new(level, "drop")
            .peer(peer)
            .field("reason", reason.label())
            .field("bytes", bytes),
    );
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
                token_digest: None,
            },
            heartbeat_ms,
        }
    }

    /// The rooms Worker skips heartbeat timestamps on frames and closes; a
    /// rule change that starts reading them there must fail here first.
    #[test]
    fn a_client_close_is_echoed_with_a_code_one_may_send() {
        assert_eq!(echo_close_code(Some(1000)), 1000);
        assert_eq!(echo_close_code(Some(4123)), 4123);
        assert_eq!(echo_close_code(Some(1001)), 1001);
        for unsendable in [Some(1005), Some(1006), Some(999), Some(5000), Some(0), None] {
            assert_eq!(echo_close_code(unsendable), 1000, "{unsendable:?}");
        }
    }

    #[test]
    fn frame_and_close_ignore_heartbeat_timestamps() {
        let cfg = RoomConfig::default();
        let room = Room::new(&cfg);
        // At 60 s without heartbeats both peers would be stale; with them, fresh.
        let now = 60_000;
        let with: Vec<_> = vec![view(0, "a", Some(now - 1)), view(1, "b", Some(now - 1))];
        let without: Vec<_> = vec![view(0, "a", None), view(1, "b", None)];
        let frames: [&[u8]; 3] = [
            br#"{"type":"OFFER","dst":"b","payload":{"sdp":"x"}}"#,
            br#"{"type":"OFFER","dst":"absent","payload":{"sdp":"x"}}"#,
            br#"{"type":"LEAVE","dst":"b"}"#,
        ];
        for bytes in frames {
            let run = |peers: &[PeerView<usize>]| {
                let mut meta = RoomMeta::default();
                let mut flood = PeerFloodGuard::new(cfg.peer_msgs_per_sec);
                let fx = room.frame(&mut meta, peers, 0, bytes, &mut flood, now);
                (fx, meta)
            };
            assert_eq!(run(&with), run(&without));
        }
        let run = |peers: &[PeerView<usize>]| {
            let mut meta = RoomMeta::default();
            let mut flood = PeerFloodGuard::new(cfg.peer_msgs_per_sec);
            let fx = room.closed(&mut meta, peers, &peers[1], &mut flood, now);
            (fx, meta)
        };
        assert_eq!(run(&with), run(&without));
    }
}
