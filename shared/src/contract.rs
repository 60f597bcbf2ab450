//! The internal contract between the router and the rooms Worker.
//!
//! The rooms Worker has no public route: the only way in is the router's
//! service binding. The router builds every internal request from scratch
//! (so nothing a client sent is forwarded) and states what it verified in
//! these headers. The contract is versioned so the tiers can be deployed
//! independently: the rooms Worker accepts the current and the previous
//! version, so either tier may lead by one.

/// Version the router speaks.
pub const VERSION: u32 = 1;
/// Oldest version the rooms Worker still accepts.
pub const OLDEST_ACCEPTED: u32 = 1;

pub const HEADER_VERSION: &str = "X-PeerJS-Internal-Version";
pub const HEADER_ROOM: &str = "X-PeerJS-Room";
pub const HEADER_PEER: &str = "X-PeerJS-Peer";
pub const HEADER_PROVEN: &str = "X-PeerJS-Proven";

/// Every internal header, for stripping.
pub const ALL_HEADERS: [&str; 4] = [HEADER_VERSION, HEADER_ROOM, HEADER_PEER, HEADER_PROVEN];

/// Internal paths on the rooms Worker.
pub const PATH_CONNECT: &str = "/internal/connect";
pub const PATH_ROSTER: &str = "/internal/roster";
pub const PATH_HEALTH: &str = "/internal/health";
pub const PATH_STATS: &str = "/internal/stats";
/// Gathered cluster figures (no room).
pub const PATH_METRICS: &str = "/internal/metrics";
/// A router's counter deltas (no room).
pub const PATH_REPORT: &str = "/internal/report";

/// What the rooms Worker learns from a request's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub room: String,
    pub peer: Option<String>,
    pub proven: bool,
}

/// Why the rooms Worker refused an internal request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("missing internal contract version: only the router may call the rooms Worker")]
    NoVersion,
    #[error(
        "internal contract version {0} is not supported (accepted: {OLDEST_ACCEPTED}..={VERSION})"
    )]
    Unsupported(String),
    #[error("missing or invalid room")]
    BadRoom,
    #[error("missing or invalid peer id")]
    BadPeer,
}

/// Checks only the contract version, for requests about no room.
pub fn read_version(header: impl Fn(&str) -> Option<String>) -> Result<u32, ContractError> {
    let version = header(HEADER_VERSION).ok_or(ContractError::NoVersion)?;
    match version.trim().parse::<u32>() {
        Ok(v) if (OLDEST_ACCEPTED..=VERSION).contains(&v) => Ok(v),
        _ => Err(ContractError::Unsupported(version)),
    }
}

/// Checks the headers of an internal request; `peer_required` for upgrades.
pub fn read(
    header: impl Fn(&str) -> Option<String>,
    peer_required: bool,
) -> Result<Admission, ContractError> {
    read_version(&header)?;
    let room = header(HEADER_ROOM)
        .filter(|r| crate::ids::is_valid_room_id(r))
        .ok_or(ContractError::BadRoom)?;
    let peer = match header(HEADER_PEER) {
        Some(p) if crate::ids::is_valid_peer_id(&p) => Some(p),
        Some(_) => return Err(ContractError::BadPeer),
        None if peer_required => return Err(ContractError::BadPeer),
        None => None,
    };
    let proven = header(HEADER_PROVEN).as_deref() == Some("1");
    Ok(Admission { room, peer, proven })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(&name.to_ascii_lowercase()).cloned()
    }

    #[test]
    fn a_complete_request_is_admitted() {
        let a = read(
            headers(&[
                (HEADER_VERSION, "1"),
                (HEADER_ROOM, "r1"),
                (HEADER_PEER, "alice"),
                (HEADER_PROVEN, "1"),
            ]),
            true,
        )
        .expect("admitted");
        assert_eq!(
            a,
            Admission {
                room: "r1".into(),
                peer: Some("alice".into()),
                proven: true
            }
        );
    }

    #[test]
    fn requests_without_the_contract_are_refused() {
        assert_eq!(
            read(headers(&[(HEADER_ROOM, "r1")]), false),
            Err(ContractError::NoVersion)
        );
        assert!(matches!(
            read(
                headers(&[(HEADER_VERSION, "9"), (HEADER_ROOM, "r1")]),
                false
            ),
            Err(ContractError::Unsupported(_))
        ));
        assert_eq!(
            read(headers(&[(HEADER_VERSION, "1")]), false),
            Err(ContractError::BadRoom)
        );
        assert_eq!(
            read(headers(&[(HEADER_VERSION, "1"), (HEADER_ROOM, "r1")]), true),
            Err(ContractError::BadPeer)
        );
        assert_eq!(
            read(
                headers(&[
                    (HEADER_VERSION, "1"),
                    (HEADER_ROOM, "r1"),
                    (HEADER_PEER, "a/b")
                ]),
                true
            ),
            Err(ContractError::BadPeer)
        );
    }
}
