//! The PeerJS wire format: parsing what clients send, rendering what the server sends.
//!
//! Client frames are `{"type","dst","payload"}`; anything else in them
//! (notably a spoofed `src`) is ignored. Relayed frames are rendered as
//! exactly `{"type","src","dst","payload"}` with the payload spliced in as
//! the raw JSON the sender wrote: it is never parsed into a tree or rebuilt.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Message types a client may send that the server relays to `dst`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum RelayKind {
    Offer,
    Answer,
    Candidate,
    Leave,
    Expire,
}

impl RelayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayKind::Offer => "OFFER",
            RelayKind::Answer => "ANSWER",
            RelayKind::Candidate => "CANDIDATE",
            RelayKind::Leave => "LEAVE",
            RelayKind::Expire => "EXPIRE",
        }
    }

    /// OFFER, ANSWER and CANDIDATE wait for an offline destination; LEAVE and
    /// EXPIRE to an offline id are meaningless and dropped (as the reference does).
    pub fn is_queueable(self) -> bool {
        matches!(
            self,
            RelayKind::Offer | RelayKind::Answer | RelayKind::Candidate
        )
    }

    pub const ALL: [RelayKind; 5] = [
        RelayKind::Offer,
        RelayKind::Answer,
        RelayKind::Candidate,
        RelayKind::Leave,
        RelayKind::Expire,
    ];
}

/// Why a client frame was dropped. The socket stays open in every case: the
/// stock client destroys its Peer on any `ERROR`, so per-message problems are
/// never answered with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum DropReason {
    #[error("frame larger than the message size limit")]
    TooLarge,
    #[error("frame is not a JSON object")]
    Malformed,
    #[error("frame has no type")]
    MissingType,
    #[error("frame type is not one a client may send")]
    UnknownType,
    #[error("frame has no dst")]
    MissingDst,
    #[error("dst is not a valid peer id")]
    InvalidDst,
    #[error("destination is offline and the message type is not queued")]
    OfflineNotQueued,
    #[error("the room's offline queue is full")]
    QueueFull,
    #[error("sender is over its message rate")]
    RateLimited,
    #[error("sender is not a live peer of the room")]
    SenderNotLive,
    #[error("the destination's object could not be reached")]
    Unreachable,
    #[error("a notice the server made (EXPIRE, LEAVE) could not reach its destination's object")]
    NoticeLost,
}

impl DropReason {
    /// Every reason, for metrics that list each label value from the start.
    pub const ALL: [DropReason; 12] = [
        DropReason::TooLarge,
        DropReason::Malformed,
        DropReason::MissingType,
        DropReason::UnknownType,
        DropReason::MissingDst,
        DropReason::InvalidDst,
        DropReason::OfflineNotQueued,
        DropReason::QueueFull,
        DropReason::RateLimited,
        DropReason::SenderNotLive,
        DropReason::Unreachable,
        DropReason::NoticeLost,
    ];

    /// Stable label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::TooLarge => "too_large",
            DropReason::Malformed => "malformed",
            DropReason::MissingType => "missing_type",
            DropReason::UnknownType => "unknown_type",
            DropReason::MissingDst => "missing_dst",
            DropReason::InvalidDst => "invalid_dst",
            DropReason::OfflineNotQueued => "offline_not_queued",
            DropReason::QueueFull => "queue_full",
            DropReason::RateLimited => "rate_limited",
            DropReason::SenderNotLive => "sender_not_live",
            DropReason::Unreachable => "unreachable",
            DropReason::NoticeLost => "notice_lost",
        }
    }
}

/// A parsed client frame, borrowing from the received bytes.
#[derive(Debug)]
pub enum ClientFrame<'a> {
    /// `{"type":"HEARTBEAT"}` that the runtime's auto-response did not catch
    /// (different spacing, extra fields). It only refreshes liveness.
    Heartbeat,
    Relay {
        kind: RelayKind,
        dst: Cow<'a, str>,
        payload: Option<&'a RawValue>,
    },
}

