//! The one body of every Durable Object that holds sockets: a game room
//! (`game_room.rs`) and a home of the open namespace (`peer_home.rs`) are
//! thin wrappers around a [`Host`], which owns what they share: the socket
//! cache, the durable record, the flood guard, the stats reporter, the
//! outbox and the configuration (checked once per event: a misconfigured
//! object answers every event with the configuration error).
//!
//! Every event goes the same way: read the sockets and the record, run the
//! core's machine on the record in place without yielding, then carry out
//! its [`Step`] in one fixed order ([`Host::finish`]): read the frames it
//! delivers, the core's socket interpreter, the forwards into the outbox
//! (before any storage await, so a sender's parcels keep their order),
//! counters, logs, storage, the alarm; then drain the outbox.
//!
//! The record the machine changes is the in-memory copy itself, so storage
//! writes and the alarm always carry the latest state (see `record.rs`),
//! and correctness does not hang on which awaits the input gates cover.

use crate::outbox::Outbox;
use crate::record::CachedRecord;
use crate::runtime::{self, RawState};
use crate::sockets::{Listed, Read, RoomSockets, SocketList, Views};
use crate::stats::Reporter;
use signaling_core::answer::Answer;
use signaling_core::config::{ConfigError, RoomsWorkerConfig};
use signaling_core::delivery::{Forward, Parcel};
use signaling_core::flat_map::FlatMap;
use signaling_core::flood::PeerFloodGuard;
use signaling_core::frame;
use signaling_core::frame::DropReason;
use signaling_core::log::{Level, LogEvent};
use signaling_core::machine::{Input, Join, Machine};
use signaling_core::metrics::Counter;
use signaling_core::peer::{closed_sender_drop, echo_close_code, PeerView};
use signaling_core::placement::Placement;
use signaling_core::socket::PeerState;
use signaling_core::step::{apply, Effects, Step};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{
    Env, Response, Result, State, WebSocket, WebSocketPair, WebSocketRequestResponsePair,
};

/// Where ids live in the object named by the first argument, given
/// `OPEN_GROUP_SEPARATOR`: what a kind of object adds to the host (see
/// `signaling_core::placement`).
pub type PlacementOf = fn(&str, Option<char>) -> Placement<'_>;

/// The parts of one object; see the module header.
pub struct Host {
    placement: PlacementOf,
    /// `OPEN_GROUP_SEPARATOR` (none when the configuration is broken).
    separator: Option<char>,
    pub state: State,
    raw: RawState,
    /// The object's name: the room, or the peer id a home is for.
    pub name: String,
    key: String,
    /// The isolate's settings (`runtime::config`), shared by its objects.
    pub config: Rc<std::result::Result<RoomsWorkerConfig, ConfigError>>,
    record: CachedRecord,
    /// Shared with a scheduled stats report, which counts the live peers.
    sockets: Rc<SocketList>,
    /// In-memory only: losing it at eviction merely forgives a flooder.
    flood: RefCell<PeerFloodGuard>,
    outbox: Outbox,
    /// Parcels the outbox had no room for, until the drain answers them.
    overflowed: RefCell<Vec<Parcel>>,
    pub env: Env,
    stats: Reporter,
    /// This object's wakes in the isolate (the debug view's counters).
    wakes: Rc<runtime::Wakes>,
}

impl Host {
    pub fn new(state: State, env: Env, placement: PlacementOf) -> Self {
        let (state, raw) = RawState::split(state);
        let name = state.id().name().unwrap_or_default();
        let config = runtime::config(&env);
        let separator = (*config).as_ref().ok().and_then(|c| c.open_group_separator);
        // A home's gauge and counters go under `open/{name}`, apart from rooms'.
        let key = match placement(&name, separator) {
            Placement::Room => name.clone(),
            Placement::Open { .. } => format!("open/{name}"),
        };
        let per_sec = (*config).as_ref().map_or(0, |c| c.limits.peer_msgs_per_sec);
        if let Ok(pair) = WebSocketRequestResponsePair::new(frame::HEARTBEAT, frame::HEARTBEAT) {
            state.set_websocket_auto_response(&pair);
        }
        let wakes = runtime::constructed(&key);
        let stats = Reporter::new((*config).as_ref().ok().map(|c| c.stats));
        Host {
            placement,
            separator,
            state,
            raw,
            name,
            key,
            config,
            record: CachedRecord::default(),
            sockets: Rc::default(),
            flood: RefCell::new(PeerFloodGuard::new(per_sec)),
            outbox: Outbox::default(),
            overflowed: RefCell::default(),
            env,
            stats,
            wakes,
        }
    }

