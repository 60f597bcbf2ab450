//! What an input found ([`Answer`]), carried in the step for the host to
//! answer as JSON: a room as a moderator sees it, what a removal did, what
//! closing a room did, what a delivery from another object came to.

use crate::record::Block;
use serde::{Deserialize, Serialize};

/// What a moderator's call found, for the host to answer as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Summary(RoomSummary),
    Removed(Removal),
    Closed(Closure),
    /// What a delivery from another object came to.
    Delivered(DeliveryReport),
    /// A sweep the shard called: when the next is wanted (`None`: nobody
    /// is left to sweep).
    Swept {
        next_sweep_ms: Option<u64>,
    },
}

/// What an object did with the parcels of one delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Written to a live socket.
    pub sent: usize,
    /// Waiting in the queue for an id that is offline.
    pub queued: usize,
    /// Dropped: the sender of each queueable one was told EXPIRE.
    pub dropped: usize,
    /// The senders whose relays were dropped, each once: their object logs
    /// it, sampled per sender as every drop is (the destination only counts
    /// it, or a sender writing to many ids would make a warn line at each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_from: Vec<String>,
}

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

/// What a removal found; no answer means the id is neither connected nor
/// in its leave grace.
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
