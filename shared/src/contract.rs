//! The internal contract between the router and the rooms Worker.
//!
//! The rooms Worker has no public route: the only way in is the router's
//! service binding. The router builds every internal request from scratch
//! (so nothing a client sent is forwarded) and states what it verified in
//! these headers. The contract is versioned so the tiers can be deployed
//! independently: the rooms Worker accepts the current and the previous
//! version, so either tier may lead by one.
//!
//! Version 2 adds the open namespace: an upgrade with
//! `X-PeerJS-Namespace: open` names no room; it goes to the home of its
//! peer id with the digest of the client's token. Homes hand each other
//! frames by a method call ([`delivery_contract`]), object to object
//! through the namespace binding, which no public request can reach.

/// Version the router speaks.
pub const VERSION: u32 = 2;
/// Oldest version the rooms Worker still accepts.
pub const OLDEST_ACCEPTED: u32 = 1;

pub const HEADER_VERSION: &str = "X-PeerJS-Internal-Version";
pub const HEADER_ROOM: &str = "X-PeerJS-Room";
pub const HEADER_PEER: &str = "X-PeerJS-Peer";
pub const HEADER_PROVEN: &str = "X-PeerJS-Proven";
/// `open` for an upgrade into the open namespace (absent: rooms).
pub const HEADER_NAMESPACE: &str = "X-PeerJS-Namespace";
/// The [`crate::machine::token_digest`] of an open-namespace client's token;
/// in a room's upgrade, the [`crate::ticket::RoomGrant::holder`] of its
/// ticket (absent without signed tickets).
pub const HEADER_TOKEN_DIGEST: &str = "X-PeerJS-Token-Digest";

/// An admin removal's block, in seconds (see `moderation.rs`). Signed only
/// when present, so requests without it sign as they did before it existed
/// and tiers a version apart still agree.
pub const HEADER_BLOCK_SECS: &str = "X-PeerJS-Block-Secs";

/// A delivery's body, as [`crate::secret::sha256_hex_of`] writes it: signed
/// only when present, as [`HEADER_BLOCK_SECS`] is, so a delivery's
/// signature covers the frames it carries.
pub const HEADER_BODY_DIGEST: &str = "X-PeerJS-Body-Digest";

/// `t=<ms>,v1=<hex HMAC-SHA256>` over the request's contract (see [`sign`]).
pub const HEADER_SIGNATURE: &str = "X-PeerJS-Signature";

/// Every internal header, for stripping. All but the last (the signature
/// itself) are what a signature covers.
pub const ALL_HEADERS: [&str; 7] = [
    HEADER_VERSION,
    HEADER_ROOM,
    HEADER_PEER,
    HEADER_PROVEN,
    HEADER_NAMESPACE,
    HEADER_TOKEN_DIGEST,
    HEADER_SIGNATURE,
];

/// How far a signature's time may be from the verifier's clock.
pub const SIGNATURE_WINDOW_MS: u64 = 60_000;

/// The bytes a signature covers: the path and every contract header (empty
/// when absent), one per line, then the time, then [`HEADER_BLOCK_SECS`] when
/// present. Anything else about the request (method, body) decides nothing
/// about identity or effect.
fn signed_text(path: &str, header: &impl Fn(&str) -> Option<String>, at_ms: u64) -> String {
    let mut text = String::with_capacity(160);
    text.push_str(path);
    let (signed, _signature) = ALL_HEADERS.split_at(ALL_HEADERS.len() - 1);
    for name in signed {
        text.push('\n');
        text.push_str(header(name).as_deref().unwrap_or(""));
    }
    text.push('\n');
    text.push_str(&at_ms.to_string());
    if let Some(block) = header(HEADER_BLOCK_SECS) {
        text.push_str("\nblock=");
        text.push_str(&block);
    }
    if let Some(body) = header(HEADER_BODY_DIGEST) {
        text.push_str("\nbody=");
        text.push_str(&body);
    }
    text
}

