//! The rooms Worker: no public route, reached only through the router's
//! service binding. It checks the internal contract headers and hands each
//! request to the `GameRoom` Durable Object named after the room.
//!
//! - `runtime`: the few JS facts the core cannot know (time, auto-response
//!   timestamps, log output, per-isolate counters).
//! - `game_room`: the Durable Object, a thin adapter around
//!   `signaling_core::room`.
//! - `record`: the room's durable record in memory and in storage.
//! - `sockets`: how the object reads its hibernatable sockets, and the
//!   runtime's side of the core's socket interpreter.
//! - `stats`: the stats shards rooms report to, and their gathering.

mod game_room;
mod record;
mod runtime;
mod sockets;
mod stats;

pub use game_room::GameRoom;
pub use stats::StatsShard;

use signaling_core::config::Settings;
use signaling_core::contract;
use worker::*;

/// Name of the Durable Object binding in `wrangler.rooms.toml`.
pub const ROOM_BINDING: &str = "GAME_ROOM";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    if path == contract::PATH_HEALTH {
        return health(&env);
    }
    if path == contract::PATH_METRICS || path == contract::PATH_REPORT {
        // Same contract check, without a room.
        if let Err(err) = contract::read_version(|name| req.headers().get(name).ok().flatten()) {
            return runtime::json_error(403, &err.to_string());
        }
        return if path == contract::PATH_METRICS {
            Response::from_json(&stats::gather(&env).await?)
        } else {
            let mut req = req;
            let report: signaling_core::metrics::Report = req.json().await?;
            let shards = stats::settings(&env)?.shards;
            stats::send_report(env, shards, report).await?;
            Response::ok("ok")
        };
    }
    let peer_required = path == contract::PATH_CONNECT;
    let admission =
        match contract::read(|name| req.headers().get(name).ok().flatten(), peer_required) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
    match path.as_str() {
        contract::PATH_CONNECT | contract::PATH_ROSTER | contract::PATH_STATS => {
            let stub = env
                .durable_object(ROOM_BINDING)?
                .get_by_name(&admission.room)?;
            stub.fetch_with_request(req).await
        }
        _ => runtime::json_error(404, "no such internal endpoint"),
    }
}

fn health(env: &Env) -> Result<Response> {
    let settings = Settings::new(|name| runtime::setting(env, name));
    match settings.rooms() {
        Ok(_) => Response::from_json(&serde_json::json!({
            "status": "ok",
            "tier": "rooms",
            "version": env!("CARGO_PKG_VERSION"),
            "contract": contract::VERSION,
        })),
        Err(err) => Ok(Response::from_json(&serde_json::json!({
            "status": "error",
            "tier": "rooms",
            "setting": err.setting,
            "error": err.to_string(),
        }))?
        .with_status(500)),
    }
}
