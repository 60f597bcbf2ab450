//! The admin API under `/admin/rooms/{room}`: a moderator's view of a live
//! room, removing one peer (optionally blocking its id for a while), and
//! closing the room. Off unless the `ADMIN_TOKEN` secret is set; the token
//! is compared in constant time and never logged, and every call is logged
//! without it.
//!
//! The rules live in the room (`signaling_core::moderation`); this checks
//! the caller and the names, then forwards a signed internal request to the
//! room's object and passes its answer on.

use crate::http::{self, json_error, unauthorized};
use crate::state::{self, Refusal};
use crate::{admit_client, log, too_many_requests, ROOMS_BINDING};
use signaling_core::api::AdminCall;
use signaling_core::config::{Namespace, RouterConfig};
use signaling_core::contract;
use signaling_core::ids::{is_valid_peer_id, is_valid_room_id};
use signaling_core::log::{Level, LogEvent};
use signaling_core::moderation::parse_block_secs;
use signaling_core::secret;
use signaling_core::target::Target;
use worker::*;

/// Answers one admin call.
pub async fn handle(
    req: &Request,
    env: &Env,
    cfg: &RouterConfig,
    call: AdminCall,
) -> Result<Response> {
    let Some(token) = &cfg.admin_token else {
        return json_error(
            404,
            "Not found: the admin API is off (set the ADMIN_TOKEN secret to turn it on)",
        );
    };
    let header = req.headers().get("Authorization").ok().flatten();
    if !secret::bearer(header.as_deref()).is_some_and(|given| secret::matches(given, token)) {
        // Sampled like every other refusal a client can repeat at will.
        if let Some(held_back) = state::sample_refusal(Refusal::AdminToken, glue::now_ms()) {
            log(
                cfg,
                LogEvent::new(Level::Warn, "admin_refused")
                    .field("action", call.action())
                    .field("reason", "bad_token")
                    .field("unlogged_before", held_back),
            );
        }
        // Guessing the token costs the guesser its per-client budget.
        if !admit_client(req, env, cfg).await {
            return too_many_requests(cfg, "admin");
        }
        return unauthorized("Unauthorized: send 'Authorization: Bearer <ADMIN_TOKEN>'");
    }
    let method = Method::from(call.method().to_owned());
    if req.method() != method {
        let mut resp = json_error(
            405,
            &format!(
                "Method not allowed: {} takes {}",
                call.action(),
                call.method()
            ),
        )?;
        resp.headers_mut().set("Allow", call.method())?;
        return Ok(resp);
    }
    if cfg.namespace == Namespace::Open {
        return json_error(
            404,
            "No rooms here: this server runs the open namespace (NAMESPACE=open)",
        );
    }
    let resp = match contract_headers(req, &call) {
        Ok(headers) => {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let internal = http::internal_request(method, internal_path(&call), &headers, None)?;
            forward(env, internal).await?
        }
        Err(problem) => json_error(400, &problem)?,
    };
    let mut event = LogEvent::new(Level::Info, "admin")
        .field("action", call.action())
        .field("room", call.room())
        .field("status", resp.status_code());
    if let AdminCall::Kick { peer, .. } = &call {
        event = event.peer(peer);
    }
    log(cfg, event);
    Ok(resp)
}

fn internal_path(call: &AdminCall) -> &'static str {
    match call {
        AdminCall::Inspect { .. } => contract::PATH_ADMIN_ROOM,
        AdminCall::Kick { .. } => contract::PATH_ADMIN_REMOVE,
        AdminCall::Close { .. } => contract::PATH_ADMIN_CLOSE,
    }
}

/// The contract headers of a well-formed call, or why it is malformed.
fn contract_headers(
    req: &Request,
    call: &AdminCall,
) -> std::result::Result<Vec<(&'static str, String)>, String> {
    let room = call.room();
    if !is_valid_room_id(room) {
        return Err("invalid room id".into());
    }
    let mut headers = vec![(contract::HEADER_ROOM, room.to_owned())];
    if let AdminCall::Kick { peer, .. } = call {
        if !is_valid_peer_id(peer) {
            return Err("invalid peer id".into());
        }
        headers.push((contract::HEADER_PEER, peer.clone()));
        let url = req.inner().url();
        if let Some(block) = Target::parse(&url).param("block") {
            let secs = parse_block_secs(&block).map_err(|e| e.to_string())?;
            headers.push((contract::HEADER_BLOCK_SECS, secs.to_string()));
        }
    }
    Ok(headers)
}

/// Sends the call to the room and answers with its status and body.
async fn forward(env: &Env, internal: Request) -> Result<Response> {
    let answer = match env.service(ROOMS_BINDING)?.fetch_request(internal).await {
        Ok(answer) => answer,
        Err(_) => return json_error(502, "Rooms tier unavailable, retry later"),
    };
    let status = answer.status_code();
    let body = glue::body_text(answer).await?;
    if !matches!(status, 200 | 400 | 404) {
        // The room refused the contract (tiers with different secrets) or
        // failed: the operator's problem, named as such.
        let detail: String = body.chars().take(200).collect();
        return json_error(502, &format!("rooms tier answered {status}: {detail}"));
    }
    // A fetched response's headers are immutable; answer with our own
    // (the caller adds `Cache-Control: no-store` to every admin answer).
    let mut resp = Response::ok(body)?.with_status(status);
    resp.headers_mut().set("Content-Type", "application/json")?;
    Ok(resp)
}