fn mac_hex(secret: &str, text: &str) -> String {
    hmac_sha256::HMAC::mac(text.as_bytes(), secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The [`HEADER_SIGNATURE`] value for an internal request whose contract
/// headers `header` reads, signed with the secret both tiers share
/// (`INTERNAL_SECRET`). Defence in depth: the binding alone already keeps
/// the public out, the signature keeps out any other Worker given it.
pub fn sign(
    secret: &str,
    path: &str,
    header: impl Fn(&str) -> Option<String>,
    now_ms: u64,
) -> String {
    let text = signed_text(path, &header, now_ms);
    format!("t={now_ms},v1={}", mac_hex(secret, &text))
}

/// Checks [`HEADER_SIGNATURE`] against each accepted secret (the current
/// one and, during a rotation, the previous one). No secrets: nothing to
/// check (local dev).
pub fn verify(
    secrets: &[String],
    path: &str,
    header: impl Fn(&str) -> Option<String>,
    now_ms: u64,
) -> Result<(), ContractError> {
    if secrets.is_empty() {
        return Ok(());
    }
    let value = header(HEADER_SIGNATURE).ok_or(ContractError::Unsigned)?;
    let (at, mac) = value
        .split_once(",v1=")
        .and_then(|(t, mac)| Some((t.strip_prefix("t=")?.parse::<u64>().ok()?, mac)))
        .ok_or(ContractError::BadSignature)?;
    if now_ms.abs_diff(at) > SIGNATURE_WINDOW_MS {
        return Err(ContractError::StaleSignature);
    }
    let text = signed_text(path, &header, at);
    let valid = secrets
        .iter()
        .any(|secret| crate::secret::matches(mac, &mac_hex(secret, &text)));
    if valid {
        Ok(())
    } else {
        Err(ContractError::BadSignature)
    }
}

/// Internal paths on the rooms Worker.
pub const PATH_CONNECT: &str = "/internal/connect";
pub const PATH_ROSTER: &str = "/internal/roster";
pub const PATH_HEALTH: &str = "/internal/health";
pub const PATH_STATS: &str = "/internal/stats";
/// Test hook (`DEBUG_ENDPOINTS` in both tiers): the room's wasm panics.
pub const PATH_PANIC: &str = "/internal/panic";
/// Gathered cluster figures (no room).
pub const PATH_METRICS: &str = "/internal/metrics";
/// A router's counter deltas (no room).
pub const PATH_REPORT: &str = "/internal/report";
/// Admin API, about one room: its live peers ([`crate::moderation::RoomSummary`]).
pub const PATH_ADMIN_ROOM: &str = "/internal/admin/room";
/// Admin API: remove the peer the request names, blocked for
/// [`HEADER_BLOCK_SECS`] when given.
pub const PATH_ADMIN_REMOVE: &str = "/internal/admin/remove";
/// Admin API: close the room.
pub const PATH_ADMIN_CLOSE: &str = "/internal/admin/close";
/// Open namespace, home to home only: a batch of parcels
/// ([`crate::delivery::encode`]). Not a request path: a delivery is a
/// method call between objects ([`delivery_contract`]); this names what
/// its signature covers.
pub const PATH_DELIVER: &str = "/internal/deliver";
/// Stats shard to object only (the Worker's entry never forwards it): run
/// the liveness sweep now; the answer is the object's
/// [`crate::metrics::Report`]. Unsigned: a sweep retires only peers the
/// runtime's own timestamps show silent, so a forged call changes nothing.
pub const PATH_SWEEP: &str = "/internal/sweep";

/// What the rooms Worker learns from a request's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub room: String,
    pub peer: Option<String>,
    pub proven: bool,
    /// The digest naming the ticket that admitted the peer, if any.
    pub ticket: Option<String>,
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
    #[error("missing or invalid token digest")]
    BadTokenDigest,
    #[error("unsigned internal request: the rooms tier requires the router's signature (INTERNAL_SECRET)")]
    Unsigned,
    #[error("bad internal signature: the tiers do not share INTERNAL_SECRET")]
    BadSignature,
    #[error("internal signature too old or from the future")]
    StaleSignature,
    #[error("this delivery is for another object")]
    WrongObject,
    #[error("the delivery's body is not the one its headers name")]
    BodyMismatch,
}

/// A delivery's contract: a delivery is a method call from one object to
/// another (JS RPC), not a request, so it carries the contract headers as
/// text, one `name:value` line each. They bind the destination `to` and
/// the sender `from`; with a `secret` (the rooms tier's `INTERNAL_SECRET`)
/// also the body's digest, all signed at [`PATH_DELIVER`].
pub fn delivery_contract(
    from: &str,
    to: &str,
    body: &[u8],
    secret: Option<&str>,
    now_ms: u64,
) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        (HEADER_VERSION, VERSION.to_string()),
        (HEADER_ROOM, to.to_owned()),
        (HEADER_PEER, from.to_owned()),
    ];
    // The digest binds the body to the signature; unsigned, it would bind
    // nothing (whoever can call can compute it), so it is not computed.
    if let Some(secret) = secret {
        lines.push((HEADER_BODY_DIGEST, crate::secret::sha256_hex_of(body)));
        let signature = sign(secret, PATH_DELIVER, line_reader(&lines), now_ms);
        lines.push((HEADER_SIGNATURE, signature));
    }
    lines
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect()
}

