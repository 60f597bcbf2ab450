//! `PeerHome`: one Durable Object per peer id of the open namespace. A
//! `Host` (`host.rs`) running the core's machine with the home's placement
//! (the id it is named for lives here) does everything a socket needs; this
//! wrapper adds what only a home has: its join contract and deliveries from
//! other homes.
//!
//! The object is named after the id it is home to. It holds that id's
//! socket (tag = id, attachment = `PeerState` with the client's token
//! digest), its inbox of parcels that arrived while it was offline, its
//! pending LEAVE and its recent correspondents (its `Record`). A relayed
//! frame becomes a parcel in this home's outbox (`outbox.rs`) and one
//! request to the destination's home (`contract::PATH_DELIVER`); an EXPIRE
//! or a LEAVE goes back the same way. That path is reachable only through
//! the namespace binding from another home: the rooms Worker's own fetch
//! never routes it.

use crate::runtime;
use crate::sockets::Read;
use signaling_core::answer::Answer;
use signaling_core::contract;
use signaling_core::delivery;
use signaling_core::machine::{Input, Join};
use signaling_core::placement::Placement;
use worker::*;

// A home of the open namespace: the id it is named for lives here, or
// with `OPEN_GROUP_SEPARATOR` the ids of the group it is named for.
crate::ws_exports::host_object!(PeerHome, |home, separator| Placement::Open {
    home,
    separator
});

impl PeerHome {
    /// The requests only a home answers.
    async fn route(&self, path: &str, req: Request) -> Result<Response> {
        match path {
            contract::PATH_DELIVER => self.host.event(false, self.deliver(req)).await,
            _ => runtime::json_error(404, "no such home endpoint"),
        }
    }

    /// A join as the router admitted it: the open contract names the id
    /// and carries the digest of the client's own token.
    async fn join(&self, req: &Request) -> Result<Response> {
        let admission = match contract::read_open(|name| req.headers().get(name).ok().flatten()) {
            Ok(a) => a,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
        if !self.host.placement().lives_here(&admission.peer) {
            return runtime::json_error(403, "this home is for another peer id");
        }
        let join = Join {
            id: admission.peer,
            proven: admission.proven,
            holder: Some(admission.token_digest),
        };
        self.host.join(join).await
    }

    /// Parcels from another home (see `signaling_core::delivery` for the
    /// body). Only another home can send them: the rooms Worker's public
    /// side never routes this path, and with `INTERNAL_SECRET` the sender
    /// signs this destination, itself and the body. Each parcel's `src`
    /// must live in the sending home.
    async fn deliver(&self, mut req: Request) -> Result<Response> {
        let config = &self.host.config;
        if let Err(err) = runtime::verify_contract(config, contract::PATH_DELIVER, &req) {
            return runtime::json_error(403, &err.to_string());
        }
        let body = req.bytes().await?;
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let sender = match contract::read_delivery(header, &self.host.name, &body) {
            Ok(sender) => sender,
            Err(err) => return runtime::json_error(403, &err.to_string()),
        };
        let parcels = match delivery::decode(&body) {
            Ok(parcels) => parcels,
            Err(err) => return runtime::json_error(400, &err.to_string()),
        };
        let placement = self.host.placement();
        if parcels
            .iter()
            .any(|p| placement.object_of(&p.src) != sender)
        {
            return runtime::json_error(
                400,
                "bad delivery: a parcel's src does not live in the sending home",
            );
        }
        if self.host.config.is_err() {
            return runtime::json_error(500, "configuration error");
        }
        let input = Input::Deliver(parcels);
        match self
            .host
            .run(Read::Cached, None, |_, _| Some(input))
            .await?
        {
            // What it came to: sent, queued, dropped (each dropped one's
            // sender is told EXPIRE).
            Some(Answer::Delivered(report)) => Response::from_json(&report),
            _ => runtime::json_error(500, "the delivery was not handled"),
        }
    }
}
