//! The rules of one peer, whatever its object (`machine/`): its socket's state and view, the limits it lives under,
//! how a frame reaches it, the takeover rule for its id, and the shared
//! notices (replaced, id taken, try again, kicked, dropped frames) with
//! their close codes.

use crate::flood::{Admit, DropKind, DropVerdict, KickFor, PeerFloodGuard};
use crate::frame::{self, ClientFrame, DropReason, RelayKind};
use crate::log::{Level, LogEvent};
use crate::metrics::{Counter, LeaveCause, RefuseReason};
use crate::record::PendingLeave;
use crate::socket::{PeerState, Recipient};
use crate::step::{SocketOp, Step};
use serde_json::value::RawValue;
use std::borrow::Cow;

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

/// Why a join is refused, as the joiner, the counters and the log see it.
pub(crate) struct Refusal {
    /// The frame the joiner gets before the close.
    pub frame: String,
    pub code: u16,
    pub reason: String,
    pub counted: RefuseReason,
    pub level: Level,
    /// The log line's `reason`, and its `why` if there is one.
    pub logged: (&'static str, Option<&'static str>),
}

/// Refuses a join: the joiner gets the refusal's frame, then its close.
pub(crate) fn refuse<S>(fx: &mut Step<S>, id: &str, refusal: Refusal) {
    let Refusal {
        frame,
        code,
        reason,
        counted,
        level,
        logged: (logged_reason, why),
    } = refusal;
    fx.op(SocketOp::Refuse {
        frame,
        code,
        reason,
    });
    fx.count(Counter::ConnectionRefused(counted), 1);
    let mut event = LogEvent::new(level, "refuse")
        .peer(id)
        .field("reason", logged_reason);
    if let Some(why) = why {
        event = event.field("why", why);
    }
    fx.log(event);
}

/// Refuses a join with a reason and `CLOSE_TRY_AGAIN`.
pub(crate) fn refuse_try_again<S>(fx: &mut Step<S>, id: &str, msg: &str) {
    let refusal = Refusal {
        frame: frame::render_error(msg),
        code: CLOSE_TRY_AGAIN,
        reason: msg.to_owned(),
        counted: RefuseReason::RateLimited,
        level: Level::Warn,
        logged: ("closing_backlog", None),
    };
    refuse(fx, id, refusal);
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

/// The limits every peer of one object lives under (a room, or a home in
/// the open namespace); their defaults are declared in `settings.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
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
    /// Open namespace with groups: live peers one group's object holds at most.
    pub max_peers_per_group: usize,
    /// Open namespace: distinct ids one peer may send to in a minute.
    pub max_new_destinations_per_minute: usize,
    pub peer_msgs_per_sec: u32,
    /// The object's stats shard calls its sweep when due ([`crate::machine::Input::Sweep`]):
    /// the sweep is then no deadline of the record and no alarm, so an idle
    /// object writes nothing between its peers' comings and goings.
    pub shard_sweeps: bool,
}

impl Default for Limits {
    fn default() -> Self {
        use crate::settings as declared;
        Limits {
            max_peers: declared::MAX_PEERS_PER_ROOM.number_default() as usize,
            max_message_bytes: declared::MAX_MESSAGE_BYTES.number_default() as usize,
            expire_timeout_ms: declared::EXPIRE_TIMEOUT_MS.number_default(),
            leave_grace_ms: declared::LEAVE_GRACE_MS.number_default(),
            alive_timeout_ms: declared::ALIVE_TIMEOUT_MS.number_default(),
            sweep_interval_ms: declared::LIVENESS_SWEEP_MS.number_default(),
            max_queued_messages: declared::MAX_QUEUED_MESSAGES.number_default() as usize,
            max_queued_bytes: declared::MAX_QUEUED_BYTES.number_default() as usize,
            max_queued_per_sender: declared::MAX_QUEUED_PER_SENDER.number_default() as usize,
            max_peers_per_group: declared::MAX_PEERS_PER_GROUP.number_default() as usize,
            max_new_destinations_per_minute: declared::MAX_NEW_DESTINATIONS_PER_MINUTE
                .number_default() as usize,
            peer_msgs_per_sec: declared::PEER_MSGS_PER_SEC.number_default() as u32,
            shard_sweeps: declared::STATS_REPORTS.flag_default(),
        }
    }
}

