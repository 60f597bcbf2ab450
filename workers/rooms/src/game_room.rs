//! `GameRoom`: one Durable Object per game room. A `Host` (`host.rs`)
//! over `signaling_core::room::Room` does everything a socket needs; this
//! wrapper adds what only a room has: its join contract, the roster and
//! the moderator's calls.

use crate::host::Kind;
use crate::runtime;
use crate::sockets::Read;
use signaling_core::contract;
use signaling_core::moderation::parse_block_secs;
use signaling_core::peer::{Limits, PeerView};
use signaling_core::room::{JoinRequest, Room, RoomMeta};
use signaling_core::step::Step;
use worker::*;

/// A game room: every id of the room lives here.
pub struct RoomKind;

impl Kind for RoomKind {
    type Record = RoomMeta;
    type Join = JoinRequest;
    type Core<'a> = Room<'a>;
    fn core<'a>(limits: &'a Limits, _name: &'a str) -> Room<'a> {
        Room::new(limits)
    }
    fn stats_key(name: &str) -> String {
        name.to_owned()
    }
    const LOGS_NAME_THE_ROOM: bool = true;
}

crate::ws_exports::host_object!(GameRoom, RoomKind);

impl GameRoom {
    /// Every request the object answers.
    async fn route(&self, req: Request) -> Result<Response> {
        let host = &self.host;
        match runtime::path_of(&req).as_str() {
            contract::PATH_CONNECT => host.event(true, self.join(&req)).await,
            contract::PATH_ROSTER => {
                // An eviction-safe read: sockets only, no storage, no alarm.
                host.woke();
                match host.config.as_ref() {
                    Ok(cfg) => {
                        let (_, peers) = host.peers(Read::FreshWithHeartbeats);
                        let roster = Room::new(&cfg.limits).roster(&peers, runtime::now_ms());
                        Response::from_json(&roster)
                    }
                    Err(e) => runtime::json_error(500, &e.to_string()),
                }
            }
            // Observing the counters must not change them: no wake counted.
            contract::PATH_STATS => host.debug_view().await,
            path @ (contract::PATH_ADMIN_ROOM
            | contract::PATH_ADMIN_REMOVE
            | contract::PATH_ADMIN_CLOSE) => host.event(true, self.moderate(path, &req)).await,
            _ => runtime::json_error(404, "no such room endpoint"),
        }
    }

    async fn join(&self, req: &Request) -> Result<Response> {
        // Checked here too, not only at the Worker's entry: a Worker bound
        // to this namespace directly must not forge `Proven` either.
        if let Err(err) = runtime::verify_contract(&self.host.config, contract::PATH_CONNECT, req) {
            return runtime::json_error(403, &err.to_string());
        }
        let admission = match contract::read(|name| req.headers().get(name).ok().flatten(), true) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
        let Some(id) = admission.peer else {
            return runtime::json_error(403, "missing peer id");
        };
        let request = JoinRequest {
            id,
            proven: admission.proven,
            ticket: admission.ticket,
        };
        self.host.join(request).await
    }

    /// The admin API's calls (see `signaling_core::moderation`); the router
    /// checked the admin token, this checks the router's signature again,
    /// as a join does.
    async fn moderate(&self, path: &str, req: &Request) -> Result<Response> {
        if let Err(err) = runtime::verify_contract(&self.host.config, path, req) {
            return runtime::json_error(403, &err.to_string());
        }
        if let Err(e) = self.host.config.as_ref() {
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

    /// Runs one admin call through the host and answers what it found as
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
        self.host
            .run(
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
}
