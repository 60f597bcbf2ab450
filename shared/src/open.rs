//! The open namespace: the reference server's one id namespace, spread over
//! one Durable Object per peer id, the id's *home*.
//!
//! A home owns what the reference server keeps for one id: the socket that
//! holds it, the messages waiting for it while it is offline (its inbox),
//! and, beyond the reference, the ids it exchanged signaling with recently
//! (its correspondents), who get `LEAVE` when it disappears.
//!
//! A frame from the home's socket to another id becomes a [`Forward`] in the
//! step: the caller hands it to the destination's home, which runs
//! [`Home::deliver`]: onto the socket if one is live, into the inbox if the
//! kind waits for an offline id, dropped otherwise. A delivery never
//! forwards anything, so no frame travels twice and no loop is possible;
//! the only server-made forwards (`EXPIRE` back to a sender, `LEAVE` to the
//! correspondents) come from the alarm and end at their destination.
//!
//! Sans-IO like [`crate::room`], and run by the same tail (see `step.rs`):
//! the home's durable record is a [`HomeRecord`], its socket's attachment a
//! [`PeerState`] carrying the digest of the client's own token.

use crate::flood::{KickFor, PeerFloodGuard};
use crate::frame::{self, DropReason, RelayKind};
use crate::log::{Level, LogEvent};
use crate::metrics::{Counter, LeaveCause};
use crate::peer::{
    admit_frame, claims_proven_grace, judge_drop, judge_too_large, kick_notice, may_replace,
    oldest_attached_seen, oldest_seen, plan_alarm, refuse_id_taken, refuse_try_again,
    replace_socket, retire_peer, too_many_closing, Admitted, Limits, PeerView, PendingLeave,
    Queued,
};
use crate::socket::{PeerState, Recipient};
use crate::step::{Forward, Parcel, SocketOp, Step};
use serde::{Deserialize, Serialize};

/// How many recent correspondents a home remembers for its `LEAVE`.
pub const MAX_CORRESPONDENTS: usize = 32;
/// A correspondent not heard from or written to for this long is forgotten.
pub const CORRESPONDENT_TTL_MS: u64 = 10 * 60_000;
/// A known correspondent's time is refreshed (a record write) at most this often.
const CORRESPONDENT_REFRESH_MS: u64 = CORRESPONDENT_TTL_MS / 4;

/// The digest of a client's token, as the router sends it and the
/// attachment keeps it: the token itself is never stored.
pub fn token_digest(token: &str) -> String {
    crate::secret::sha256_hex(token)
}

/// What one home sends another: parcels from `src`, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub src: String,
    pub parcels: Vec<Parcel>,
}

/// An id this home exchanged signaling with, and when it last did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correspondent {
    pub id: String,
    pub seen_ms: u64,
}

/// The home's durable record (one storage key; deleted when empty, so a
/// home that is done stores nothing and has no alarm).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeRecord {
    pub next_seq: u64,
    /// Messages waiting for this id, in arrival order (frames in storage).
    pub inbox: Vec<Queued>,
    /// This id's socket closed; LEAVE goes out at `due_ms` unless it is back.
    pub leave: Option<PendingLeave>,
    pub correspondents: Vec<Correspondent>,
    /// When the next liveness sweep is due (only while a socket is live).
    pub sweep_due_ms: Option<u64>,
    /// The alarm currently set, as far as this record knows.
    pub alarm_ms: Option<u64>,
}

impl HomeRecord {
    pub fn is_empty(&self) -> bool {
        self.inbox.is_empty()
            && self.leave.is_none()
            && self.correspondents.is_empty()
            && self.sweep_due_ms.is_none()
            && self.alarm_ms.is_none()
    }

    fn queued_bytes(&self) -> usize {
        self.inbox.iter().map(|q| q.bytes).sum()
    }
}

/// A join of the open namespace, checked by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenJoin {
    /// [`token_digest`] of the client's token.
    pub token_digest: String,
    /// A ticket whose `sub` is this id proved the identity.
    pub proven: bool,
}

