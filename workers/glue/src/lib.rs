//! The few facts both Workers read from the Workers runtime, written once:
//! the clock, settings, the isolate's wasm memory, log output and the JSON
//! error body. Everything here is a thin call into the runtime; decisions
//! stay in `signaling-core`.

use signaling_core::log::{Level, LogEvent};
use wasm_bindgen::JsCast;
use worker::{js_sys, Env, Response, Result};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
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

/// Prints a structured log line when `event` is at or above `min`.
pub fn log(min: Level, room: Option<&str>, event: &LogEvent) {
    if event.level >= min {
        worker::console_log!("{}", event.render(now_ms(), room));
    }
}

/// The one error body of both tiers: `{"error": msg, "status": status}`.
pub fn json_error(status: u16, msg: &str) -> Result<Response> {
    let body = serde_json::json!({ "error": msg, "status": status });
    Ok(Response::from_json(&body)?.with_status(status))
}
