//! `PeerHome`: one Durable Object per peer id of the open namespace, a thin
//! adapter around `signaling_core::open::Home`, built like `GameRoom`.
//!
//! The object is named after the id it is home to. It holds that id's
//! socket (tag = id, attachment = `PeerState` with the client's token
//! digest), its inbox of parcels that arrived while it was offline, its
//! pending LEAVE and its recent correspondents (`HomeRecord`, see
//! `record.rs`). A relayed frame becomes a parcel in this home's outbox
//! (`outbox.rs`) and one request to the destination's home
//! (`contract::PATH_DELIVER`); an EXPIRE or a LEAVE goes back the same way.
//! That path is reachable only through the namespace binding from another
//! home: the rooms Worker's own fetch never routes it.

use crate::outbox::{Outbox, MAX_BATCH};
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
use signaling_core::open::{Delivery, Home, HomeRecord, OpenJoin};
use signaling_core::peer::{echo_close_code, PeerView};
use signaling_core::room::Room;
use signaling_core::socket::PeerState;
use signaling_core::step::Step;
use std::cell::RefCell;
use std::rc::Rc;
use worker::*;

/// The stats key of a home: its gauge and counters are reported under it.
pub fn stats_key(id: &str) -> String {
    format!("open/{id}")
}

// Hibernation WebSocket events are exported by `ws_exports`, not by the macro.
#[durable_object(alarm)]
pub struct PeerHome {
    state: State,
    raw: RawState,
    /// The peer id this object is home to (its name).
    me: String,
    /// `me` as the stats shards and the debug counters know it.
    key: String,
    /// The isolate's settings (`runtime::config`), shared by its objects.
    config: Rc<std::result::Result<RoomsWorkerConfig, ConfigError>>,
    record: Record<HomeRecord>,
    /// Shared with a scheduled stats report, which counts the live peers.
    sockets: Rc<SocketList>,
    /// In-memory only: losing it at eviction merely forgives a flooder.
    flood: RefCell<PeerFloodGuard>,
    outbox: Outbox,
    env: Env,
    stats: Reporter,
}

impl DurableObject for PeerHome {
    fn new(state: State, env: Env) -> Self {
        let (state, raw) = RawState::split(state);
        let me = state.id().name().unwrap_or_default();
        let key = stats_key(&me);
        let config = runtime::config(&env);
        let per_sec = (*config).as_ref().map_or(0, |c| c.limits.peer_msgs_per_sec);
        if let Ok(pair) = WebSocketRequestResponsePair::new(frame::HEARTBEAT, frame::HEARTBEAT) {
            state.set_websocket_auto_response(&pair);
        }
        runtime::wake(&key, true);
        let stats = Reporter::new((*config).as_ref().ok().map(|c| c.stats));
        PeerHome {
            state,
            raw,
            me,
            key,
            config,
            record: Record::default(),
            sockets: Rc::default(),
            flood: RefCell::new(PeerFloodGuard::new(per_sec)),
            outbox: Outbox::default(),
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
            contract::PATH_DELIVER => {
                self.woke();
                let resp = self.deliver(req).await;
                self.report(false);
                resp
            }
            contract::PATH_STATS => runtime::room_stats(&self.state, &self.key).await,
            _ => runtime::json_error(404, "no such home endpoint"),
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
            |home, rec, _, peers, now| Some(home.alarm(rec, peers, now)),
        )
        .await?;
        self.drain().await;
        self.report(true);
        Response::ok("alarm handled")
    }
}

impl PeerHome {
    /// A WebSocket message (see `ws_exports`: its length was judged before
    /// any copy, and one over the limit arrives as `Incoming::TooLarge`).
    pub(crate) async fn on_message(&self, ws: WebSocket, incoming: glue::Incoming) -> Result<()> {
        self.woke();
        let Ok(cfg) = self.config.as_ref() else {
            return Ok(());
        };
        let (bytes, len) = incoming.into_parts();
        let early = self
            .sockets
            .with_attachment(&self.state, &ws, |sender| {
                Room::new(&cfg.limits).from_closed_socket(sender, len)
            })
            .flatten();
        if let Some(dropped) = early {
            return self.tail().finish(&[], None, dropped).await;
        }
        self.run(Read::Cached, None, |home, rec, sockets, peers, now| {
            let from = sockets.iter().position(|s| *s == ws)?;
            let mut flood = self.flood.borrow_mut();
            Some(match &bytes {
                Some(bytes) => home.frame(rec, peers, from, bytes, &mut flood, now),
                None => home.too_large(rec, peers, from, len, &mut flood, now),
            })
        })
        .await?;
        self.drain().await;
        self.report(false);
        Ok(())
    }

