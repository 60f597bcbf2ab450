//! An in-memory stand-in for the `GameRoom` Durable Object: it owns sockets
//! (with attachments and auto-response timestamps), a storage map and one
//! alarm, feeds events to the core and carries out each [`Step`] with the
//! same interpreter as the Worker's host ([`crate::step::apply`]), in the same order.
//! Tests then look at what each socket received.
//!
//! [`open`] does the same for the open namespace: many homes, and the
//! frames they forward to each other delivered in order.

pub mod open;

use crate::flood::PeerFloodGuard;
use crate::machine::Machine;
use crate::metrics::Counter;
use crate::peer::{Limits, PeerView};
use crate::room::{JoinRequest, Room, RoomMeta};
use crate::socket::{PeerState, Recipient};
use crate::step::{apply, DurableRecord, Effects, Forward, Sockets, Step};
use std::collections::BTreeMap;

/// One socket as the runtime would hold it.
#[derive(Debug, Clone)]
pub struct Socket {
    pub state: Option<PeerState>,
    pub heartbeat_ms: Option<u64>,
    pub open: bool,
    pub received: Vec<String>,
    pub close: Option<(u16, String)>,
}

pub struct Harness {
    pub cfg: Limits,
    pub sockets: Vec<Socket>,
    pub meta: RoomMeta,
    pub stored_meta: Option<RoomMeta>,
    pub storage: BTreeMap<String, String>,
    pub alarm: Option<u64>,
    pub flood: PeerFloodGuard,
    pub counters: BTreeMap<Counter, u64>,
    pub now: u64,
    /// How many times the alarm fired: each is a wake of a hibernated room.
    pub alarms_fired: u64,
    /// Every log line the steps asked for, in order.
    pub logs: Vec<crate::log::LogEvent>,
    /// Clients ignore the server's close frames (see [`DoubleSockets`]).
    pub clients_ignore_close: bool,
}

impl Harness {
    pub fn new(cfg: Limits) -> Self {
        let flood = PeerFloodGuard::new(cfg.peer_msgs_per_sec);
        Harness {
            cfg,
            sockets: Vec::new(),
            meta: RoomMeta::default(),
            stored_meta: None,
            storage: BTreeMap::new(),
            alarm: None,
            flood,
            counters: BTreeMap::new(),
            now: 1_000_000,
            alarms_fired: 0,
            logs: Vec::new(),
            clients_ignore_close: false,
        }
    }

    /// Simulates eviction: everything in memory is lost, storage stays.
    pub fn evict(&mut self) {
        self.meta = self.stored_meta.clone().unwrap_or_default();
        self.flood = PeerFloodGuard::new(self.cfg.peer_msgs_per_sec);
    }

    fn views(&self) -> Vec<PeerView<usize>> {
        views(&self.sockets)
    }

    /// A new socket joins as `id`; returns its index.
    pub fn join(&mut self, id: &str, proven: bool) -> usize {
        self.join_with_ticket(id, proven, None)
    }

    /// A join admitted by the ticket `ticket` (see `JoinRequest::ticket`).
    pub fn join_with_ticket(&mut self, id: &str, proven: bool, ticket: Option<&str>) -> usize {
        let index = self.sockets.len();
        self.sockets.push(Socket {
            state: None,
            heartbeat_ms: None,
            open: true,
            received: Vec::new(),
            close: None,
        });
        let views = self.views();
        let before = self.meta.clone();
        let fx = Room::new(&self.cfg).join(
            &mut self.meta,
            &views,
            JoinRequest {
                id: id.to_owned(),
                proven,
                ticket: ticket.map(str::to_owned),
            },
            self.now,
        );
        self.apply(fx, Some(index), &before);
        index
    }

    pub fn send(&mut self, from: usize, frame: &str) {
        let views = self.views();
        if !views.iter().any(|v| v.socket == from) {
            return;
        }
        let before = self.meta.clone();
        let fx = Room::new(&self.cfg).frame(
            &mut self.meta,
            &views,
            from,
            frame.as_bytes(),
            &mut self.flood,
            self.now,
        );
        self.apply(fx, None, &before);
    }

    /// The runtime answered a HEARTBEAT (no handler runs).
    pub fn heartbeat(&mut self, socket: usize) {
        self.sockets[socket].heartbeat_ms = Some(self.now);
    }

