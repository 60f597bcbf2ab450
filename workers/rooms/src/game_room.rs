//! `GameRoom`: one Durable Object per game room. A `Host` (`host.rs`)
//! running the core's machine with the room's placement (every id of the
//! room lives here) does everything a socket needs; this wrapper adds what
//! only a room has: its join contract, the roster and the moderator's calls.

use crate::runtime;
use crate::sockets::Read;
use signaling_core::answer::Answer;
use signaling_core::contract;
use signaling_core::machine::{Input, Join};
use signaling_core::moderation::parse_block_secs;
use signaling_core::placement::Placement;
use worker::*;

// A game room: every id of the room lives here.
crate::ws_exports::host_object!(GameRoom, |_, _| Placement::Room);

impl GameRoom {
    /// The requests only a room answers.
    async fn route(&self, path: &str, req: Request) -> Result<Response> {
        let host = &self.host;
        match path {
            contract::PATH_ROSTER => {
                // An eviction-safe read: sockets only, no storage, no alarm.
                host.woke();
                match host.config.as_ref() {
                    Ok(cfg) => {
                        let (_, peers) = host.peers(Read::FreshWithHeartbeats);
                        let roster = host.machine(cfg).roster(&peers, runtime::now_ms());
                        Response::from_json(&roster)
                    }
                    Err(e) => runtime::json_error(500, &e.to_string()),
                }
            }
            contract::PATH_ADMIN_ROOM
            | contract::PATH_ADMIN_REMOVE
            | contract::PATH_ADMIN_CLOSE => host.event(true, self.moderate(path, &req)).await,
            _ => runtime::json_error(404, "no such room endpoint"),
        }
    }

    /// A join as the router admitted it: the room's contract names the id
    /// and the ticket that admitted it.
    async fn join(&self, req: &Request) -> Result<Response> {
        let admission = match contract::read(|name| req.headers().get(name).ok().flatten(), true) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
        // The signature covers the room it names: a captured join does not
        // replay into another room.
        if admission.room != self.host.name {
            return runtime::json_error(403, "this join is for another room");
        }
        let Some(id) = admission.peer else {
            return runtime::json_error(403, "missing peer id");
        };
        let join = Join {
            id,
            proven: admission.proven,
            holder: admission.ticket,
        };
        self.host.join(join).await
    }

    /// The admin API's calls (see `signaling_core::moderation`); the router
    /// checked the admin token, this checks the router's signature again,
    /// as a join does.
    async fn moderate(&self, path: &str, req: &Request) -> Result<Response> {
        if let Err(err) = runtime::verify_contract(&self.host.config, path, req) {
            return runtime::json_error(403, &err.to_string());
        }
        if req
            .headers()
            .get(contract::HEADER_ROOM)
            .ok()
            .flatten()
            .as_deref()
            != Some(&self.host.name)
        {
            return runtime::json_error(403, "this call is for another room");
        }
        if let Err(e) = self.host.config.as_ref() {
            return runtime::json_error(500, &e.to_string());
        }
        let nobody = "no such room: nobody is in it and it holds nothing";
        let (input, missing) = match path {
            contract::PATH_ADMIN_ROOM => (Input::Inspect, nobody),
            contract::PATH_ADMIN_REMOVE => {
                let header = |name: &str| req.headers().get(name).ok().flatten();
                let Some(id) = header(contract::HEADER_PEER) else {
                    return runtime::json_error(400, "missing peer id");
                };
                let block_secs =
                    match header(contract::HEADER_BLOCK_SECS).map(|b| parse_block_secs(&b)) {
                        None => None,
                        Some(Ok(secs)) => Some(secs),
                        Some(Err(err)) => return runtime::json_error(400, &err.to_string()),
                    };
                let input = Input::Remove { id, block_secs };
                (input, "no such peer in this room")
            }
            _ => (Input::CloseRoom, nobody),
        };
        let answer = self
            .host
            .run(Read::FreshWithHeartbeats, None, |_, _| Some(input))
            .await?;
        match answer {
            Some(Answer::Summary(summary)) => Response::from_json(&summary),
            Some(Answer::Removed(removal)) => Response::from_json(&removal),
            Some(Answer::Closed(closure)) => Response::from_json(&closure),
            Some(Answer::Delivered(_) | Answer::Swept { .. }) | None => {
                runtime::json_error(404, missing)
            }
        }
    }
}
