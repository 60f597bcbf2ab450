//! A home's outgoing parcels to other homes, waiting for delivery: one FIFO
//! per destination, at most one delivery in flight per destination (so
//! parcels arrive in the order the core produced them), batches of at most
//! [`MAX_BATCH`] parcels, and a bound on everything waiting, in parcels
//! ([`MAX_WAITING`]) and in bytes ([`MAX_WAITING_BYTES`]): a sender faster
//! than its destinations loses parcels (handed back to the caller, whose
//! machine counts them and tells each sender EXPIRE), never memory. A Worker's wasm memory grows and never
//! shrinks, so the byte bound is what keeps one burst of large frames from
//! pinning megabytes for the isolate's life.
//!
//! Sans-IO: the rooms Worker (`workers/rooms/src/outbox.rs`) pushes the
//! core's [`Forward`]s here and carries out the deliveries.

use crate::delivery::{Forward, Parcel};
use crate::flat_map::FlatMap;
use std::collections::VecDeque;

pub use crate::delivery::MAX_BATCH;
/// Parcels waiting in one home's outbox at most.
pub const MAX_WAITING: usize = 1024;
/// Bytes of rendered frames waiting in one home's outbox at most: 64
/// frames of the largest size a client may send (64 KiB).
pub const MAX_WAITING_BYTES: usize = 4 * 1024 * 1024;

/// One home's waiting parcels.
#[derive(Debug, Default)]
pub struct Outbox {
    waiting: FlatMap<String, VecDeque<Parcel>>,
    /// The destinations with a delivery in flight (a set: no values).
    in_flight: FlatMap<String, ()>,
    parcels: usize,
    bytes: usize,
}

impl Outbox {
    /// Queues the forwards in order; answers those over the bounds.
    pub fn push(&mut self, forwards: impl IntoIterator<Item = Forward>) -> Vec<Parcel> {
        let mut dropped = Vec::new();
        for Forward { to, parcel } in forwards {
            let size = parcel.text.len();
            if self.parcels >= MAX_WAITING || self.bytes + size > MAX_WAITING_BYTES {
                dropped.push(parcel);
                continue;
            }
            self.parcels += 1;
            self.bytes += size;
            self.waiting.entry(to).or_default().push_back(parcel);
        }
        dropped
    }

    /// A destination with parcels waiting and no delivery in flight, now
    /// marked in flight until [`Outbox::delivered`].
    pub fn next_idle(&mut self) -> Option<String> {
        let to = self
            .waiting
            .iter()
            .find(|(to, q)| !q.is_empty() && !self.in_flight.contains_key(*to))
            .map(|(to, _)| to.clone())?;
        self.in_flight.insert(to.clone(), ());
        Some(to)
    }

    /// Up to [`MAX_BATCH`] parcels for `to`; `None` (and its queue gone)
    /// when it has none left.
    pub fn take_batch(&mut self, to: &str) -> Option<Vec<Parcel>> {
        let queue = self.waiting.get_mut(to)?;
        let take = queue.len().min(MAX_BATCH);
        if take == 0 {
            self.waiting.remove(to);
            return None;
        }
        let batch: Vec<Parcel> = queue.drain(..take).collect();
        self.parcels = self.parcels.saturating_sub(batch.len());
        let bytes: usize = batch.iter().map(|p| p.text.len()).sum();
        self.bytes = self.bytes.saturating_sub(bytes);
        Some(batch)
    }

    /// The delivery to `to` is over: another may start.
    pub fn delivered(&mut self, to: &str) {
        self.in_flight.remove(to);
    }

    /// Parcels waiting.
    pub fn waiting(&self) -> usize {
        self.parcels
    }

    /// Bytes of rendered frames waiting.
    pub fn waiting_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::RelayKind;

    fn forward(to: &str, bytes: usize, notice: bool) -> Forward {
        Forward {
            to: to.into(),
            parcel: Parcel {
                src: "amy".into(),
                dst: to.into(),
                kind: RelayKind::Offer,
                text: "x".repeat(bytes),
                notice,
            },
        }
    }

    #[test]
    fn large_frames_are_bounded_in_bytes_not_only_in_count() {
        let mut outbox = Outbox::default();
        // 1,024 frames of 64 KiB would be 64 MiB of wasm memory.
        let dropped = outbox.push((0..MAX_WAITING).map(|_| forward("bob", 64 * 1024, false)));
        assert!(
            outbox.waiting_bytes() <= MAX_WAITING_BYTES,
            "{} bytes waiting",
            outbox.waiting_bytes()
        );
        assert_eq!(outbox.waiting(), MAX_WAITING_BYTES / (64 * 1024));
        assert_eq!(dropped.len(), MAX_WAITING - outbox.waiting());
        // Small frames still fit beside them up to the byte bound only.
        let notice = outbox.push([forward("carol", 10, true)]);
        assert!(notice.len() == 1 && notice[0].notice);
    }

    #[test]
    fn many_small_frames_are_bounded_in_count() {
        let mut outbox = Outbox::default();
        let dropped = outbox
            .push((0..MAX_WAITING + 10).map(|i| forward(&format!("p{}", i % 3), 100, i % 2 == 0)));
        assert_eq!(outbox.waiting(), MAX_WAITING);
        assert_eq!(dropped.len(), 10);
    }

    #[test]
    fn one_delivery_in_flight_per_destination_in_batches_in_order() {
        let mut outbox = Outbox::default();
        let forwards: Vec<Forward> = (0..MAX_BATCH + 1)
            .map(|i| Forward {
                to: "bob".into(),
                parcel: Parcel {
                    src: "amy".into(),
                    dst: "bob".into(),
                    kind: RelayKind::Candidate,
                    text: i.to_string(),
                    notice: false,
                },
            })
            .chain([forward("carol", 3, false)])
            .collect();
        outbox.push(forwards);
        assert_eq!(outbox.next_idle().as_deref(), Some("bob"));
        // bob is in flight: the next idle destination is carol.
        assert_eq!(outbox.next_idle().as_deref(), Some("carol"));
        assert_eq!(outbox.next_idle(), None);
        let first = outbox.take_batch("bob").unwrap_or_default();
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0].text, "0");
        let second = outbox.take_batch("bob").unwrap_or_default();
        assert_eq!(
            second.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(),
            ["64"]
        );
        assert_eq!(outbox.take_batch("bob"), None);
        outbox.delivered("bob");
        assert_eq!(outbox.take_batch("carol").map(|b| b.len()), Some(1));
        assert_eq!((outbox.waiting(), outbox.waiting_bytes()), (0, 0));
    }
}
