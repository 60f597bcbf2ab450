//! The stock client's WebSocket query: `key`, `id`, `token`, `version`.
//!
//! The client concatenates the values without encoding them, so the
//! browser's URL parser percent-encodes what needs it; we decode like
//! `URLSearchParams` (percent-escapes, `+` as space, first value wins,
//! unknown parameters ignored, any order).

/// Longest token accepted (a signed room ticket is far smaller).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Longest query string looked at; longer ones are refused before decoding.
pub const MAX_QUERY_BYTES: usize = 8192;

/// The reference server's text for missing parameters.
pub const MSG_MISSING: &str = "No id, token, or key supplied to websocket server";
/// The reference server's text for a wrong key.
pub const MSG_BAD_KEY: &str = "Invalid key provided";

/// A refusal of the query, with the text the client will show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{}", MSG_MISSING)]
    Missing,
    #[error("{}", MSG_BAD_KEY)]
    BadKey,
    #[error("Invalid id: use 1-64 letters or digits, single spaces, '_' or '-' between them")]
    BadId,
    #[error("Token too long (at most 4096 bytes)")]
    TokenTooLong,
    #[error("Query string too long")]
    QueryTooLong,
}

/// The parameters of a valid upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerQuery {
    pub id: String,
    pub token: String,
}

/// Decoded `key`, `id`, `token` (first occurrence of each), before validation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawQuery {
    pub key: Option<String>,
    pub id: Option<String>,
    pub token: Option<String>,
}

/// Decodes a query string (without the leading `?`).
pub fn decode(query: &str) -> Result<RawQuery, QueryError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(QueryError::QueryTooLong);
    }
    let mut raw = RawQuery::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "key" => &mut raw.key,
            "id" => &mut raw.id,
            "token" => &mut raw.token,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    Ok(raw)
}

/// Decodes and validates the upgrade query in the reference server's order:
/// missing parameters, then the key; then our own checks of id and token.
pub fn parse_upgrade(query: &str, expected_key: &str) -> Result<PeerQuery, QueryError> {
    let raw = decode(query)?;
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if !(present(&raw.key) && present(&raw.id) && present(&raw.token)) {
        return Err(QueryError::Missing);
    }
    let (Some(key), Some(id), Some(token)) = (raw.key, raw.id, raw.token) else {
        return Err(QueryError::Missing);
    };
    if key != expected_key {
        return Err(QueryError::BadKey);
    }
    if !crate::ids::is_valid_peer_id(&id) {
        return Err(QueryError::BadId);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(QueryError::TokenTooLong);
    }
    Ok(PeerQuery { id, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> PeerQuery {
        parse_upgrade(q, "peerjs").expect("valid query")
    }

    #[test]
    fn the_stock_client_query_parses() {
        let q = ok("key=peerjs&id=alice&token=room1&version=1.5.5");
        assert_eq!(q.id, "alice");
        assert_eq!(q.token, "room1");
    }

    #[test]
    fn order_and_unknown_parameters_do_not_matter() {
        let q = ok("version=1.5.5&token=room1&x=1&id=alice&key=peerjs&ts=123");
        assert_eq!((q.id.as_str(), q.token.as_str()), ("alice", "room1"));
    }

    #[test]
    fn values_are_url_decoded_and_the_first_wins() {
        let q = ok("key=peerjs&id=Player%201&token=r%2Dx&id=other");
        assert_eq!(q.id, "Player 1");
        assert_eq!(q.token, "r-x");
        assert_eq!(ok("key=peerjs&id=a+b&token=t").id, "a b");
    }

    #[test]
    fn missing_or_empty_parameters_get_the_reference_text() {
        for q in [
            "",
            "key=peerjs",
            "key=peerjs&id=a",
            "id=a&token=t",
            "key=peerjs&id=&token=t",
            "key=&id=a&token=t",
        ] {
            let err = parse_upgrade(q, "peerjs").expect_err(q);
            assert_eq!(err, QueryError::Missing, "{q}");
            assert_eq!(err.to_string(), MSG_MISSING);
        }
    }

    #[test]
    fn a_wrong_key_gets_the_reference_text() {
        let err = parse_upgrade("key=nope&id=a&token=t", "peerjs").expect_err("bad key");
        assert_eq!(err.to_string(), "Invalid key provided");
    }

    #[test]
    fn ids_are_checked_after_decoding() {
        for id in [
            "a%2Fb",
            "%00",
            "%E2%9C%93",
            "a%20%20b",
            &"x".repeat(65),
            "%ZZ",
        ] {
            let q = format!("key=peerjs&id={id}&token=t");
            assert_eq!(parse_upgrade(&q, "peerjs"), Err(QueryError::BadId), "{id}");
        }
    }

    #[test]
    fn oversized_values_are_refused() {
        let long_token = format!("key=peerjs&id=a&token={}", "t".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(
            parse_upgrade(&long_token, "peerjs"),
            Err(QueryError::TokenTooLong)
        );
        let exact = format!("key=peerjs&id=a&token={}", "t".repeat(MAX_TOKEN_BYTES));
        assert!(parse_upgrade(&exact, "peerjs").is_ok());
        let huge = format!(
            "key=peerjs&id=a&token=t&pad={}",
            "p".repeat(MAX_QUERY_BYTES)
        );
        assert_eq!(
            parse_upgrade(&huge, "peerjs"),
            Err(QueryError::QueryTooLong)
        );
    }
}
