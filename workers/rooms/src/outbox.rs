//! A home's deliveries to other homes (`peer_home.rs`).
//!
//! The core decides what goes where ([`Forward`]) and holds the waiting
//! parcels, bounded in count and bytes (`signaling_core::outbox`); this
//! carries the deliveries out. The handler that pushed the parcels also
//! drains them, so the runtime keeps the object alive until they are out;
//! an eviction can only happen between handlers, when the outbox is empty.
//!
//! A delivery is one request to the destination's home through the
//! namespace binding; its answer ends the delivery (a JSON report of what
//! the home did with each parcel). One that gets no answer, or a 5xx, is
//! tried twice more; one that still fails hands its parcels back to the
//! host, whose machine tells each sender EXPIRE. The destination never
//! forwards what it receives (a delivery makes no forwards), so no loop is
//! possible.

use crate::runtime;
use signaling_core::answer::DeliveryReport;
use signaling_core::contract;
use signaling_core::delivery::{self, Forward, Parcel};
use signaling_core::log::{Level, LogEvent};
use signaling_core::outbox;
use std::cell::RefCell;
use std::time::Duration;
use worker::{js_sys, Delay, Env};

/// Name of the Durable Object binding of the homes.
pub const HOME_BINDING: &str = "PEER_HOME";

/// One home's outgoing parcels.
#[derive(Default)]
pub struct Outbox {
    queue: RefCell<outbox::Outbox>,
}

/// Attempts per delivery: the first and at most two retries, for failures
/// that may pass (the request never answered, or the home answered 5xx).
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
    /// The request never got an answer, or the home answered 5xx.
    MayPass(String),
    /// The home refused it (4xx), or it could not be made at all.
    Final(String),
}

/// What sends one object's deliveries: the namespace, the secret that
/// signs them (the rooms tier's `INTERNAL_SECRET`, when there is one) and
/// the sending object's name.
struct Courier<'a> {
    env: &'a Env,
    secret: Option<&'a str>,
    from: &'a str,
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

    /// One delivery to the object `to`, signed when there is a secret: the
    /// destination, the sender and the body are all signed.
    async fn deliver(&self, to: &str, parcels: &[Parcel]) -> Result<DeliveryReport, Failure> {
        let (env, secret) = (self.env, self.secret);
        let body = delivery::encode(parcels);
        let contract_headers = contract::delivery_headers(self.from, to, &body);
        let lookup = |name: &str| {
            contract_headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        let signature =
            secret.map(|s| contract::sign(s, contract::PATH_DELIVER, lookup, runtime::now_ms()));
        let signed = signature
            .as_deref()
            .map(|s| (contract::HEADER_SIGNATURE, s));
        let headers: Vec<(&str, &str)> = contract_headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .chain(signed)
            .collect();
        let body = js_sys::Uint8Array::from(body.as_slice());
        let url = format!("https://home.internal{}", contract::PATH_DELIVER);
        let req = runtime::internal_post(&url, &headers, Some(&body.into()))
            .map_err(|e| Failure::Final(e.to_string()))?;
        let stub = env
            .durable_object(HOME_BINDING)
            .and_then(|ns| ns.get_by_name(to))
            .map_err(|e| Failure::Final(e.to_string()))?;
        let mut resp = stub
            .fetch_with_request(req)
            .await
            .map_err(|e| Failure::MayPass(e.to_string()))?;
        match resp.status_code() {
            // A report that does not parse still means delivered.
            200..=299 => Ok(resp.json().await.unwrap_or_default()),
            status @ 500..=599 => Err(Failure::MayPass(format!("the home answered {status}"))),
            status => Err(Failure::Final(format!("the home answered {status}"))),
        }
    }
}