impl Limits {
    /// When to sweep next, given the earliest last sign of life among the
    /// live peers: the latest moment that still finds a peer that falls
    /// silent right after it within `alive_timeout_ms + sweep_interval_ms`
    /// of its last sign of life. Peers that heartbeat (every 5 s) keep the
    /// sweeps about `alive + sweep - 5 s` apart, never less than a second.
    pub fn next_sweep_ms(&self, oldest_seen_ms: u64, now_ms: u64) -> u64 {
        (oldest_seen_ms + self.alive_timeout_ms + self.sweep_interval_ms).max(now_ms + 1_000)
    }
}

impl Limits {
    /// When an object with `peers` wants its next sweep, from the live
    /// ones' last signs of life (`None`: nobody to sweep). Read without
    /// heartbeat timestamps it only comes early.
    pub fn sweep_due_for<S>(&self, peers: &[PeerView<S>], now_ms: u64) -> Option<u64> {
        let live = peers.iter().filter(|p| p.is_live());
        oldest_seen(live).map(|seen| self.next_sweep_ms(seen, now_ms))
    }

    /// The sweep's deadline, kept in step with the live peers
    /// (`oldest_seen`, `None` when there are none): cleared when nobody is
    /// left or the shard sweeps, planned by [`Limits::next_sweep_ms`] when
    /// someone is and none is due, else left as it is.
    pub(crate) fn planned_sweep(
        &self,
        sweep_due: Option<u64>,
        oldest_seen: Option<u64>,
        now_ms: u64,
    ) -> Option<u64> {
        match (oldest_seen, sweep_due) {
            (None, _) => None,
            _ if self.shard_sweeps => None,
            (Some(seen), None) => Some(self.next_sweep_ms(seen, now_ms)),
            (Some(_), due) => due,
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

    pub(crate) fn is_stale(&self, now_ms: u64, cfg: &Limits) -> bool {
        now_ms.saturating_sub(self.last_seen_ms()) >= cfg.alive_timeout_ms
    }

    pub(crate) fn is_live(&self) -> bool {
        !self.state.closing
    }
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
        to: Recipient::Peer(holder.socket),
        text: frame::render_error(MSG_REPLACED),
    });
    close_socket(
        fx,
        holder,
        CLOSE_REPLACED,
        "Replaced by a newer connection for this id",
    );
}

