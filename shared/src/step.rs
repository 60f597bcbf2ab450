//! What one handler changed ([`Step`]), and the one interpreter that
//! carries a whole step out ([`apply`]), which the Durable Objects' host
//! and the in-memory doubles all run.
//!
//! A machine's handler runs without I/O and says, in one value:
//! - the socket operations to carry out, in order ([`SocketOp`]);
//! - what durable state changed: frames to store, keys to delete, whether the
//!   record changed and whether the alarm it names changed;
//! - the counters to add and the log events to write;
//! - in the open namespace, the frames to hand to other objects
//!   ([`Forward`]);
//! - what a moderator's call found ([`Answer`]).
//!
//! The caller reads the queued frames the step delivers ([`Step::reads`]),
//! then [`apply`] carries out, in this order: the socket operations against
//! its [`Sockets`], the forwards, the counts and the logs (all to its
//! [`Effects`], none of which waits), and answers the storage [`Writes`] to
//! await, in their order: puts, deletes, the record if changed, the alarm if
//! changed. Forwards go out before any storage await, so a sender's parcels
//! keep their order.

use crate::answer::Answer;
use crate::delivery::Forward;
use crate::flat_map::FlatMap;
use crate::log::LogEvent;
use crate::metrics::Counter;
use crate::socket::{PeerState, Recipient};
use smallvec::SmallVec;

/// One operation on the object's sockets.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketOp<S> {
    /// Accept the joining socket (hibernatable, tagged with its id) with this attachment.
    Accept {
        state: PeerState,
    },
    /// Accept the joining socket only to send `frame` and close it.
    Refuse {
        frame: String,
        code: u16,
        reason: String,
    },
    Send {
        to: Recipient<S>,
        text: String,
    },
    /// Replace a socket's attachment.
    SaveState {
        socket: S,
        state: PeerState,
    },
    Close {
        socket: S,
        code: u16,
        reason: String,
    },
    /// Send the stored frames under `keys`, in order, to `to` (the step's
    /// `deletes` remove them from storage afterwards).
    Deliver {
        to: Recipient<S>,
        keys: Vec<String>,
    },
}

/// Everything one handler changed; see the module header for the order in
/// which a caller carries it out.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<S> {
    /// Inline up to two: a relay (one send) allocates nothing here.
    pub ops: SmallVec<[SocketOp<S>; 2]>,
    /// Rendered frames to store under their keys.
    pub puts: Vec<(String, String)>,
    /// Stored keys to delete (delivered or expired frames).
    pub deletes: Vec<String>,
    /// Inline up to two, like `ops`.
    pub counts: SmallVec<[(Counter, u64); 2]>,
    pub logs: Vec<LogEvent>,
    /// The object's record ([`crate::record::Record`]) changed: write it
    /// back (or delete it when it is empty). Set by the machine from the
    /// record's own wrapper ([`crate::record::Tracked`]), never by hand.
    pub record_changed: bool,
    /// The record's `alarm_ms` changed: point the runtime's alarm at it.
    pub alarm_changed: bool,
    /// Open namespace: frames for other objects, in order.
    pub forwards: Vec<Forward>,
    /// What a moderator's call found (see `moderation.rs`).
    pub answer: Option<Answer>,
}

impl<S> Default for Step<S> {
    fn default() -> Self {
        Step {
            ops: SmallVec::new(),
            puts: Vec::new(),
            deletes: Vec::new(),
            counts: SmallVec::new(),
            logs: Vec::new(),
            record_changed: false,
            alarm_changed: false,
            forwards: Vec::new(),
            answer: None,
        }
    }
}

impl<S> Step<S> {
    /// The stored keys the socket operations deliver: the caller reads them
    /// before [`apply`].
    pub fn reads(&self) -> Vec<String> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                SocketOp::Deliver { keys, .. } => Some(keys.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub(crate) fn op(&mut self, op: SocketOp<S>) {
        self.ops.push(op);
    }

    pub(crate) fn count(&mut self, counter: Counter, by: u64) {
        self.counts.push((counter, by));
    }

    pub(crate) fn log(&mut self, event: LogEvent) {
        self.logs.push(event);
    }
}

/// The runtime's side of the socket operations: the Durable Object's
/// hibernatable WebSockets, or the double's in-memory sockets.
/// A failed operation stops the step (the runtime's error is the caller's).
pub trait Sockets<S> {
    type Error;
    fn accept(&mut self, state: &PeerState) -> Result<(), Self::Error>;
    fn refuse(&mut self, frame: &str, code: u16, reason: &str) -> Result<(), Self::Error>;
    /// A socket that closed meanwhile is skipped: its close event follows.
    fn send(&mut self, to: Recipient<S>, text: &str);
    fn save_state(&mut self, socket: S, state: &PeerState) -> Result<(), Self::Error>;
    /// Sends the close frame; a socket already gone is skipped.
    fn close(&mut self, socket: S, code: u16, reason: &str);
}

/// Carries out a step's socket operations in order; `stored` holds the
/// frames [`Step::reads`] named (a key missing from it is skipped).
fn carry_out<S: Copy, K: Sockets<S>>(
    ops: &[SocketOp<S>],
    stored: &FlatMap<String, String>,
    sockets: &mut K,
) -> Result<(), K::Error> {
    for op in ops {
        match op {
            SocketOp::Accept { state } => sockets.accept(state)?,
            SocketOp::Refuse {
                frame,
                code,
                reason,
            } => sockets.refuse(frame, *code, reason)?,
            SocketOp::Send { to, text } => sockets.send(*to, text),
            SocketOp::SaveState { socket, state } => sockets.save_state(*socket, state)?,
            SocketOp::Close {
                socket,
                code,
                reason,
            } => sockets.close(*socket, *code, reason),
            SocketOp::Deliver { to, keys } => {
                for text in keys.iter().filter_map(|k| stored.get(k)) {
                    sockets.send(*to, text);
                }
            }
        }
    }
    Ok(())
}

/// Where a step's effects other than sockets and storage go.
pub trait Effects {
    /// Frames for other peers' objects, in order.
    fn forward(&mut self, forwards: Vec<Forward>);
    fn count(&mut self, counter: Counter, by: u64);
    fn log(&mut self, event: LogEvent);
}

/// The storage writes a step leaves, to await in field order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Writes {
    pub puts: Vec<(String, String)>,
    pub deletes: Vec<String>,
    /// Write the record back (or delete its key when it is empty).
    pub record: bool,
    /// Point the runtime's alarm at the record's `alarm_ms`.
    pub alarm: bool,
}

impl Writes {
    /// Nothing to write: a relay between live peers.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty() && !self.record && !self.alarm
    }
}

/// Carries out a whole step (see the module header for the order);
/// `stored` holds the frames [`Step::reads`] named.
pub fn apply<S: Copy, K: Sockets<S>, E: Effects>(
    step: Step<S>,
    stored: &FlatMap<String, String>,
    sockets: &mut K,
    effects: &mut E,
) -> Result<Writes, K::Error> {
    carry_out(&step.ops, stored, sockets)?;
    effects.forward(step.forwards);
    for (counter, by) in step.counts {
        effects.count(counter, by);
    }
    for event in step.logs {
        effects.log(event);
    }
    Ok(Writes {
        puts: step.puts,
        deletes: step.deletes,
        record: step.record_changed,
        alarm: step.alarm_changed,
    })
}
