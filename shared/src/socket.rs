//! What the core knows of one socket: its attachment ([`PeerState`], kept
//! by the runtime across hibernation) and which socket a frame goes to ([`Recipient`]).

use serde::{Deserialize, Serialize};

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
    /// What identifies the client holding the id
    /// ([`crate::machine::Join::holder`]): the ticket in a room, the digest
    /// of its own token in the open namespace. Kept under its first name.
    #[serde(
        default,
        rename = "token_digest",
        skip_serializing_if = "Option::is_none"
    )]
    pub holder: Option<String>,
}

/// Who a frame goes to: an existing socket, or the one being joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient<S> {
    Peer(S),
    Joiner,
}
