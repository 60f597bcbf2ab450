//! A home's deliveries to other homes (`peer_home.rs`).
//!
//! The core decides what goes where ([`Forward`]) and holds the waiting
//! parcels, bounded in count and bytes (`signaling_core::outbox`); this
//! carries the deliveries out. The handler that pushed the parcels also
//! drains them, so the runtime keeps the object alive until they are out;
//! an eviction can only happen between handlers, when the outbox is empty.
//!
//! A delivery is one request to the destination's home through the
//! namespace binding; its answer ends the delivery. The destination never
//! forwards what it receives (a delivery makes no forwards), so no
//! loop is possible.

use crate::runtime;
use crate::stats::Reporter;
use signaling_core::contract;
use signaling_core::delivery::{self, Forward, Parcel};
use signaling_core::frame::DropReason;
use signaling_core::log::{Level, LogEvent};
use signaling_core::metrics::Counter;
use signaling_core::outbox;
use std::cell::RefCell;
use worker::{js_sys, Env, Headers, Method, Request, RequestInit};

/// Name of the Durable Object binding of the homes.
pub const HOME_BINDING: &str = "PEER_HOME";

/// One home's outgoing parcels.
#[derive(Default)]
pub struct Outbox {
    queue: RefCell<outbox::Outbox>,
}

impl Outbox {
    /// Queues the forwards in order, without yielding (call it right after
    /// the core's step, before any await, so frames keep their order).
    /// Relayed parcels over the bounds are dropped and counted.
    pub fn push(&self, forwards: Vec<Forward>, stats: &Reporter) {
        let dropped = self.queue.borrow_mut().push(forwards);
        if dropped.relays > 0 {
            stats.add(
                Counter::Dropped(DropReason::QueueFull),
                dropped.relays as u64,
            );
        }
    }

    /// Delivers every destination's parcels that no other handler is
    /// already delivering. `me` is the sending home's id.
    pub async fn drain(&self, env: &Env, me: &str, stats: &Reporter, log_level: Level) {
        loop {
            let Some(to) = self.queue.borrow_mut().next_idle() else {
                break;
            };
            loop {
                let Some(parcels) = self.queue.borrow_mut().take_batch(&to) else {
                    break;
                };
                if let Err(err) = deliver(env, &to, &parcels).await {
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
            self.queue.borrow_mut().delivered(&to);
        }
    }
}

/// One delivery to `to`'s home.
async fn deliver(env: &Env, to: &str, parcels: &[Parcel]) -> Result<(), String> {
    let body = js_sys::Uint8Array::from(delivery::encode(parcels).as_slice());
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
