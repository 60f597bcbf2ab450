//! In-memory stand-ins for the Durable Objects that hold sockets. One
//! [`Object`] owns what the runtime keeps for one object (sockets with
//! attachments and auto-response times, the record, storage, one alarm, the
//! flood guard); it takes the machine's [`Input`]s, as the Worker's host
//! does, and carries out each [`Step`] with the host's interpreter
//! ([`crate::step::apply`]) in the host's order. Tests then look at what
//! each socket received.
//!
//! [`Harness`] is one game room; [`open::OpenNet`] is the open namespace:
//! many homes, and the frames they forward to each other delivered in
//! order. Both are driven by [`Event`]s: a machine input, or what happens
//! around the machine (a heartbeat the runtime answers, time, eviction).

pub mod open;

use crate::answer::Answer;
use crate::delivery::Forward;
use crate::flood::PeerFloodGuard;
use crate::machine::{Input, Join, Machine};
use crate::metrics::Counter;
use crate::peer::{Limits, PeerView};
use crate::placement::Placement;
use crate::record::Record;
use crate::socket::{PeerState, Recipient};
use crate::step::{apply, Effects, Sockets, Step};
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

/// One socket as the runtime would hold it.
#[derive(Debug, Clone, Default)]
pub struct Socket {
    pub state: Option<PeerState>,
    pub heartbeat_ms: Option<u64>,
    pub open: bool,
    pub received: Vec<String>,
    pub close: Option<(u16, String)>,
}

/// What happens to a double: an input for the machine, or what happens
/// around it. Property tests and the fuzz target generate these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A machine input, as the runtime would hand it to the host. A join
    /// opens a new socket; inputs naming a socket that does not exist or
    /// is closed are dropped, as the runtime never delivers them.
    Input(Input<usize>),
    /// The runtime answered a HEARTBEAT on this socket (no handler runs).
    Heartbeat(usize),
    /// Time moves on by this many ms, firing the alarm when it is due.
    Advance(u64),
    /// Everything in memory is lost; storage and sockets stay.
    Evict,
}

/// One object's runtime: see the module header.
#[derive(Default)]
pub struct Object {
    pub sockets: Vec<Socket>,
    pub record: Record,
    /// The record as storage holds it.
    pub stored_record: Option<Record>,
    pub storage: BTreeMap<String, String>,
    pub alarm: Option<u64>,
    /// With [`Limits::shard_sweeps`]: when the stats shard calls the
    /// sweep, as the object's last report or sweep answer asked.
    pub shard_sweep_ms: Option<u64>,
    /// Storage writes of the record (a put or a delete) and of the alarm
    /// (a set or a delete), each a row written on Cloudflare's bill.
    pub record_writes: u64,
    pub alarm_writes: u64,
    /// Storage writes of queued frames (a put or a delete each).
    pub entry_writes: u64,
    flood: Option<PeerFloodGuard>,
}

/// What a double's steps reported, and the clock they ran at.
pub(crate) struct World<'a> {
    pub now: u64,
    pub counters: &'a mut BTreeMap<Counter, u64>,
    pub logs: &'a mut Vec<crate::log::LogEvent>,
    /// Clients ignore the server's close frames (see [`DoubleSockets`]).
    pub clients_ignore_close: bool,
}

impl Object {
    /// Nothing left behind: no record, no stored frame, no alarm.
    pub fn is_gone(&self) -> bool {
        self.stored_record.is_none() && self.storage.is_empty() && self.alarm.is_none()
    }

    /// The core's view of the open sockets, plus `closing` (a socket whose
    /// close event is being handled: the runtime may still list it).
    fn views(&self, closing: Option<usize>) -> Vec<PeerView<usize>> {
        self.sockets
            .iter()
            .enumerate()
            .filter(|(i, s)| s.open || Some(*i) == closing)
            .filter_map(|(i, s)| {
                s.state.clone().map(|state| PeerView {
                    socket: i,
                    state,
                    heartbeat_ms: s.heartbeat_ms,
                })
            })
            .collect()
    }

    /// The object's next wake: its alarm, or the shard's sweep call,
    /// whichever comes first.
    pub fn next_wake(&self) -> Option<(u64, Input<usize>)> {
        match (self.alarm, self.shard_sweep_ms) {
            (Some(a), Some(s)) if s < a => Some((s, Input::Sweep)),
            (Some(a), _) => Some((a, Input::Alarm)),
            (None, Some(s)) => Some((s, Input::Sweep)),
            (None, None) => None,
        }
    }

    fn is_open(&self, socket: usize) -> bool {
        self.sockets.get(socket).is_some_and(|s| s.open)
    }

