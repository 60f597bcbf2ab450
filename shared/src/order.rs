//! Sorting the few items one event handles (a room's ids, the pairs of its
//! queue), by insertion. The standard library's sorts cost several KiB of
//! the wasm bundle for each element type; these lists hold at most a few
//! hundred items (a room's peers, a bounded queue), where insertion is as
//! fast.

use std::cmp::Ordering;

/// Sorts `items` by `compare`, keeping the order of equal items.
pub fn sort_small_by<T>(items: &mut [T], compare: impl Fn(&T, &T) -> Ordering) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && compare(&items[j - 1], &items[j]) == Ordering::Greater {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_the_standard_library_and_keeps_equal_keys_in_order() {
        let mut items = vec![(3, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (0, 'e'), (3, 'f')];
        let mut expected = items.clone();
        expected.sort_by_key(|p| p.0);
        sort_small_by(&mut items, |a, b| a.0.cmp(&b.0));
        assert_eq!(items, expected);
        let mut empty: Vec<u8> = Vec::new();
        sort_small_by(&mut empty, u8::cmp);
        assert!(empty.is_empty());
    }
}
