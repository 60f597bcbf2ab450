//! The one map type of the code the rooms Worker links, and its serde
//! form. (The router's per-client connect table, up to 10,000 keys found by
//! hash, stays a `HashMap`: `flood::ConnectLimiter`.)
//!
//! A flat map sorted by key (`litemap`, from the ICU4X project): the same
//! ordered iteration as `std`'s `BTreeMap`, in a fraction of the wasm.
//! Each key and value type of a `BTreeMap` carries its own copy of the
//! B-tree's insert, remove and rebalancing code, and `std`'s `HashMap`
//! brings SipHash and hashbrown: replacing both here took about 18 KiB off
//! the gzipped rooms bundle. A room's maps hold a handful of entries; a
//! stats shard's hold its rooms (about a thousand per shard at 10,000
//! rooms), where a binary search and a shift of the vector are as fast.
//! At a shard's bound (`MAX_ROOMS_PER_SHARD`, 100,000) a new room's insert
//! shifts up to about 3 MB, no worse than the walk over every room its
//! sweep tick and its eviction already make. Restoring a shard inserts in
//! key order, which appends.
//!
//! [`as_object`] keeps the serde form a JSON object, as `BTreeMap`'s was
//! (`litemap`'s own serde support writes an empty map as `[]`), so reports
//! and stored counters read the same before and after a deploy or a
//! rollback.

pub use litemap::LiteMap as FlatMap;

/// `#[serde(with = "crate::flat_map::as_object")]`: a [`FlatMap`] as a
/// JSON object.
pub mod as_object {
    use super::FlatMap;
    use serde::de::{MapAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;
    use std::marker::PhantomData;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &FlatMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<FlatMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        struct Entries<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
            type Value = FlatMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
                let mut map = FlatMap::new();
                while let Some((key, value)) = entries.next_entry()? {
                    map.insert(key, value);
                }
                Ok(map)
            }
        }
        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::FlatMap;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Counts(#[serde(with = "super::as_object")] FlatMap<String, u64>);

    #[test]
    fn reads_and_writes_what_a_btree_map_did_including_the_empty_map() {
        for old in [
            BTreeMap::new(),
            BTreeMap::from([("b".to_owned(), 2u64), ("a".to_owned(), 1)]),
        ] {
            let written = serde_json::to_string(&old).unwrap_or_default();
            let read: Counts = serde_json::from_str(&written).unwrap_or(Counts(FlatMap::new()));
            assert_eq!(read.0.len(), old.len(), "from {written}");
            assert!(read.0.iter().zip(&old).all(|(a, b)| a == b), "in key order");
            assert_eq!(serde_json::to_string(&read).unwrap_or_default(), written);
        }
        assert!(
            serde_json::from_str::<Counts>("[]").is_err(),
            "a list is not a map"
        );
    }
}
