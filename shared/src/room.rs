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

use crate::flood::{KickFor, PeerFloodGuard};
use crate::frame::{self, DropReason};
use crate::log::{Level, LogEvent};
use crate::metrics::{Counter, LeaveCause, RefuseReason};
use crate::peer::{
    admit_frame, claims_proven_grace, judge_drop, judge_too_large, kick_notice, may_replace,
    oldest_attached_seen, oldest_seen, plan_alarm, refuse_id_taken, refuse_try_again,
    replace_socket, retire_peer, too_many_closing, Admitted, Limits, PeerView, PendingLeave,
    Queued, CLOSE_POLICY, CLOSE_REMOVED,
};
use crate::socket::{PeerState, Recipient};
use crate::step::{SocketOp, Step};
use serde::{Deserialize, Serialize};

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
    pub cfg: &'c Limits,
}

impl<'c> Room<'c> {
    pub fn new(cfg: &'c Limits) -> Self {
        Room { cfg }
    }

    /// Closes a peer for flooding (`why` `None`: already told) or for what it
    /// kept sending ([`judge_drop`]'s verdict, told here with an ERROR that
    /// says why); the others get LEAVE after the grace.
    #[allow(clippy::too_many_arguments)]
    fn kick<S: Copy + Eq>(
        &self,
        fx: &mut Step<S>,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        sender: &PeerView<S>,
        why: Option<KickFor>,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) {
        let ending = why.map(|why| {
            flood.forget(&sender.state.id);
            kick_notice(fx, sender.socket, &sender.state.id, why, self.cfg)
        });
        self.retire(fx, meta, sender, LeaveCause::Kicked, ending, now_ms);
        let others = peers
            .iter()
            .filter(|p| p.is_live() && p.socket != sender.socket);
        self.plan_alarm(fx, meta, oldest_attached_seen(others), now_ms);
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
        cause: LeaveCause,
        ending: Option<(u16, &str)>,
        now_ms: u64,
    ) {
        let leave = retire_peer(fx, self.cfg, peer, cause, ending, now_ms);
        meta.leaves.retain(|l| l.id != leave.id);
        meta.leaves.push(leave);
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
        let expire = self.cfg.expire_timeout_ms;
        let deadlines = [
            meta.leaves.iter().map(|l| l.due_ms).min(),
            meta.queue.iter().map(|q| q.queued_ms + expire).min(),
            meta.blocks.iter().map(|b| b.until_ms).min(),
        ];
        let (alarm, sweep) = (&mut meta.alarm_ms, &mut meta.sweep_due_ms);
        plan_alarm(fx, self.cfg, alarm, sweep, oldest_seen, deadlines, now_ms);
    }
}

impl crate::step::DurableRecord for RoomMeta {
    fn is_empty(&self) -> bool {
        RoomMeta::is_empty(self)
    }
    fn alarm_ms(&self) -> Option<u64> {
        self.alarm_ms
    }
}

/// What the stock client shows (as a `server-error`) when it is removed.
pub const REMOVED_MESSAGE: &str = "You were removed from this room by a moderator";

/// When a block on `id`, or on the `ticket` it joins with, ends, if one is
/// in force at `now_ms`.
pub(crate) fn blocked_until(
    meta: &RoomMeta,
    id: &str,
    ticket: Option<&str>,
    now_ms: u64,
) -> Option<u64> {
    meta.blocks
        .iter()
        .filter(|b| b.until_ms > now_ms)
        .filter(|b| b.id == id || (ticket.is_some() && b.ticket.as_deref() == ticket))
        .map(|b| b.until_ms)
        .max()
}

/// Refuses a join of a blocked id, saying when it may come back.
pub(crate) fn refuse_blocked<S>(fx: &mut Step<S>, id: &str, until_ms: u64, now_ms: u64) {
    let secs = until_ms.saturating_sub(now_ms).div_ceil(1000);
    let msg = format!("{REMOVED_MESSAGE}; you may rejoin in {secs} s");
    fx.op(SocketOp::Refuse {
        frame: frame::render_error(&msg),
        code: CLOSE_REMOVED,
        reason: "Removed by a moderator".to_owned(),
    });
    fx.count(Counter::ConnectionRefused(RefuseReason::Blocked), 1);
    fx.log(
        LogEvent::new(Level::Info, "refuse")
            .peer(id)
            .field("reason", RefuseReason::Blocked.label()),
    );
}

