//! The rooms Worker: no public route, reached only through the router's
//! service binding. It checks the internal contract headers and hands each
//! request to the `GameRoom` Durable Object named after the room.
//!
//! - `runtime`: the few JS facts the core cannot know (time, auto-response
//!   timestamps, log output, per-isolate counters).
//! - `host`: the one body of every object that holds sockets: socket
//!   cache, record, flood guard, stats, outbox, configuration, and the
//!   order in which a step of the core's machine is carried out.
//! - `game_room`: the Durable Object per game room, a host with the room's
//!   placement plus the roster and the admin API.
//! - `peer_home`: the open namespace's Durable Object, one per peer id, a
//!   host with the home's placement plus deliveries from other homes (a
//!   method call: `js/entry.mjs` declares the JS class around it);
//!   `outbox`: its deliveries to other homes.
//! - `record`: an object's durable record in memory and in storage.
//! - `sockets`: how the object reads its hibernatable sockets, and the
//!   runtime's side of the core's socket interpreter.
//! - `stats`: the stats shards rooms report to, and their gathering.
//! - `stored`: what the objects keep in storage and in attachments, as JSON.
//! - `ws_exports`: the objects' WebSocket events, exported by hand so a
//!   message's length is judged before it is copied into wasm memory, and
//!   `host_object!`, which declares an object around a host.
//! - `settle`: an event handled to its end inside the export when it waits
//!   on nothing (no Promise for a relay between live peers).

mod game_room;
mod host;
mod outbox;
mod peer_home;
mod record;
mod runtime;
mod settle;
mod sockets;
mod stats;
mod stored;
mod ws_exports;

pub use game_room::GameRoom;
pub use peer_home::PeerHome;
pub use stats::StatsShard;

use signaling_core::contract;
use worker::*;

/// Name of the Durable Object binding in `wrangler.rooms.toml`.
pub const ROOM_BINDING: &str = "GAME_ROOM";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = runtime::path_of(&req);
    let config = runtime::config(&env);
    let signature = runtime::verify_contract(&config, &path, &req);
    if path == contract::PATH_HEALTH {
        return health(config.as_ref(), signature);
    }
    if let Err(err) = signature {
        return runtime::json_error(403, &err.to_string());
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
            let report: signaling_core::metrics::Report =
                signaling_core::json::parse(&req.text().await?)?;
            let shards = stats::settings(&env)?.shards;
            stats::send_report(env, shards, report).await?;
            Response::ok("ok")
        };
    }
    if contract::is_open(|name| req.headers().get(name).ok().flatten()) {
        let separator = (*config).as_ref().ok().and_then(|c| c.open_group_separator);
        return open(req, &env, &path, separator).await;
    }
    let peer_required = path == contract::PATH_CONNECT || path == contract::PATH_ADMIN_REMOVE;
    let admission =
        match contract::read(|name| req.headers().get(name).ok().flatten(), peer_required) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
    match path.as_str() {
        contract::PATH_CONNECT
        | contract::PATH_ROSTER
        | contract::PATH_STATS
        | contract::PATH_PANIC
        | contract::PATH_ADMIN_ROOM
        | contract::PATH_ADMIN_REMOVE
        | contract::PATH_ADMIN_CLOSE => {
            let stub = env
                .durable_object(ROOM_BINDING)?
                .get_by_name(&admission.room)?;
            stub.fetch_with_request(req).await
        }
        _ => runtime::json_error(404, "no such internal endpoint"),
    }
}

/// An open-namespace request: to the home of the peer id it names (its
/// group's object with `OPEN_GROUP_SEPARATOR`). The homes' delivery path is
/// not among them: only homes call it.
async fn open(req: Request, env: &Env, path: &str, separator: Option<char>) -> Result<Response> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let peer = match path {
        contract::PATH_CONNECT => contract::read_open(header).map(|a| a.peer),
        contract::PATH_STATS => contract::read_open_peer(header),
        _ => return runtime::json_error(404, "no such internal endpoint"),
    };
    let peer = match peer {
        Ok(p) => p,
        Err(err) => return runtime::json_error(403, &err.to_string()),
    };
    let home = signaling_core::placement::home_of(&peer, separator);
    let stub = env
        .durable_object(outbox::HOME_BINDING)?
        .get_by_name(home)?;
    stub.fetch_with_request(req).await
}

/// `/internal/health`: the settings, and whether the router's signature
/// verifies (so `/health?deep=1` names tiers that do not share a secret).
fn health(
    config: &std::result::Result<
        signaling_core::config::RoomsWorkerConfig,
        signaling_core::config::ConfigError,
    >,
    signature: std::result::Result<(), contract::ContractError>,
) -> Result<Response> {
    let body = match (config, signature) {
        (Ok(_), Ok(())) => Health {
            status: "ok",
            tier: "rooms",
            version: Some(env!("CARGO_PKG_VERSION")),
            contract: Some(contract::VERSION),
            setting: None,
            error: None,
        },
        (Ok(_), Err(err)) => Health::error("INTERNAL_SECRET", err.to_string()),
        (Err(err), _) => Health::error(err.setting, err.to_string()),
    };
    let status = if body.error.is_some() { 500 } else { 200 };
    Ok(Response::from_json(&body)?.with_status(status))
}

/// `/internal/health`'s body: the router's `/health?deep=1` reads it.
#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    tier: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contract: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    setting: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Health {
    fn error(setting: &'static str, error: String) -> Self {
        Health {
            status: "error",
            tier: "rooms",
            version: None,
            contract: None,
            setting: Some(setting),
            error: Some(error),
        }
    }
}