/// Reads a header from `name:value` pairs, names compared as HTTP does.
fn line_reader<'a>(lines: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        lines
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// Checks a delivery's contract ([`delivery_contract`]) against the
/// accepted secrets, the object that received it (`me`) and the body it
/// carries; answers the sending object's name.
pub fn read_delivery(
    contract: &str,
    secrets: &[String],
    me: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<String, ContractError> {
    let lines: Vec<(&str, String)> = contract
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name, value.to_owned()))
        .collect();
    let header = line_reader(&lines);
    verify(secrets, PATH_DELIVER, &header, now_ms)?;
    read_version(&header)?;
    if header(HEADER_ROOM).as_deref() != Some(me) {
        return Err(ContractError::WrongObject);
    }
    if !secrets.is_empty() {
        let digest = crate::secret::sha256_hex_of(body);
        match header(HEADER_BODY_DIGEST) {
            Some(d) if crate::secret::matches(&d, &digest) => {}
            _ => return Err(ContractError::BodyMismatch),
        }
    }
    header(HEADER_PEER)
        .filter(|p| crate::ids::is_valid_peer_id(p))
        .ok_or(ContractError::BadPeer)
}

/// What an open-namespace upgrade carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAdmission {
    pub peer: String,
    pub proven: bool,
    pub token_digest: String,
}

/// True when the request is for the open namespace.
pub fn is_open(header: impl Fn(&str) -> Option<String>) -> bool {
    header(HEADER_NAMESPACE).as_deref() == Some("open")
}

/// Checks the headers of an open-namespace upgrade.
pub fn read_open(header: impl Fn(&str) -> Option<String>) -> Result<OpenAdmission, ContractError> {
    read_version(&header)?;
    let peer = header(HEADER_PEER)
        .filter(|p| crate::ids::is_valid_peer_id(p))
        .ok_or(ContractError::BadPeer)?;
    let token_digest = header(HEADER_TOKEN_DIGEST)
        .filter(|d| is_digest(d))
        .ok_or(ContractError::BadTokenDigest)?;
    let proven = header(HEADER_PROVEN).as_deref() == Some("1");
    Ok(OpenAdmission {
        peer,
        proven,
        token_digest,
    })
}

/// Checks the headers of an open-namespace request about one peer id that
/// is not an upgrade (its home's debug view).
pub fn read_open_peer(header: impl Fn(&str) -> Option<String>) -> Result<String, ContractError> {
    read_version(&header)?;
    header(HEADER_PEER)
        .filter(|p| crate::ids::is_valid_peer_id(p))
        .ok_or(ContractError::BadPeer)
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
    let ticket = match header(HEADER_TOKEN_DIGEST) {
        Some(d) if is_digest(&d) => Some(d),
        Some(_) => return Err(ContractError::BadTokenDigest),
        None => None,
    };
    Ok(Admission {
        room,
        peer,
        proven,
        ticket,
    })
}