impl PartialEq for ClientFrame<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ClientFrame::Heartbeat, ClientFrame::Heartbeat) => true,
            (
                ClientFrame::Relay { kind, dst, payload },
                ClientFrame::Relay {
                    kind: k2,
                    dst: d2,
                    payload: p2,
                },
            ) => kind == k2 && dst == d2 && payload.map(RawValue::get) == p2.map(RawValue::get),
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct WireFrame<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "borrowed_str")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    dst: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

/// A string field that borrows from the frame unless it holds escapes
/// (serde's own `Option<Cow<str>>` always copies: two allocations per relay).
fn borrowed_str<'de, D>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Text;
    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    deserializer.deserialize_option(Text)
}

/// Parses one client frame (text, or binary holding UTF-8 JSON).
///
/// The size check comes first so that an oversized frame is never parsed.
/// serde_json's recursion limit turns deeply nested input into an error
/// rather than a stack overflow.
pub fn parse_client_frame(bytes: &[u8], max_bytes: usize) -> Result<ClientFrame<'_>, DropReason> {
    if bytes.len() > max_bytes {
        return Err(DropReason::TooLarge);
    }
    let wire: WireFrame<'_> = serde_json::from_slice(bytes).map_err(|_| DropReason::Malformed)?;
    let kind = match wire.kind.as_deref() {
        None => return Err(DropReason::MissingType),
        Some("HEARTBEAT") => return Ok(ClientFrame::Heartbeat),
        Some("OFFER") => RelayKind::Offer,
        Some("ANSWER") => RelayKind::Answer,
        Some("CANDIDATE") => RelayKind::Candidate,
        Some("LEAVE") => RelayKind::Leave,
        Some("EXPIRE") => RelayKind::Expire,
        Some(_) => return Err(DropReason::UnknownType),
    };
    let dst = match wire.dst {
        None => return Err(DropReason::MissingDst),
        Some(dst) if dst.is_empty() => return Err(DropReason::MissingDst),
        Some(dst) => dst,
    };
    if !crate::ids::is_valid_peer_id(&dst) {
        return Err(DropReason::InvalidDst);
    }
    Ok(ClientFrame::Relay {
        kind,
        dst,
        payload: wire.payload,
    })
}

/// Renders a relayed frame: `{"type","src","dst","payload"}`, payload spliced raw.
///
/// `src` and `dst` are validated peer ids (no characters that need JSON
/// escaping), so they are written between quotes as they are.
pub fn render_relay(kind: RelayKind, src: &str, dst: &str, payload: Option<&RawValue>) -> String {
    let payload_len = payload.map_or(0, |p| p.get().len());
    let mut out = String::with_capacity(48 + src.len() + dst.len() + payload_len);
    out.push_str("{\"type\":\"");
    out.push_str(kind.as_str());
    out.push_str("\",\"src\":\"");
    out.push_str(src);
    out.push_str("\",\"dst\":\"");
    out.push_str(dst);
    out.push('"');
    if let Some(payload) = payload {
        out.push_str(",\"payload\":");
        out.push_str(payload.get());
    }
    out.push('}');
    out
}

/// The exact frame the stock client sends every 5 s; the rooms tier has the
/// runtime answer it with itself, without waking the room.
pub const HEARTBEAT: &str = r#"{"type":"HEARTBEAT"}"#;

/// `{"type":"OPEN"}`: registration succeeded.
pub const OPEN: &str = r#"{"type":"OPEN"}"#;

/// `{"type":"ID-TAKEN",...}` with the reference server's exact text.
pub const ID_TAKEN: &str = r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#;