/// Drops the blocks that have ended; answers whether any did.
pub(crate) fn forget_ended_blocks(meta: &mut RoomMeta, now_ms: u64) -> bool {
    let before = meta.blocks.len();
    meta.blocks.retain(|b| b.until_ms > now_ms);
    meta.blocks.len() != before
}

impl crate::machine::Machine for Room<'_> {
    type Record = RoomMeta;
    type Join = JoinRequest;

    /// A new socket wants to join as `request.id`.
    fn join<S: Copy + Eq>(
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
        if let Some(until_ms) = blocked_until(meta, &request.id, request.ticket.as_deref(), now_ms)
        {
            refuse_blocked(&mut fx, &request.id, until_ms, now_ms);
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
                self.retire(&mut fx, meta, stale, LeaveCause::Timeout, None, now_ms);
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
            to: Recipient::Joiner,
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
                to: Recipient::Joiner,
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
    fn frame<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        from: S,
        bytes: &[u8],
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        let (sender, kind, dst, payload) =
            match admit_frame(&mut fx, self.cfg, peers, from, bytes, flood, now_ms) {
                Admitted::Relay {
                    sender,
                    kind,
                    dst,
                    payload,
                } => (sender, kind, dst, payload),
                Admitted::Kick { sender, why } => {
                    self.kick(&mut fx, meta, peers, sender, why, flood, now_ms);
                    return fx;
                }
                Admitted::Done => return fx,
            };
        let id = sender.state.id.as_str();
        let text = frame::render_relay(kind, id, &dst, payload);
        if let Some(target) = peers
            .iter()
            .find(|p| p.is_live() && p.state.id == dst.as_ref())
        {
            fx.op(SocketOp::Send {
                to: Recipient::Peer(target.socket),
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
    fn too_large<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        from: S,
        len: usize,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        if let Some((sender, why)) = judge_too_large(&mut fx, peers, from, len, flood, now_ms) {
            self.kick(&mut fx, meta, peers, sender, Some(why), flood, now_ms);
        }
        fx
    }

    /// A socket closed or errored. `peers` may or may not still list it.
    /// Like [`Room::frame`], it never reads `heartbeat_ms`.
    fn closed<S: Copy + Eq>(
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
                    cause: LeaveCause::Closed,
                    proven: gone.state.proven,
                });
            }
        }
        let others = others.iter().copied();
        self.plan_alarm(&mut fx, meta, oldest_attached_seen(others), now_ms);
        fx
    }

    /// The alarm fired: send due LEAVEs, expire old queued messages, sweep for stale peers.
    fn alarm<S: Copy + Eq>(
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
        if forget_ended_blocks(meta, now_ms) {
            fx.record_changed = true;
        }

        if meta.sweep_due_ms.is_some_and(|due| due <= now_ms) {
            meta.sweep_due_ms = None;
            fx.record_changed = true;
            for stale in peers
                .iter()
                .filter(|p| p.is_live() && p.is_stale(now_ms, self.cfg))
            {
                self.retire(&mut fx, meta, stale, LeaveCause::Timeout, None, now_ms);
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
                    to: Recipient::Peer(p.socket),
                    text: frame::render_leave(&leave.id, &p.state.id),
                });
            }
            fx.count(Counter::Leave(leave.cause), 1);
            fx.log(
                LogEvent::new(Level::Info, "leave")
                    .peer(&leave.id)
                    .field("cause", leave.cause.label())
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
                        to: Recipient::Peer(sender.socket),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Machine;
    use crate::peer::PeerView;
    use crate::socket::PeerState;

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
    fn frame_and_close_ignore_heartbeat_timestamps() {
        let cfg = Limits::default();
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
