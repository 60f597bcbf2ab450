//! The ICE servers a client is handed for one call: STUN/TURN lists from
//! settings, short-lived TURN credentials under the shared-secret "TURN REST
//! API" scheme (coturn's `use-auth-secret`, and most TURN servers), or the
//! answer of Cloudflare Realtime TURN's `generate-ice-servers`.
//!
//! Sans-IO: the time and, for Cloudflare, the HTTP answer come in as
//! arguments; the router makes the call.

use serde::{Deserialize, Serialize};

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Urls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `urls` is a string or a list of strings in WebRTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

/// Why an ICE answer could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceError {
    #[error("the TURN provider's answer was not understood: {0}")]
    BadProviderAnswer(String),
}

/// The TURN REST API credential for `peer` valid until `now + ttl`:
/// username `expiry:peer`, password base64(HMAC-SHA1(secret, username)). The
/// TURN server recomputes the password from the username with the same
/// secret and refuses an expired one, so nothing is stored anywhere.
pub fn turn_rest_credential(
    secret: &str,
    peer: &str,
    now_secs: u64,
    ttl_secs: u64,
) -> (String, String) {
    let username = format!("{}:{peer}", now_secs + ttl_secs);
    let mac = hmac_sha1_compact::HMAC::mac(username.as_bytes(), secret.as_bytes());
    (username, base64(&mac))
}

/// The servers for the shared-secret scheme: STUN URLs as they are, TURN
/// URLs with a fresh credential.
pub fn turn_rest_servers(
    stun_urls: &[String],
    turn_urls: &[String],
    secret: &str,
    peer: &str,
    now_secs: u64,
    ttl_secs: u64,
) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !stun_urls.is_empty() {
        servers.push(IceServer {
            urls: Urls::Many(stun_urls.to_vec()),
            username: None,
            credential: None,
        });
    }
    if !turn_urls.is_empty() {
        let (username, credential) = turn_rest_credential(secret, peer, now_secs, ttl_secs);
        servers.push(IceServer {
            urls: Urls::Many(turn_urls.to_vec()),
            username: Some(username),
            credential: Some(credential),
        });
    }
    servers
}

/// The body of Cloudflare Realtime TURN's `generate-ice-servers` request.
pub fn cloudflare_request(ttl_secs: u64) -> String {
    serde_json::json!({ "ttl": ttl_secs }).to_string()
}

/// Reads Cloudflare's answer: `{"iceServers": [...]}` (or one object).
pub fn cloudflare_answer(text: &str) -> Result<Vec<IceServer>, IceError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<IceServer>),
        One(IceServer),
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "iceServers")]
        ice_servers: OneOrMany,
    }
    let answer: Answer =
        crate::json::parse(text).map_err(|e| IceError::BadProviderAnswer(e.to_string()))?;
    Ok(match answer.ice_servers {
        OneOrMany::Many(list) => list,
        OneOrMany::One(one) => vec![one],
    })
}

/// Standard base64 with padding, as the TURN REST API's password is
/// (`ct-codecs` is in the tree already, through jwt-simple).
fn base64(bytes: &[u8]) -> String {
    use ct_codecs::{Base64, Encoder};
    Base64::encode_to_string(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turn_rest_credential_is_the_one_coturn_computes() {
        // coturn (use-auth-secret) checks base64(HMAC-SHA1(secret, username)).
        let (user, pass) = turn_rest_credential("north", "alice", 1_700_000_000, 3_600);
        assert_eq!(user, "1700003600:alice");
        // echo -n 1700003600:alice | openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(pass, "wjwSXO2ch1B6VaLTLMy2Avn5O9o=");
    }

    #[test]
    fn base64_pads_like_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn cloudflare_answers_in_either_shape_are_read() {
        let list = r#"{"iceServers":[{"urls":["stun:stun.cloudflare.com:3478"]},{"urls":["turn:turn.cloudflare.com:3478?transport=udp"],"username":"u","credential":"c"}]}"#;
        let servers = cloudflare_answer(list).expect("list");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("u"));
        let one = r#"{"iceServers":{"urls":"turn:turn.cloudflare.com:3478","username":"u","credential":"c"}}"#;
        assert_eq!(cloudflare_answer(one).expect("one").len(), 1);
        assert!(cloudflare_answer("{}").is_err());
        assert_eq!(cloudflare_request(600), r#"{"ttl":600}"#);
    }
}
