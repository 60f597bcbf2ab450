//! `GameRoom`: one Durable Object per game room, a thin adapter around
//! `signaling_core::room::Room`.
//!
//! Each Cloudflare event becomes one core call: the adapter builds the view
//! of the room from the hibernatable sockets (tag = peer id, attachment =
//! `PeerState`, plus the runtime's HEARTBEAT auto-response timestamp), loads
//! the room's durable record, runs the core, carries out the effects in
//! order and writes the record back if it changed. HEARTBEAT frames are
//! answered by the runtime's auto-response and never reach this code.
//!
//! Each handler reads, runs the core and publishes the new record in memory
//! without yielding; storage writes and the alarm then always carry the
//! latest in-memory state (see `publish_meta`), so correctness does not
//! hang on which awaits the runtime's input gates cover.

use crate::runtime::{self, RawState};
use crate::stats;
use signaling_core::config::{ConfigError, RoomsConfig, Settings};
use signaling_core::contract;
use signaling_core::flood::PeerFloodGuard;
use signaling_core::frame;
use signaling_core::log::{Level, LogEvent};
use signaling_core::metrics::{Counter, Report, Tally};
use signaling_core::room::{Effect, JoinRequest, PeerState, PeerView, Room, RoomMeta, Target};
use std::cell::{Cell, RefCell, RefMut};
use worker::*;

/// Storage key of the room's durable record.
const META_KEY: &str = "meta";

/// A room reports to its stats shard at most this often, except on the
/// wakes that change membership (join, close, alarm), which always report.
const REPORT_INTERVAL_MS: u64 = 2_000;

/// The exact frame the stock client sends every 5 s, answered by the runtime.
pub const HEARTBEAT: &str = r#"{"type":"HEARTBEAT"}"#;

/// The room's hibernatable sockets and their attachments, as this object
/// last read or wrote them, for the relay path. Reading them costs a few JS
/// calls and a deserialization per socket, on every frame; but they only
/// change when this object accepts a socket, replaces an attachment or sees
/// a close, so the cache is updated or dropped right there. Joins, closes,
/// alarms and roster reads always start from the runtime's list (they are
/// rare, and the runtime may still list a just-closed socket for a moment);
/// see [`Read`].
/// It dies with the object at eviction, like everything in memory.
/// Heartbeat timestamps are never cached: the runtime moves them without
/// waking the object.
struct SocketCache {
    sockets: Vec<WebSocket>,
    states: Vec<PeerState>,
}

/// How a handler reads the room's sockets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The relay path: the cache, no heartbeat timestamps (frames and
    /// reports judge no staleness).
    Cached,
    /// A close: the runtime's list afresh, no timestamps.
    Fresh,
    /// The membership rules that judge staleness (join, alarm, roster): the
    /// runtime's list afresh, with the auto-response timestamps.
    FreshWithHeartbeats,
}

#[durable_object]
pub struct GameRoom {
    state: State,
    raw: RawState,
    room: String,
    config: std::result::Result<RoomsConfig, ConfigError>,
    /// Cache of the durable record; `None` until first loaded after a wake.
    meta: RefCell<Option<RoomMeta>>,
    /// Cache of the sockets and their attachments; see [`SocketCache`].
    sockets: RefCell<Option<SocketCache>>,
    /// Sockets whose close this object handled but the runtime may still
    /// list for a moment: never treated as peers again.
    closed: RefCell<Vec<WebSocket>>,
    /// In-memory only: losing it at eviction merely forgives a flooder.
    flood: RefCell<PeerFloodGuard>,
    env: Env,
    /// Counters not yet reported to the stats shard.
    deltas: RefCell<Tally>,
    last_report_ms: Cell<u64>,
    /// `STATS_REPORTS=false` turns reporting off (to measure its cost).
    reporting: bool,
}

