//! What a moderator may do to a live room through the router's admin API:
//! look at it (`inspect`), remove one peer, optionally blocking
//! its id (and the ticket it joined with) from rejoining for a while, and
//! close the whole room: the machine's inputs `Inspect`, `Remove` and
//! `CloseRoom`, answered in the step (`crate::answer::Answer`). Rooms only: a home of the
//! open namespace answers none of them.
//!
//! Sans-IO like the rest of the room rules: each call returns a
//! [`Step`] that the adapter carries out through the same tail as every
//! other event, so the socket operations, the LEAVEs and the storage writes
//! of a removal are ordered exactly like those of a kick for flooding.
//!
//! Differences from the automatic kicks in `machine/membership.rs`, which a moderator
//! expects: the others are told LEAVE at once (no grace, since the peer is
//! not coming back), and a removal also catches a peer whose socket just
//! closed and is in its leave grace, so a reconnect racing the removal
//! cannot slip through.

use crate::answer::{Closure, PeerSummary, Removal, RoomSummary};
use crate::frame;
use crate::log::{Level, LogEvent};
use crate::metrics::{Counter, LeaveCause, RefuseReason};
use crate::peer::{
    close_socket, oldest_attached_seen, refuse, Limits, PeerView, Refusal, CLOSE_REMOVED,
    CLOSE_ROOM_CLOSED,
};
use crate::record::{Block, Record, Tracked};
use crate::socket::Recipient;
use crate::step::{SocketOp, Step};
use crate::timers;

/// The longest a removal may block an id from rejoining (a day): a block is
/// a cooling-off period, not a ban list, and lives in the room's record.
pub const MAX_BLOCK_SECS: u64 = 86_400;
/// A block that is not whole seconds from 1 to [`MAX_BLOCK_SECS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block must be whole seconds from 1 to {MAX_BLOCK_SECS}")]
pub struct BadBlock;

/// Reads a removal's block (`?block=` at the router, the signed header in
/// the room): the same rule on both sides of the internal contract.
pub fn parse_block_secs(text: &str) -> Result<u64, BadBlock> {
    match text.parse::<u64>() {
        Ok(secs) if (1..=MAX_BLOCK_SECS).contains(&secs) => Ok(secs),
        _ => Err(BadBlock),
    }
}

/// How many blocks one room keeps; past it the one ending soonest goes, so a
/// scripted moderator cannot grow a room's record without bound.
pub const MAX_BLOCKS_PER_ROOM: usize = 64;

/// What every peer of a closed room is shown.
pub const ROOM_CLOSED_MESSAGE: &str = "This room was closed by a moderator";

/// The room as a moderator sees it. Reads heartbeat timestamps, so the
/// host must pass fresh ones.
pub(crate) fn inspect<S>(
    limits: &Limits,
    record: &Record,
    peers: &[PeerView<S>],
    now_ms: u64,
) -> RoomSummary {
    let mut live: Vec<PeerSummary> = peers
        .iter()
        .filter(|p| p.is_live())
        .map(|p| PeerSummary {
            id: p.state.id.clone(),
            proven: p.state.proven,
            joined_ms: p.state.joined_ms,
            last_seen_ms: p.last_seen_ms(),
            stale: p.is_stale(now_ms, limits),
        })
        .collect();
    crate::order::sort_small_by(&mut live, |a, b| a.id.cmp(&b.id));
    RoomSummary {
        peers: live,
        leaving: record.leaves.iter().map(|l| l.id.clone()).collect(),
        queued_messages: record.queue.len(),
        blocked: record
            .blocks
            .iter()
            .filter(|b| b.until_ms > now_ms)
            .cloned()
            .collect(),
    }
}

