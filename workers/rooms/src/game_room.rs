//! `GameRoom`: one Durable Object per game room, a thin adapter around
//! `signaling_core::room::Room`.
//!
//! Each Cloudflare event becomes one core call: the adapter builds the view
//! of the room from the hibernatable sockets (tag = peer id, attachment =
//! `PeerState`, plus the runtime's HEARTBEAT auto-response timestamp), loads
//! the room's durable record, runs the core on it in place, and carries out
//! the core's [`Step`] in one fixed tail (`tail.rs`): the core's own
//! interpreter for the socket operations, then storage. HEARTBEAT frames
//! are answered by the runtime's auto-response and never reach this code.
//!
//! Each handler reads and runs the core without yielding, and the record it
//! changes is the in-memory copy itself; storage writes and the alarm then
//! always carry the latest in-memory state (see `record.rs`), so
//! correctness does not hang on which awaits the runtime's input gates cover.

use crate::record::Record;
use crate::runtime::{self, RawState};
use crate::sockets::{Read, SocketList};
use crate::stats::Reporter;
use crate::tail::Tail;
use signaling_core::config::{ConfigError, RoomsWorkerConfig};
use signaling_core::contract;
use signaling_core::flood::PeerFloodGuard;
use signaling_core::frame;
use signaling_core::log::{Level, LogEvent};
use signaling_core::metrics::Counter;
use signaling_core::moderation::parse_block_secs;
use signaling_core::peer::{echo_close_code, PeerView};
use signaling_core::room::{JoinRequest, Room, RoomMeta};
use signaling_core::socket::PeerState;
use signaling_core::step::Step;
use std::cell::RefCell;
use std::rc::Rc;
use worker::*;

// Hibernation WebSocket events are exported by `ws_exports`, not by the macro.
#[durable_object(alarm)]
pub struct GameRoom {
    state: State,
    raw: RawState,
    room: String,
    /// The isolate's settings (`runtime::config`), shared by its objects.
    config: Rc<std::result::Result<RoomsWorkerConfig, ConfigError>>,
    /// The durable record, in memory once loaded after a wake.
    record: Record<RoomMeta>,
    /// The sockets as this object knows them; see [`SocketList`].
    /// Shared with a scheduled stats report, which counts the live peers.
    sockets: Rc<SocketList>,
    /// In-memory only: losing it at eviction merely forgives a flooder.
    flood: RefCell<PeerFloodGuard>,
    env: Env,
    /// Counters not yet reported to the stats shard.
    stats: Reporter,
}