/// The rules of one id's home.
pub struct Home<'c> {
    pub cfg: &'c Limits,
    /// The id this home is for (the object's name).
    pub me: &'c str,
}

impl<'c> Home<'c> {
    pub fn new(cfg: &'c Limits, me: &'c str) -> Self {
        Home { cfg, me }
    }

    /// Closes this home's peer for flooding (`why` `None`: already told) or
    /// for what it kept sending (told here with an ERROR that says why).
    fn kick<S: Copy + Eq>(
        &self,
        fx: &mut Step<S>,
        rec: &mut HomeRecord,
        sender: &PeerView<S>,
        why: Option<KickFor>,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) {
        let ending = why.map(|why| {
            flood.forget(self.me);
            kick_notice(fx, sender.socket, self.me, why, self.cfg)
        });
        self.retire(fx, rec, sender, LeaveCause::Kicked, ending, now_ms);
        self.plan_alarm(fx, rec, None, now_ms);
    }

    /// Parcels from `delivery.src`'s home arrived: onto the live socket, or
    /// into the inbox (bounded in count, bytes and per sender), or dropped.
    pub fn deliver<S: Copy + Eq>(
        &self,
        rec: &mut HomeRecord,
        peers: &[PeerView<S>],
        delivery: &Delivery,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        let src = delivery.src.as_str();
        let live = peers.iter().find(|p| p.is_live());
        for parcel in &delivery.parcels {
            if let Some(holder) = live {
                fx.op(SocketOp::Send {
                    to: Recipient::Peer(holder.socket),
                    text: parcel.text.clone(),
                });
                if parcel.notice {
                    if parcel.kind == RelayKind::Leave {
                        self.forget(&mut fx, rec, src);
                    }
                } else {
                    fx.count(Counter::Relayed(parcel.kind), 1);
                    if parcel.kind.is_queueable() {
                        self.remember(&mut fx, rec, src, now_ms);
                    }
                }
                continue;
            }
            if !parcel.kind.is_queueable() || parcel.notice {
                if !parcel.notice {
                    let reason = DropReason::OfflineNotQueued;
                    judge_drop(&mut fx, flood, src, reason, parcel.text.len(), now_ms);
                }
                continue;
            }
            let from_sender = rec.inbox.iter().filter(|q| q.src == src).count();
            if rec.inbox.len() >= self.cfg.max_queued_messages
                || from_sender >= self.cfg.max_queued_per_sender
                || rec.queued_bytes() + parcel.text.len() > self.cfg.max_queued_bytes
            {
                let reason = DropReason::QueueFull;
                judge_drop(&mut fx, flood, src, reason, parcel.text.len(), now_ms);
                continue;
            }
            let queued = Queued {
                seq: rec.next_seq,
                src: src.to_owned(),
                dst: self.me.to_owned(),
                bytes: parcel.text.len(),
                queued_ms: now_ms,
            };
            rec.next_seq += 1;
            fx.record_changed = true;
            fx.puts.push((queued.key(), parcel.text.clone()));
            fx.count(Counter::Queued, 1);
            fx.log(
                LogEvent::new(Level::Debug, "queue")
                    .peer(src)
                    .field("dst", self.me)
                    .field("type", parcel.kind.as_str()),
            );
            rec.inbox.push(queued);
        }
        self.plan_alarm(&mut fx, rec, oldest_attached_seen(live.into_iter()), now_ms);
        fx
    }

    /// The correspondents heard from within [`CORRESPONDENT_TTL_MS`].
    fn fresh_correspondents(&self, rec: &HomeRecord, now_ms: u64) -> Vec<String> {
        rec.correspondents
            .iter()
            .filter(|c| now_ms.saturating_sub(c.seen_ms) < CORRESPONDENT_TTL_MS)
            .map(|c| c.id.clone())
            .collect()
    }

