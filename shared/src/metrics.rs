//! Counters the core reports as effects; the Workers add them up and ship them.
//!
//! Each counter is a metric name plus at most one label, so that a set of
//! counts can be kept in a small map and rendered as Prometheus text.

use crate::frame::{DropReason, RelayKind};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefuseReason {
    RoomFull,
    IdTaken,
    BadQuery,
    BadKey,
    BadTicket,
    Origin,
    RateLimited,
    Config,
}

impl RefuseReason {
    pub fn label(self) -> &'static str {
        match self {
            RefuseReason::RoomFull => "room_full",
            RefuseReason::IdTaken => "id_taken",
            RefuseReason::BadQuery => "bad_query",
            RefuseReason::BadKey => "bad_key",
            RefuseReason::BadTicket => "bad_ticket",
            RefuseReason::Origin => "origin",
            RefuseReason::RateLimited => "rate_limited",
            RefuseReason::Config => "config",
        }
    }
}

/// Why a peer left the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeaveCause {
    /// Its socket closed and it did not come back within the grace period.
    Closed,
    /// No heartbeat or message for the alive timeout.
    Timeout,
    /// Closed by the server for flooding.
    Kicked,
}

impl LeaveCause {
    pub fn label(self) -> &'static str {
        match self {
            LeaveCause::Closed => "closed",
            LeaveCause::Timeout => "timeout",
            LeaveCause::Kicked => "kicked",
        }
    }
}

/// One countable thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    ConnectionAccepted,
    ConnectionRefused(RefuseReason),
    Relayed(RelayKind),
    Queued,
    Expired,
    Dropped(DropReason),
    RateLimited,
    Leave(LeaveCause),
    Takeover,
}