impl DurableObject for GameRoom {
    fn new(state: State, env: Env) -> Self {
        let (state, raw) = RawState::split(state);
        let room = state.id().name().unwrap_or_else(|| "unknown".to_owned());
        let config = runtime::config(&env);
        let per_sec = (*config).as_ref().map_or(0, |c| c.limits.peer_msgs_per_sec);
        if let Ok(pair) = WebSocketRequestResponsePair::new(frame::HEARTBEAT, frame::HEARTBEAT) {
            state.set_websocket_auto_response(&pair);
        }
        runtime::wake(&room, true);
        let stats = Reporter::new((*config).as_ref().ok().map(|c| c.stats));
        GameRoom {
            state,
            raw,
            room,
            config,
            record: Record::default(),
            sockets: Rc::default(),
            flood: RefCell::new(PeerFloodGuard::new(per_sec)),
            env,
            stats,
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match runtime::path_of(&req).as_str() {
            contract::PATH_CONNECT => {
                self.woke();
                let resp = self.join(&req).await;
                self.report(true);
                resp
            }
            contract::PATH_ROSTER => {
                // An eviction-safe read: sockets only, no storage, no alarm.
                self.woke();
                let cfg = match self.config.as_ref() {
                    Ok(c) => c,
                    Err(e) => return runtime::json_error(500, &e.to_string()),
                };
                let (_, peers) =
                    self.sockets
                        .peers(&self.state, &self.raw, Read::FreshWithHeartbeats);
                Response::from_json(&Room::new(&cfg.limits).roster(&peers, runtime::now_ms()))
            }
            // Observing the counters must not change them: no wake counted.
            contract::PATH_STATS => runtime::room_stats(&self.state, &self.room).await,
            path @ (contract::PATH_ADMIN_ROOM
            | contract::PATH_ADMIN_REMOVE
            | contract::PATH_ADMIN_CLOSE) => {
                self.woke();
                let resp = self.moderate(path, &req).await;
                self.report(true);
                resp
            }
            _ => runtime::json_error(404, "no such room endpoint"),
        }
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
        if self.config.is_err() {
            return Response::ok("configuration error");
        }
        self.run(
            Read::FreshWithHeartbeats,
            None,
            |room, meta, _, peers, now| Some(room.alarm(meta, peers, now)),
        )
        .await?;
        self.report(true);
        Response::ok("alarm handled")
    }
}

impl GameRoom {
    /// A WebSocket message (see `ws_exports`: its length was judged before
    /// any copy, and one over the limit arrives as `Incoming::TooLarge`).
    pub(crate) async fn on_message(&self, ws: WebSocket, incoming: glue::Incoming) -> Result<()> {
        self.woke();
        let Ok(cfg) = self.config.as_ref() else {
            return Ok(());
        };
        let (bytes, len) = incoming.into_parts();
        // Frames still arriving on a socket the server closed (a kicked
        // flooder's backlog) meet the core's rule before the await, so the
        // backlog cannot stall the room's other members.
        let room = Room::new(&cfg.limits);
        let early = self
            .sockets
            .with_attachment(&self.state, &ws, |sender| {
                room.from_closed_socket(sender, len)
            })
            .flatten();
        if let Some(dropped) = early {
            self.tail().finish(&[], None, dropped).await?;
            return Ok(());
        }
        // `frame` judges no staleness, so no heartbeat timestamps.
        self.run(Read::Cached, None, |room, meta, sockets, peers, now| {
            let from = sockets.iter().position(|s| *s == ws)?;
            let mut flood = self.flood.borrow_mut();
            Some(match &bytes {
                Some(bytes) => room.frame(meta, peers, from, bytes, &mut flood, now),
                None => room.too_large(meta, peers, from, len, &mut flood, now),
            })
        })
        .await?;
        self.report(false);
        Ok(())
    }