/// `{"type":"ERROR","payload":{"msg":...}}`; the stock client needs `payload.msg`.
pub fn render_error(msg: &str) -> String {
    let mut out = String::from(r#"{"type":"ERROR","payload":{"msg":"#);
    // A msg is our own text, but escape it properly anyway.
    push_json_string(&mut out, msg);
    out.push_str("}}");
    out
}

/// Appends `text` as a JSON string (quoted and escaped).
pub fn push_json_string(out: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        // Serializing a str cannot fail; an empty string keeps the JSON valid.
        Err(_) => out.push_str(r#""""#),
    }
}

/// `{"type":"LEAVE","src":gone,"dst":to}`: `gone` left the room.
pub fn render_leave(gone: &str, to: &str) -> String {
    render_relay(RelayKind::Leave, gone, to, None)
}

/// `{"type":"EXPIRE","src":unreachable,"dst":to}`: messages to `unreachable` expired.
pub fn render_expire(unreachable: &str, to: &str) -> String {
    render_relay(RelayKind::Expire, unreachable, to, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_type_and_dst_are_decoded_and_plain_ones_borrowed() {
        let escaped = br#"{"type":"OFF\u0045R","dst":"b\u0062","payload":{"x":1}}"#;
        let Ok(ClientFrame::Relay { kind, dst, .. }) = parse_client_frame(escaped, 1024) else {
            panic!("an escaped frame is still a relay");
        };
        assert_eq!((kind, dst.as_ref()), (RelayKind::Offer, "bb"));
        let plain = br#"{"type":"OFFER","dst":"bob"}"#;
        let Ok(ClientFrame::Relay { dst, .. }) = parse_client_frame(plain, 1024) else {
            panic!("a plain frame is a relay");
        };
        assert!(matches!(dst, Cow::Borrowed("bob")));
        for bad in [
            &br#"{"type":5,"dst":"b"}"#[..],
            br#"{"type":"OFFER","dst":["b"]}"#,
        ] {
            assert_eq!(
                parse_client_frame(bad, 1024).err(),
                Some(DropReason::Malformed)
            );
        }
        let null_dst = br#"{"type":"OFFER","dst":null}"#;
        assert_eq!(
            parse_client_frame(null_dst, 1024).err(),
            Some(DropReason::MissingDst)
        );
    }

    const MAX: usize = 65_536;

    fn relay(bytes: &str) -> (RelayKind, String, Option<String>) {
        match parse_client_frame(bytes.as_bytes(), MAX) {
            Ok(ClientFrame::Relay { kind, dst, payload }) => {
                (kind, dst.into_owned(), payload.map(|p| p.get().to_owned()))
            }
            other => panic!("expected a relay frame, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_stock_client_offer() {
        let (kind, dst, payload) = relay(
            r#"{"type":"OFFER","payload":{"sdp":{"type":"offer","sdp":"v=0"},"type":"data","connectionId":"dc_1"},"dst":"bob"}"#,
        );
        assert_eq!(kind, RelayKind::Offer);
        assert_eq!(dst, "bob");
        assert_eq!(
            payload.as_deref(),
            Some(r#"{"sdp":{"type":"offer","sdp":"v=0"},"type":"data","connectionId":"dc_1"}"#)
        );
    }

    #[test]
    fn a_spoofed_src_is_replaced_by_the_sender() {
        let frame = r#"{"type":"ANSWER","src":"mallory","dst":"bob","payload":{"x":1}}"#;
        let (kind, dst, _) = relay(frame);
        let Ok(ClientFrame::Relay { payload, .. }) = parse_client_frame(frame.as_bytes(), MAX)
        else {
            panic!("relay expected")
        };
        let out = render_relay(kind, "alice", &dst, payload);
        assert_eq!(
            out,
            r#"{"type":"ANSWER","src":"alice","dst":"bob","payload":{"x":1}}"#
        );
        assert!(!out.contains("mallory"));
    }

    #[test]
    fn payload_is_spliced_byte_for_byte() {
        // Whitespace, key order and number spelling survive: nothing is rebuilt.
        let payload = r#"{ "b" : 1.50, "a":[1,2 ,3], "s":"\u00e9\n" }"#;
        let frame = format!(r#"{{"type":"CANDIDATE","dst":"b","payload":{payload}}}"#);
        let (_, _, got) = relay(&frame);
        assert_eq!(got.as_deref(), Some(payload));
    }

    #[test]
    fn frames_without_payload_render_without_the_key() {
        assert_eq!(
            render_leave("gone", "me"),
            r#"{"type":"LEAVE","src":"gone","dst":"me"}"#
        );
        assert_eq!(
            render_expire("ghost", "me"),
            r#"{"type":"EXPIRE","src":"ghost","dst":"me"}"#
        );
    }

    #[test]
    fn heartbeat_with_unusual_spacing_is_recognised() {
        assert_eq!(
            parse_client_frame(br#"{ "type" : "HEARTBEAT" }"#, MAX),
            Ok(ClientFrame::Heartbeat)
        );
    }

    #[test]
    fn bad_frames_are_dropped_with_a_reason() {
        let cases: &[(&[u8], DropReason)] = &[
            (b"not json", DropReason::Malformed),
            (b"123", DropReason::Malformed),
            (b"null", DropReason::Malformed),
            (b"[1,2]", DropReason::Malformed),
            (b"{\"dst\":\"b\"}", DropReason::MissingType),
            (
                b"{\"type\":\"OPEN\",\"dst\":\"b\"}",
                DropReason::UnknownType,
            ),
            (
                b"{\"type\":\"offer\",\"dst\":\"b\"}",
                DropReason::UnknownType,
            ),
            (b"{\"type\":7,\"dst\":\"b\"}", DropReason::Malformed),
            (b"{\"type\":\"OFFER\"}", DropReason::MissingDst),
            (b"{\"type\":\"OFFER\",\"dst\":\"\"}", DropReason::MissingDst),
            (
                b"{\"type\":\"OFFER\",\"dst\":\"a/b\"}",
                DropReason::InvalidDst,
            ),
            (
                b"{\"type\":\"OFFER\",\"dst\":\"\xff\"}",
                DropReason::Malformed,
            ),
        ];
        for (bytes, reason) in cases {
            assert_eq!(
                parse_client_frame(bytes, MAX),
                Err(*reason),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn the_size_limit_is_inclusive_and_checked_before_parsing() {
        let body = format!(
            r#"{{"type":"OFFER","dst":"b","payload":"{}"}}"#,
            "x".repeat(100)
        );
        assert!(parse_client_frame(body.as_bytes(), body.len()).is_ok());
        assert_eq!(
            parse_client_frame(body.as_bytes(), body.len() - 1),
            Err(DropReason::TooLarge)
        );
    }

    #[test]
    fn deep_nesting_never_crashes() {
        let open = "[".repeat(10_000);
        let close = "]".repeat(10_000);
        // Outside the payload, serde_json's recursion limit refuses it.
        let deep_dst = format!(r#"{{"type":"OFFER","dst":{open}{close}}}"#);
        assert_eq!(
            parse_client_frame(deep_dst.as_bytes(), 1 << 20),
            Err(DropReason::Malformed)
        );
        // Inside the payload it is only scanned (never built into a tree),
        // so it passes through as raw bytes like any other payload.
        let deep_payload = format!(r#"{{"type":"OFFER","dst":"b","payload":{open}{close}}}"#);
        let parsed = parse_client_frame(deep_payload.as_bytes(), 1 << 20);
        assert!(
            matches!(parsed, Ok(ClientFrame::Relay { payload: Some(p), .. }) if p.get().len() == 20_000)
        );
    }

    #[test]
    fn error_frames_carry_payload_msg() {
        let v: serde_json::Value =
            serde_json::from_str(&render_error("Room is full (4 peers)")).expect("valid JSON");
        assert_eq!(v["type"], "ERROR");
        assert_eq!(v["payload"]["msg"], "Room is full (4 peers)");
        let quoted: serde_json::Value =
            serde_json::from_str(&render_error("a \"quoted\" reason")).expect("escaped");
        assert_eq!(quoted["payload"]["msg"], "a \"quoted\" reason");
    }
}
