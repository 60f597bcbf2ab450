//! An in-memory stand-in for the `GameRoom` Durable Object: it owns sockets
//! (with attachments and auto-response timestamps), a storage map and one
//! alarm, feeds events to the core and carries out its effects exactly as
//! the Worker does. Tests then look at what each socket received.

use crate::flood::PeerFloodGuard;
use crate::metrics::Counter;
use crate::room::{Effect, JoinRequest, PeerState, PeerView, Room, RoomConfig, RoomMeta, Target};
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
    pub cfg: RoomConfig,
    pub sockets: Vec<Socket>,
    pub meta: RoomMeta,
    pub stored_meta: Option<RoomMeta>,
    pub storage: BTreeMap<String, String>,
    pub alarm: Option<u64>,
    pub flood: PeerFloodGuard,
    pub counters: BTreeMap<Counter, u64>,
    pub now: u64,
}

impl Harness {
    pub fn new(cfg: RoomConfig) -> Self {
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
        }
    }

    /// Simulates eviction: everything in memory is lost, storage stays.
    pub fn evict(&mut self) {
        self.meta = self.stored_meta.clone().unwrap_or_default();
        self.flood = PeerFloodGuard::new(self.cfg.peer_msgs_per_sec);
    }

    fn views(&self) -> Vec<PeerView<usize>> {
        self.sockets
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

    /// A new socket joins as `id`; returns its index.
    pub fn join(&mut self, id: &str, proven: bool) -> usize {
        let index = self.sockets.len();
        self.sockets.push(Socket {
            state: None,
            heartbeat_ms: None,
            open: true,
            received: Vec::new(),
            close: None,
        });
        let views = self.views();
        let fx = Room::new(&self.cfg).join(
            &mut self.meta,
            &views,
            JoinRequest {
                id: id.to_owned(),
                proven,
            },
            self.now,
        );
        self.apply(fx, Some(index));
        index
    }

    pub fn send(&mut self, from: usize, frame: &str) {
        let views = self.views();
        if !views.iter().any(|v| v.socket == from) {
            return;
        }
        let fx = Room::new(&self.cfg).frame(
            &mut self.meta,
            &views,
            from,
            frame.as_bytes(),
            &mut self.flood,
            self.now,
        );
        self.apply(fx, None);
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
        let fx =
            Room::new(&self.cfg).closed(&mut self.meta, &views, &gone, &mut self.flood, self.now);
        self.apply(fx, None);
    }

    /// Moves time forward, firing the alarm when it is due.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while let Some(at) = self.alarm.filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.alarm = None;
            let views = self.views();
            let fx = Room::new(&self.cfg).alarm(&mut self.meta, &views, self.now);
            self.apply(fx, None);
        }
        self.now = end;
    }

    fn apply(&mut self, effects: Vec<Effect<usize>>, joiner: Option<usize>) {
        let before = self.stored_meta.clone().unwrap_or_default();
        for effect in effects {
            match effect {
                Effect::Accept { state } => {
                    if let Some(j) = joiner {
                        self.sockets[j].state = Some(state);
                    }
                }
                Effect::Refuse {
                    frame,
                    code,
                    reason,
                } => {
                    if let Some(j) = joiner {
                        self.sockets[j].received.push(frame);
                        self.sockets[j].close = Some((code, reason));
                        self.sockets[j].open = false;
                    }
                }
                Effect::Send { to, text } => {
                    let i = match to {
                        Target::Peer(i) => Some(i),
                        Target::Joiner => joiner,
                    };
                    if let Some(i) = i {
                        if self.sockets[i].open {
                            self.sockets[i].received.push(text);
                        }
                    }
                }
                Effect::SaveState { socket, state } => self.sockets[socket].state = Some(state),
                Effect::Close {
                    socket,
                    code,
                    reason,
                } => {
                    self.sockets[socket].close = Some((code, reason));
                    self.sockets[socket].open = false;
                }
                Effect::StoreQueued { key, text } => {
                    self.storage.insert(key, text);
                }
                Effect::DeliverQueued { to, keys } => {
                    let i = match to {
                        Target::Peer(i) => Some(i),
                        Target::Joiner => joiner,
                    };
                    for key in keys {
                        if let (Some(i), Some(text)) = (i, self.storage.remove(&key)) {
                            self.sockets[i].received.push(text);
                        }
                    }
                }
                Effect::DeleteQueued { keys } => {
                    for key in keys {
                        self.storage.remove(&key);
                    }
                }
                Effect::SetAlarm { at_ms } => self.alarm = Some(at_ms),
                Effect::DeleteAlarm => self.alarm = None,
                Effect::Count(counter, by) => *self.counters.entry(counter).or_insert(0) += by,
                Effect::Log(_) => {}
            }
        }
        if self.meta != before {
            self.stored_meta = if self.meta.is_empty() {
                None
            } else {
                Some(self.meta.clone())
            };
        }
    }

    /// Parsed frames a socket received, as (type, src) pairs.
    pub fn got(&self, socket: usize) -> Vec<(String, Option<String>)> {
        self.sockets[socket]
            .received
            .iter()
            .map(|t| {
                // Server frames are JSON; a non-JSON one shows up as an empty type.
                let v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
                (
                    v["type"].as_str().unwrap_or_default().to_owned(),
                    v["src"].as_str().map(str::to_owned),
                )
            })
            .collect()
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
