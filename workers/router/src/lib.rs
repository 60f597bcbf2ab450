//! The router Worker: the only public tier. Stateless; this is where
//! untrusted input stops.
//!
//! Per request: origin policy and CORS, the PeerJS HTTP API at every mount
//! path, `/health`, and for WebSocket upgrades: query validation, the room
//! ticket, the per-IP connect limit, and then a fresh internal request to the
//! rooms Worker through the `ROOMS` service binding, carrying only what was
//! verified (see `signaling_core::contract`). The decisions themselves live
//! in `signaling_core`; this crate wires them to the runtime.
//!
//! - `admin`: the moderation API (`/admin/rooms/...`, only with `ADMIN_TOKEN`).
//! - `http`: response helpers (JSON errors, CORS headers, refusals after the upgrade).
//! - `state`: what one isolate keeps: the parsed configuration and the per-IP limiter.
//! - `ice`: the STUN/TURN servers (and TURN credentials) for a call.
//! - `metrics`: router refusal counters and the `/metrics` scrape.
//! - `ratelimit`: the optional Cloudflare rate-limiting binding.

mod admin;
mod http;
mod ice;
mod metrics;
mod ratelimit;
mod state;

use glue::now_ms;
use http::{json, json_error, refuse_socket, unauthorized, with_cors};
use signaling_core::api::{self, Endpoint};
use signaling_core::config::Namespace;
use signaling_core::contract;
use signaling_core::cors::OriginDecision;
use signaling_core::log::{Level, LogEvent};
use signaling_core::metrics::{Counter, RefuseReason};
use signaling_core::query;
use signaling_core::target::Target;
use worker::*;

/// Name of the service binding to the rooms Worker.
pub(crate) const ROOMS_BINDING: &str = "ROOMS";
/// Host of internal URLs; never resolved, the binding routes them.
pub(crate) const INTERNAL_ORIGIN: &str = "https://rooms.internal";

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let resp = route(req, &env).await;
    metrics::flush_in_background(&env, &ctx, now_ms());
    resp
}

async fn route(req: Request, env: &Env) -> Result<Response> {
    let env = env.clone();
    let config = state::config(&env);
    let url = req.inner().url();
    let path = Target::parse(&url).path;

    let origin = req.headers().get("Origin").ok().flatten();
    let decision = match config.as_ref() {
        Ok(cfg) => cfg.origins.decide(origin.as_deref()),
        Err(_) => OriginDecision::NoOrigin,
    };

    let cfg = match config.as_ref() {
        Ok(cfg) => cfg,
        Err(err) => {
            // Refuse clearly rather than serve with a silent fallback.
            let body = serde_json::json!({
                "status": "error",
                "error": err.to_string(),
                "setting": err.setting,
            });
            if is_upgrade(&req) {
                metrics::count(Counter::ConnectionRefused(RefuseReason::Config));
                return refuse_socket("Server configuration error", 1011);
            }
            return Ok(json(&body)?.with_status(500));
        }
    };

    if cfg.local_dev && !Target::parse(&url).is_loopback() {
        // The top-level settings are local development's: deployed by
        // accident (no `--env`), they must not serve the public.
        let msg = "This router runs local-development settings (LOCAL_DEV=true) and serves only localhost; deploy with --env staging or --env production";
        if is_upgrade(&req) {
            metrics::count(Counter::ConnectionRefused(RefuseReason::Config));
            return refuse_socket(msg, 1008);
        }
        return json_error(403, msg);
    }

    if req.method() == Method::Options {
        let requested = req
            .headers()
            .get("Access-Control-Request-Headers")
            .ok()
            .flatten();
        let mut resp = Response::empty()?.with_status(204);
        for (name, value) in decision.preflight_headers(requested.as_deref()) {
            resp.headers_mut().set(name, &value)?;
        }
        return Ok(resp);
    }

    let endpoint = api::route(&cfg.mounts, path);
    if endpoint == Endpoint::Socket && is_upgrade(&req) {
        return upgrade(req, &env, cfg, &decision).await;
    }
    if let Endpoint::Admin(call) = endpoint {
        // Never cached, whatever the answer.
        let mut resp = admin::handle(&req, &env, cfg, call).await?;
        resp.headers_mut().set("Cache-Control", "no-store")?;
        return with_cors(resp, &decision);
    }
    if !matches!(req.method(), Method::Get | Method::Head) {
        return with_cors(json_error(405, "Method not allowed")?, &decision);
    }
    let resp = match endpoint {
        Endpoint::Health => health(&req, &env).await?,
        Endpoint::ServerInfo => {
            let mut r = Response::ok(api::SERVER_INFO)?;
            r.headers_mut().set("Content-Type", "application/json")?;
            r
        }
        Endpoint::NewId => new_id(&req, &env, cfg).await?,
        Endpoint::Peers => roster(&req, &env, cfg).await?,
        Endpoint::IceServers if !admit_client(&req, &env, cfg).await => {
            too_many_requests(cfg, "ice-servers")?
        }
        Endpoint::IceServers => ice::ice_servers(&req, cfg).await?,
        Endpoint::Socket => {
            // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
            let mut resp = json_error(426, "Upgrade Required: connect with a WebSocket")?;
            // (The Workers runtime drops it from a non-101 response, as a
            // hop-by-hop header: tests/e2e/workerd.test.mjs shows it.)
            resp.headers_mut().set("Upgrade", "websocket")?;
            resp
        }
        Endpoint::RoomDebug(room) if cfg.debug_endpoints => room_debug(&env, &room).await?,
        Endpoint::HomeDebug(id) if cfg.debug_endpoints => home_debug(&env, &id).await?,
        Endpoint::PanicDebug(room) if cfg.debug_endpoints => panic_debug(&env, &room).await?,
        Endpoint::Metrics if !admit_client(&req, &env, cfg).await => {
            too_many_requests(cfg, "metrics")?
        }
        Endpoint::Metrics => metrics::scrape(&req, &env, cfg, now_ms()).await?,
        Endpoint::GhostDebug(room) if cfg.debug_endpoints => {
            metrics::ghost(&env, &room, now_ms()).await?
        }
        Endpoint::Demo(file) if cfg.demo => demo(&env, &req, &file).await?,
        Endpoint::Demo(_)
        | Endpoint::RoomDebug(_)
        | Endpoint::HomeDebug(_)
        | Endpoint::GhostDebug(_)
        | Endpoint::PanicDebug(_)
        | Endpoint::Admin(_)
        | Endpoint::NotFound => json_error(404, "Not found")?,
    };
    with_cors(resp, &decision)
}