/// A SHA-256 digest in hex, as [`crate::secret::sha256_hex`] writes it.
fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
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
                proven: true,
                ticket: None
            }
        );
    }

    #[test]
    fn an_open_upgrade_needs_a_peer_and_a_token_digest() {
        let digest = crate::machine::token_digest("secret");
        let open = [
            (HEADER_VERSION, "2"),
            (HEADER_NAMESPACE, "open"),
            (HEADER_PEER, "alice"),
        ];
        assert!(is_open(headers(&open)));
        assert_eq!(
            read_open(headers(&open)),
            Err(ContractError::BadTokenDigest)
        );
        let mut with_digest = open.to_vec();
        with_digest.push((HEADER_TOKEN_DIGEST, &digest));
        assert_eq!(
            read_open(headers(&with_digest)),
            Ok(OpenAdmission {
                peer: "alice".into(),
                proven: false,
                token_digest: digest.clone()
            })
        );
        assert!(!is_open(headers(&[(HEADER_VERSION, "2")])));
    }

    #[test]
    fn a_delivery_is_signed_bound_to_its_destination_and_carries_its_body() {
        let secrets = vec!["s".repeat(32)];
        let now = 1_800_000_000_000;
        let body = b"OFFER r 3 5 2\nbobalice{}".to_vec();
        let sent = delivery_contract("bob", "alice", &body, Some(&secrets[0]), now);
        assert_eq!(
            read_delivery(&sent, &secrets, "alice", &body, now),
            Ok("bob".into())
        );
        assert_eq!(
            read_delivery(&sent, &secrets, "carol", &body, now),
            Err(ContractError::WrongObject),
            "a captured delivery does not replay into another object"
        );
        let mut other_body = body.clone();
        other_body.extend_from_slice(b"OFFER r 3 5 2\nbobalice{}");
        assert_eq!(
            read_delivery(&sent, &secrets, "alice", &other_body, now),
            Err(ContractError::BodyMismatch),
            "nor with other frames"
        );
        let digest = crate::secret::sha256_hex_of(&body);
        let forged = sent.replace(&digest, &crate::secret::sha256_hex_of(&other_body));
        assert_eq!(
            read_delivery(&forged, &secrets, "alice", &other_body, now),
            Err(ContractError::BadSignature),
            "the body's digest is signed"
        );
        let unsigned = delivery_contract("bob", "alice", &body, None, now);
        assert_eq!(
            read_delivery(&unsigned, &secrets, "alice", &body, now),
            Err(ContractError::Unsigned),
            "a tier with a secret takes no unsigned delivery"
        );
        assert_eq!(
            read_delivery(&unsigned, &[], "alice", &body, now),
            Ok("bob".into()),
            "without secrets (local dev) the contract still binds"
        );
    }

    #[test]
    fn a_signature_covers_every_contract_header_and_rotates() {
        let secret = "s".repeat(32);
        let previous = "p".repeat(32);
        let now = 1_800_000_000_000;
        let base = [
            (HEADER_VERSION, "2"),
            (HEADER_ROOM, "r1"),
            (HEADER_PEER, "alice"),
            (HEADER_PROVEN, "0"),
        ];
        fn signed(
            pairs: &[(&'static str, &'static str)],
            with: &str,
            at: u64,
        ) -> Vec<(&'static str, &'static str)> {
            let sig = sign(with, PATH_CONNECT, headers(pairs), at);
            let mut all = pairs.to_vec();
            all.push((HEADER_SIGNATURE, Box::leak(sig.into_boxed_str())));
            all
        }
        let secrets = vec![secret.clone(), previous.clone()];
        let ok = signed(&base, &secret, now);
        assert_eq!(
            verify(&secrets, PATH_CONNECT, headers(&ok), now + 5_000),
            Ok(())
        );
        let rotating = signed(&base, &previous, now);
        assert_eq!(
            verify(&secrets, PATH_CONNECT, headers(&rotating), now),
            Ok(())
        );
        // Forging Proven: 1 on a signed request breaks the signature.
        let mut forged = ok.clone();
        forged[3] = (HEADER_PROVEN, "1");
        assert_eq!(
            verify(&secrets, PATH_CONNECT, headers(&forged), now),
            Err(ContractError::BadSignature)
        );
        assert_eq!(
            verify(&secrets, PATH_ROSTER, headers(&ok), now),
            Err(ContractError::BadSignature),
            "bound to its path"
        );
        let other = signed(&base, &"o".repeat(32), now);
        assert_eq!(
            verify(&secrets, PATH_CONNECT, headers(&other), now),
            Err(ContractError::BadSignature)
        );
        assert_eq!(
            verify(&secrets, PATH_CONNECT, headers(&base), now),
            Err(ContractError::Unsigned)
        );
        assert_eq!(
            verify(&secrets, PATH_CONNECT, headers(&ok), now + 61_000),
            Err(ContractError::StaleSignature),
            "a captured request does not replay for long"
        );
        assert_eq!(
            verify(&[], PATH_CONNECT, headers(&base), now),
            Ok(()),
            "local dev"
        );
    }

    #[test]
    fn a_removal_block_is_signed_and_requests_without_one_sign_as_before() {
        let secret = "s".repeat(32);
        let secrets = vec![secret.clone()];
        let now = 1_800_000_000_000;
        let base = [
            (HEADER_VERSION, "2"),
            (HEADER_ROOM, "r1"),
            (HEADER_PEER, "bob"),
        ];
        let with_block = [base.as_slice(), &[(HEADER_BLOCK_SECS, "60")]].concat();
        let sig = sign(&secret, PATH_ADMIN_REMOVE, headers(&with_block), now);
        let mut sent = with_block.clone();
        sent.push((HEADER_SIGNATURE, Box::leak(sig.into_boxed_str())));
        assert_eq!(
            verify(&secrets, PATH_ADMIN_REMOVE, headers(&sent), now),
            Ok(())
        );
        let mut longer = sent.clone();
        longer[3] = (HEADER_BLOCK_SECS, "86400");
        assert_eq!(
            verify(&secrets, PATH_ADMIN_REMOVE, headers(&longer), now),
            Err(ContractError::BadSignature),
            "the block cannot be changed in flight"
        );
        let dropped: Vec<_> = sent
            .iter()
            .copied()
            .filter(|(n, _)| *n != HEADER_BLOCK_SECS)
            .collect();
        assert_eq!(
            verify(&secrets, PATH_ADMIN_REMOVE, headers(&dropped), now),
            Err(ContractError::BadSignature),
            "nor removed"
        );
        // Without the header the signed text is the one version 1 signs.
        let text = signed_text(PATH_CONNECT, &headers(&base), now);
        assert!(text.ends_with(&format!("\n{now}")), "{text}");
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