    /// Runs a request's handler as one event: a wake counted before it, a
    /// stats report after it (`membership`: it may have changed who is here).
    pub async fn event<T>(
        &self,
        membership: bool,
        handler: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.woke();
        let resp = handler.await;
        self.report(membership);
        resp
    }

    /// Counts a wake of this object (every event but a debug read).
    pub fn woke(&self) {
        self.wakes.handled.set(self.wakes.handled.get() + 1);
        self.stats.add(Counter::RoomWake, 1);
    }

    /// The sockets and the core's view of them, without running the core.
    pub fn peers(&self, read: Read) -> (Listed, Views) {
        self.sockets.peers(&self.state, &self.raw, read)
    }

    /// The debug view of this object (test configuration only).
    pub async fn debug_view(&self) -> Result<Response> {
        runtime::room_stats(&self.state, &self.key).await
    }

    /// This tier's `DEBUG_ENDPOINTS`: whether the test hooks that change
    /// something (`contract::PATH_PANIC`) are answered.
    pub fn debug_endpoints(&self) -> bool {
        (*self.config).as_ref().is_ok_and(|c| c.debug_endpoints)
    }

    /// A WebSocket message (see `ws_exports`: its length was judged before
    /// any copy, and one over the limit arrives as `Incoming::TooLarge`).
    pub async fn on_message(&self, ws: WebSocket, incoming: glue::Incoming) -> Result<()> {
        self.woke();
        if self.config.is_err() {
            return Ok(());
        }
        let (bytes, len) = incoming.into_parts();
        // Frames still arriving on a socket the server closed (a kicked
        // flooder's backlog) are dropped before any await or storage read,
        // so the backlog cannot stall the object's other peers.
        let found = self
            .sockets
            .with_attachment(&self.state, &ws, |sender| closed_sender_drop(sender, len));
        if let Some((_, Some(dropped))) = found {
            return self.finish(&[], None, dropped).await;
        }
        // A frame judges no staleness, so no heartbeat timestamps.
        self.run(Read::Cached, None, |sockets, _| {
            // Where the cache listed the sender, unless the list changed
            // while the record loaded (each comparison is a call into JS).
            let from = match found {
                Some((i, _)) if sockets.get(i) == Some(&ws) => i,
                _ => sockets.iter().position(|s| *s == ws)?,
            };
            Some(match bytes {
                Some(bytes) => Input::Frame { from, bytes },
                None => Input::TooLarge { from, len },
            })
        })
        .await?;
        self.report(false);
        Ok(())
    }

    /// A socket closed (`code`) or errored (`None`).
    pub async fn on_closed(&self, ws: WebSocket, code: Option<usize>) -> Result<()> {
        self.woke();
        if self.config.is_err() {
            return Ok(());
        }
        let Ok(Some(state)) = crate::stored::attachment::<PeerState>(&ws) else {
            return Ok(());
        };
        let server_closed = state.closing;
        self.run(Read::Fresh, None, |sockets, peers| {
            let socket = match sockets.iter().position(|s| *s == ws) {
                Some(i) => i,
                None => {
                    // The runtime no longer lists it: the machine sees it
                    // from its attachment, at an index no operation reaches.
                    Rc::make_mut(peers).push(PeerView {
                        socket: usize::MAX,
                        state,
                        heartbeat_ms: None,
                    });
                    usize::MAX
                }
            };
            // The runtime may list the closed socket for a moment longer:
            // no later read of the list may take it for a live peer.
            self.sockets.forget(&ws);
            Some(Input::Closed { socket })
        })
        .await?;
        // Finish a client-initiated close handshake (a server-initiated one
        // already sent its frame).
        if !server_closed {
            let _ = ws.close(Some(echo_close_code(code)), Some("Closed"));
        }
        self.report(true);
        Ok(())
    }