    /// Notes that this id exchanged signaling with `id`; writes the record
    /// only for a new correspondent or a refresh that is due.
    fn remember<S>(&self, fx: &mut Step<S>, rec: &mut HomeRecord, id: &str, now_ms: u64) {
        if id == self.me {
            return;
        }
        if let Some(known) = rec.correspondents.iter_mut().find(|c| c.id == id) {
            if now_ms.saturating_sub(known.seen_ms) >= CORRESPONDENT_REFRESH_MS {
                known.seen_ms = now_ms;
                fx.record_changed = true;
            }
            return;
        }
        rec.correspondents
            .retain(|c| now_ms.saturating_sub(c.seen_ms) < CORRESPONDENT_TTL_MS);
        if rec.correspondents.len() >= MAX_CORRESPONDENTS {
            // The least recently seen makes room.
            if let Some(oldest) = rec
                .correspondents
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.seen_ms)
                .map(|(i, _)| i)
            {
                rec.correspondents.remove(oldest);
            }
        }
        rec.correspondents.push(Correspondent {
            id: id.to_owned(),
            seen_ms: now_ms,
        });
        fx.record_changed = true;
    }

    /// `id` is gone (its home told us): no LEAVE of ours is owed to it.
    fn forget<S>(&self, fx: &mut Step<S>, rec: &mut HomeRecord, id: &str) {
        let before = rec.correspondents.len();
        rec.correspondents.retain(|c| c.id != id);
        if rec.correspondents.len() != before {
            fx.record_changed = true;
        }
    }

    /// Closes the live socket for cause and schedules the LEAVE.
    fn retire<S: Copy>(
        &self,
        fx: &mut Step<S>,
        rec: &mut HomeRecord,
        peer: &PeerView<S>,
        cause: LeaveCause,
        ending: Option<(u16, &str)>,
        now_ms: u64,
    ) {
        rec.leave = Some(retire_peer(fx, self.cfg, peer, cause, ending, now_ms));
    }

    /// The next alarm: the sweep (while a socket is live; `seen` is its last
    /// sign of life, see [`Limits::next_sweep_ms`]), the LEAVE, the
    /// inbox's first expiry. Changes it only when it differs.
    fn plan_alarm<S>(
        &self,
        fx: &mut Step<S>,
        rec: &mut HomeRecord,
        seen: Option<u64>,
        now_ms: u64,
    ) {
        let expire = self.cfg.expire_timeout_ms;
        let deadlines = [
            rec.leave.as_ref().map(|l| l.due_ms),
            rec.inbox.iter().map(|q| q.queued_ms + expire).min(),
        ];
        let (alarm, sweep) = (&mut rec.alarm_ms, &mut rec.sweep_due_ms);
        plan_alarm(fx, self.cfg, alarm, sweep, seen, deadlines, now_ms);
    }
}

impl crate::step::DurableRecord for HomeRecord {
    fn is_empty(&self) -> bool {
        HomeRecord::is_empty(self)
    }
    fn alarm_ms(&self) -> Option<u64> {
        self.alarm_ms
    }
}

