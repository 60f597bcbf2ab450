//! What a moderator may do to a live room through the router's admin API:
//! look at it ([`Room::inspect`]), remove one peer ([`Room::remove`]),
//! optionally blocking its id from rejoining for a while, and close the whole
//! room ([`Room::close_room`]).
//!
//! Sans-IO like the rest of the room rules: each call returns a
//! [`Step`] that the adapter carries out through the same tail as every
//! other event, so the socket operations, the LEAVEs and the storage writes
//! of a removal are ordered exactly like those of a kick for flooding.
//!
//! Differences from the automatic kicks in `room.rs`, which a moderator
//! expects: the others are told LEAVE at once (no grace, since the peer is
//! not coming back), and a removal also catches a peer whose socket just
//! closed and is in its leave grace, so a reconnect racing the removal
//! cannot slip through.

use crate::frame;
use crate::log::{Level, LogEvent};
use crate::metrics::{Counter, LeaveCause};
use crate::peer::{close_socket, oldest_attached_seen, PeerView, CLOSE_REMOVED, CLOSE_ROOM_CLOSED};
use crate::room::{Block, Room, RoomMeta, REMOVED_MESSAGE};
use crate::socket::Recipient;
use crate::step::{SocketOp, Step};
use serde::Serialize;

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

/// One live peer as a moderator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerSummary {
    pub id: String,
    /// A ticket proved the id.
    pub proven: bool,
    pub joined_ms: u64,
    /// The last frame or heartbeat the room saw from it.
    pub last_seen_ms: u64,
    /// Silent for the alive timeout: the next sweep or join retires it.
    pub stale: bool,
}

/// What `GET /admin/rooms/{room}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomSummary {
    pub peers: Vec<PeerSummary>,
    /// Ids whose socket closed and whose LEAVE waits for the grace to end.
    pub leaving: Vec<String>,
    pub queued_messages: usize,
    pub blocked: Vec<Block>,
}

impl RoomSummary {
    /// Nobody is in the room and it remembers nothing: it does not exist.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
            && self.leaving.is_empty()
            && self.queued_messages == 0
            && self.blocked.is_empty()
    }
}

/// What a removal found; `None` from [`Room::remove`] means the id is neither
/// connected nor in its leave grace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// Live sockets of the id that were closed (0 when it was in its grace).
    pub closed: usize,
    /// Peers told LEAVE.
    pub told: usize,
    /// When the block ends, if one was asked for.
    pub blocked_until_ms: Option<u64>,
}

/// What closing a room did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closure {
    pub closed: usize,
    pub dropped_messages: usize,
}

impl Room<'_> {
    /// The room as a moderator sees it. Reads heartbeat timestamps, so the
    /// adapter must pass fresh ones.
    pub fn inspect<S>(&self, meta: &RoomMeta, peers: &[PeerView<S>], now_ms: u64) -> RoomSummary {
        let mut live: Vec<PeerSummary> = peers
            .iter()
            .filter(|p| p.is_live())
            .map(|p| PeerSummary {
                id: p.state.id.clone(),
                proven: p.state.proven,
                joined_ms: p.state.joined_ms,
                last_seen_ms: p.last_seen_ms(),
                stale: p.is_stale(now_ms, self.cfg),
            })
            .collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        RoomSummary {
            peers: live,
            leaving: meta.leaves.iter().map(|l| l.id.clone()).collect(),
            queued_messages: meta.queue.len(),
            blocked: meta
                .blocks
                .iter()
                .filter(|b| b.until_ms > now_ms)
                .cloned()
                .collect(),
        }
    }

    /// Removes `id` from the room: its live sockets get an ERROR the stock
    /// client shows and close with [`CLOSE_REMOVED`]; everyone else gets
    /// LEAVE now; with `block_secs`, the id may not rejoin before then.
    /// `None` (and an empty step) when the id is not in the room.
    pub fn remove<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        id: &str,
        block_secs: Option<u64>,
        now_ms: u64,
    ) -> (Step<S>, Option<Removal>) {
        let mut fx = Step::default();
        let targets: Vec<&PeerView<S>> = peers
            .iter()
            .filter(|p| p.is_live() && p.state.id == id)
            .collect();
        let in_grace = meta.leaves.iter().any(|l| l.id == id);
        if targets.is_empty() && !in_grace {
            return (fx, None);
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
            close_socket(&mut fx, target, CLOSE_REMOVED, "Removed by a moderator");
        }
        if in_grace {
            meta.leaves.retain(|l| l.id != id);
        }
        fx.record_changed = true;
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
        let ticket = targets.iter().find_map(|t| t.state.token_digest.clone());
        let blocked_until_ms = block_secs.map(|secs| {
            let until_ms = now_ms + secs.min(MAX_BLOCK_SECS) * 1000;
            add_block(meta, id, ticket, until_ms);
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
        self.plan_alarm(
            &mut fx,
            meta,
            oldest_attached_seen(others.iter().copied()),
            now_ms,
        );
        let removal = Removal {
            closed: targets.len(),
            told: others.len(),
            blocked_until_ms,
        };
        (fx, Some(removal))
    }

    /// Closes the room: every live peer gets an ERROR and a close with
    /// [`CLOSE_ROOM_CLOSED`]; the queue, the pending LEAVEs and the blocks
    /// are dropped, so the record (and the alarm) go and nothing is left in
    /// storage. The room may be joined again afterwards.
    /// `None` when there was nothing to close.
    pub fn close_room<S: Copy + Eq>(
        &self,
        meta: &mut RoomMeta,
        peers: &[PeerView<S>],
        now_ms: u64,
    ) -> (Step<S>, Option<Closure>) {
        let mut fx = Step::default();
        let live: Vec<&PeerView<S>> = peers.iter().filter(|p| p.is_live()).collect();
        let nothing_stored =
            meta.queue.is_empty() && meta.leaves.is_empty() && meta.blocks.is_empty();
        if live.is_empty() && nothing_stored {
            return (fx, None);
        }
        for peer in &live {
            fx.op(SocketOp::Send {
                to: Recipient::Peer(peer.socket),
                text: frame::render_error(ROOM_CLOSED_MESSAGE),
            });
            close_socket(
                &mut fx,
                peer,
                CLOSE_ROOM_CLOSED,
                "Room closed by a moderator",
            );
        }
        let dropped = std::mem::take(&mut meta.queue);
        fx.deletes.extend(dropped.iter().map(|q| q.key()));
        meta.leaves.clear();
        meta.blocks.clear();
        fx.record_changed = true;
        fx.log(
            LogEvent::new(Level::Warn, "room_closed")
                .field("closed", live.len())
                .field("dropped_messages", dropped.len()),
        );
        self.plan_alarm(&mut fx, meta, None, now_ms);
        let closure = Closure {
            closed: live.len(),
            dropped_messages: dropped.len(),
        };
        (fx, Some(closure))
    }
}

/// Blocks `id` and its `ticket` until `until_ms` (a later block of the same
/// id replaces it), keeping at most [`MAX_BLOCKS_PER_ROOM`].
fn add_block(meta: &mut RoomMeta, id: &str, ticket: Option<String>, until_ms: u64) {
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