    /// The alarm: a LEAVE or an expiry due, a block ending; with reports
    /// off (or after a failed report), the sweep.
    pub async fn alarm(&self) -> Result<Response> {
        self.woke();
        if self.config.is_err() {
            return Response::ok("configuration error");
        }
        self.run(Read::FreshWithHeartbeats, None, |_, _| Some(Input::Alarm))
            .await?;
        self.report(true);
        Response::ok("alarm handled")
    }

    /// A join the wrapper has admitted: the WebSocket pair's client side,
    /// or (misconfigured) a socket that says so and closes with 1011.
    pub async fn join(&self, join: Join) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        if let Err(err) = self.config.as_ref() {
            self.log(
                &LogEvent::new(Level::Error, "config_error")
                    .field("setting", err.setting)
                    .field("error", err.to_string()),
            );
            pair.server.accept()?;
            pair.server
                .send_with_str(frame::render_error("Server configuration error"))?;
            pair.server
                .close(Some(1011), Some("Server configuration error"))?;
            return Response::from_websocket(pair.client);
        }
        let input = |_: &[WebSocket], _: &mut Views| Some(Input::Join(join));
        self.run(Read::FreshWithHeartbeats, Some(&pair.server), input)
            .await?;
        Response::from_websocket(pair.client)
    }

    /// Where ids live, seen from this object.
    pub fn placement(&self) -> Placement<'_> {
        (self.placement)(&self.name, self.separator)
    }

    /// The machine of this object.
    pub fn machine<'a>(&'a self, config: &'a RoomsWorkerConfig) -> Machine<'a> {
        Machine::new(&config.limits, self.placement())
    }

    /// Runs the machine on one input, on the in-memory record, then
    /// [`Host::finish`]; answers what a moderator's call found. `input`
    /// builds the input from the sockets and the machine's view of them
    /// (which it may complete), or answers `None` when there is nothing to
    /// do. From the record's load to the machine's return nothing yields,
    /// and the machine changes the object's one copy of the record: an
    /// event that gets in during a later await starts from this change,
    /// never from a stale copy (which would drop queued messages or leave
    /// the alarm at an old time).
    pub async fn run<F>(
        &self,
        read: Read,
        joiner: Option<&WebSocket>,
        input: F,
    ) -> Result<Option<Answer>>
    where
        F: FnOnce(&[WebSocket], &mut Views) -> Option<Input<usize>>,
    {
        let Ok(cfg) = self.config.as_ref() else {
            return Ok(None);
        };
        let machine = self.machine(cfg);
        self.record.load(&self.state).await?;
        let (sockets, mut peers) = self.sockets.peers(&self.state, &self.raw, read);
        let now = runtime::now_ms();
        let mut answer = None;
        if let Some(input) = input(&sockets, &mut peers) {
            let mut step = self.record.change(|record| {
                let mut flood = self.flood.borrow_mut();
                machine.handle_input(record, &peers, input, &mut flood, now)
            });
            answer = step.answer.take();
            self.finish(&sockets, joiner, step).await?;
        }
        self.drain().await?;
        Ok(answer)
    }

    /// Carries out one step, in the order the module header gives.
    async fn finish(
        &self,
        sockets: &[WebSocket],
        joiner: Option<&WebSocket>,
        step: Step<usize>,
    ) -> Result<()> {
        let reads = step.reads();
        let mut stored = FlatMap::new();
        if !reads.is_empty() {
            let found = self.state.storage().get_multiple(reads.clone()).await?;
            for key in reads {
                if let Some(text) = found.get(&key.as_str().into()).as_string() {
                    stored.insert(key, text);
                }
            }
        }
        let mut runtime_sockets = RoomSockets {
            state: &self.state,
            list: &self.sockets,
            sockets,
            joiner,
        };
        let writes = apply(step, &stored, &mut runtime_sockets, &mut HostEffects(self))?;
        if writes.is_empty() {
            return Ok(()); // a relay: no storage handle made
        }
        let storage = self.state.storage();
        for (key, text) in &writes.puts {
            crate::stored::put_text(&storage, key, text).await?;
        }
        if !writes.deletes.is_empty() {
            storage.delete_multiple(writes.deletes).await?;
        }
        if writes.record {
            self.record.persist(&storage).await?;
        }
        if writes.alarm {
            self.record.sync_alarm(&storage).await?;
        }
        Ok(())
    }

    /// Sends what this object's steps forwarded (see `outbox.rs`); a room
    /// forwards nothing, so its outbox is always empty. Parcels the outbox
    /// had no room for, and those whose delivery failed after its retries,
    /// go back to the machine (`Input::Undelivered`), which counts them and
    /// tells their senders, who live here, EXPIRE; relays a destination
    /// dropped are logged here (`Input::DroppedAway`). Those steps forward
    /// nothing, so this ends.
    async fn drain(&self) -> Result<()> {
        // Every event of a room, and most of a home, end here.
        if self.outbox.is_empty() && self.overflowed.borrow().is_empty() {
            return Ok(());
        }
        let secret = (*self.config)
            .as_ref()
            .ok()
            .and_then(|c| c.internal_secrets.first())
            .map(String::as_str);
        let drained = self
            .outbox
            .drain(&self.env, secret, &self.name, self.log_level())
            .await;
        let overflowed = std::mem::take(&mut *self.overflowed.borrow_mut());
        let mut inputs: Vec<Input<usize>> = Vec::new();
        for (parcels, reason) in [
            (overflowed, DropReason::QueueFull),
            (drained.undelivered, DropReason::Unreachable),
        ] {
            if !parcels.is_empty() {
                inputs.push(Input::Undelivered { parcels, reason });
            }
        }
        for (to, senders) in drained.dropped_away {
            inputs.push(Input::DroppedAway { to, senders });
        }
        for input in inputs {
            // Boxed: `run` drains again, which finds nothing to do.
            Box::pin(self.run(Read::Cached, None, |_, _| Some(input))).await?;
        }
        Ok(())
    }

    fn log_level(&self) -> Level {
        (*self.config).as_ref().map_or(Level::Info, |c| c.log_level)
    }

    fn log(&self, event: &LogEvent) {
        // A room's lines name the room; a home's name the peer already.
        let room = (self.placement() == Placement::Room).then_some(self.name.as_str());
        runtime::log(self.log_level(), room, event);
    }

    /// Reports to the stats shard; see [`Reporter::report`]. The report
    /// says when the next sweep is due, from the peers' attachments alone,
    /// which only makes it early (the sweep's answer then reads heartbeats).
    pub fn report(&self, membership: bool) {
        let Ok(cfg) = self.config.as_ref() else {
            return;
        };
        if !self.stats.wants(membership) {
            return;
        }
        let (list, raw) = (Rc::clone(&self.sockets), self.raw.share());
        let limits = cfg.limits.clone();
        let gauge = move || {
            // The cached view, without heartbeat timestamps: a fresh read
            // would empty the socket cache the relay path reads.
            let state = raw.to_state();
            let (_, peers) = list.peers(&state, &raw, Read::Cached);
            let due = limits.sweep_due_for(&peers, runtime::now_ms());
            (list.live_count(&state), due)
        };
        let fallback_ms = cfg.limits.sweep_interval_ms;
        self.stats.report(
            &self.state,
            &self.env,
            &self.key,
            gauge,
            membership,
            fallback_ms,
        );
    }

    /// The stats shard calls the liveness sweep (`contract::PATH_SWEEP`):
    /// answers this object's report, with when the next is due.
    pub async fn sweep(&self) -> Result<Response> {
        self.woke();
        let answer = self
            .run(Read::FreshWithHeartbeats, None, |_, _| Some(Input::Sweep))
            .await?;
        let next = match answer {
            Some(Answer::Swept { next_sweep_ms }) => next_sweep_ms,
            _ => None,
        };
        let peers = self.sockets.live_count(&self.state);
        Response::from_json(&self.stats.report_now(&self.key, peers, next))
    }
}

/// A step's forwards, counts and logs, as the host carries them out.
struct HostEffects<'a>(&'a Host);

impl Effects for HostEffects<'_> {
    fn forward(&mut self, forwards: Vec<Forward>) {
        let overflowed = self.0.outbox.push(forwards);
        self.0.overflowed.borrow_mut().extend(overflowed);
    }
    fn count(&mut self, counter: Counter, by: u64) {
        self.0.stats.add(counter, by);
    }
    fn log(&mut self, event: LogEvent) {
        self.0.log(&event);
    }
}