/// A frame from a socket the server already closed (a kicked flooder's
/// backlog, a replaced socket) is dropped: the step that says so, or
/// `None` for a live sender. `live_sender` applies it first; a host may
/// apply it before loading anything, so such a backlog costs the object's
/// other peers nothing.
pub fn closed_sender_drop<S>(sender: &PeerState, bytes: usize) -> Option<Step<S>> {
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
    let refusal = Refusal {
        frame: frame::ID_TAKEN.to_owned(),
        code: CLOSE_POLICY,
        reason: "ID is taken".to_owned(),
        counted: RefuseReason::IdTaken,
        level: Level::Info,
        logged: ("id_taken", Some(why)),
    };
    refuse(fx, id, refusal);
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
    cfg: &Limits,
) -> (u16, &'static str) {
    let (msg, code, reason) = kick_words(why, cfg);
    fx.op(SocketOp::Send {
        to: Recipient::Peer(socket),
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
pub(crate) fn kick_words(why: KickFor, cfg: &Limits) -> (String, u16, &'static str) {
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
        KickFor::Destinations => (
            format!(
                "Too many new destinations ({} a minute at most)",
                cfg.max_new_destinations_per_minute
            ),
            CLOSE_POLICY,
            "Too many new destinations",
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

/// What the front of every frame decided ([`admit_frame`]).
pub(crate) enum Admitted<'p, 'b, S> {
    /// A relay to carry on with: the sender and the parsed frame.
    Relay {
        sender: &'p PeerView<S>,
        kind: RelayKind,
        dst: Cow<'b, str>,
        payload: Option<&'b RawValue>,
    },
    /// The sender is to be closed: for flooding (`None`: already told and
    /// counted) or for what it kept sending (`Some`, not yet told).
    Kick {
        sender: &'p PeerView<S>,
        why: Option<KickFor>,
    },
    /// Nothing more to do (dropped, a heartbeat, an unknown socket).
    Done,
}

/// The front of every frame, in rooms and homes alike: a live sender, the
/// flood guard, its last sign of life refreshed (at most once a second),
/// the parse, and a malformed frame judged. Never reads `heartbeat_ms`.
pub(crate) fn admit_frame<'p, 'b, S: Copy + Eq>(
    fx: &mut Step<S>,
    limits: &Limits,
    peers: &'p [PeerView<S>],
    from: S,
    bytes: &'b [u8],
    flood: &mut PeerFloodGuard,
    now_ms: u64,
) -> Admitted<'p, 'b, S> {
    let sender = match live_sender(peers, from, bytes.len()) {
        Ok(sender) => sender,
        Err(step) => {
            *fx = step;
            return Admitted::Done;
        }
    };
    let id = sender.state.id.as_str();
    match flood.admit(id, now_ms) {
        Admit::Pass => {}
        Admit::Drop => {
            drop_frame(fx, id, DropReason::RateLimited, bytes.len());
            return Admitted::Done;
        }
        Admit::Kick => {
            drop_frame(fx, id, DropReason::RateLimited, bytes.len());
            fx.op(SocketOp::Send {
                to: Recipient::Peer(from),
                text: frame::render_error("Rate limit exceeded"),
            });
            fx.log(LogEvent::new(Level::Warn, "rate_limit").peer(id));
            flood.forget(id);
            return Admitted::Kick { sender, why: None };
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
    match frame::parse_client_frame(bytes, limits.max_message_bytes) {
        Ok(ClientFrame::Heartbeat) => Admitted::Done,
        Ok(ClientFrame::Relay { kind, dst, payload }) => Admitted::Relay {
            sender,
            kind,
            dst,
            payload,
        },
        Err(reason) => match judge_drop(fx, flood, id, reason, bytes.len(), now_ms) {
            Some(why) => Admitted::Kick {
                sender,
                why: Some(why),
            },
            None => Admitted::Done,
        },
    }
}

/// A frame over the size limit, never copied: the sender (when live) is
/// judged for it; `Some` when it is to be closed (not yet told).
pub(crate) fn judge_too_large<'p, S: Copy + Eq>(
    fx: &mut Step<S>,
    peers: &'p [PeerView<S>],
    from: S,
    len: usize,
    flood: &mut PeerFloodGuard,
    now_ms: u64,
) -> Option<(&'p PeerView<S>, KickFor)> {
    let sender = match live_sender(peers, from, len) {
        Ok(sender) => sender,
        Err(step) => {
            *fx = step;
            return None;
        }
    };
    let id = sender.state.id.as_str();
    judge_drop(fx, flood, id, DropReason::TooLarge, len, now_ms).map(|why| (sender, why))
}

/// Closes a live peer for `cause` (with `ending`'s code and reason when
/// given) and answers the LEAVE it is owed, due now or after the grace.
pub(crate) fn retire_peer<S: Copy>(
    fx: &mut Step<S>,
    limits: &Limits,
    peer: &PeerView<S>,
    cause: LeaveCause,
    ending: Option<(u16, &str)>,
    now_ms: u64,
) -> PendingLeave {
    let grace = now_ms + limits.leave_grace_ms;
    let (code, reason, due) = match cause {
        LeaveCause::Timeout => (
            CLOSE_TIMEOUT,
            "No heartbeat within the alive timeout",
            now_ms,
        ),
        LeaveCause::Kicked => (CLOSE_POLICY, "Rate limit exceeded", grace),
        LeaveCause::Closed => (1000, "Closed", grace),
        LeaveCause::Removed => (CLOSE_REMOVED, "Removed by a moderator", now_ms),
    };
    let (code, reason) = ending.unwrap_or((code, reason));
    close_socket(fx, peer, code, reason);
    fx.log(
        LogEvent::new(Level::Info, "retire")
            .peer(&peer.state.id)
            .field("cause", cause.label()),
    );
    PendingLeave {
        id: peer.state.id.clone(),
        due_ms: due,
        cause,
        proven: peer.state.proven,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_close_is_echoed_with_a_code_one_may_send() {
        assert_eq!(echo_close_code(Some(1000)), 1000);
        assert_eq!(echo_close_code(Some(4123)), 4123);
        assert_eq!(echo_close_code(Some(1001)), 1001);
        for unsendable in [Some(1005), Some(1006), Some(999), Some(5000), Some(0), None] {
            assert_eq!(echo_close_code(unsendable), 1000, "{unsendable:?}");
        }
    }
}
