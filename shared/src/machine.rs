//! The one shape every object's machine has: a room (`room.rs`) and a home
//! of the open namespace (`open.rs`) take the same inputs through the same
//! entry point, so one host (the rooms Worker's `host.rs`) and the
//! in-memory doubles drive either without knowing which.

use crate::flood::PeerFloodGuard;
use crate::peer::PeerView;
use crate::step::{DurableRecord, Step};

/// One event for a machine, besides a join (whose request differs by
/// machine: see [`Machine::join`]).
#[derive(Debug, Clone, Copy)]
pub enum Input<'a, S> {
    /// A frame of `bytes` from the socket `from`.
    Frame { from: S, bytes: &'a [u8] },
    /// A frame over the size limit from `from`: only its length was read.
    TooLarge { from: S, len: usize },
    /// A socket closed or errored; `peers` may or may not still list it.
    Closed { gone: &'a PeerView<S> },
    /// The object's alarm fired.
    Alarm,
}

/// A sans-IO machine over the peers of one object.
pub trait Machine {
    /// The durable record it keeps (one storage key).
    type Record: DurableRecord;
    /// A join, as the router checked it.
    type Join;

    /// A new socket wants to join.
    fn join<S: Copy + Eq>(
        &self,
        record: &mut Self::Record,
        peers: &[PeerView<S>],
        request: Self::Join,
        now_ms: u64,
    ) -> Step<S>;

    /// A frame of `bytes` from the socket `from`.
    fn frame<S: Copy + Eq>(
        &self,
        record: &mut Self::Record,
        peers: &[PeerView<S>],
        from: S,
        bytes: &[u8],
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S>;

    /// A frame over the size limit from `from`: only its length was read.
    fn too_large<S: Copy + Eq>(
        &self,
        record: &mut Self::Record,
        peers: &[PeerView<S>],
        from: S,
        len: usize,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S>;

    /// A socket closed or errored; `peers` may or may not still list it.
    fn closed<S: Copy + Eq>(
        &self,
        record: &mut Self::Record,
        peers: &[PeerView<S>],
        gone: &PeerView<S>,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S>;

    /// The object's alarm fired.
    fn alarm<S: Copy + Eq>(
        &self,
        record: &mut Self::Record,
        peers: &[PeerView<S>],
        now_ms: u64,
    ) -> Step<S>;

    /// Every event but a join, through one entry point.
    fn handle_input<S: Copy + Eq>(
        &self,
        record: &mut Self::Record,
        peers: &[PeerView<S>],
        input: Input<'_, S>,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S> {
        match input {
            Input::Frame { from, bytes } => self.frame(record, peers, from, bytes, flood, now_ms),
            Input::TooLarge { from, len } => {
                self.too_large(record, peers, from, len, flood, now_ms)
            }
            Input::Closed { gone } => self.closed(record, peers, gone, flood, now_ms),
            Input::Alarm => self.alarm(record, peers, now_ms),
        }
    }
}
