//! `StatsShard`: one of the Durable Objects rooms report their figures to,
//! and the gathering of all shards for the router's `/metrics`.
//!
//! Rooms are spread over `STATS_SHARDS` shards by a hash of the room id, so
//! no single object is a hot spot. A shard keeps a gauge per room and
//! cumulative counters (`signaling_core::metrics::Shard`), persisted in its
//! storage: room gauges under `r/<room>`, counters under `counters`.

use crate::runtime;
use signaling_core::config::{Settings, StatsConfig};
use signaling_core::log::{Level, LogEvent};
use signaling_core::metrics::{shard_of, Counter, Deltas, Report, Shard, Snapshot, Tally};
use std::cell::{Cell, RefCell};
use worker::*;

/// Name of the stats Durable Object binding.
pub const STATS_BINDING: &str = "STATS";

/// The stats settings, validated with every other setting of the tier (a
/// bad one is named by `/health`; the callers here answer with its error).
pub fn settings(env: &Env) -> Result<StatsConfig> {
    Settings::new(|name| runtime::setting(env, name))
        .rooms()
        .map(|c| c.stats)
        .map_err(|e| Error::RustError(e.to_string()))
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

/// Sends a report to its shard among `shards` (awaited: callers wrap it in
/// `wait_until`).
pub async fn send_report(env: Env, shards: u32, report: Report) -> Result<()> {
    let key = report.room.clone().unwrap_or_else(|| "router".to_owned());
    let stub = shard_stub(&env, shard_of(&key, shards))?;
    stub.fetch_with_request(report_request(&report)?).await?;
    Ok(())
}

/// A room reports to its stats shard at most this often, except on the
/// wakes that change membership (join, close, alarm), which always report.
const REPORT_INTERVAL_MS: u64 = 2_000;

/// One room's counters not yet reported, and when it last reported.
pub struct Reporter {
    deltas: RefCell<Tally>,
    last_report_ms: Cell<u64>,
    /// How many shards reports spread over; `None` when reporting is off
    /// (`STATS_REPORTS=false`, to measure its cost, or bad settings, which
    /// `/health` names).
    shards: Option<u32>,
}

impl Reporter {
    /// A reporter for the tier's stats settings; it has counted this wake.
    pub fn new(stats: Option<StatsConfig>) -> Self {
        let reporter = Reporter {
            deltas: RefCell::new(Tally::default()),
            last_report_ms: Cell::new(0),
            shards: stats.filter(|s| s.reports).map(|s| s.shards),
        };
        reporter.add(Counter::RoomWake, 1);
        reporter
    }

    pub fn add(&self, counter: Counter, by: u64) {
        self.deltas.borrow_mut().add(counter, by);
    }

    /// Sends the room's peer count and counter deltas to its stats shard in
    /// the background (`waitUntil`), never on the relay path's critical
    /// path. Relays report at most every `REPORT_INTERVAL_MS`; membership
    /// changes (`force`) always do, so gauges follow joins and leaves.
    /// `peers` (the live count) is read only when a report goes out.
    pub fn report(
        &self,
        state: &State,
        env: &Env,
        room: &str,
        peers: impl FnOnce() -> usize,
        force: bool,
    ) {
        let Some(shards) = self.shards else {
            return;
        };
        let now = runtime::now_ms();
        if !force && now.saturating_sub(self.last_report_ms.get()) < REPORT_INTERVAL_MS {
            return;
        }
        self.last_report_ms.set(now);
        let report = Report {
            room: Some(room.to_owned()),
            peers: peers(),
            at_ms: now,
            deltas: self.deltas.borrow_mut().take_deltas(),
        };
        let env = env.clone();
        let room = room.to_owned();
        state.wait_until(async move {
            if let Err(err) = send_report(env, shards, report).await {
                let event = LogEvent::new(Level::Error, "internal_error")
                    .field("what", "stats report failed")
                    .field("error", err.to_string());
                runtime::log(Level::Error, Some(&room), &event);
            }
        });
    }
}

/// Gathers and merges every shard's snapshot.
pub async fn gather(env: &Env) -> Result<Snapshot> {
    let mut total = Snapshot::default();
    for index in 0..settings(env)?.shards {
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
                let ttl_ms = settings(&self.env)?.gauge_ttl_ms;
                self.ensure_loaded().await?;
                let (gone, snapshot) = {
                    let mut cache = self.shard.borrow_mut();
                    let shard = cache.get_or_insert_with(Shard::default);
                    let gone: Vec<String> = shard
                        .expire(runtime::now_ms(), ttl_ms)
                        .into_iter()
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
