//! A home's outgoing parcels to other homes (`peer_home.rs`), in memory.
//!
//! The core decides what goes where ([`Forward`]); this carries it out: one
//! FIFO per destination, at most one delivery in flight per destination (so
//! parcels arrive in the order the core produced them), batches of at most
//! [`MAX_BATCH`] parcels, and a bound on everything waiting
//! ([`MAX_WAITING`]): a sender faster than its destinations loses parcels
//! (counted as `queue_full`), never memory. The handler that pushed the
//! parcels also drains them, so the runtime keeps the object alive until
//! they are out; an eviction can only happen between handlers, when the
//! outbox is empty.
//!
//! A delivery is one request to the destination's home through the
//! namespace binding; its answer ends the delivery. The destination never
//! forwards what it receives (`Home::deliver` makes no forwards), so no
//! loop is possible.

use crate::runtime;
use crate::stats::Reporter;
use signaling_core::contract;
use signaling_core::frame::DropReason;
use signaling_core::log::{Level, LogEvent};
use signaling_core::metrics::Counter;
use signaling_core::open::{Delivery, Forward, Parcel};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use worker::{Env, Headers, Method, Request, RequestInit};

/// Name of the Durable Object binding of the homes.
pub const HOME_BINDING: &str = "PEER_HOME";
/// Parcels one delivery carries at most.
pub const MAX_BATCH: usize = 64;
/// Parcels waiting in one home's outbox at most.
pub const MAX_WAITING: usize = 1024;

/// One home's outgoing parcels.
#[derive(Default)]
pub struct Outbox {
    waiting: RefCell<BTreeMap<String, VecDeque<Parcel>>>,
    in_flight: RefCell<BTreeSet<String>>,
    count: Cell<usize>,
}

impl Outbox {
    /// Queues the forwards in order, without yielding (call it right after
    /// the core's step, before any await, so frames keep their order).
    /// Parcels over the bound are dropped and counted.
    pub fn push(&self, forwards: Vec<Forward>, stats: &Reporter) {
        let mut waiting = self.waiting.borrow_mut();
        for Forward { to, parcel } in forwards {
            if self.count.get() >= MAX_WAITING {
                if !parcel.notice {
                    stats.add(Counter::Dropped(DropReason::QueueFull), 1);
                }
                continue;
            }
            self.count.set(self.count.get() + 1);
            waiting.entry(to).or_default().push_back(parcel);
        }
    }

    /// Delivers every destination's parcels that no other handler is
    /// already delivering. `me` is the sending home's id.
    pub async fn drain(&self, env: &Env, me: &str, stats: &Reporter, log_level: Level) {
        while let Some(to) = self.next_idle() {
            while let Some(parcels) = self.take_batch(&to) {
                if let Err(err) = deliver(env, me, &to, parcels.clone()).await {
                    let lost = parcels.iter().filter(|p| !p.notice).count();
                    stats.add(Counter::Dropped(DropReason::Unreachable), lost as u64);
                    let event = LogEvent::new(Level::Error, "internal_error")
                        .peer(me)
                        .field("what", "delivery to another home failed")
                        .field("dst", to.as_str())
                        .field("parcels", parcels.len())
                        .field("error", err);
                    runtime::log(log_level, None, &event);
                }
            }
            self.in_flight.borrow_mut().remove(&to);
        }
    }

    /// A destination with parcels waiting and no delivery in flight, now
    /// marked in flight.
    fn next_idle(&self) -> Option<String> {
        let waiting = self.waiting.borrow();
        let mut in_flight = self.in_flight.borrow_mut();
        let to = waiting
            .iter()
            .find(|(to, q)| !q.is_empty() && !in_flight.contains(*to))
            .map(|(to, _)| to.clone())?;
        in_flight.insert(to.clone());
        Some(to)
    }

    /// Up to [`MAX_BATCH`] parcels for `to`; `None` (and the queue gone)
    /// when it is empty.
    fn take_batch(&self, to: &str) -> Option<Vec<Parcel>> {
        let mut waiting = self.waiting.borrow_mut();
        let queue = waiting.get_mut(to)?;
        let take = queue.len().min(MAX_BATCH);
        if take == 0 {
            waiting.remove(to);
            return None;
        }
        let batch: Vec<Parcel> = queue.drain(..take).collect();
        self.count.set(self.count.get().saturating_sub(batch.len()));
        Some(batch)
    }
}

/// One delivery to `to`'s home.
async fn deliver(env: &Env, me: &str, to: &str, parcels: Vec<Parcel>) -> Result<(), String> {
    let body = serde_json::to_string(&Delivery {
        src: me.to_owned(),
        parcels,
    })
    .map_err(|e| e.to_string())?;
    let headers = Headers::new();
    headers
        .set(contract::HEADER_VERSION, &contract::VERSION.to_string())
        .map_err(|e| e.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let url = format!("https://home.internal{}", contract::PATH_DELIVER);
    let req = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    let stub = env
        .durable_object(HOME_BINDING)
        .and_then(|ns| ns.get_by_name(to))
        .map_err(|e| e.to_string())?;
    let resp = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| e.to_string())?;
    match resp.status_code() {
        200..=299 => Ok(()),
        status => Err(format!("the home answered {status}")),
    }
}
