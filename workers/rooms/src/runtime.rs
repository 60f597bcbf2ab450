//! What the core cannot know, read from the Workers runtime, beyond the
//! glue both Workers share (`glue`: time, settings, logs, errors): when the
//! runtime last auto-responded to a socket's HEARTBEAT, and per-isolate
//! wake counters for the test-only debug view.

use signaling_core::flat_map::FlatMap;
use std::cell::{Cell, RefCell};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{js_sys, web_sys, Response, Result, State};

pub use glue::{json_error, log, now_ms, setting, wasm_memory_bytes};

use signaling_core::config::{ConfigError, RoomsWorkerConfig, Settings};
use std::rc::Rc;

thread_local! {
    static CONFIG: RefCell<Option<Rc<std::result::Result<RoomsWorkerConfig, ConfigError>>>> =
        const { RefCell::new(None) };
}

/// The size limit a message is judged by before it is copied (the default
/// when the settings are bad: such an object ignores messages anyway).
pub fn message_limit(config: &std::result::Result<RoomsWorkerConfig, ConfigError>) -> usize {
    config.as_ref().map_or_else(
        |_| signaling_core::peer::Limits::default().max_message_bytes,
        |c| c.limits.max_message_bytes,
    )
}

/// Checks the router's signature on an internal request to `path` (the
/// Worker's entry, and each object again: a Worker bound to the namespace
/// directly must not forge the contract either). Bad settings sign nothing
/// here, as they verify nothing at the router.
pub fn verify_contract(
    config: &std::result::Result<RoomsWorkerConfig, ConfigError>,
    path: &str,
    req: &worker::Request,
) -> std::result::Result<(), signaling_core::contract::ContractError> {
    let secrets = config.as_ref().map_or(&[][..], |c| &c.internal_secrets[..]);
    signaling_core::contract::verify(
        secrets,
        path,
        |name| req.headers().get(name).ok().flatten(),
        now_ms(),
    )
}

/// The isolate's settings, parsed once: the Worker's entry (every join and
/// roster) and the stats shards (every report) read them per request, and
/// a Worker's vars and secrets do not change within an isolate.
pub fn config(env: &worker::Env) -> Rc<std::result::Result<RoomsWorkerConfig, ConfigError>> {
    CONFIG.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| Rc::new(Settings::new(|name| setting(env, name)).rooms()))
            .clone()
    })
}

#[wasm_bindgen]
extern "C" {
    /// The `DurableObjectState` JS object, for the one method workers-rs
    /// 0.8.7 does not wrap.
    #[wasm_bindgen(extends = js_sys::Object)]
    pub type RawState;

    #[wasm_bindgen(method, js_name = getWebSocketAutoResponseTimestamp)]
    fn auto_response_timestamp(this: &RawState, ws: &web_sys::WebSocket) -> Option<js_sys::Date>;
}

impl RawState {
    /// Splits the runtime's state object into the wrapped `State` and our raw handle.
    pub fn split(state: worker::State) -> (worker::State, RawState) {
        let js: JsValue = state._inner().into();
        let raw = js.clone().unchecked_into::<RawState>();
        let state =
            worker::State::from(js.unchecked_into::<worker::worker_sys::DurableObjectState>());
        (state, raw)
    }

    /// The wrapped `State` again, for work that outlives a handler's borrow
    /// (a scheduled stats report).
    pub fn to_state(&self) -> worker::State {
        let js: JsValue = JsValue::clone(self);
        worker::State::from(js.unchecked_into::<worker::worker_sys::DurableObjectState>())
    }

    /// Another handle on the same state, for work that outlives a
    /// handler's borrow (a scheduled stats report reads heartbeats).
    pub fn share(&self) -> RawState {
        JsValue::clone(self).unchecked_into::<RawState>()
    }

    /// When the runtime last answered this socket's HEARTBEAT, in ms.
    pub fn heartbeat_ms(&self, ws: &worker::WebSocket) -> Option<u64> {
        self.auto_response_timestamp(ws.as_ref())
            .map(|d| d.get_time())
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| t as u64)
    }
}

/// Sets the object's alarm for `at_ms` (epoch ms).
pub async fn set_alarm(storage: &worker::Storage, at_ms: u64) -> worker::Result<()> {
    let when = js_sys::Date::new(&JsValue::from_f64(at_ms as f64));
    storage.set_alarm(worker::ScheduledTime::new(when)).await
}

/// A POST from one of this Worker's objects to another: the runtime's own
/// `Request` with a method, a few headers and a body. (workers-rs's
/// `Request::new_with_init` converts every option a request may carry;
/// these need three, and the difference is several KiB of the bundle.)
pub fn internal_post(
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&JsValue>,
) -> worker::Result<worker::Request> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    if !headers.is_empty() {
        let all = web_sys::Headers::new()?;
        for (name, value) in headers {
            all.set(name, value)?;
        }
        init.set_headers(&all);
    }
    if let Some(body) = body {
        init.set_body(body);
    }
    Ok(web_sys::Request::new_with_str_and_init(url, &init)?.into())
}

/// One object's wakes in this isolate, for the test-only debug endpoint
/// (the cluster-wide figures go through the stats shards): constructions,
/// and events handled. The object keeps its own handle, so counting an
/// event looks nothing up (a lookup by name in a map of every object of the
/// isolate was the rooms Worker's hottest wasm function in a profile of
/// scenario a); the isolate's map keeps the handles across evictions.
#[derive(Default)]
pub struct Wakes {
    pub constructed: Cell<u64>,
    pub handled: Cell<u64>,
}

thread_local! {
    static WAKES: RefCell<FlatMap<String, Rc<Wakes>>> = RefCell::default();
}

/// The wake counts of object `name`, with this construction counted.
pub fn constructed(name: &str) -> Rc<Wakes> {
    WAKES.with(|all| {
        let mut all = all.borrow_mut();
        if all.len() >= 10_000 && !all.contains_key(name) {
            all.clear(); // bounded: a per-isolate view, not the source of truth
        }
        let wakes = Rc::clone(all.entry(name.to_owned()).or_default());
        wakes.constructed.set(wakes.constructed.get() + 1);
        wakes
    })
}

/// The debug view of one room (test configuration only): its wakes in this
/// isolate, sockets, stored keys, alarm and the isolate's wasm memory.
pub async fn room_stats(state: &State, room: &str) -> Result<Response> {
    let (constructed, handled) = WAKES.with(|all| {
        all.borrow()
            .get(room)
            .map_or((0, 0), |w| (w.constructed.get(), w.handled.get()))
    });
    let storage = state.storage();
    let stored_keys = storage.list().await?.size();
    let alarm = storage.get_alarm().await?;
    Response::from_json(&RoomStats {
        room,
        constructions: constructed,
        handler_wakes: handled,
        wakes: constructed + handled,
        sockets: state.get_websockets().len(),
        stored_keys,
        alarm,
        wasm_memory_bytes: wasm_memory_bytes(),
    })
}

/// The debug view's body (`room_stats`).
#[derive(serde::Serialize)]
struct RoomStats<'a> {
    room: &'a str,
    constructions: u64,
    handler_wakes: u64,
    wakes: u64,
    sockets: usize,
    stored_keys: u32,
    alarm: Option<i64>,
    wasm_memory_bytes: u64,
}

/// The path of a request, cut from the URL string the runtime serialized
/// (see `signaling_core::target`): `Request::path` would parse it with the
/// `url` crate, whose IDNA tables cost the bundle about 68 KiB gzipped.
pub fn path_of(req: &worker::Request) -> String {
    signaling_core::target::Target::parse(&req.inner().url())
        .path
        .to_owned()
}
