//! Frames on their way from one object to another (open namespace): a
//! [`Parcel`] is one rendered frame for one id, a [`Forward`] names the
//! object it goes to, and a delivery carries a batch of parcels in one
//! request body ([`encode`], [`decode`]).
//!
//! The body is not JSON: each parcel is one header line of lengths, then
//! its ids and its frame's text as they are, so the rendered frame is
//! neither escaped into a string by the sender nor unescaped by the
//! destination:
//!
//! ```text
//! OFFER r 3 5 57\n
//! bob  alice  {"type":"OFFER","src":"bob","dst":"alice","payload":{...}}
//! ```
//! (without the spaces between the three fields: `r` a relay, `n` a notice,
//! then the byte lengths of `src`, `dst` and the text.)

use crate::answer::DeliveryReport;
use crate::frame::RelayKind;
use crate::ids::is_valid_peer_id;

/// Parcels one delivery carries at most.
pub const MAX_BATCH: usize = 64;

/// One rendered frame for the id `dst`, from the id `src`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    pub src: String,
    pub dst: String,
    pub kind: RelayKind,
    /// The rendered frame, `src` already overwritten by the sender's object.
    pub text: String,
    /// Made by the server (`EXPIRE`, `LEAVE` for a gone peer), not relayed
    /// for a client: not counted as a relay, not a sign of a correspondent.
    pub notice: bool,
}

/// A parcel and the name of the object it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub to: String,
    pub parcel: Parcel,
}

/// Why a delivery's body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("bad delivery: parcel {0} has a malformed header")]
    Header(usize),
    #[error("bad delivery: parcel {0} is cut short")]
    Truncated(usize),
    #[error("bad delivery: parcel {0} names an invalid peer id")]
    InvalidId(usize),
    #[error("bad delivery: parcel {0} is not UTF-8")]
    NotText(usize),
    #[error("bad delivery: more than {MAX_BATCH} parcels")]
    TooMany,
}

/// The body of one delivery.
pub fn encode(parcels: &[Parcel]) -> String {
    use std::fmt::Write;
    let size: usize = parcels
        .iter()
        .map(|p| 32 + p.src.len() + p.dst.len() + p.text.len())
        .sum();
    let mut body = String::with_capacity(size);
    for p in parcels {
        let mark = if p.notice { 'n' } else { 'r' };
        // Writing to a String cannot fail.
        let _ = writeln!(
            body,
            "{} {mark} {} {} {}",
            p.kind.as_str(),
            p.src.len(),
            p.dst.len(),
            p.text.len()
        );
        body.push_str(&p.src);
        body.push_str(&p.dst);
        body.push_str(&p.text);
    }
    body
}

/// A destination's reply to one delivery: what it did with the parcels,
/// or why it refused them all (a refusal is final: the sender does not try
/// again, and tells each parcel's sender EXPIRE). Carried as text
/// ([`Reply::encode`]), like the body: `done <sent> <queued> <dropped>`
/// then one line per sender whose relays were dropped, or `refused <why>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Done(DeliveryReport),
    Refused(String),
}

impl Reply {
    pub fn encode(&self) -> String {
        match self {
            Reply::Done(r) => {
                let mut text = format!("done {} {} {}", r.sent, r.queued, r.dropped);
                for sender in &r.dropped_from {
                    text.push('\n');
                    text.push_str(sender);
                }
                text
            }
            Reply::Refused(why) => format!("refused {why}"),
        }
    }

    /// The reply `text` stands for; `None` for text that is neither.
    pub fn decode(text: &str) -> Option<Reply> {
        if let Some(why) = text.strip_prefix("refused ") {
            return Some(Reply::Refused(why.to_owned()));
        }
        let mut lines = text.lines();
        let mut counts = lines.next()?.strip_prefix("done ")?.split(' ');
        let mut count = || counts.next()?.parse::<usize>().ok();
        let (sent, queued, dropped) = (count()?, count()?, count()?);
        let dropped_from = lines
            .filter(|l| is_valid_peer_id(l))
            .map(str::to_owned)
            .collect();
        Some(Reply::Done(DeliveryReport {
            sent,
            queued,
            dropped,
            dropped_from,
        }))
    }
}

