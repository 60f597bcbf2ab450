//! `StatsShard`: one of the Durable Objects rooms report their figures to,
//! and the gathering of all shards for the router's `/metrics`.
//!
//! Rooms are spread over `STATS_SHARDS` shards by a hash of the room id, so
//! no single object is a hot spot. A shard keeps a gauge per room and
//! cumulative counters (`signaling_core::metrics::Shard`), persisted in its
//! storage: room gauges under `r/<room>`, counters under `counters`.

use crate::runtime;
use signaling_core::metrics::{Deltas, Report, Shard, Snapshot};
use std::cell::RefCell;
use worker::*;

/// Name of the stats Durable Object binding.
pub const STATS_BINDING: &str = "STATS";
/// Default shard count: each room reports at most every few seconds and an
/// object takes about 1,000 requests/s, so 8 shards carry tens of thousands
/// of active rooms, while a scrape costs only 8 subrequests.
pub const DEFAULT_SHARDS: u32 = 8;

/// The shard a room reports to (FNV-1a: stable across isolates and deploys).
pub fn shard_of(room: &str, shards: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in room.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % shards.max(1)
}

pub fn shard_count(env: &Env) -> u32 {
    runtime::setting(env, "STATS_SHARDS")
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| (1..=256).contains(n))
        .unwrap_or(DEFAULT_SHARDS)
}

/// How long a room's gauge counts without a new report: a live room reports
/// at least every liveness sweep, so a multiple of the sweep interval.
pub fn gauge_ttl_ms(env: &Env) -> u64 {
    if let Some(ttl) = runtime::setting(env, "STATS_TTL_MS").and_then(|s| s.trim().parse().ok()) {
        return ttl;
    }
    let sweep: u64 = runtime::setting(env, "LIVENESS_SWEEP_MS")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(30_000);
    sweep * 5 / 2
}

fn shard_stub(env: &Env, index: u32) -> Result<Stub> {
    env.durable_object(STATS_BINDING)?
        .get_by_name(&format!("shard-{index}"))
}

fn report_request(report: &Report) -> Result<Request> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(serde_json::to_string(report)?.into()));
    Request::new_with_init("https://stats.internal/report", &init)
}

/// Sends a report to its shard (awaited: callers wrap it in `wait_until`).
pub async fn send_report(env: Env, report: Report) -> Result<()> {
    let key = report.room.clone().unwrap_or_else(|| "router".to_owned());
    let stub = shard_stub(&env, shard_of(&key, shard_count(&env)))?;
    stub.fetch_with_request(report_request(&report)?).await?;
    Ok(())
}

/// Gathers and merges every shard's snapshot.
pub async fn gather(env: &Env) -> Result<Snapshot> {
    let mut total = Snapshot::default();
    for index in 0..shard_count(env) {
        let mut resp = shard_stub(env, index)?
            .fetch_with_str("https://stats.internal/snapshot")
            .await?;
        let part: Snapshot = resp.json().await?;
        total.merge(&part);
    }
    Ok(total)
}

#[durable_object]
pub struct StatsShard {
    state: State,
    env: Env,
    shard: RefCell<Option<Shard>>,
}

impl DurableObject for StatsShard {
    fn new(state: State, env: Env) -> Self {
        StatsShard {
            state,
            env,
            shard: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Reports arrive concurrently, and reading a request body lets other
        // events in (input gates cover storage, not bodies). So every await
        // comes first, then the cached shard is changed in place without
        // yielding, then storage gets the state as it is at that moment.
        // (Working on a copy across `req.json()` lost about 3% of the counts
        // under the soak test's load.)
        match req.path().as_str() {
            "/report" => {
                let report: Report = req.json().await?;
                self.ensure_loaded().await?;
                let (gauge, counters) = {
                    let mut cache = self.shard.borrow_mut();
                    let shard = cache.get_or_insert_with(Shard::default);
                    shard.apply(&report);
                    let gauge = report.room.as_ref().map(|r| shard.rooms.get(r).copied());
                    (gauge, shard.counters.clone())
                };
                let storage = self.state.storage();
                if let (Some(room), Some(gauge)) = (&report.room, gauge) {
                    let key = format!("r/{room}");
                    match gauge {
                        Some(gauge) => storage.put(&key, gauge).await?,
                        None => {
                            storage.delete(&key).await?;
                        }
                    }
                }
                if !report.deltas.is_empty() {
                    storage.put("counters", &counters).await?;
                }
                Response::ok("ok")
            }
            "/snapshot" => {
                self.ensure_loaded().await?;
                let (gone, snapshot) = {
                    let mut cache = self.shard.borrow_mut();
                    let shard = cache.get_or_insert_with(Shard::default);
                    let before: Vec<String> = shard.rooms.keys().cloned().collect();
                    shard.expire(runtime::now_ms(), gauge_ttl_ms(&self.env));
                    let gone: Vec<String> = before
                        .into_iter()
                        .filter(|r| !shard.rooms.contains_key(r))
                        .map(|r| format!("r/{r}"))
                        .collect();
                    (gone, shard.snapshot())
                };
                if !gone.is_empty() {
                    self.state.storage().delete_multiple(gone).await?;
                }
                Response::from_json(&snapshot)
            }
            _ => runtime::json_error(404, "no such stats endpoint"),
        }
    }
}

impl StatsShard {
    /// Fills the cache from storage once per object life.
    async fn ensure_loaded(&self) -> Result<()> {
        if self.shard.borrow().is_some() {
            return Ok(());
        }
        let storage = self.state.storage();
        let mut shard = Shard {
            counters: storage.get::<Deltas>("counters").await?.unwrap_or_default(),
            ..Shard::default()
        };
        let rooms = storage
            .list_with_options(ListOptions::new().prefix("r/"))
            .await?;
        for entry in rooms.entries() {
            let Ok(pair) = entry else { continue };
            let pair: js_sys::Array = pair.into();
            let (Some(key), Ok(gauge)) = (
                pair.get(0).as_string(),
                serde_wasm_bindgen::from_value::<(usize, u64)>(pair.get(1)),
            ) else {
                continue;
            };
            if let Some(room) = key.strip_prefix("r/") {
                shard.rooms.insert(room.to_owned(), gauge);
            }
        }
        // Another event may have filled it while we read: keep that one.
        self.shard.borrow_mut().get_or_insert(shard);
        Ok(())
    }
}
