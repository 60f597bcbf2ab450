//! The open namespace in memory: one [`Object`] per home (named by the id
//! it is home to, or by its group with a separator) and the forwards between them, delivered one by one in
//! the order the steps made them, as the Worker's per-destination outbox
//! does.

use super::{parse_received, Event, Object, Socket, World};
use crate::answer::Answer;
use crate::delivery::Forward;
use crate::frame::DropReason;
use crate::machine::{token_digest, Input, Join, Machine};
use crate::metrics::Counter;
use crate::peer::Limits;
use crate::placement::{home_of, Placement};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A client's socket: its home's name and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(usize);

/// The whole namespace.
pub struct OpenNet {
    pub cfg: Limits,
    /// `OPEN_GROUP_SEPARATOR`.
    pub separator: Option<char>,
    pub homes: BTreeMap<String, Object>,
    /// Deliveries between objects so far: each is a hop a frame made.
    pub deliveries: u64,
    /// Objects a delivery cannot reach (it fails after its retries).
    pub unreachable: BTreeSet<String>,
    /// What each delivery's destination answered, in order.
    pub delivery_reports: Vec<crate::answer::DeliveryReport>,
    clients: Vec<(String, usize)>,
    /// Forwards on their way, with the object that made them.
    in_flight: VecDeque<(String, Forward)>,
    pub counters: BTreeMap<Counter, u64>,
    /// Every log line the steps asked for, in order.
    pub logs: Vec<crate::log::LogEvent>,
    pub now: u64,
}

impl OpenNet {
    pub fn new(cfg: Limits) -> Self {
        Self::grouped(cfg, None)
    }

    /// The namespace with `OPEN_GROUP_SEPARATOR` set to `separator`.
    pub fn grouped(cfg: Limits, separator: Option<char>) -> Self {
        OpenNet {
            cfg,
            separator,
            homes: BTreeMap::new(),
            deliveries: 0,
            unreachable: BTreeSet::new(),
            delivery_reports: Vec::new(),
            clients: Vec::new(),
            in_flight: VecDeque::new(),
            counters: BTreeMap::new(),
            logs: Vec::new(),
            now: 1_000_000,
        }
    }

    /// A client opens a socket as `id` with its own `token`.
    pub fn connect(&mut self, id: &str, token: &str) -> Client {
        self.connect_as(id, token, false)
    }

    /// The same with a ticket that proved the id (`proven`).
    pub fn connect_as(&mut self, id: &str, token: &str, proven: bool) -> Client {
        let home = home_of(id, self.separator).to_owned();
        let index = self.homes.get(&home).map_or(0, |h| h.sockets.len());
        self.clients.push((home.clone(), index));
        let join = Join {
            id: id.to_owned(),
            proven,
            holder: Some(token_digest(token)),
        };
        self.handle(&home, Event::Input(Input::Join(join)));
        Client(self.clients.len() - 1)
    }

    pub fn send(&mut self, client: Client, frame: &str) {
        let (home, from) = self.clients[client.0].clone();
        let bytes = frame.as_bytes().to_vec();
        self.handle(&home, Event::Input(Input::Frame { from, bytes }));
    }

    /// The runtime answered a HEARTBEAT (no handler runs).
    pub fn heartbeat(&mut self, client: Client) {
        let (home, socket) = self.clients[client.0].clone();
        self.handle(&home, Event::Heartbeat(socket));
    }

    /// The client closed its socket (page closed, network lost).
    pub fn close(&mut self, client: Client) {
        let (home, socket) = self.clients[client.0].clone();
        self.handle(&home, Event::Input(Input::Closed { socket }));
    }

    /// Moves time forward, firing every home's alarm (or its shard's
    /// sweep call) in time order.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        loop {
            let next = self
                .homes
                .iter()
                .filter_map(|(name, h)| h.next_wake().map(|(at, input)| (at, name.clone(), input)))
                .filter(|(at, _, _)| *at <= end)
                .min_by_key(|(at, name, _)| (*at, name.clone()));
            let Some((at, name, input)) = next else { break };
            self.now = self.now.max(at);
            self.handle(&name, Event::Input(input));
        }
        self.now = end;
    }

    /// Every home loses its memory; storage and sockets stay.
    pub fn evict_all(&mut self) {
        for home in self.homes.values_mut() {
            home.evict();
        }
    }

    pub fn got(&self, client: Client) -> Vec<(String, Option<String>)> {
        parse_received(&self.socket(client).received)
    }

    pub fn types(&self, client: Client) -> Vec<String> {
        self.got(client).into_iter().map(|(t, _)| t).collect()
    }

    pub fn socket(&self, client: Client) -> &Socket {
        let (home, socket) = &self.clients[client.0];
        &self.homes[home].sockets[*socket]
    }

    pub fn count(&self, counter: Counter) -> u64 {
        self.counters.get(&counter).copied().unwrap_or(0)
    }

    /// One event at the home `name`, then the forwards it made (and
    /// theirs), each delivered to its object as the outbox would.
    pub fn handle(&mut self, name: &str, event: Event) {
        self.handle_one(name, event);
        while let Some((from, forward)) = self.in_flight.pop_front() {
            if self.unreachable.contains(&forward.to) {
                let parcels = vec![forward.parcel];
                let reason = DropReason::Unreachable;
                self.handle_one(&from, Event::Input(Input::Undelivered { parcels, reason }));
                continue;
            }
            self.deliveries += 1;
            let delivery = Input::Deliver(vec![forward.parcel]);
            let answer = self.handle_one(&forward.to, Event::Input(delivery));
            // The report goes back to the sender with the delivery's answer.
            let Some(Answer::Delivered(report)) = answer else {
                continue;
            };
            let senders = report.dropped_from.clone();
            self.delivery_reports.push(report);
            if !senders.is_empty() {
                let to = forward.to.clone();
                self.handle_one(&from, Event::Input(Input::DroppedAway { to, senders }));
            }
        }
    }

    /// One event at one home; answers what its step answered.
    fn handle_one(&mut self, name: &str, event: Event) -> Option<Answer> {
        let home = self.homes.entry(name.to_owned()).or_default();
        let input = match event {
            Event::Input(input) => input,
            Event::Heartbeat(socket) => {
                if let Some(s) = home.sockets.get_mut(socket) {
                    s.heartbeat_ms = Some(self.now);
                }
                return None;
            }
            Event::Advance(ms) => {
                self.advance(ms);
                return None;
            }
            Event::Evict => {
                home.evict();
                return None;
            }
        };
        let placement = Placement::Open {
            home: name,
            separator: self.separator,
        };
        let machine = Machine::new(&self.cfg, placement);
        let mut world = World {
            now: self.now,
            counters: &mut self.counters,
            logs: &mut self.logs,
            clients_ignore_close: false,
        };
        let (forwards, answer) = home.handle(&machine, input, &mut world);
        self.in_flight
            .extend(forwards.into_iter().map(|f| (name.to_owned(), f)));
        answer
    }
}