    async fn join(&self, req: &Request) -> Result<Response> {
        // Checked here too, not only at the Worker's entry: a Worker bound
        // to this namespace directly must not forge `Proven` either.
        if let Err(err) = runtime::verify_contract(&self.config, contract::PATH_CONNECT, req) {
            return runtime::json_error(403, &err.to_string());
        }
        let admission = match contract::read_open(|name| req.headers().get(name).ok().flatten()) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
        if admission.peer != self.me {
            return runtime::json_error(403, "this home is for another peer id");
        }
        let pair = WebSocketPair::new()?;
        if let Err(err) = self.config.as_ref() {
            runtime::log(
                Level::Error,
                None,
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
        let request = OpenJoin {
            token_digest: admission.token_digest,
            proven: admission.proven,
        };
        self.run(
            Read::FreshWithHeartbeats,
            Some(&pair.server),
            |home, rec, _, peers, now| Some(home.join(rec, peers, request, now)),
        )
        .await?;
        Response::from_websocket(pair.client)
    }

    /// Parcels from another home. Only another home can send them (the
    /// rooms Worker's public side never routes this path), so `src` is the
    /// sending home's own name.
    async fn deliver(&self, mut req: Request) -> Result<Response> {
        if let Err(err) = contract::read_version(|name| req.headers().get(name).ok().flatten()) {
            return runtime::json_error(403, &err.to_string());
        }
        let delivery: Delivery = match req.json().await {
            Ok(d) => d,
            Err(err) => return runtime::json_error(400, &format!("bad delivery: {err}")),
        };
        if !signaling_core::ids::is_valid_peer_id(&delivery.src)
            || delivery.parcels.len() > MAX_BATCH
        {
            return runtime::json_error(400, "bad delivery: invalid src or too many parcels");
        }
        if self.config.is_err() {
            return runtime::json_error(500, "configuration error");
        }
        self.run(Read::Cached, None, |home, rec, _, peers, now| {
            let mut flood = self.flood.borrow_mut();
            Some(home.deliver(rec, peers, &delivery, &mut flood, now))
        })
        .await?;
        Response::ok("delivered")
    }

    async fn on_closed(&self, ws: WebSocket, code: Option<usize>) -> Result<()> {
        if self.config.is_err() {
            return Ok(());
        }
        let Ok(Some(state)) = ws.deserialize_attachment::<PeerState>() else {
            return Ok(());
        };
        let server_closed = state.closing;
        self.run(Read::Fresh, None, |home, rec, sockets, peers, now| {
            let gone = match sockets.iter().position(|s| *s == ws) {
                Some(i) => peers[i].clone(),
                None => PeerView {
                    socket: usize::MAX,
                    state,
                    heartbeat_ms: None,
                },
            };
            self.sockets.forget(&ws);
            let mut flood = self.flood.borrow_mut();
            Some(home.closed(rec, peers, &gone, &mut flood, now))
        })
        .await?;
        if !server_closed {
            let _ = ws.close(Some(echo_close_code(code)), Some("Closed"));
        }
        self.report(true);
        Ok(())
    }

    /// Sends what this home's steps forwarded (see `outbox.rs`).
    async fn drain(&self) {
        self.outbox
            .drain(&self.env, &self.me, &self.stats, self.log_level())
            .await;
    }

    fn log_level(&self) -> Level {
        (*self.config).as_ref().map_or(Level::Info, |c| c.log_level)
    }

    fn woke(&self) {
        runtime::wake(&self.key, false);
        self.stats.add(Counter::RoomWake, 1);
    }

    fn report(&self, membership: bool) {
        if !self.stats.wants(membership) {
            return;
        }
        let (list, state) = (Rc::clone(&self.sockets), self.raw.to_state());
        let peers = move || list.live_count(&state);
        self.stats
            .report(&self.state, &self.env, &self.key, peers, membership);
    }

    fn tail(&self) -> Tail<'_, HomeRecord> {
        Tail {
            state: &self.state,
            raw: &self.raw,
            list: &self.sockets,
            record: &self.record,
            stats: &self.stats,
            log_level: self.log_level(),
            room: None,
            outbox: Some(&self.outbox),
        }
    }

    /// Runs one core handler of the home through the tail.
    async fn run<F>(&self, read: Read, joiner: Option<&WebSocket>, handler: F) -> Result<()>
    where
        F: FnOnce(
            &Home,
            &mut HomeRecord,
            &[WebSocket],
            &[PeerView<usize>],
            u64,
        ) -> Option<Step<usize>>,
    {
        let Ok(cfg) = self.config.as_ref() else {
            return Ok(());
        };
        let home = Home::new(&cfg.limits, &self.me);
        self.tail()
            .run(read, joiner, |rec, sockets, peers, now| {
                handler(&home, rec, sockets, peers, now)
            })
            .await
    }
}

crate::ws_exports::websocket_exports!(PeerHome);