    async fn join(&self, req: &Request) -> Result<Response> {
        // Checked here too, not only at the Worker's entry: a Worker bound
        // to this namespace directly must not forge `Proven` either.
        if let Err(err) = runtime::verify_contract(&self.config, contract::PATH_CONNECT, req) {
            return runtime::json_error(403, &err.to_string());
        }
        let admission = match contract::read(|name| req.headers().get(name).ok().flatten(), true) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
        let Some(id) = admission.peer else {
            return runtime::json_error(403, "missing peer id");
        };
        let pair = WebSocketPair::new()?;
        if let Err(err) = self.config.as_ref() {
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
        let request = JoinRequest {
            id,
            proven: admission.proven,
            ticket: admission.ticket,
        };
        let joiner = Some(&pair.server);
        self.run(
            Read::FreshWithHeartbeats,
            joiner,
            |room, meta, _, peers, now| Some(room.join(meta, peers, request, now)),
        )
        .await?;
        Response::from_websocket(pair.client)
    }

    /// The admin API's calls (see `signaling_core::moderation`); the router
    /// checked the admin token, this checks the router's signature again,
    /// as a join does.
    async fn moderate(&self, path: &str, req: &Request) -> Result<Response> {
        if let Err(err) = runtime::verify_contract(&self.config, path, req) {
            return runtime::json_error(403, &err.to_string());
        }
        if let Err(e) = self.config.as_ref() {
            return runtime::json_error(500, &e.to_string());
        }
        let nobody = "no such room: nobody is in it and it holds nothing";
        match path {
            contract::PATH_ADMIN_ROOM => {
                self.admin_step(nobody, |room, meta, peers, now| {
                    let summary = room.inspect(meta, peers, now);
                    (None, Some(summary).filter(|s| !s.is_empty()))
                })
                .await
            }
            contract::PATH_ADMIN_REMOVE => {
                let header = |name: &str| req.headers().get(name).ok().flatten();
                let Some(id) = header(contract::HEADER_PEER) else {
                    return runtime::json_error(400, "missing peer id");
                };
                let block = match header(contract::HEADER_BLOCK_SECS).map(|b| parse_block_secs(&b))
                {
                    None => None,
                    Some(Ok(secs)) => Some(secs),
                    Some(Err(err)) => return runtime::json_error(400, &err.to_string()),
                };
                self.admin_step("no such peer in this room", |room, meta, peers, now| {
                    let (step, removal) = room.remove(meta, peers, &id, block, now);
                    (Some(step), removal)
                })
                .await
            }
            _ => {
                self.admin_step(nobody, |room, meta, peers, now| {
                    let (step, closure) = room.close_room(meta, peers, now);
                    (Some(step), closure)
                })
                .await
            }
        }
    }

    /// Runs one admin call through the tail and answers what it found as
    /// JSON, or 404 with `missing` when it found nothing.
    async fn admin_step<T, F>(&self, missing: &str, call: F) -> Result<Response>
    where
        T: serde::Serialize,
        F: FnOnce(
            &Room,
            &mut RoomMeta,
            &[PeerView<usize>],
            u64,
        ) -> (Option<Step<usize>>, Option<T>),
    {
        let mut answer = None;
        self.run(
            Read::FreshWithHeartbeats,
            None,
            |room, meta, _, peers, now| {
                let (step, found) = call(room, meta, peers, now);
                answer = found;
                step
            },
        )
        .await?;
        match answer {
            Some(found) => Response::from_json(&found),
            None => runtime::json_error(404, missing),
        }
    }

    async fn on_closed(&self, ws: WebSocket, code: Option<usize>) -> Result<()> {
        if self.config.is_err() {
            return Ok(());
        }
        let Ok(Some(state)) = ws.deserialize_attachment::<PeerState>() else {
            return Ok(());
        };
        let server_closed = state.closing;
        self.run(Read::Fresh, None, |room, meta, sockets, peers, now| {
            let gone = match sockets.iter().position(|s| *s == ws) {
                Some(i) => peers[i].clone(),
                None => PeerView {
                    socket: usize::MAX,
                    state,
                    heartbeat_ms: None,
                },
            };
            // The runtime may list the closed socket for a moment longer:
            // no later read of the list may take it for a live peer.
            self.sockets.forget(&ws);
            let mut flood = self.flood.borrow_mut();
            Some(room.closed(meta, peers, &gone, &mut flood, now))
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

    fn woke(&self) {
        runtime::wake(&self.room, false);
        self.stats.add(Counter::RoomWake, 1);
    }

    /// Reports to the stats shard; see [`Reporter::report`].
    fn report(&self, membership: bool) {
        if !self.stats.wants(membership) {
            return;
        }
        let (list, state) = (Rc::clone(&self.sockets), self.raw.to_state());
        let peers = move || list.live_count(&state);
        self.stats
            .report(&self.state, &self.env, &self.room, peers, membership);
    }

    /// The tail every handler ends with (see `tail.rs`).
    fn tail(&self) -> Tail<'_, RoomMeta> {
        Tail {
            state: &self.state,
            raw: &self.raw,
            list: &self.sockets,
            record: &self.record,
            stats: &self.stats,
            log_level: (*self.config).as_ref().map_or(Level::Info, |c| c.log_level),
            room: Some(&self.room),
            outbox: None,
        }
    }

    /// Runs one core handler of the room through the tail.
    async fn run<F>(&self, read: Read, joiner: Option<&WebSocket>, handler: F) -> Result<()>
    where
        F: FnOnce(
            &Room,
            &mut RoomMeta,
            &[WebSocket],
            &[PeerView<usize>],
            u64,
        ) -> Option<Step<usize>>,
    {
        let Ok(cfg) = self.config.as_ref() else {
            return Ok(());
        };
        let room = Room::new(&cfg.limits);
        self.tail()
            .run(read, joiner, |meta, sockets, peers, now| {
                handler(&room, meta, sockets, peers, now)
            })
            .await?;
        Ok(())
    }
}

crate::ws_exports::websocket_exports!(GameRoom);
