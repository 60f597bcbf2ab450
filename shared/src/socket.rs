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
    /// Open namespace: the ids this id exchanged signaling with recently,
    /// who get its LEAVE (see `machine/correspondents.rs`). Kept here, not
    /// in the object's record: a new correspondent then costs no storage
    /// write, and the attachment survives hibernation as storage does. At
    /// most [`crate::record::MAX_CORRESPONDENTS`], so the attachment stays
    /// within the runtime's 2 KiB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub correspondents: Vec<crate::record::Correspondent>,
}

/// Who a frame goes to: an existing socket, or the one being joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient<S> {
    Peer(S),
    Joiner,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MAX_ID_LEN;
    use crate::record::{Correspondent, MAX_CORRESPONDENTS};

    #[test]
    fn the_fullest_attachment_fits_the_runtimes_2_kib() {
        // The attachment is this JSON, as a string (workers/rooms/src/
        // stored.rs); the runtime's serialization of a string adds a few
        // bytes of header, so leave it 16.
        let longest = "x".repeat(MAX_ID_LEN);
        let state = PeerState {
            id: longest.clone(),
            proven: true,
            joined_ms: u64::from(u32::MAX) * 1_000,
            seen_ms: u64::from(u32::MAX) * 1_000,
            closing: false,
            holder: Some("f".repeat(64)),
            correspondents: vec![
                Correspondent {
                    of: String::new(),
                    id: longest,
                    seen_ms: u64::from(u32::MAX) * 1_000,
                };
                MAX_CORRESPONDENTS
            ],
        };
        let json = serde_json::to_string(&state).unwrap_or_default();
        assert!(json.len() + 16 <= 2_048, "{} bytes", json.len());
    }
}
