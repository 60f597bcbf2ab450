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
//! frame becomes a parcel in this home's outbox (`outbox.rs`) and one call
//! of the destination home's `deliver` method (JS RPC); an EXPIRE or a
//! LEAVE goes back the same way. Only another home can make that call: it
//! needs the namespace binding, which nothing public reaches.

use crate::host::Host;
use crate::runtime;
use crate::sockets::Read;
use signaling_core::answer::Answer;
use signaling_core::contract;
use signaling_core::delivery::{self, Reply};
use signaling_core::machine::{Input, Join};
use signaling_core::placement::Placement;
use wasm_bindgen::prelude::*;
use worker::*;

// A home of the open namespace: the id it is named for lives here, or
// with `OPEN_GROUP_SEPARATOR` the ids of the group it is named for.
crate::ws_exports::host_object!(PeerHome, |home, separator| Placement::Open {
    home,
    separator
});

impl PeerHome {
    /// The requests only a home answers.
    async fn route(&self, _path: &str, _req: Request) -> Result<Response> {
        runtime::json_error(404, "no such home endpoint")
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
}

/// Parcels from another home (see `signaling_core::delivery` for the
/// body), by a call of this home's `deliver` method (`js/entry.mjs`). Only
/// another home can make it: the call needs the namespace binding, and with
/// `INTERNAL_SECRET` the sender signs this destination, itself and the
/// body. Each parcel's `src` must live in the sending home.
async fn deliver(host: &Host, contract: &str, body: &str) -> Result<Reply> {
    let Ok(config) = &*host.config else {
        return Ok(Reply::Refused("configuration error".into()));
    };
    let sender = match contract::read_delivery(
        contract,
        &config.internal_secrets,
        &host.name,
        body.as_bytes(),
        runtime::now_ms(),
    ) {
        Ok(sender) => sender,
        Err(err) => return Ok(Reply::Refused(err.to_string())),
    };
    let parcels = match delivery::decode(body.as_bytes()) {
        Ok(parcels) => parcels,
        Err(err) => return Ok(Reply::Refused(err.to_string())),
    };
    let placement = host.placement();
    if parcels
        .iter()
        .any(|p| placement.object_of(&p.src) != sender)
    {
        return Ok(Reply::Refused(
            "bad delivery: a parcel's src does not live in the sending home".into(),
        ));
    }
    let input = Input::Deliver(parcels);
    match host.run(Read::Cached, None, |_, _| Some(input)).await? {
        // What it came to: sent, queued, dropped (each dropped one's
        // sender is told EXPIRE).
        Some(Answer::Delivered(report)) => Ok(Reply::Done(report)),
        _ => Err(Error::RustError("the delivery was not handled".into())),
    }
}

// The method other homes call. (Declared here, not in `host_object!`: only
// a home has it.)
#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
impl PeerHome {
    /// Answers the text of a [`Reply`], at once when nothing had to wait
    /// (`settle.rs`); fails (the call rejects, and the sender tries again)
    /// only when the home could not carry it out.
    #[wasm_bindgen(js_name = deliver)]
    pub fn deliver_export(
        &self,
        contract: String,
        body: String,
    ) -> std::result::Result<JsValue, JsValue> {
        let host = std::rc::Rc::clone(&self.host);
        crate::settle::settle(Box::pin(async move {
            let reply = host.event(false, deliver(&host, &contract, &body)).await?;
            Ok(JsValue::from_str(&reply.encode()))
        }))
    }
}