    /// The client closed (or the connection dropped).
    pub fn client_close(&mut self, socket: usize) {
        if !self.sockets[socket].open {
            return;
        }
        self.sockets[socket].open = false;
        let Some(state) = self.sockets[socket].state.clone() else {
            return;
        };
        let gone = PeerView {
            socket,
            state,
            heartbeat_ms: self.sockets[socket].heartbeat_ms,
        };
        let views = self.views();
        let before = self.meta.clone();
        let fx =
            Room::new(&self.cfg).closed(&mut self.meta, &views, &gone, &mut self.flood, self.now);
        self.apply(fx, None, &before);
    }

    /// Moves time forward, firing the alarm when it is due.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while let Some(at) = self.alarm.filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.alarm = None;
            self.alarms_fired += 1;
            let views = self.views();
            let before = self.meta.clone();
            let fx = Room::new(&self.cfg).alarm(&mut self.meta, &views, self.now);
            self.apply(fx, None, &before);
        }
        self.now = end;
    }

    /// A moderator removes `id` (see [`Room::remove`]).
    pub fn remove(
        &mut self,
        id: &str,
        block_secs: Option<u64>,
    ) -> Option<crate::moderation::Removal> {
        let views = self.views();
        let before = self.meta.clone();
        let (fx, removal) =
            Room::new(&self.cfg).remove(&mut self.meta, &views, id, block_secs, self.now);
        self.apply(fx, None, &before);
        removal
    }

    /// A moderator closes the room (see [`Room::close_room`]).
    pub fn close_room(&mut self) -> Option<crate::moderation::Closure> {
        let views = self.views();
        let before = self.meta.clone();
        let (fx, closure) = Room::new(&self.cfg).close_room(&mut self.meta, &views, self.now);
        self.apply(fx, None, &before);
        closure
    }

    /// What a moderator sees (see [`Room::inspect`]).
    pub fn inspect(&self) -> crate::moderation::RoomSummary {
        Room::new(&self.cfg).inspect(&self.meta, &self.views(), self.now)
    }

    /// The host's order (`step::apply`): read what the step delivers, carry
    /// it out, then storage.
    fn apply(&mut self, step: Step<usize>, joiner: Option<usize>, before: &RoomMeta) {
        let object = Object {
            sockets: &mut self.sockets,
            record: &self.meta,
            stored_record: &mut self.stored_meta,
            storage: &mut self.storage,
            alarm: &mut self.alarm,
            clients_ignore_close: self.clients_ignore_close,
        };
        let mut effects = Recorded {
            logs: &mut self.logs,
            counters: &mut self.counters,
            forwards: &mut Vec::new(),
        };
        object.apply(step, joiner, before, &mut effects);
    }

    /// Parsed frames a socket received, as (type, src) pairs.
    pub fn got(&self, socket: usize) -> Vec<(String, Option<String>)> {
        parse_received(&self.sockets[socket].received)
    }

    pub fn types(&self, socket: usize) -> Vec<String> {
        self.got(socket).into_iter().map(|(t, _)| t).collect()
    }

    pub fn live_count(&self) -> usize {
        self.views().iter().filter(|v| !v.state.closing).count()
    }

    pub fn count(&self, counter: Counter) -> u64 {
        self.counters.get(&counter).copied().unwrap_or(0)
    }
}

