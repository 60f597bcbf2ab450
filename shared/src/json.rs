//! JSON text read into a type: the one way the core and both Workers parse
//! it (a frame's bytes go to `serde_json::from_slice` directly, in
//! `frame`).
//!
//! Why one way: `serde_json::from_str` and `from_slice` are two copies of
//! serde_json's parser in a bundle (`StrRead` and `SliceRead`); reading
//! text through `from_slice` keeps one, about 1.4 KiB of the gzipped rooms
//! Worker.

use serde::de::DeserializeOwned;

/// `text` as a `T`.
pub fn parse<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}