    /// Runs one input as the host would (the runtime's part first: a join
    /// opens a socket, a close closes it), then carries out its step.
    /// Answers the step's forwards and answer.
    pub(crate) fn handle(
        &mut self,
        machine: &Machine,
        input: Input<usize>,
        world: &mut World,
    ) -> (Vec<Forward>, Option<Answer>) {
        let mut joiner = None;
        let mut closing = None;
        match &input {
            Input::Join(_) => {
                joiner = Some(self.sockets.len());
                self.sockets.push(Socket {
                    open: true,
                    ..Socket::default()
                });
            }
            Input::Frame { from: socket, .. } | Input::TooLarge { from: socket, .. } => {
                if !self.is_open(*socket) {
                    return (Vec::new(), None);
                }
            }
            Input::Closed { socket } => {
                if !self.is_open(*socket) {
                    return (Vec::new(), None);
                }
                self.sockets[*socket].open = false;
                closing = Some(*socket);
            }
            Input::Alarm => self.alarm = None,
            Input::Sweep
            | Input::Deliver(_)
            | Input::Undelivered { .. }
            | Input::DroppedAway { .. }
            | Input::Inspect
            | Input::Remove { .. }
            | Input::CloseRoom => {}
        }
        // As the host: a change of who is here (or an alarm) reports, and
        // the report tells the shard when to sweep; a sweep answers it.
        let membership = matches!(
            input,
            Input::Join(_)
                | Input::Closed { .. }
                | Input::Alarm
                | Input::Remove { .. }
                | Input::CloseRoom
        );
        let views = self.views(closing);
        let before = self.record.clone();
        let limits = machine.limits;
        let flood = self
            .flood
            .get_or_insert_with(|| PeerFloodGuard::new(limits.peer_msgs_per_sec));
        let mut step = machine.handle_input(&mut self.record, &views, input, flood, world.now);
        let answer = step.answer.take();
        let forwards = self.apply(step, joiner, &before, world);
        if limits.shard_sweeps {
            match answer {
                Some(Answer::Swept { next_sweep_ms }) => self.shard_sweep_ms = next_sweep_ms,
                _ if membership => {
                    let views = self.views(None);
                    self.shard_sweep_ms = limits.sweep_due_for(&views, world.now);
                }
                _ => {}
            }
        }
        (forwards, answer)
    }

    /// Everything in memory is lost; storage and sockets stay.
    pub fn evict(&mut self) {
        self.record = self.stored_record.clone().unwrap_or_default();
        self.flood = None;
    }

    /// The host's order (`step::apply`): read what the step delivers, carry
    /// it out, then storage. Checks the step's claim that the record did not
    /// change, which the host relies on to skip writes.
    fn apply(
        &mut self,
        step: Step<usize>,
        joiner: Option<usize>,
        before: &Record,
        world: &mut World,
    ) -> Vec<Forward> {
        assert!(
            step.record_changed || self.record == *before,
            "the record changed but the step did not say so: {before:?} -> {:?}",
            self.record
        );
        let stored: crate::flat_map::FlatMap<String, String> = step
            .reads()
            .into_iter()
            .filter_map(|key| self.storage.get(&key).map(|text| (key, text.clone())))
            .collect();
        let mut sockets = DoubleSockets {
            sockets: &mut self.sockets,
            joiner,
            clients_ignore_close: world.clients_ignore_close,
        };
        let mut effects = Recorded {
            world,
            forwards: Vec::new(),
        };
        let Ok(writes) = apply(step, &stored, &mut sockets, &mut effects);
        let forwards = effects.forwards;
        self.entry_writes += (writes.puts.len() + writes.deletes.len()) as u64;
        self.storage.extend(writes.puts);
        for key in &writes.deletes {
            self.storage.remove(key);
        }
        self.record_writes += u64::from(writes.record);
        self.alarm_writes += u64::from(writes.alarm);
        if writes.record {
            self.stored_record = (!self.record.is_empty()).then(|| self.record.clone());
        }
        if writes.alarm {
            self.alarm = self.record.alarm_ms;
        }
        forwards
    }
}

/// One game room and its clients.
pub struct Harness {
    pub cfg: Limits,
    pub room: Object,
    pub counters: BTreeMap<Counter, u64>,
    pub now: u64,
    /// How many times the alarm fired: each is a wake of a hibernated room.
    pub alarms_fired: u64,
    /// How many times the shard called the sweep: each is a wake too.
    pub sweeps_called: u64,
    /// Every log line the steps asked for, in order.
    pub logs: Vec<crate::log::LogEvent>,
    /// Clients ignore the server's close frames (see [`DoubleSockets`]).
    pub clients_ignore_close: bool,
}

/// The room's runtime parts (`h.sockets`, `h.record`, `h.storage`, ...).
impl Deref for Harness {
    type Target = Object;
    fn deref(&self) -> &Object {
        &self.room
    }
}

impl DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Object {
        &mut self.room
    }
}

