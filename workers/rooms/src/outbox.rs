//! A home's deliveries to other homes (`peer_home.rs`).
//!
//! The core decides what goes where ([`Forward`]) and holds the waiting
//! parcels, bounded in count and bytes (`signaling_core::outbox`); this
//! carries the deliveries out. The handler that pushed the parcels also
//! drains them, so the runtime keeps the object alive until they are out;
//! an eviction can only happen between handlers, when the outbox is empty.
//!
//! A delivery is one call of the destination home's `deliver` method
//! through the namespace binding (JS RPC: cheaper than a request, see
//! docs/open-namespace.md); its reply ends the delivery (a JSON report of
//! what the home did with each parcel, or its refusal). One that fails in
//! the runtime (no reply: the object was reset, overloaded or threw) is
//! tried twice more; one that still fails hands its parcels back to the
//! host, whose machine tells each sender EXPIRE. The destination never
//! forwards what it receives (a delivery makes no forwards), so no loop is
//! possible.

use crate::runtime;
use signaling_core::answer::DeliveryReport;
use signaling_core::contract;
use signaling_core::delivery::{self, Forward, Parcel, Reply};
use signaling_core::log::{Level, LogEvent};
use signaling_core::outbox;
use std::cell::RefCell;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, Delay, Env};

/// Name of the Durable Object binding of the homes.
pub const HOME_BINDING: &str = "PEER_HOME";

/// One home's outgoing parcels, and the stubs of the homes it delivers to.
#[derive(Default)]
pub struct Outbox {
    queue: RefCell<outbox::Outbox>,
    stubs: RefCell<Vec<(String, HomeStub)>>,
}

/// Stubs one home keeps at most (past it they are all dropped): a stub
/// made once per destination instead of once per delivery.
const MAX_STUBS: usize = 64;

/// Attempts per delivery: the first and at most two retries, for failures
/// that may pass (the call got no reply).
const ATTEMPTS: u32 = 3;

impl Outbox {
    /// Nothing waits: a room's outbox always, a home's between relays.
    pub fn is_empty(&self) -> bool {
        self.queue.borrow().waiting() == 0
    }

    /// Queues the forwards in order, without yielding (call it right after
    /// the core's step, before any await, so frames keep their order).
    /// Answers the parcels over the bounds, for the machine to count and
    /// answer ([`signaling_core::machine::Input::Undelivered`]).
    pub fn push(&self, forwards: Vec<Forward>) -> Vec<Parcel> {
        self.queue.borrow_mut().push(forwards)
    }

    /// Delivers every destination's parcels that no other handler is
    /// already delivering. `me` is the sending object's name; `secret`
    /// signs the deliveries. Answers what came of them: the parcels whose
    /// delivery failed after its retries, and the senders whose relays a
    /// destination dropped.
    pub async fn drain(
        &self,
        env: &Env,
        secret: Option<&str>,
        me: &str,
        log_level: Level,
    ) -> Drained {
        let mut drained = Drained::default();
        let courier = Courier {
            env,
            secret,
            from: me,
            stubs: &self.stubs,
        };
        loop {
            let Some(to) = self.queue.borrow_mut().next_idle() else {
                break;
            };
            loop {
                let Some(parcels) = self.queue.borrow_mut().take_batch(&to) else {
                    break;
                };
                match courier.deliver_with_retries(&to, &parcels).await {
                    Ok(report) if !report.dropped_from.is_empty() => {
                        drained.dropped_away.push((to.clone(), report.dropped_from));
                    }
                    Ok(_) => {}
                    Err(err) => {
                        let event = LogEvent::new(Level::Error, "internal_error")
                            .peer(me)
                            .field("what", "delivery to another home failed")
                            .field("dst", to.as_str())
                            .field("parcels", parcels.len())
                            .field("error", err);
                        runtime::log(log_level, None, &event);
                        drained.undelivered.extend(parcels);
                    }
                }
            }
            self.queue.borrow_mut().delivered(&to);
        }
        drained
    }
}

/// What came of a drain.
#[derive(Default)]
pub struct Drained {
    /// Parcels whose delivery failed after its retries.
    pub undelivered: Vec<Parcel>,
    /// Per destination object, the senders whose relays it dropped.
    pub dropped_away: Vec<(String, Vec<String>)>,
}

/// Why a delivery failed.
enum Failure {
    /// The call never got a reply.
    MayPass(String),
    /// The home refused it, or it could not be made at all.
    Final(String),
}

/// What sends one object's deliveries: the namespace, the secret that
/// signs them (the rooms tier's `INTERNAL_SECRET`, when there is one) and
/// the sending object's name.
struct Courier<'a> {
    env: &'a Env,
    secret: Option<&'a str>,
    from: &'a str,
    stubs: &'a RefCell<Vec<(String, HomeStub)>>,
}

impl Courier<'_> {
    /// One delivery, tried again after 50 ms and 100 ms when it may pass.
    async fn deliver_with_retries(
        &self,
        to: &str,
        parcels: &[Parcel],
    ) -> Result<DeliveryReport, String> {
        let mut attempt = 1;
        loop {
            match self.deliver(to, parcels).await {
                Ok(report) => return Ok(report),
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::MayPass(err)) if attempt >= ATTEMPTS => return Err(err),
                Err(Failure::MayPass(_)) => {
                    Delay::from(Duration::from_millis(50 * u64::from(attempt))).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One delivery to the object `to`: a call of its `deliver` method
    /// (JS RPC, see `js/entry.mjs`), signed when there is a secret.
    async fn deliver(&self, to: &str, parcels: &[Parcel]) -> Result<DeliveryReport, Failure> {
        let body = delivery::encode(parcels);
        let contract = contract::delivery_contract(
            self.from,
            to,
            body.as_bytes(),
            self.secret,
            runtime::now_ms(),
        );
        let home = self.stub(to)?;
        let reply = match home.deliver(&contract, &body) {
            Ok(call) => JsFuture::from(call).await,
            Err(err) => Err(err),
        };
        let reply = reply.map_err(|e| {
            // A stub that failed may stay broken: the next call makes another.
            self.stubs.borrow_mut().retain(|(name, _)| name != to);
            Failure::MayPass(worker::Error::from(e).to_string())
        })?;
        match reply.as_string().and_then(|r| Reply::decode(&r)) {
            Some(Reply::Done(report)) => Ok(report),
            Some(Reply::Refused(reason)) => Err(Failure::Final(reason)),
            // A reply that does not parse still means delivered.
            _ => Ok(DeliveryReport::default()),
        }
    }
}

impl Courier<'_> {
    /// The stub of the home `to`, made once and kept (calls on one stub
    /// also keep their order).
    fn stub(&self, to: &str) -> Result<HomeStub, Failure> {
        if let Some((_, stub)) = self.stubs.borrow().iter().find(|(name, _)| name == to) {
            return Ok(stub.clone());
        }
        let stub: HomeStub = self
            .env
            .durable_object(HOME_BINDING)
            .and_then(|ns| ns.get_by_name(to))
            .map_err(|e| Failure::Final(e.to_string()))?
            .into_rpc();
        let mut stubs = self.stubs.borrow_mut();
        if stubs.len() >= MAX_STUBS {
            stubs.clear();
        }
        stubs.push((to.to_owned(), stub.clone()));
        Ok(stub)
    }
}

#[wasm_bindgen]
extern "C" {
    /// A home's stub seen through the method its class declares.
    #[derive(Clone)]
    type HomeStub;

    #[wasm_bindgen(method, catch)]
    fn deliver(this: &HomeStub, contract: &str, body: &str) -> Result<js_sys::Promise, JsValue>;
}
