//! Comparing a secret a client presents with the configured one.
//!
//! `==` on strings stops at the first differing byte, so its timing tells a
//! prober how much of a guess was right. Both sides are hashed first (the
//! comparison then takes the same time whatever their lengths) and the
//! digests are compared without an early exit. Also the one digest that
//! stands for a secret where it must be remembered (a client's token, a
//! ticket): the secret itself is never stored.

/// True when `given` is `expected`, in time independent of where they differ.
pub fn matches(given: &str, expected: &str) -> bool {
    let a = hmac_sha256::Hash::hash(given.as_bytes());
    let b = hmac_sha256::Hash::hash(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// SHA-256 of `secret`, in lowercase hex.
pub fn sha256_hex(secret: &str) -> String {
    sha256_hex_of(secret.as_bytes())
}

/// SHA-256 of any bytes, in lowercase hex.
pub fn sha256_hex_of(bytes: &[u8]) -> String {
    hmac_sha256::Hash::hash(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bearer token of an `Authorization` header value, if it has one.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_matches() {
        assert!(matches("s3cret-token", "s3cret-token"));
        assert!(!matches("s3cret-tokeN", "s3cret-token"));
        assert!(!matches("s3cret", "s3cret-token"));
        assert!(!matches("", "s3cret-token"));
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
