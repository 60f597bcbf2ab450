//! The placement rule: which peer ids live in an object, and what the
//! object owes an id that lives here. It is the one thing that tells the
//! rooms mode from the open namespace; every other rule is the machine's
//! (`machine/`) and the same in both.
//!
//! - Rooms mode: every id of the room lives in the room's object. Messages
//!   for an absent member wait here; a LEAVE goes to every member; the
//!   room has a capacity, blocks and a moderator.
//! - Open mode: an object is *home* to the ids it is named for: the id
//!   itself, or with `OPEN_GROUP_SEPARATOR` every id whose part before the
//!   first separator is the object's name (its group: `game42-alice` and
//!   `game42-bob` live in `game42`; an id without the separator has its
//!   own). A frame to an id that lives elsewhere is forwarded to its home;
//!   the queue holds the messages waiting for the ids here; a LEAVE goes to
//!   the ids each one exchanged signaling with (its correspondents), here
//!   or elsewhere; a group's object holds at most `MAX_PEERS_PER_GROUP`.

use crate::peer::Limits;
use crate::record::Record;

/// Where ids live, seen from one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement<'a> {
    /// A game room: every id of the room lives here.
    Room,
    /// A home of the open namespace, named `home`; with a `separator`, the
    /// home of a group of ids.
    Open {
        home: &'a str,
        separator: Option<char>,
    },
}

/// The name of the object an open-namespace id lives in: its part before
/// the first `separator`, or the whole id.
pub fn home_of(id: &str, separator: Option<char>) -> &str {
    match separator.and_then(|sep| id.split_once(sep)) {
        Some((group, _)) if !group.is_empty() => group,
        _ => id,
    }
}

impl<'a> Placement<'a> {
    /// Whether `id` lives in this object.
    pub fn lives_here(&self, id: &str) -> bool {
        match self {
            Placement::Room => true,
            Placement::Open { home, separator } => home_of(id, *separator) == *home,
        }
    }

    /// The name of the object `id` lives in, seen from here (a room sends
    /// nothing elsewhere).
    pub fn object_of<'i>(&self, id: &'i str) -> &'i str {
        match self {
            Placement::Room => id,
            Placement::Open { separator, .. } => home_of(id, *separator),
        }
    }

    /// The home's name in open mode.
    pub(crate) fn home(&self) -> Option<&'a str> {
        match self {
            Placement::Room => None,
            Placement::Open { home, .. } => Some(home),
        }
    }

    /// How many live peers the object admits at most, and what a join past
    /// it is told.
    pub(crate) fn capacity(&self, limits: &Limits) -> Option<(usize, String)> {
        match self {
            Placement::Room => {
                let max = limits.max_peers;
                Some((max, format!("Room is full ({max} peers)")))
            }
            Placement::Open {
                home,
                separator: Some(_),
            } => {
                let max = limits.max_peers_per_group;
                let msg = format!(
                    "Too many peers share the id prefix {home:?} ({max} at most); use another prefix"
                );
                Some((max, msg))
            }
            Placement::Open {
                separator: None, ..
            } => None,
        }
    }

    /// Whether the same client (the same `holder`: a token's digest) may
    /// replace a live socket of its id, as the reference server allows a
    /// reconnect with the same token. In a room the holder is the ticket,
    /// which several players may share, so only a stale holder is replaced.
    pub(crate) fn same_client_replaces(&self) -> bool {
        matches!(self, Placement::Open { .. })
    }

    /// Whether a peer's new destinations per minute are bounded
    /// (`MAX_NEW_DESTINATIONS_PER_MINUTE`): in the open namespace, where
    /// each may cost a request between objects and a queue of its own; a
    /// room's ids are its members.
    pub(crate) fn bounds_destinations(&self) -> bool {
        matches!(self, Placement::Open { .. })
    }

    /// Whether a LEAVE goes to the leaver's correspondents (open mode)
    /// rather than to everyone here (a room), and so whether the object
    /// keeps correspondents at all.
    pub(crate) fn keeps_correspondents(&self) -> bool {
        matches!(self, Placement::Open { .. })
    }

    /// Whether a message of `bytes` from `src` may wait in the queue: within
    /// the object's bounds in count and bytes, and within the sender's share.
    /// In a room one sender may hold at most `1 / max_peers` of the queue's
    /// messages and of its bytes (rounded up), so a member that fills its
    /// share, however fast, leaves every other member's share untouched; in
    /// a home, at most `max_queued_per_sender` messages and the same part of
    /// its bytes (`max_queued_per_sender / max_queued_messages` of
    /// `max_queued_bytes`, rounded up), so a few large frames from one
    /// sender cannot fill it for the others either.
    pub(crate) fn may_queue(
        &self,
        limits: &Limits,
        record: &Record,
        src: &str,
        bytes: usize,
    ) -> bool {
        let within_bounds = record.queue.len() < limits.max_queued_messages
            && record.queued_bytes() + bytes <= limits.max_queued_bytes;
        within_bounds
            && match self {
                Placement::Room => {
                    let peers = limits.max_peers.max(1);
                    let (held, held_bytes) = record
                        .queue
                        .iter()
                        .filter(|q| q.src == src)
                        .fold((0, 0), |(n, b), q| (n + 1, b + q.bytes));
                    held < limits.max_queued_messages.div_ceil(peers)
                        && held_bytes + bytes <= limits.max_queued_bytes.div_ceil(peers)
                }
                Placement::Open { .. } => {
                    let (held, held_bytes) = record
                        .queue
                        .iter()
                        .filter(|q| q.src == src)
                        .fold((0, 0), |(n, b), q| (n + 1, b + q.bytes));
                    let share = limits.max_queued_per_sender.min(limits.max_queued_messages);
                    let bytes_share = (limits.max_queued_bytes * share)
                        .div_ceil(limits.max_queued_messages.max(1));
                    held < limits.max_queued_per_sender && held_bytes + bytes <= bytes_share
                }
            }
    }
}