impl Harness {
    pub fn new(cfg: Limits) -> Self {
        Harness {
            cfg,
            room: Object::default(),
            counters: BTreeMap::new(),
            now: 1_000_000,
            alarms_fired: 0,
            sweeps_called: 0,
            logs: Vec::new(),
            clients_ignore_close: false,
        }
    }

    /// One event; a moderator's call answers what it found.
    pub fn handle(&mut self, event: Event) -> Option<Answer> {
        match event {
            Event::Input(input) => return self.input(input),
            Event::Heartbeat(socket) => {
                let now = self.now;
                if let Some(s) = self.room.sockets.get_mut(socket) {
                    s.heartbeat_ms = Some(now);
                }
            }
            Event::Advance(ms) => {
                let end = self.now + ms;
                while let Some((at, input)) = self.room.next_wake().filter(|(at, _)| *at <= end) {
                    self.now = self.now.max(at);
                    if input == Input::Sweep {
                        self.sweeps_called += 1;
                    } else {
                        self.alarms_fired += 1;
                    }
                    self.input(input);
                }
                self.now = end;
            }
            Event::Evict => self.room.evict(),
        }
        None
    }

    fn input(&mut self, input: Input<usize>) -> Option<Answer> {
        let machine = Machine::new(&self.cfg, Placement::Room);
        let mut world = World {
            now: self.now,
            counters: &mut self.counters,
            logs: &mut self.logs,
            clients_ignore_close: self.clients_ignore_close,
        };
        self.room.handle(&machine, input, &mut world).1
    }

    /// A new socket joins as `id`; returns its index.
    pub fn join(&mut self, id: &str, proven: bool) -> usize {
        self.join_with_ticket(id, proven, None)
    }

    /// A join admitted by the ticket `ticket` (see [`Join::holder`]).
    pub fn join_with_ticket(&mut self, id: &str, proven: bool, ticket: Option<&str>) -> usize {
        let index = self.room.sockets.len();
        self.input(Input::Join(Join {
            id: id.to_owned(),
            proven,
            holder: ticket.map(str::to_owned),
        }));
        index
    }

    pub fn send(&mut self, from: usize, frame: &str) {
        let bytes = frame.as_bytes().to_vec();
        self.input(Input::Frame { from, bytes });
    }

    /// The runtime answered a HEARTBEAT (no handler runs).
    pub fn heartbeat(&mut self, socket: usize) {
        self.handle(Event::Heartbeat(socket));
    }

    /// The client closed (or the connection dropped).
    pub fn client_close(&mut self, socket: usize) {
        self.input(Input::Closed { socket });
    }

    /// Moves time forward, firing the alarm when it is due.
    pub fn advance(&mut self, ms: u64) {
        self.handle(Event::Advance(ms));
    }

    /// A moderator removes `id` (see `moderation.rs`).
    pub fn remove(&mut self, id: &str, block_secs: Option<u64>) -> Option<crate::answer::Removal> {
        let id = id.to_owned();
        match self.input(Input::Remove { id, block_secs }) {
            Some(Answer::Removed(removal)) => Some(removal),
            _ => None,
        }
    }

    /// A moderator closes the room.
    pub fn close_room(&mut self) -> Option<crate::answer::Closure> {
        match self.input(Input::CloseRoom) {
            Some(Answer::Closed(closure)) => Some(closure),
            _ => None,
        }
    }

    /// What a moderator sees.
    pub fn inspect(&self) -> crate::answer::RoomSummary {
        let machine = Machine::new(&self.cfg, Placement::Room);
        machine.inspect(&self.room.record, &self.room.views(None), self.now)
    }

    /// Parsed frames a socket received, as (type, src) pairs.
    pub fn got(&self, socket: usize) -> Vec<(String, Option<String>)> {
        parse_received(&self.room.sockets[socket].received)
    }

    pub fn types(&self, socket: usize) -> Vec<String> {
        self.got(socket).into_iter().map(|(t, _)| t).collect()
    }

    pub fn live_count(&self) -> usize {
        let views = self.room.views(None);
        views.iter().filter(|v| !v.state.closing).count()
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
struct DoubleSockets<'a> {
    sockets: &'a mut [Socket],
    joiner: Option<usize>,
    /// Clients never answer the server's close frame: their sockets stay
    /// listed (as the runtime lists a socket until its close completes).
    clients_ignore_close: bool,
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
struct Recorded<'w, 'a> {
    world: &'w mut World<'a>,
    forwards: Vec<Forward>,
}

impl Effects for Recorded<'_, '_> {
    fn forward(&mut self, forwards: Vec<Forward>) {
        self.forwards.extend(forwards);
    }
    fn count(&mut self, counter: Counter, by: u64) {
        *self.world.counters.entry(counter).or_insert(0) += by;
    }
    fn log(&mut self, event: crate::log::LogEvent) {
        self.world.logs.push(event);
    }
}
