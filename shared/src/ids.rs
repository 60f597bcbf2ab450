//! Peer ids and room ids: the only identifiers that reach a room.
//!
//! Peer ids follow what the stock client accepts for app-chosen ids
//! (`^[A-Za-z0-9]+(?:[ _-][A-Za-z0-9]+)*$`) plus the UUIDs this server
//! issues from `/id`. Room ids are `[A-Za-z0-9_-]{1,64}`.

/// Longest peer id or room id accepted.
pub const MAX_ID_LEN: usize = 64;

/// True when `id` is a peer id the server accepts.
///
/// A UUID (`8-4-4-4-12` hex) is a special case of the client rule, since its
/// hyphen-separated groups are alphanumeric, so one rule covers both.
pub fn is_valid_peer_id(id: &str) -> bool {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return false;
    }
    let bytes = id.as_bytes();
    let mut previous_was_separator = true; // the first byte must be alphanumeric
    for &b in bytes {
        let separator = matches!(b, b' ' | b'_' | b'-');
        if separator {
            if previous_was_separator {
                return false;
            }
        } else if !b.is_ascii_alphanumeric() {
            return false;
        }
        previous_was_separator = separator;
    }
    !previous_was_separator
}

/// True when `room` is a room id the server accepts.
pub fn is_valid_room_id(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= MAX_ID_LEN
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Formats 16 random bytes as a version-4 UUID, the id that `/id` hands out.
///
/// The randomness comes from the caller (the Worker), keeping this crate
/// deterministic.
pub fn uuid_v4_from_bytes(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0x0f), 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_follow_the_stock_client_rule() {
        for ok in ["A", "bob", "a b", "a_b-c", "Player 1", "x9"] {
            assert!(is_valid_peer_id(ok), "{ok:?} should be accepted");
        }
        for bad in [
            "", " a", "a ", "a  b", "a__b", "-a", "é", "a/b", "a\u{0}b", "a%20b",
        ] {
            assert!(!is_valid_peer_id(bad), "{bad:?} should be refused");
        }
        assert!(is_valid_peer_id(&"a".repeat(64)));
        assert!(!is_valid_peer_id(&"a".repeat(65)));
    }

    #[test]
    fn server_issued_uuids_are_valid_peer_ids() {
        let id = uuid_v4_from_bytes([0xab; 16]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4", "version nibble");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "variant bits");
        assert!(is_valid_peer_id(&id));
    }

    #[test]
    fn room_ids_are_short_and_url_safe() {
        assert!(is_valid_room_id("room1"));
        assert!(is_valid_room_id("123456789012345678")); // a Discord snowflake
        assert!(is_valid_room_id("a-b_c"));
        assert!(!is_valid_room_id(""));
        assert!(!is_valid_room_id("a b"));
        assert!(!is_valid_room_id("a.b"));
        assert!(!is_valid_room_id(&"r".repeat(65)));
    }
}