/// Removes `id` from the room: its live sockets get an ERROR the stock
/// client shows and close with [`CLOSE_REMOVED`]; everyone else gets LEAVE
/// now; with `block_secs`, the id may not rejoin before then. `None` (and
/// nothing done) when the id is not in the room.
pub(crate) fn remove<S: Copy + Eq>(
    fx: &mut Step<S>,
    rec: &mut Tracked,
    limits: &Limits,
    peers: &[PeerView<S>],
    id: &str,
    block_secs: Option<u64>,
    now: u64,
) -> Option<Removal> {
    let targets: Vec<&PeerView<S>> = peers
        .iter()
        .filter(|p| p.is_live() && p.state.id == id)
        .collect();
    let in_grace = rec.leaves.iter().any(|l| l.id == id);
    if targets.is_empty() && !in_grace {
        return None;
    }
    let notice = match block_secs {
        Some(secs) => format!("{REMOVED_MESSAGE} (you may rejoin in {secs} s)"),
        None => REMOVED_MESSAGE.to_owned(),
    };
    for target in &targets {
        fx.op(SocketOp::Send {
            to: Recipient::Peer(target.socket),
            text: frame::render_error(&notice),
        });
        close_socket(fx, target, CLOSE_REMOVED, "Removed by a moderator");
    }
    if in_grace {
        rec.leaves.retain(|l| l.id != id);
    }
    let others: Vec<&PeerView<S>> = peers
        .iter()
        .filter(|p| p.is_live() && p.state.id != id)
        .collect();
    for other in &others {
        fx.op(SocketOp::Send {
            to: Recipient::Peer(other.socket),
            text: frame::render_leave(id, &other.state.id),
        });
    }
    fx.count(Counter::Leave(LeaveCause::Removed), 1);
    // The ticket it joined with is blocked too: with tickets that name
    // no id, the same player could otherwise come straight back as another.
    let ticket = targets.iter().find_map(|t| t.state.holder.clone());
    let blocked_until_ms = block_secs.map(|secs| {
        let until_ms = now + secs.min(MAX_BLOCK_SECS) * 1000;
        add_block(rec, id, ticket, until_ms);
        until_ms
    });
    let mut event = LogEvent::new(Level::Warn, "removed")
        .peer(id)
        .field("cause", LeaveCause::Removed.label())
        .field("closed", targets.len())
        .field("told", others.len());
    if let Some(secs) = block_secs {
        event = event.field("block_secs", secs);
    }
    fx.log(event);
    let seen = oldest_attached_seen(others.iter().copied());
    timers::plan_alarm(rec, limits, seen, now);
    Some(Removal {
        closed: targets.len(),
        told: others.len(),
        blocked_until_ms,
    })
}

/// Closes the room: every live peer gets an ERROR and a close with
/// [`CLOSE_ROOM_CLOSED`]; the queue, the pending LEAVEs and the blocks are
/// dropped, so the record (and the alarm) go and nothing is left in
/// storage. The room may be joined again afterwards. `None` when there was
/// nothing to close.
pub(crate) fn close_room<S: Copy + Eq>(
    fx: &mut Step<S>,
    rec: &mut Tracked,
    limits: &Limits,
    peers: &[PeerView<S>],
    now: u64,
) -> Option<Closure> {
    let live: Vec<&PeerView<S>> = peers.iter().filter(|p| p.is_live()).collect();
    let nothing_stored = rec.queue.is_empty() && rec.leaves.is_empty() && rec.blocks.is_empty();
    if live.is_empty() && nothing_stored {
        return None;
    }
    for peer in &live {
        fx.op(SocketOp::Send {
            to: Recipient::Peer(peer.socket),
            text: frame::render_error(ROOM_CLOSED_MESSAGE),
        });
        close_socket(fx, peer, CLOSE_ROOM_CLOSED, "Room closed by a moderator");
    }
    let dropped = std::mem::take(&mut rec.queue);
    fx.deletes.extend(dropped.iter().map(|q| q.key()));
    rec.leaves.clear();
    rec.blocks.clear();
    fx.log(
        LogEvent::new(Level::Warn, "room_closed")
            .field("closed", live.len())
            .field("dropped_messages", dropped.len()),
    );
    timers::plan_alarm(rec, limits, None, now);
    Some(Closure {
        closed: live.len(),
        dropped_messages: dropped.len(),
    })
}

/// What the stock client shows (as a `server-error`) when it is removed.
pub const REMOVED_MESSAGE: &str = "You were removed from this room by a moderator";

/// When a block on `id`, or on the `ticket` it joins with, ends, if one is
/// in force at `now_ms`.
pub(crate) fn blocked_until(
    record: &Record,
    id: &str,
    ticket: Option<&str>,
    now_ms: u64,
) -> Option<u64> {
    record
        .blocks
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
    let refusal = Refusal {
        frame: frame::render_error(&msg),
        code: CLOSE_REMOVED,
        reason: "Removed by a moderator".to_owned(),
        counted: RefuseReason::Blocked,
        level: Level::Info,
        logged: (RefuseReason::Blocked.label(), None),
    };
    refuse(fx, id, refusal);
}

/// Blocks `id` and its `ticket` until `until_ms` (a later block of the same
/// id replaces it), keeping at most [`MAX_BLOCKS_PER_ROOM`].
fn add_block(meta: &mut Record, id: &str, ticket: Option<String>, until_ms: u64) {
    meta.blocks.retain(|b| b.id != id);
    if meta.blocks.len() >= MAX_BLOCKS_PER_ROOM {
        if let Some(soonest) = meta
            .blocks
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| b.until_ms)
            .map(|(i, _)| i)
        {
            meta.blocks.swap_remove(soonest);
        }
    }
    meta.blocks.push(Block {
        id: id.to_owned(),
        ticket,
        until_ms,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_whole_seconds_from_one_to_a_day() {
        assert_eq!(parse_block_secs("1"), Ok(1));
        assert_eq!(parse_block_secs("86400"), Ok(MAX_BLOCK_SECS));
        for bad in ["0", "86401", "-5", "1.5", "soon", ""] {
            assert_eq!(parse_block_secs(bad), Err(BadBlock), "{bad}");
        }
    }
}
