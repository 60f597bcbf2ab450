//! The few facts both Workers read from the Workers runtime, written once:
//! the clock, settings, the isolate's wasm memory and its allocator,
//! WebSocket messages (judged by length before they are copied), a fetched
//! body, log output and the JSON error body. Everything here is
//! a thin call into the runtime; decisions stay in `signaling-core`.

use signaling_core::log::{Level, LogEvent};
use wasm_bindgen::JsCast;
use worker::{js_sys, Env, Response, Result};

/// Milliseconds since the Unix epoch. (`Date.now()`, not workers-rs's
/// `Date::now`, which builds a `Date` object to read it: a JS object, a
/// slot in wasm-bindgen's table and two calls, a few times per frame.)
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// A `[vars]` value or a secret.
pub fn setting(env: &Env, name: &str) -> Option<String> {
    if let Ok(var) = env.var(name) {
        return Some(var.to_string());
    }
    env.secret(name).ok().map(|s| s.to_string())
}

/// Bytes of this isolate's wasm linear memory (every Durable Object and
/// request of the Worker shares it). It never shrinks, so a leak in our code
/// shows up here even where the runtime's own RSS is noisy.
pub fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()
        .and_then(|m| m.buffer().dyn_into::<js_sys::ArrayBuffer>().ok())
        .map_or(0, |b| b.byte_length() as u64)
}

/// The allocator of both Workers' wasm: talc instead of std's dlmalloc,
/// about 2.9 KiB less of each gzipped bundle (docs/benchmarks-reading.md
/// has its CPU figures). Like dlmalloc it grows the wasm memory as needed
/// and never returns it.
#[cfg(target_family = "wasm")]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// A WebSocket message as the rooms tier reads it.
pub enum Incoming {
    /// The frame's bytes (a text frame as UTF-8).
    Frame(Vec<u8>),
    /// Over the size limit before any copy: at least this many bytes.
    TooLarge(usize),
}

impl Incoming {
    /// The bytes (`None` when too large to copy) and the length.
    pub fn into_parts(self) -> (Option<Vec<u8>>, usize) {
        match self {
            Incoming::Frame(bytes) => {
                let len = bytes.len();
                (Some(bytes), len)
            }
            Incoming::TooLarge(len) => (None, len),
        }
    }
}

/// Reads a WebSocket message the runtime handed over, judging its length
/// *before* copying it into wasm memory: the runtime accepts frames of up
/// to 32 MiB, and wasm memory, shared by every object of the isolate, never
/// shrinks. A text frame's UTF-8 is never shorter than its UTF-16 length,
/// so a string longer than `max_bytes` code units is over the limit
/// without encoding it; one of up to 3x that is copied and judged exactly.
pub fn read_message(message: &wasm_bindgen::JsValue, max_bytes: usize) -> Incoming {
    if let Some(text) = message.dyn_ref::<js_sys::JsString>() {
        let units = text.length() as usize;
        if units > max_bytes {
            return Incoming::TooLarge(units);
        }
        return Incoming::Frame(String::from(text).into_bytes());
    }
    if let Some(buffer) = message.dyn_ref::<js_sys::ArrayBuffer>() {
        let len = buffer.byte_length() as usize;
        if len > max_bytes {
            return Incoming::TooLarge(len);
        }
        return Incoming::Frame(js_sys::Uint8Array::new(buffer).to_vec());
    }
    Incoming::Frame(js_sys::Uint8Array::new(message).to_vec())
}

/// Prints a structured log line when `event` is at or above `min`,
/// through the console method of its level, so that `wrangler tail` and
/// Workers Logs show warn and error lines as such.
pub fn log(min: Level, room: Option<&str>, event: &LogEvent) {
    if event.level < min {
        return;
    }
    let line = event.render(now_ms(), room);
    match event.level {
        Level::Debug => worker::console_debug!("{}", line),
        Level::Info => worker::console_log!("{}", line),
        Level::Warn => worker::console_warn!("{}", line),
        Level::Error => worker::console_error!("{}", line),
    }
}

/// The one error body of both tiers: `{"error": msg, "status": status}`.
pub fn json_error(status: u16, msg: &str) -> Result<Response> {
    #[derive(serde::Serialize)]
    struct ErrorBody<'a> {
        error: &'a str,
        status: u16,
    }
    let body = ErrorBody { error: msg, status };
    Ok(Response::from_json(&body)?.with_status(status))
}

/// A fetched response's body as text, read by the runtime in one call.
/// (workers-rs's `Response::text` and `json` read a fetched body chunk by
/// chunk through wasm streams: more calls, and about 1.5 KiB gzipped of
/// code a Worker need not ship.)
pub async fn body_text(resp: Response) -> Result<String> {
    let raw: worker::worker_sys::web_sys::Response = resp.into();
    let text = worker::wasm_bindgen_futures::JsFuture::from(raw.text()?).await?;
    text.as_string()
        .ok_or_else(|| worker::Error::RustError("a response body that is not text".into()))
}

/// A fetched response's JSON body (read as [`body_text`]).
pub async fn body_json<T: serde::de::DeserializeOwned>(resp: Response) -> Result<T> {
    Ok(signaling_core::json::parse(&body_text(resp).await?)?)
}