fn is_upgrade(req: &Request) -> bool {
    req.headers()
        .get("Upgrade")
        .ok()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// May this client connect (or call the HTTP API) now? First this
/// isolate's limiter, then, when the router has a `CONNECT_LIMITER`
/// rate-limiting binding, Cloudflare's limit for the same key across every
/// isolate of the location. The key is `CF-Connecting-IP` (set by
/// Cloudflare's edge, never by the client; absent under local dev, where
/// every client shares one key), IPv6 cut to `IPV6_PREFIX_BITS`.
pub(crate) async fn admit_client(
    req: &Request,
    env: &Env,
    cfg: &signaling_core::config::RouterConfig,
) -> bool {
    let ip = req
        .headers()
        .get("CF-Connecting-IP")
        .ok()
        .flatten()
        .unwrap_or_default();
    let key = signaling_core::flood::client_key(&ip, cfg.ipv6_prefix_bits);
    if !state::allow_connect(&key, cfg) {
        return false;
    }
    match ratelimit::check(env, &key).await {
        None => true, // no binding configured: the isolate's limit alone
        Some(Ok(allowed)) => allowed,
        Some(Err(err)) => {
            // Fail open: a limiter outage must not lock every player out;
            // the isolate's limit still holds.
            log(
                cfg,
                LogEvent::new(Level::Error, "rate_limiter_error").field("error", err),
            );
            true
        }
    }
}

pub(crate) fn log(cfg: &signaling_core::config::RouterConfig, event: LogEvent) {
    glue::log(cfg.log_level, None, &event);
}

/// `GET /health`, and with `?deep=1` a check of the rooms tier.
async fn health(req: &Request, env: &Env) -> Result<Response> {
    let url = req.inner().url();
    let deep = Target::parse(&url)
        .param("deep")
        .is_some_and(|v| v == "1" || v == "true");
    let mut body = serde_json::json!({
        "status": "ok",
        "timestamp": now_ms(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if deep {
        match rooms_health(env).await {
            Ok(()) => body["rooms"] = "ok".into(),
            Err(reason) => {
                body["status"] = "degraded".into();
                body["rooms"] = reason.into();
                return Ok(json(&body)?.with_status(503));
            }
        }
    }
    json(&body)
}

async fn rooms_health(env: &Env) -> std::result::Result<(), String> {
    let service = env
        .service(ROOMS_BINDING)
        .map_err(|e| format!("rooms binding missing: {e}"))?;
    // Signed like every internal request, so a secret the tiers do not
    // share shows here rather than as refused joins.
    let probe = http::internal_request(Method::Get, contract::PATH_HEALTH, &[], None)
        .map_err(|e| format!("internal request: {e}"))?;
    let resp = service
        .fetch_request(probe)
        .await
        .map_err(|e| format!("rooms tier unreachable: {e}"))?;
    let status = resp.status_code();
    if status == 200 {
        Ok(())
    } else {
        let text = glue::body_text(resp).await.unwrap_or_default();
        Err(format!("rooms tier answered {status}: {text}"))
    }
}

/// A rate refusal's warn line, sampled: a client hammering a refused
/// endpoint gets one line per isolate per window, carrying the count of
/// those held back (the refusal counter in `/metrics` counts every one).
fn log_rate_refusal(cfg: &signaling_core::config::RouterConfig, endpoint: &str) {
    if let Some(held_back) = state::sample_refusal(state::Refusal::RateLimited, now_ms()) {
        log(
            cfg,
            LogEvent::new(Level::Warn, "refuse")
                .field("reason", "rate_limited")
                .field("endpoint", endpoint)
                .field("unlogged_before", held_back),
        );
    }
}

/// `429` with `Retry-After` for an HTTP endpoint over the per-IP limit.
pub(crate) fn too_many_requests(
    cfg: &signaling_core::config::RouterConfig,
    endpoint: &str,
) -> Result<Response> {
    log_rate_refusal(cfg, endpoint);
    let retry = signaling_core::flood::ConnectLimiter::retry_after_secs(cfg.connects_per_minute);
    let mut resp = json_error(429, "Too many requests, retry later")?;
    resp.headers_mut().set("Retry-After", &retry.to_string())?;
    Ok(resp)
}

/// `GET {mount}{key}/id`: a fresh UUID v4 as plain text.
async fn new_id(
    req: &Request,
    env: &Env,
    cfg: &signaling_core::config::RouterConfig,
) -> Result<Response> {
    if !admit_client(req, env, cfg).await {
        return too_many_requests(cfg, "id");
    }
    let id = signaling_core::ids::uuid_v4_from_bytes(state::random_bytes());
    let mut resp = Response::ok(id)?;
    resp.headers_mut()
        .set("Content-Type", "text/plain; charset=utf-8")?;
    resp.headers_mut().set("Cache-Control", "no-store")?;
    Ok(resp)
}

/// `GET {mount}{key}/peers`: the live peers of the room the credential names.
async fn roster(
    req: &Request,
    env: &Env,
    cfg: &signaling_core::config::RouterConfig,
) -> Result<Response> {
    if cfg.namespace == Namespace::Open {
        // As the reference with discovery off: one namespace-wide list does
        // not scale across homes, and it would hand every id to anyone.
        return unauthorized(
            "Peer discovery is off: this server runs the open namespace (NAMESPACE=open)",
        );
    }
    let header = req.headers().get("Authorization").ok().flatten();
    let bearer = signaling_core::secret::bearer(header.as_deref()).map(str::to_owned);
    let url = req.inner().url();
    let from_query = Target::parse(&url).param("token");
    let Some(token) = bearer.or(from_query).filter(|t| !t.is_empty()) else {
        return unauthorized(
            "Unauthorized: give the room token as 'Authorization: Bearer <token>' or ?token=",
        );
    };
    if !admit_client(req, env, cfg).await {
        return too_many_requests(cfg, "peers");
    }
    let room = match cfg.tickets.room_of(&token, now_ms() / 1000) {
        Ok(room) => room,
        Err(err) => return json_error(403, &err.to_string()),
    };
    let internal = internal_request(contract::PATH_ROSTER, &room, None)?;
    let resp = env.service(ROOMS_BINDING)?.fetch_request(internal).await?;
    if resp.status_code() != 200 {
        return json_error(502, "rooms tier could not answer");
    }
    let ids: Vec<String> = glue::body_json(resp).await?;
    json(&ids)
}

/// Serves a file of the demo page from the Worker's static assets.
async fn demo(env: &Env, req: &Request, file: &str) -> Result<Response> {
    let url = req.inner().url();
    let asset = format!("{}{file}", Target::parse(&url).origin);
    let resp = env.assets("ASSETS")?.fetch(asset, None).await?;
    // Copy into a response of our own: fetched headers are immutable.
    let status = resp.status_code();
    let content_type = resp.headers().get("Content-Type")?.unwrap_or_default();
    let mut resp = resp;
    let body = resp.bytes().await?;
    let mut out = Response::from_bytes(body)?.with_status(status);
    out.headers_mut().set("Content-Type", &content_type)?;
    Ok(out)
}

/// An internal request about `room`; with `peer`, an upgrade for that peer id.
fn internal_request(path: &str, room: &str, peer: Option<Joiner<'_>>) -> Result<Request> {
    let mut headers = vec![(contract::HEADER_ROOM, room)];
    if let Some(joiner) = peer {
        headers.push(("Upgrade", "websocket"));
        headers.push((contract::HEADER_PEER, joiner.id));
        headers.push((
            contract::HEADER_PROVEN,
            if joiner.proven { "1" } else { "0" },
        ));
        if let Some(ticket) = joiner.ticket {
            headers.push((contract::HEADER_TOKEN_DIGEST, ticket));
        }
    }
    http::internal_request(Method::Get, path, &headers, None)
}

/// The peer of a room's upgrade, as its ticket admitted it.
struct Joiner<'a> {
    id: &'a str,
    proven: bool,
    /// [`signaling_core::ticket::RoomGrant::holder`]: what a block covers besides the id.
    ticket: Option<&'a str>,
}

/// `GET /debug/rooms/{room}`: the room's wake counters, for local tests.
async fn room_debug(env: &Env, room: &str) -> Result<Response> {
    if !signaling_core::ids::is_valid_room_id(room) {
        return json_error(400, "invalid room id");
    }
    let internal = internal_request(contract::PATH_STATS, room, None)?;
    let resp = env.service(ROOMS_BINDING)?.fetch_request(internal).await?;
    // A fetched response's headers are immutable; answer with our own.
    let status = resp.status_code();
    let mut body: serde_json::Value = glue::body_json(resp).await?;
    if let Some(fields) = body.as_object_mut() {
        fields.insert(
            "router_wasm_memory_bytes".into(),
            glue::wasm_memory_bytes().into(),
        );
    }
    Ok(json(&body)?.with_status(status))
}

/// `/debug/panic/{room}`: the room's wasm panics (`contract::PATH_PANIC`).
/// 404 when the rooms tier's own `DEBUG_ENDPOINTS` is off. After a panic
/// the room's answer usually never comes (its future died with the wasm
/// instance; the caller gives up); if the runtime ends it, 502 says how.
async fn panic_debug(env: &Env, room: &str) -> Result<Response> {
    if !signaling_core::ids::is_valid_room_id(room) {
        return json_error(400, "invalid room id");
    }
    let internal = internal_request(contract::PATH_PANIC, room, None)?;
    match env.service(ROOMS_BINDING)?.fetch_request(internal).await {
        Ok(resp) if resp.status_code() == 404 => {
            json_error(404, "the rooms tier's DEBUG_ENDPOINTS is off")
        }
        Ok(resp) => json_error(
            502,
            &format!("the room answered {} to its panic", resp.status_code()),
        ),
        Err(err) => json_error(502, &format!("the room failed: {err}")),
    }
}

/// The internal upgrade for a room's member: the ticket (or, in dev, the
/// token) names the room. Outer error: the runtime; inner: a refusal.
fn rooms_admission(
    cfg: &signaling_core::config::RouterConfig,
    peer: &query::PeerQuery,
) -> Result<std::result::Result<Request, signaling_core::ticket::TicketError>> {
    let grant = match cfg.tickets.admit(&peer.token, &peer.id, now_ms() / 1000) {
        Ok(grant) => grant,
        Err(err) => return Ok(Err(err)),
    };
    log(
        cfg,
        LogEvent::new(Level::Debug, "connect")
            .peer(&peer.id)
            .field("room", grant.room.as_str())
            .field("proven", grant.proves_id),
    );
    // A fresh request: nothing the client sent (internal headers included) crosses over.
    internal_request(
        contract::PATH_CONNECT,
        &grant.room,
        Some(Joiner {
            id: &peer.id,
            proven: grant.proves_id,
            ticket: grant.holder.as_deref(),
        }),
    )
    .map(Ok)
}

/// The internal upgrade for the open namespace: the token is the client's
/// own secret (only its digest crosses over, to tell a reconnect of the
/// same client from another one), or with tickets a ticket whose `sub` is
/// the id.
fn open_admission(
    cfg: &signaling_core::config::RouterConfig,
    peer: &query::PeerQuery,
) -> Result<std::result::Result<Request, signaling_core::ticket::TicketError>> {
    let proven = match cfg.tickets.prove_id(&peer.token, &peer.id, now_ms() / 1000) {
        Ok(proven) => proven,
        Err(err) => return Ok(Err(err)),
    };
    log(
        cfg,
        LogEvent::new(Level::Debug, "connect")
            .peer(&peer.id)
            .field("namespace", "open")
            .field("proven", proven),
    );
    let digest = signaling_core::machine::token_digest(&peer.token);
    let headers = [
        ("Upgrade", "websocket"),
        (contract::HEADER_NAMESPACE, "open"),
        (contract::HEADER_PEER, peer.id.as_str()),
        (contract::HEADER_PROVEN, if proven { "1" } else { "0" }),
        (contract::HEADER_TOKEN_DIGEST, digest.as_str()),
    ];
    http::internal_request(Method::Get, contract::PATH_CONNECT, &headers, None).map(Ok)
}

/// `GET /debug/homes/{id}`: an open-namespace home's view, for local tests.
async fn home_debug(env: &Env, id: &str) -> Result<Response> {
    if !signaling_core::ids::is_valid_peer_id(id) {
        return json_error(400, "invalid peer id");
    }
    let headers = [
        (contract::HEADER_NAMESPACE, "open"),
        (contract::HEADER_PEER, id),
    ];
    let internal = http::internal_request(Method::Get, contract::PATH_STATS, &headers, None)?;
    let resp = env.service(ROOMS_BINDING)?.fetch_request(internal).await?;
    let status = resp.status_code();
    let body: serde_json::Value = glue::body_json(resp).await?;
    Ok(json(&body)?.with_status(status))
}

/// A WebSocket upgrade at `{mount}peerjs`.
async fn upgrade(
    req: Request,
    env: &Env,
    cfg: &signaling_core::config::RouterConfig,
    decision: &OriginDecision,
) -> Result<Response> {
    // CORS does not apply to WebSockets: refuse a foreign page here.
    if *decision == OriginDecision::Denied {
        metrics::count(Counter::ConnectionRefused(RefuseReason::Origin));
        log(
            cfg,
            LogEvent::new(Level::Info, "refuse").field("reason", "origin"),
        );
        return json_error(403, "Origin not allowed");
    }
    if !admit_client(&req, env, cfg).await {
        metrics::count(Counter::ConnectionRefused(RefuseReason::RateLimited));
        log_rate_refusal(cfg, "peerjs");
        return refuse_socket("Too many connections, retry later", 1008);
    }
    let url = req.inner().url();
    let peer = match query::parse_upgrade(Target::parse(&url).query, &cfg.peerjs_key) {
        Ok(q) => q,
        Err(err) => {
            let reason = if err == query::QueryError::BadKey {
                RefuseReason::BadKey
            } else {
                RefuseReason::BadQuery
            };
            metrics::count(Counter::ConnectionRefused(reason));
            log(
                cfg,
                LogEvent::new(Level::Info, "refuse")
                    .field("reason", reason.label())
                    .field("detail", err.to_string()),
            );
            return refuse_socket(&err.to_string(), 1008);
        }
    };
    let internal = match cfg.namespace {
        Namespace::Rooms => rooms_admission(cfg, &peer)?,
        Namespace::Open => open_admission(cfg, &peer)?,
    };
    let internal = match internal {
        Ok(internal) => internal,
        Err(err) => {
            metrics::count(Counter::ConnectionRefused(RefuseReason::BadTicket));
            log(
                cfg,
                LogEvent::new(Level::Info, "refuse")
                    .peer(&peer.id)
                    .field("reason", "bad_ticket")
                    .field("detail", err.to_string()),
            );
            return refuse_socket(&err.to_string(), 1008);
        }
    };
    match env.service(ROOMS_BINDING)?.fetch_request(internal).await {
        Ok(resp) if resp.status_code() == 101 => Ok(resp),
        Ok(resp) => {
            // The rooms tier refused the contract itself (a secret the
            // tiers do not share, a version too new): the operator's
            // problem, so the client hears a plain server error.
            let status = resp.status_code();
            let detail = glue::body_text(resp).await.unwrap_or_default();
            log(
                cfg,
                LogEvent::new(Level::Error, "internal_refused")
                    .field("status", status)
                    .field("detail", detail),
            );
            refuse_socket("Server configuration error", 1011)
        }
        Err(err) => {
            log(
                cfg,
                LogEvent::new(Level::Error, "internal_error").field("error", err.to_string()),
            );
            refuse_socket("Rooms tier unavailable, retry later", 1011)
        }
    }
}