/// Server frames as (type, src) pairs; a non-JSON one shows up as an empty type.
pub(crate) fn parse_received(received: &[String]) -> Vec<(String, Option<String>)> {
    received
        .iter()
        .map(|t| {
            let v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
            (
                v["type"].as_str().unwrap_or_default().to_owned(),
                v["src"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The double's sockets as the interpreter sees them.
pub(crate) struct DoubleSockets<'a> {
    pub(crate) sockets: &'a mut [Socket],
    pub(crate) joiner: Option<usize>,
    /// Clients never answer the server's close frame: their sockets stay
    /// listed (as the runtime lists a socket until its close completes).
    pub(crate) clients_ignore_close: bool,
}

impl DoubleSockets<'_> {
    fn index(&self, to: Recipient<usize>) -> Option<usize> {
        match to {
            Recipient::Peer(i) => Some(i),
            Recipient::Joiner => self.joiner,
        }
    }
}

impl Sockets<usize> for DoubleSockets<'_> {
    type Error = std::convert::Infallible;

    fn accept(&mut self, state: &PeerState) -> Result<(), Self::Error> {
        if let Some(j) = self.joiner {
            self.sockets[j].state = Some(state.clone());
        }
        Ok(())
    }

    fn refuse(&mut self, frame: &str, code: u16, reason: &str) -> Result<(), Self::Error> {
        if let Some(j) = self.joiner {
            let socket = &mut self.sockets[j];
            socket.received.push(frame.to_owned());
            socket.close = Some((code, reason.to_owned()));
            socket.open = false;
        }
        Ok(())
    }

    fn send(&mut self, to: Recipient<usize>, text: &str) {
        if let Some(socket) = self.index(to).map(|i| &mut self.sockets[i]) {
            if socket.open {
                socket.received.push(text.to_owned());
            }
        }
    }

    fn save_state(&mut self, socket: usize, state: &PeerState) -> Result<(), Self::Error> {
        self.sockets[socket].state = Some(state.clone());
        Ok(())
    }

    fn close(&mut self, socket: usize, code: u16, reason: &str) {
        self.sockets[socket].close = Some((code, reason.to_owned()));
        self.sockets[socket].open = self.clients_ignore_close;
    }
}

/// A double's effects: logs and counters kept for the tests to read, and
/// forwards kept for the open namespace's double to deliver.
pub(crate) struct Recorded<'a> {
    pub logs: &'a mut Vec<crate::log::LogEvent>,
    pub counters: &'a mut BTreeMap<Counter, u64>,
    pub forwards: &'a mut Vec<Forward>,
}

impl Effects for Recorded<'_> {
    fn forward(&mut self, forwards: Vec<Forward>) {
        self.forwards.extend(forwards);
    }
    fn count(&mut self, counter: Counter, by: u64) {
        *self.counters.entry(counter).or_insert(0) += by;
    }
    fn log(&mut self, event: crate::log::LogEvent) {
        self.logs.push(event);
    }
}

/// The core's view of a double's open sockets.
pub(crate) fn views(sockets: &[Socket]) -> Vec<PeerView<usize>> {
    sockets
        .iter()
        .enumerate()
        .filter(|(_, s)| s.open)
        .filter_map(|(i, s)| {
            s.state.clone().map(|state| PeerView {
                socket: i,
                state,
                heartbeat_ms: s.heartbeat_ms,
            })
        })
        .collect()
}

/// One object of a double (a room, or a home), borrowed for one step.
pub(crate) struct Object<'a, R> {
    pub sockets: &'a mut Vec<Socket>,
    /// The record as the machine left it.
    pub record: &'a R,
    pub stored_record: &'a mut Option<R>,
    pub storage: &'a mut BTreeMap<String, String>,
    pub alarm: &'a mut Option<u64>,
    pub clients_ignore_close: bool,
}

impl<R: DurableRecord + PartialEq + std::fmt::Debug> Object<'_, R> {
    /// The host's order (`step::apply`): read what the step delivers, carry
    /// it out, then storage. Checks the step's claim that the record did not
    /// change, which the host relies on to skip writes.
    pub fn apply(
        self,
        step: Step<usize>,
        joiner: Option<usize>,
        before: &R,
        effects: &mut Recorded,
    ) {
        assert!(
            step.record_changed || self.record == before,
            "the record changed but the step did not say so: {before:?} -> {:?}",
            self.record
        );
        let stored: BTreeMap<String, String> = step
            .reads()
            .into_iter()
            .filter_map(|key| self.storage.get(&key).map(|text| (key, text.clone())))
            .collect();
        let mut sockets = DoubleSockets {
            sockets: self.sockets,
            joiner,
            clients_ignore_close: self.clients_ignore_close,
        };
        let Ok(writes) = apply(step, &stored, &mut sockets, effects);
        self.storage.extend(writes.puts);
        for key in &writes.deletes {
            self.storage.remove(key);
        }
        if writes.record {
            *self.stored_record = (!self.record.is_empty()).then(|| self.record.clone());
        }
        if writes.alarm {
            *self.alarm = self.record.alarm_ms();
        }
    }
}