/// The parcels of a delivery's body, each id checked.
pub fn decode(mut body: &[u8]) -> Result<Vec<Parcel>, DeliveryError> {
    let mut parcels = Vec::new();
    while !body.is_empty() {
        let n = parcels.len();
        if n == MAX_BATCH {
            return Err(DeliveryError::TooMany);
        }
        let line_end = body
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(DeliveryError::Header(n))?;
        let line = std::str::from_utf8(&body[..line_end]).map_err(|_| DeliveryError::Header(n))?;
        let mut fields = line.split(' ');
        let kind = fields
            .next()
            .and_then(|k| RelayKind::ALL.into_iter().find(|r| r.as_str() == k));
        let notice = match fields.next() {
            Some("n") => Some(true),
            Some("r") => Some(false),
            _ => None,
        };
        let mut len = || fields.next().and_then(|f| f.parse::<usize>().ok());
        let (Some(kind), Some(notice), Some(src_len), Some(dst_len), Some(text_len)) =
            (kind, notice, len(), len(), len())
        else {
            return Err(DeliveryError::Header(n));
        };
        let rest = &body[line_end + 1..];
        let total = src_len
            .checked_add(dst_len)
            .and_then(|l| l.checked_add(text_len))
            .ok_or(DeliveryError::Header(n))?;
        if rest.len() < total {
            return Err(DeliveryError::Truncated(n));
        }
        let text_of =
            |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| DeliveryError::NotText(n));
        let src = text_of(&rest[..src_len])?;
        let dst = text_of(&rest[src_len..src_len + dst_len])?;
        if !is_valid_peer_id(&src) || !is_valid_peer_id(&dst) {
            return Err(DeliveryError::InvalidId(n));
        }
        let text = text_of(&rest[src_len + dst_len..total])?;
        parcels.push(Parcel {
            src,
            dst,
            kind,
            text,
            notice,
        });
        body = &rest[total..];
    }
    Ok(parcels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parcel(src: &str, text: &str, notice: bool) -> Parcel {
        Parcel {
            src: src.into(),
            dst: "amy two".into(),
            kind: RelayKind::Offer,
            text: text.into(),
            notice,
        }
    }

    #[test]
    fn a_batch_comes_back_as_it_went_frames_untouched() {
        let batch = vec![
            parcel(
                "bob",
                r#"{"type":"OFFER","payload":{"sdp":"v=0\r\n\"quoted\"\n"}}"#,
                false,
            ),
            parcel("carl", "{}\n\n{}", true),
        ];
        let body = encode(&batch);
        assert!(
            body.as_bytes().windows(4).any(|w| w == br#"\r\n"#),
            "no escaping added"
        );
        assert_eq!(decode(body.as_bytes()), Ok(batch));
        assert_eq!(decode(b""), Ok(vec![]));
    }

    #[test]
    fn a_reply_comes_back_as_it_went() {
        let done = Reply::Done(DeliveryReport {
            sent: 2,
            queued: 1,
            dropped: 3,
            dropped_from: vec!["bob".into(), "carl".into()],
        });
        let refused = Reply::Refused("bad delivery: parcel 0 is cut short".into());
        for reply in [done, refused, Reply::Done(DeliveryReport::default())] {
            assert_eq!(Reply::decode(&reply.encode()), Some(reply));
        }
        assert_eq!(Reply::decode("{}"), None);
        assert_eq!(Reply::decode("done 1 x 2"), None);
    }

    #[test]
    fn a_bad_body_is_refused_with_its_reason() {
        let good = encode(&[parcel("bob", "{}", false)]);
        assert_eq!(
            decode(&good.as_bytes()[..good.len() - 1]),
            Err(DeliveryError::Truncated(0))
        );
        assert_eq!(decode(b"OFFER x 1 1 1\nabc"), Err(DeliveryError::Header(0)));
        assert_eq!(decode(b"PING r 1 1 1\nabc"), Err(DeliveryError::Header(0)));
        assert_eq!(
            decode(b"OFFER r 1 1 2\n!b{}"),
            Err(DeliveryError::InvalidId(0))
        );
        assert_eq!(
            decode(b"OFFER r 99999999999999999999 1 1\nab"),
            Err(DeliveryError::Header(0))
        );
        let many = encode(&vec![parcel("bob", "{}", false); MAX_BATCH + 1]);
        assert_eq!(decode(many.as_bytes()), Err(DeliveryError::TooMany));
    }
}
