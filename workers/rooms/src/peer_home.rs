//! `PeerHome`: one Durable Object per peer id of the open namespace. A
//! [`Host`] (`host.rs`) over `signaling_core::open::Home` does everything
//! a socket needs; this wrapper adds what only a home has: its join
//! contract and deliveries from other homes.
//!
//! The object is named after the id it is home to. It holds that id's
//! socket (tag = id, attachment = `PeerState` with the client's token
//! digest), its inbox of parcels that arrived while it was offline, its
//! pending LEAVE and its recent correspondents (`HomeRecord`). A relayed
//! frame becomes a parcel in this home's outbox (`outbox.rs`) and one
//! request to the destination's home (`contract::PATH_DELIVER`); an EXPIRE
//! or a LEAVE goes back the same way. That path is reachable only through
//! the namespace binding from another home: the rooms Worker's own fetch
//! never routes it.

use crate::host::Kind;
use crate::outbox::MAX_BATCH;
use crate::runtime;
use crate::sockets::Read;
use signaling_core::contract;
use signaling_core::open::{Delivery, Home, HomeRecord, OpenJoin};
use signaling_core::peer::Limits;
use worker::*;

/// A home of the open namespace: one id lives here.
pub struct HomeKind;

impl Kind for HomeKind {
    type Record = HomeRecord;
    type Join = OpenJoin;
    type Core<'a> = Home<'a>;
    fn core<'a>(limits: &'a Limits, name: &'a str) -> Home<'a> {
        Home::new(limits, name)
    }
    /// Its gauge and counters go under `open/{id}`, apart from rooms'.
    fn stats_key(name: &str) -> String {
        format!("open/{name}")
    }
    const LOGS_NAME_THE_ROOM: bool = false;
}

crate::ws_exports::host_object!(PeerHome, HomeKind);

impl PeerHome {
    /// Every request the object answers.
    async fn route(&self, req: Request) -> Result<Response> {
        let host = &self.host;
        match runtime::path_of(&req).as_str() {
            contract::PATH_CONNECT => host.event(true, self.join(&req)).await,
            contract::PATH_DELIVER => host.event(false, self.deliver(req)).await,
            contract::PATH_STATS => host.debug_view().await,
            _ => runtime::json_error(404, "no such home endpoint"),
        }
    }

    async fn join(&self, req: &Request) -> Result<Response> {
        // Checked here too, not only at the Worker's entry: a Worker bound
        // to this namespace directly must not forge `Proven` either.
        if let Err(err) = runtime::verify_contract(&self.host.config, contract::PATH_CONNECT, req) {
            return runtime::json_error(403, &err.to_string());
        }
        let admission = match contract::read_open(|name| req.headers().get(name).ok().flatten()) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
        if admission.peer != self.host.name {
            return runtime::json_error(403, "this home is for another peer id");
        }
        let request = OpenJoin {
            token_digest: admission.token_digest,
            proven: admission.proven,
        };
        self.host.join(request).await
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
        if self.host.config.is_err() {
            return runtime::json_error(500, "configuration error");
        }
        self.host
            .run(Read::Cached, None, |home, record, _, peers, now| {
                let mut flood = self.host.flood();
                Some(home.deliver(record, peers, &delivery, &mut flood, now))
            })
            .await?;
        Response::ok("delivered")
    }
}
