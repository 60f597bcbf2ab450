//! The open namespace in memory: one [`HomeDouble`] per peer id (sockets,
//! record, storage, alarm, flood guard) and the forwards between them,
//! delivered one by one in the order the steps made them, as the Worker's
//! per-destination outbox does.

use super::{parse_received, Socket};
use super::{views, Object, Recorded};
use crate::flood::PeerFloodGuard;
use crate::machine::Machine;
use crate::metrics::Counter;
use crate::open::{token_digest, Delivery, Home, HomeRecord, OpenJoin};
use crate::peer::{Limits, PeerView};
use crate::step::Forward;
use crate::step::Step;
use std::collections::{BTreeMap, VecDeque};

/// One home, as its Durable Object would hold it.
#[derive(Default)]
pub struct HomeDouble {
    pub sockets: Vec<Socket>,
    pub rec: HomeRecord,
    pub stored_rec: Option<HomeRecord>,
    pub storage: BTreeMap<String, String>,
    pub alarm: Option<u64>,
    flood: Option<PeerFloodGuard>,
}

impl HomeDouble {
    fn views(&self) -> Vec<PeerView<usize>> {
        views(&self.sockets)
    }

    /// Nothing left behind: no record, no stored frame, no alarm.
    pub fn is_gone(&self) -> bool {
        self.stored_rec.is_none() && self.storage.is_empty() && self.alarm.is_none()
    }
}

/// A client's socket: its home's id and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(usize);

/// The whole namespace.
pub struct OpenNet {
    pub cfg: Limits,
    pub homes: BTreeMap<String, HomeDouble>,
    clients: Vec<(String, usize)>,
    in_flight: VecDeque<(String, Forward)>,
    pub counters: BTreeMap<Counter, u64>,
    /// Every log line the steps asked for, in order.
    pub logs: Vec<crate::log::LogEvent>,
    pub now: u64,
}

impl OpenNet {
    pub fn new(cfg: Limits) -> Self {
        OpenNet {
            cfg,
            homes: BTreeMap::new(),
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
        let home = self.homes.entry(id.to_owned()).or_default();
        let index = home.sockets.len();
        home.sockets.push(Socket {
            state: None,
            heartbeat_ms: None,
            open: true,
            received: Vec::new(),
            close: None,
        });
        self.clients.push((id.to_owned(), index));
        let request = OpenJoin {
            token_digest: token_digest(token),
            proven,
        };
        self.run(id, Some(index), |home, rec, views, _, now| {
            home.join(rec, views, request, now)
        });
        Client(self.clients.len() - 1)
    }

    pub fn send(&mut self, client: Client, frame: &str) {
        let (id, socket) = self.clients[client.0].clone();
        if !self.homes[&id].sockets[socket].open {
            return;
        }
        self.run(&id, None, |home, rec, views, flood, now| {
            home.frame(rec, views, socket, frame.as_bytes(), flood, now)
        });
    }

    /// The runtime answered a HEARTBEAT (no handler runs).
    pub fn heartbeat(&mut self, client: Client) {
        let (id, socket) = self.clients[client.0].clone();
        let now = self.now;
        if let Some(home) = self.homes.get_mut(&id) {
            home.sockets[socket].heartbeat_ms = Some(now);
        }
    }

    /// The client closed its socket (page closed, network lost).
    pub fn close(&mut self, client: Client) {
        let (id, socket) = self.clients[client.0].clone();
        let Some(home) = self.homes.get_mut(&id) else {
            return;
        };
        if !home.sockets[socket].open {
            return;
        }
        home.sockets[socket].open = false;
        let Some(state) = home.sockets[socket].state.clone() else {
            return;
        };
        let gone = PeerView {
            socket,
            state,
            heartbeat_ms: home.sockets[socket].heartbeat_ms,
        };
        self.run(&id, None, |home, rec, views, flood, now| {
            home.closed(rec, views, &gone, flood, now)
        });
    }

    /// Moves time forward, firing every home's alarm in time order.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        loop {
            let next = self
                .homes
                .iter()
                .filter_map(|(id, h)| h.alarm.map(|at| (at, id.clone())))
                .filter(|(at, _)| *at <= end)
                .min();
            let Some((at, id)) = next else { break };
            self.now = self.now.max(at);
            if let Some(home) = self.homes.get_mut(&id) {
                home.alarm = None;
            }
            self.run(&id, None, |home, rec, views, _, now| {
                home.alarm(rec, views, now)
            });
        }
        self.now = end;
    }

    /// Every home loses its memory; storage and sockets stay.
    pub fn evict_all(&mut self) {
        for home in self.homes.values_mut() {
            home.rec = home.stored_rec.clone().unwrap_or_default();
            home.flood = None;
        }
    }

    pub fn got(&self, client: Client) -> Vec<(String, Option<String>)> {
        parse_received(&self.socket(client).received)
    }

    pub fn types(&self, client: Client) -> Vec<String> {
        self.got(client).into_iter().map(|(t, _)| t).collect()
    }

    pub fn socket(&self, client: Client) -> &Socket {
        let (id, socket) = &self.clients[client.0];
        &self.homes[id].sockets[*socket]
    }

    pub fn count(&self, counter: Counter) -> u64 {
        self.counters.get(&counter).copied().unwrap_or(0)
    }

    /// Runs one handler of `id`'s home, carries out its step in the
    /// Worker's order, then delivers the forwards it made (and theirs).
    fn run<F>(&mut self, id: &str, joiner: Option<usize>, handler: F)
    where
        F: FnOnce(
            &Home,
            &mut HomeRecord,
            &[PeerView<usize>],
            &mut PeerFloodGuard,
            u64,
        ) -> Step<usize>,
    {
        self.run_one(id, joiner, handler);
        while let Some((src, forward)) = self.in_flight.pop_front() {
            let delivery = Delivery {
                src,
                parcels: vec![forward.parcel],
            };
            self.run_one(&forward.to, None, |home, rec, views, flood, now| {
                home.deliver(rec, views, &delivery, flood, now)
            });
        }
    }

    fn run_one<F>(&mut self, id: &str, joiner: Option<usize>, handler: F)
    where
        F: FnOnce(
            &Home,
            &mut HomeRecord,
            &[PeerView<usize>],
            &mut PeerFloodGuard,
            u64,
        ) -> Step<usize>,
    {
        let cfg = self.cfg.clone();
        let now = self.now;
        let home = self.homes.entry(id.to_owned()).or_default();
        let views = home.views();
        let before = home.rec.clone();
        let flood = home
            .flood
            .get_or_insert_with(|| PeerFloodGuard::new(cfg.peer_msgs_per_sec));
        let step = handler(&Home::new(&cfg, id), &mut home.rec, &views, flood, now);
        let mut forwards = Vec::new();
        let mut effects = Recorded {
            logs: &mut self.logs,
            counters: &mut self.counters,
            forwards: &mut forwards,
        };
        let object = Object {
            sockets: &mut home.sockets,
            record: &home.rec,
            stored_record: &mut home.stored_rec,
            storage: &mut home.storage,
            alarm: &mut home.alarm,
            clients_ignore_close: false,
        };
        object.apply(step, joiner, &before, &mut effects);
        self.in_flight
            .extend(forwards.into_iter().map(|f| (id.to_owned(), f)));
    }
}