impl crate::machine::Machine for Home<'_> {
    type Record = HomeRecord;
    type Join = OpenJoin;

    /// A socket wants to hold this id. The same client (same token) or a
    /// proven one replaces a live holder; anyone replaces a stale one;
    /// otherwise `ID-TAKEN`, as in the reference server.
    fn join<S: Copy + Eq>(
        &self,
        rec: &mut HomeRecord,
        peers: &[PeerView<S>],
        request: OpenJoin,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        if let Some(msg) = too_many_closing(peers, self.me) {
            refuse_try_again(&mut fx, self.me, msg);
            return fx;
        }
        let leaves = rec.leave.as_slice();
        if claims_proven_grace(leaves, self.me, request.proven) {
            refuse_id_taken(&mut fx, self.me, "proven_in_grace");
            return fx;
        }
        for holder in peers.iter().filter(|p| p.is_live()) {
            let same_client =
                holder.state.token_digest.as_deref() == Some(request.token_digest.as_str());
            let stale = holder.is_stale(now_ms, self.cfg);
            if !may_replace(holder.state.proven, request.proven, same_client || stale) {
                let why = if holder.state.proven {
                    "proven_holder"
                } else {
                    "id_taken"
                };
                refuse_id_taken(&mut fx, self.me, why);
                return fx;
            }
            let why = match (same_client, request.proven) {
                (true, _) => "same_token",
                (false, true) => "ticket",
                (false, false) => "stale",
            };
            replace_socket(&mut fx, holder);
            fx.count(Counter::Takeover, 1);
            fx.log(
                LogEvent::new(Level::Info, "takeover")
                    .peer(self.me)
                    .field("why", why),
            );
        }

        fx.op(SocketOp::Accept {
            state: PeerState {
                id: self.me.to_owned(),
                proven: request.proven,
                joined_ms: now_ms,
                seen_ms: now_ms,
                closing: false,
                token_digest: Some(request.token_digest),
            },
        });
        fx.op(SocketOp::Send {
            to: Recipient::Joiner,
            text: frame::OPEN.to_owned(),
        });
        fx.count(Counter::ConnectionAccepted, 1);
        fx.log(
            LogEvent::new(Level::Info, "open")
                .peer(self.me)
                .field("proven", request.proven),
        );
        if rec.leave.take().is_some() {
            fx.record_changed = true; // back within the grace: no LEAVE
        }
        if !rec.inbox.is_empty() {
            let waiting = std::mem::take(&mut rec.inbox);
            fx.record_changed = true;
            for q in &waiting {
                self.remember(&mut fx, rec, &q.src, now_ms);
            }
            let keys: Vec<String> = waiting.iter().map(Queued::key).collect();
            fx.deletes.extend(keys.iter().cloned());
            fx.log(
                LogEvent::new(Level::Debug, "deliver_queued")
                    .peer(self.me)
                    .field("count", keys.len()),
            );
            fx.op(SocketOp::Deliver {
                to: Recipient::Joiner,
                keys,
            });
        }
        self.plan_alarm(&mut fx, rec, Some(now_ms), now_ms);
        fx
    }

    /// A frame arrived on this home's socket `from`.
    fn frame<S: Copy + Eq>(
        &self,
        rec: &mut HomeRecord,
        peers: &[PeerView<S>],
        from: S,
        bytes: &[u8],
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        let (kind, dst, payload) =
            match admit_frame(&mut fx, self.cfg, peers, from, bytes, flood, now_ms) {
                Admitted::Relay {
                    kind, dst, payload, ..
                } => (kind, dst, payload),
                Admitted::Kick { sender, why } => {
                    self.kick(&mut fx, rec, sender, why, flood, now_ms);
                    return fx;
                }
                Admitted::Done => return fx,
            };
        let text = frame::render_relay(kind, self.me, &dst, payload);
        if dst.as_ref() == self.me {
            // To itself, as the reference allows: no other home involved.
            fx.op(SocketOp::Send {
                to: Recipient::Peer(from),
                text,
            });
            fx.count(Counter::Relayed(kind), 1);
            return fx;
        }
        if kind.is_queueable() {
            self.remember(&mut fx, rec, &dst, now_ms);
            self.plan_alarm(&mut fx, rec, Some(now_ms), now_ms);
        }
        fx.forwards.push(Forward {
            to: dst.into_owned(),
            parcel: Parcel {
                kind,
                text,
                notice: false,
            },
        });
        fx
    }

    /// A frame of `len` bytes, over the limit and so never copied, arrived
    /// on `from`: as [`crate::room::Room::too_large`].
    fn too_large<S: Copy + Eq>(
        &self,
        rec: &mut HomeRecord,
        peers: &[PeerView<S>],
        from: S,
        len: usize,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        if let Some((sender, why)) = judge_too_large(&mut fx, peers, from, len, flood, now_ms) {
            self.kick(&mut fx, rec, sender, Some(why), flood, now_ms);
        }
        fx
    }

    /// The home's socket closed or errored (`peers` may still list it).
    fn closed<S: Copy + Eq>(
        &self,
        rec: &mut HomeRecord,
        peers: &[PeerView<S>],
        gone: &PeerView<S>,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        let others_live = peers.iter().any(|p| p.socket != gone.socket && p.is_live());
        if gone.is_live() {
            fx.log(LogEvent::new(Level::Info, "close").peer(self.me));
            if !others_live {
                flood.forget(self.me);
                fx.record_changed = true;
                rec.leave = Some(PendingLeave {
                    id: self.me.to_owned(),
                    due_ms: now_ms + self.cfg.leave_grace_ms,
                    cause: LeaveCause::Closed,
                    proven: gone.state.proven,
                });
            }
        }
        let others = peers
            .iter()
            .filter(|p| p.socket != gone.socket && p.is_live());
        self.plan_alarm(&mut fx, rec, oldest_attached_seen(others), now_ms);
        fx
    }

    /// The alarm fired: sweep a silent socket, announce a LEAVE that is
    /// due, expire the inbox (one `EXPIRE` per sender back to its home).
    fn alarm<S: Copy + Eq>(
        &self,
        rec: &mut HomeRecord,
        peers: &[PeerView<S>],
        now_ms: u64,
    ) -> Step<S> {
        let mut fx = Step::default();
        if rec.alarm_ms.take().is_some() {
            fx.record_changed = true; // the runtime cleared it by firing
        }
        let mut retired: Option<S> = None;
        if rec.sweep_due_ms.is_some_and(|due| due <= now_ms) {
            rec.sweep_due_ms = None;
            fx.record_changed = true;
            if let Some(stale) = peers
                .iter()
                .find(|p| p.is_live() && p.is_stale(now_ms, self.cfg))
            {
                self.retire(&mut fx, rec, stale, LeaveCause::Timeout, None, now_ms);
                retired = Some(stale.socket);
            }
        }
        let seen = oldest_seen(
            peers
                .iter()
                .filter(|p| p.is_live() && Some(p.socket) != retired),
        );
        let live = seen.is_some();

        if let Some(leave) = rec.leave.take_if(|l| l.due_ms <= now_ms) {
            fx.record_changed = true;
            if !live {
                let told = self.fresh_correspondents(rec, now_ms);
                for id in &told {
                    fx.forwards.push(Forward {
                        to: id.clone(),
                        parcel: Parcel {
                            kind: RelayKind::Leave,
                            text: frame::render_leave(self.me, id),
                            notice: true,
                        },
                    });
                }
                fx.count(Counter::Leave(leave.cause), 1);
                fx.log(
                    LogEvent::new(Level::Info, "leave")
                        .peer(self.me)
                        .field("cause", leave.cause.label())
                        .field("told", told.len()),
                );
                rec.correspondents.clear();
            }
        }

        let mut expired_senders: Vec<String> = rec
            .inbox
            .iter()
            .filter(|q| q.queued_ms + self.cfg.expire_timeout_ms <= now_ms)
            .map(|q| q.src.clone())
            .collect();
        expired_senders.sort();
        expired_senders.dedup();
        if !expired_senders.is_empty() {
            // Once a sender has an expired message, all of its messages go.
            let (gone, kept): (Vec<Queued>, Vec<Queued>) = std::mem::take(&mut rec.inbox)
                .into_iter()
                .partition(|q| expired_senders.contains(&q.src));
            rec.inbox = kept;
            fx.record_changed = true;
            for src in &expired_senders {
                fx.forwards.push(Forward {
                    to: src.clone(),
                    parcel: Parcel {
                        kind: RelayKind::Expire,
                        text: frame::render_expire(self.me, src),
                        notice: true,
                    },
                });
                fx.log(
                    LogEvent::new(Level::Info, "expire")
                        .peer(src)
                        .field("dst", self.me),
                );
            }
            fx.count(Counter::Expired, gone.len() as u64);
            fx.deletes.extend(gone.iter().map(Queued::key));
        }

        // Nobody here and nobody to tell: nothing is worth remembering.
        if !live && rec.leave.is_none() && !rec.correspondents.is_empty() {
            rec.correspondents.clear();
            fx.record_changed = true;
        }
        self.plan_alarm(&mut fx, rec, seen, now_ms);
        fx
    }
}
