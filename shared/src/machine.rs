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

    /// Every other event.
    fn handle_input<S: Copy + Eq>(
        &self,
        record: &mut Self::Record,
        peers: &[PeerView<S>],
        input: Input<'_, S>,
        flood: &mut PeerFloodGuard,
        now_ms: u64,
    ) -> Step<S>;
}