impl DurableObject for GameRoom {
    fn new(state: State, env: Env) -> Self {
        let (state, raw) = RawState::split(state);
        let room = state.id().name().unwrap_or_else(|| "unknown".to_owned());
        let config = Settings::new(|name| runtime::setting(&env, name)).rooms();
        let per_sec = config.as_ref().map_or(0, |c| c.room.peer_msgs_per_sec);
        if let Ok(pair) = WebSocketRequestResponsePair::new(HEARTBEAT, HEARTBEAT) {
            state.set_websocket_auto_response(&pair);
        }
        runtime::wake(&room, true);
        let mut deltas = Tally::default();
        deltas.add(Counter::RoomWake, 1);
        let reporting = runtime::setting(&env, "STATS_REPORTS")
            .is_none_or(|v| !matches!(v.trim(), "false" | "0" | "off" | "no"));
        GameRoom {
            state,
            raw,
            room,
            config,
            meta: RefCell::new(None),
            sockets: RefCell::new(None),
            closed: RefCell::new(Vec::new()),
            flood: RefCell::new(PeerFloodGuard::new(per_sec)),
            env,
            deltas: RefCell::new(deltas),
            last_report_ms: Cell::new(0),
            reporting,
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match req.path().as_str() {
            contract::PATH_CONNECT => {
                self.woke();
                let resp = self.join(&req).await;
                self.report(true);
                resp
            }
            contract::PATH_ROSTER => {
                // An eviction-safe read: sockets only, no storage, no alarm.
                self.woke();
                let cfg = match &self.config {
                    Ok(c) => c,
                    Err(e) => return runtime::json_error(500, &e.to_string()),
                };
                let (_, peers) = self.peers(Read::FreshWithHeartbeats);
                Response::from_json(&Room::new(&cfg.room).roster(&peers, runtime::now_ms()))
            }
            contract::PATH_STATS => {
                // Observing the counter must not change it: no wake counted.
                let (constructed, handled) = runtime::STATS
                    .with(|s| s.borrow().wakes.get(&self.room).copied().unwrap_or((0, 0)));
                let storage = self.state.storage();
                let stored_keys = storage.list().await?.size();
                let alarm = storage.get_alarm().await?;
                Response::from_json(&serde_json::json!({
                    "room": self.room,
                    "constructions": constructed,
                    "handler_wakes": handled,
                    "wakes": constructed + handled,
                    "sockets": self.state.get_websockets().len(),
                    "stored_keys": stored_keys,
                    "alarm": alarm,
                    "wasm_memory_bytes": runtime::wasm_memory_bytes(),
                }))
            }
            _ => runtime::json_error(404, "no such room endpoint"),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        self.woke();
        // Frames still arriving on a socket the server closed (a kicked
        // flooder's backlog) are dropped first, before the await and the
        // core, so the backlog cannot stall the room's other members. A
        // socket closed during the await below meets the core's same rule.
        if self.closed_by_server(&ws) {
            let reason = signaling_core::frame::DropReason::SenderNotLive;
            self.deltas.borrow_mut().add(Counter::Dropped(reason), 1);
            return Ok(());
        }
        let Ok(cfg) = &self.config else {
            return Ok(());
        };
        // The only await before the core runs: from here to `publish_meta`
        // nothing yields, so no other event can slip in between.
        let mut meta = self.load_meta().await?;
        // `frame` judges no staleness, so no heartbeat timestamps.
        let (sockets, peers) = self.peers(Read::Cached);
        let Some(from) = sockets.iter().position(|s| *s == ws) else {
            return Ok(());
        };
        let bytes: Vec<u8> = match message {
            WebSocketIncomingMessage::String(text) => text.into_bytes(),
            WebSocketIncomingMessage::Binary(bytes) => bytes,
        };
        let before = meta.clone();
        let effects = {
            let mut flood = self.flood.borrow_mut();
            Room::new(&cfg.room).frame(
                &mut meta,
                &peers,
                from,
                &bytes,
                &mut flood,
                runtime::now_ms(),
            )
        };
        let changed = self.publish_meta(&before, meta);
        self.apply(&sockets, None, effects, cfg.log_level).await?;
        if changed {
            self.persist_meta().await?;
        }
        self.report(false);
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        self.woke();
        self.on_closed(ws, Some(code)).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: Error) -> Result<()> {
        self.woke();
        self.on_closed(ws, None).await
    }

    async fn alarm(&self) -> Result<Response> {
        self.woke();
        let Ok(cfg) = &self.config else {
            return Response::ok("configuration error");
        };
        let mut meta = self.load_meta().await?;
        let (sockets, peers) = self.peers(Read::FreshWithHeartbeats);
        let before = meta.clone();
        let effects = Room::new(&cfg.room).alarm(&mut meta, &peers, runtime::now_ms());
        let changed = self.publish_meta(&before, meta);
        self.apply(&sockets, None, effects, cfg.log_level).await?;
        if changed {
            self.persist_meta().await?;
        }
        self.report(true);
        Response::ok("alarm handled")
    }
}

impl GameRoom {
    async fn join(&self, req: &Request) -> Result<Response> {
        let admission = match contract::read(|name| req.headers().get(name).ok().flatten(), true) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
        let Some(id) = admission.peer else {
            return runtime::json_error(403, "missing peer id");
        };
        let pair = WebSocketPair::new()?;
        let cfg = match &self.config {
            Ok(cfg) => cfg,
            Err(err) => {
                runtime::log(
                    Level::Error,
                    Some(&self.room),
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
        };
        let mut meta = self.load_meta().await?;
        let (sockets, peers) = self.peers(Read::FreshWithHeartbeats);
        let before = meta.clone();
        let request = JoinRequest {
            id,
            proven: admission.proven,
        };
        let effects = Room::new(&cfg.room).join(&mut meta, &peers, request, runtime::now_ms());
        let changed = self.publish_meta(&before, meta);
        self.apply(&sockets, Some(&pair.server), effects, cfg.log_level)
            .await?;
        if changed {
            self.persist_meta().await?;
        }
        Response::from_websocket(pair.client)
    }

    async fn on_closed(&self, ws: WebSocket, code: Option<usize>) -> Result<()> {
        let Ok(cfg) = &self.config else {
            return Ok(());
        };
        let mut meta = self.load_meta().await?;
        let (sockets, peers) = self.peers(Read::Fresh);
        let gone = match sockets.iter().position(|s| *s == ws) {
            Some(i) => peers[i].clone(),
            None => match ws.deserialize_attachment::<PeerState>() {
                Ok(Some(state)) => PeerView {
                    socket: usize::MAX,
                    state,
                    heartbeat_ms: None,
                },
                _ => return Ok(()),
            },
        };
        let before = meta.clone();
        let effects = {
            let mut flood = self.flood.borrow_mut();
            Room::new(&cfg.room).closed(&mut meta, &peers, &gone, &mut flood, runtime::now_ms())
        };
        let changed = self.publish_meta(&before, meta);
        self.apply(&sockets, None, effects, cfg.log_level).await?;
        // Finish a client-initiated close handshake (a server-initiated one
        // already sent its frame); 1005/1006 are not codes one may send.
        if !gone.state.closing {
            let echo = match code {
                Some(c) if (1000..=4999).contains(&c) && c != 1005 && c != 1006 => c as u16,
                _ => 1000,
            };
            let _ = ws.close(Some(echo), Some("Closed"));
        }
        if changed {
            self.persist_meta().await?;
        }
        self.report(true);
        // The runtime may list the closed socket for a moment longer: the
        // next read of the list must not take it for a live peer.
        self.closed.borrow_mut().push(ws);
        self.sockets.replace(None);
        Ok(())
    }

    fn woke(&self) {
        runtime::wake(&self.room, false);
        self.deltas.borrow_mut().add(Counter::RoomWake, 1);
    }

    /// Sends the room's peer count and counter deltas to its stats shard in
    /// the background (`waitUntil`), never on the relay path's critical
    /// path. Relays report at most every `REPORT_INTERVAL_MS`; membership
    /// changes (`force`) always do, so gauges follow joins and leaves.
    fn report(&self, force: bool) {
        if !self.reporting {
            return;
        }
        let now = runtime::now_ms();
        if !force && now.saturating_sub(self.last_report_ms.get()) < REPORT_INTERVAL_MS {
            return;
        }
        self.last_report_ms.set(now);
        let deltas = self.deltas.borrow_mut().take_deltas();
        let (_, peers) = self.peers(Read::Cached);
        let report = Report {
            room: Some(self.room.clone()),
            peers: peers.iter().filter(|p| !p.state.closing).count(),
            at_ms: now,
            deltas,
        };
        let env = self.env.clone();
        let room = self.room.clone();
        self.state.wait_until(async move {
            if let Err(err) = stats::send_report(env, report).await {
                let event = LogEvent::new(Level::Error, "internal_error")
                    .field("what", "stats report failed")
                    .field("error", err.to_string());
                runtime::log(Level::Error, Some(&room), &event);
            }
        });
    }

    /// Whether this object closed `ws` itself and awaits its close event
    /// (its attachment says `closing`), read from the cache.
    fn closed_by_server(&self, ws: &WebSocket) -> bool {
        let cache = self.socket_cache(Read::Cached);
        let found = cache.sockets.iter().position(|s| s == ws);
        found.is_some_and(|i| cache.states[i].closing)
    }

    /// The room's sockets and the core's view of them (same order).
    fn peers(&self, read: Read) -> (Vec<WebSocket>, Vec<PeerView<usize>>) {
        let cache = self.socket_cache(read);
        let views = cache
            .sockets
            .iter()
            .zip(&cache.states)
            .enumerate()
            .map(|(socket, (ws, state))| PeerView {
                socket,
                state: state.clone(),
                heartbeat_ms: match read {
                    Read::FreshWithHeartbeats => self.raw.heartbeat_ms(ws),
                    Read::Cached | Read::Fresh => None,
                },
            })
            .collect();
        (cache.sockets.clone(), views)
    }

    /// The socket cache, read afresh from the runtime unless `read` allows
    /// the cached copy.
    fn socket_cache(&self, read: Read) -> RefMut<'_, SocketCache> {
        let mut cache = self.sockets.borrow_mut();
        if read != Read::Cached {
            *cache = None;
        }
        RefMut::map(cache, |cache| {
            cache.get_or_insert_with(|| {
                let mut fresh = SocketCache {
                    sockets: Vec::new(),
                    states: Vec::new(),
                };
                let listed = self.state.get_websockets();
                // Forget closed sockets the runtime no longer lists (bounded list).
                self.closed.borrow_mut().retain(|c| listed.contains(c));
                let closed = self.closed.borrow();
                for ws in listed {
                    if closed.contains(&ws) {
                        continue;
                    }
                    if let Ok(Some(state)) = ws.deserialize_attachment::<PeerState>() {
                        fresh.sockets.push(ws);
                        fresh.states.push(state);
                    }
                }
                fresh
            })
        })
    }

    async fn load_meta(&self) -> Result<RoomMeta> {
        if let Some(meta) = self.meta.borrow().as_ref() {
            return Ok(meta.clone());
        }
        let stored = self
            .state
            .storage()
            .get::<RoomMeta>(META_KEY)
            .await?
            .unwrap_or_default();
        // Another event may have loaded (and changed) it while we waited.
        let mut cache = self.meta.borrow_mut();
        Ok(cache.get_or_insert(stored).clone())
    }

    /// Makes a handler's new record the object's truth at once, before any
    /// await. The runtime's input gates keep other events out while storage
    /// is awaited, but not while other I/O is; an event that ever got in
    /// must start from this change, not from a stale copy (which would drop
    /// queued messages or leave the alarm at an old time).
    fn publish_meta(&self, before: &RoomMeta, after: RoomMeta) -> bool {
        let changed = *before != after;
        *self.meta.borrow_mut() = Some(after);
        changed
    }

    /// Writes the record as it is now, which may already include later
    /// events' changes: whichever write is issued last carries the latest state.
    async fn persist_meta(&self) -> Result<()> {
        let current = self.meta.borrow().clone().unwrap_or_default();
        if current.is_empty() {
            self.state.storage().delete(META_KEY).await?;
        } else {
            self.state.storage().put(META_KEY, &current).await?;
        }
        Ok(())
    }

    /// Points the runtime's alarm at the record's current `alarm_ms`, read
    /// when the call is issued, for the same reason as `persist_meta`: an
    /// interleaved handler's older value must never be the last one set.
    async fn sync_alarm(&self, storage: &Storage) -> Result<()> {
        let wanted = self.meta.borrow().as_ref().and_then(|m| m.alarm_ms);
        match wanted {
            Some(at_ms) => {
                let when = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64));
                storage.set_alarm(ScheduledTime::new(when)).await
            }
            None => storage.delete_alarm().await,
        }
    }

    /// Carries out the core's effects in order.
    async fn apply(
        &self,
        sockets: &[WebSocket],
        joiner: Option<&WebSocket>,
        effects: Vec<Effect<usize>>,
        min_level: Level,
    ) -> Result<()> {
        let storage = self.state.storage();
        let target = |to: Target<usize>| -> Option<&WebSocket> {
            match to {
                Target::Peer(i) => sockets.get(i),
                Target::Joiner => joiner,
            }
        };
        for effect in effects {
            match effect {
                Effect::Accept { state } => {
                    if let Some(ws) = joiner {
                        self.state.accept_websocket_with_tags(ws, &[&state.id]);
                        ws.serialize_attachment(&state)?;
                        self.sockets.replace(None);
                    }
                }
                Effect::Refuse {
                    frame,
                    code,
                    reason,
                } => {
                    if let Some(ws) = joiner {
                        // A plain (not hibernatable) accept: the socket is
                        // never a peer and lives only for this request.
                        ws.accept()?;
                        let _ = ws.send_with_str(&frame);
                        let _ = ws.close(Some(code), Some(&reason));
                    }
                }
                Effect::Send { to, text } => {
                    if let Some(ws) = target(to) {
                        // A socket that closed meanwhile: its close event follows.
                        let _ = ws.send_with_str(&text);
                    }
                }
                Effect::SaveState { socket, state } => {
                    if let Some(ws) = sockets.get(socket) {
                        ws.serialize_attachment(&state)?;
                        // Another event may have rebuilt the cache meanwhile:
                        // update it only if the index still names this socket.
                        let mut cache = self.sockets.borrow_mut();
                        let in_step = match cache.as_mut() {
                            Some(c) if c.sockets.get(socket) == Some(ws) => {
                                c.states[socket] = state;
                                true
                            }
                            Some(_) => false,
                            None => true,
                        };
                        if !in_step {
                            *cache = None;
                        }
                    }
                }
                Effect::Close {
                    socket,
                    code,
                    reason,
                } => {
                    if let Some(ws) = sockets.get(socket) {
                        let _ = ws.close(Some(code), Some(&reason));
                    }
                }
                Effect::StoreQueued { key, text } => storage.put(&key, &text).await?,
                Effect::DeliverQueued { to, keys } => {
                    let stored = storage.get_multiple(keys.clone()).await?;
                    if let Some(ws) = target(to) {
                        for key in &keys {
                            if let Some(text) = stored.get(&key.into()).as_string() {
                                let _ = ws.send_with_str(&text);
                            }
                        }
                    }
                    storage.delete_multiple(keys).await?;
                }
                Effect::DeleteQueued { keys } => {
                    storage.delete_multiple(keys).await?;
                }
                Effect::SetAlarm { .. } | Effect::DeleteAlarm => self.sync_alarm(&storage).await?,
                Effect::Count(counter, by) => self.deltas.borrow_mut().add(counter, by),
                Effect::Log(event) => runtime::log(min_level, Some(&self.room), &event),
            }
        }
        Ok(())
    }
}
