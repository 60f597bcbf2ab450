//! `StatsShard`: one of the Durable Objects rooms report their figures to,
//! and the gathering of all shards for the router's `/metrics`.
//!
//! Rooms are spread over `STATS_SHARDS` shards by a hash of the room id, so
//! no single object is a hot spot. A shard keeps a gauge per room and
//! cumulative counters (`signaling_core::metrics::Shard`), persisted in its
//! storage: room gauges under `r/<room>`, counters under `counters`.

use crate::runtime;
use signaling_core::config::StatsConfig;
use signaling_core::log::{Level, LogEvent};
use signaling_core::metrics::{
    shard_of, Counter, Deltas, Report, Shard, Snapshot, Tally, MAX_ROOMS_PER_SHARD,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use worker::*;

/// Name of the stats Durable Object binding.
pub const STATS_BINDING: &str = "STATS";

/// The stats settings, validated with every other setting of the tier (a
/// bad one is named by `/health`; the callers here answer with its error).
pub fn settings(env: &Env) -> Result<StatsConfig> {
    match runtime::config(env).as_ref() {
        Ok(c) => Ok(c.stats),
        Err(e) => Err(Error::RustError(e.to_string())),
    }
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

/// A room reports its relay counters to its stats shard at most this often.
const REPORT_INTERVAL_MS: u64 = 2_000;

/// A membership change (join, close, sweep) reports this long after it, in
/// one report with every change that follows within the delay: a room that
/// fills up costs its shard one subrequest and one write, not one per join
/// (on bare workerd a report per join was a quarter of the CPU of a 1000 x
/// 4 handshake run). Gauges lag membership by at most this much. The
/// pending timer keeps the object from hibernating until it has reported.
const MEMBERSHIP_REPORT_DELAY_MS: u64 = 500;

/// One object's counters not yet reported, and when it last reported;
/// shared with the report a membership change has scheduled.
#[derive(Default)]
struct Pending {
    deltas: RefCell<Tally>,
    last_report_ms: Cell<u64>,
    scheduled: Cell<bool>,
}

/// Reports one room's (or home's) gauge and counters to its stats shard.
pub struct Reporter {
    pending: Rc<Pending>,
    /// How many shards reports spread over; `None` when reporting is off
    /// (`STATS_REPORTS=false`, to measure its cost, or bad settings, which
    /// `/health` names).
    shards: Option<u32>,
}

impl Reporter {
    /// A reporter for the tier's stats settings.
    pub fn new(stats: Option<StatsConfig>) -> Self {
        Reporter {
            pending: Rc::new(Pending::default()),
            shards: stats.filter(|s| s.reports).map(|s| s.shards),
        }
    }

    /// Whether [`Reporter::report`] would send or schedule anything now.
    pub fn wants(&self, membership: bool) -> bool {
        let pending = &self.pending;
        let since = runtime::now_ms().saturating_sub(pending.last_report_ms.get());
        self.shards.is_some()
            && !pending.scheduled.get()
            && (membership || since >= REPORT_INTERVAL_MS)
    }

    pub fn add(&self, counter: Counter, by: u64) {
        self.pending.deltas.borrow_mut().add(counter, by);
    }

    /// Reports the live peer count (`peers`, read when the report is built)
    /// and the counter deltas in the background (`waitUntil`), never on the
    /// relay path's critical path. A relay (`membership` false) reports at
    /// most every `REPORT_INTERVAL_MS`; a membership change always leads to
    /// a report, `MEMBERSHIP_REPORT_DELAY_MS` later, shared with every
    /// change until then. While one is scheduled nothing else is sent.
    pub fn report(
        &self,
        state: &State,
        env: &Env,
        room: &str,
        peers: impl FnOnce() -> usize + 'static,
        membership: bool,
    ) {
        let Some(shards) = self.shards else {
            return;
        };
        if !self.wants(membership) {
            return;
        }
        let pending = Rc::clone(&self.pending);
        let env = env.clone();
        let room = room.to_owned();
        pending.scheduled.set(membership);
        state.wait_until(async move {
            if pending.scheduled.get() {
                Delay::from(Duration::from_millis(MEMBERSHIP_REPORT_DELAY_MS)).await;
                pending.scheduled.set(false);
            }
            let at_ms = runtime::now_ms();
            pending.last_report_ms.set(at_ms);
            let report = Report {
                room: Some(room.clone()),
                peers: peers(),
                at_ms,
                deltas: pending.deltas.borrow_mut().take_deltas(),
            };
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
        match runtime::path_of(&req).as_str() {
            "/report" => {
                let report: Report = req.json().await?;
                let ttl_ms = settings(&self.env)?.gauge_ttl_ms;
                self.ensure_loaded().await?;
                let (gauge, counters, mut gone) = {
                    let mut cache = self.shard.borrow_mut();
                    let shard = cache.get_or_insert_with(Shard::default);
                    let mut gone = shard.apply(&report);
                    gone.extend(shard.expire_due(runtime::now_ms(), ttl_ms));
                    let gauge = report.room.as_ref().map(|r| shard.rooms.get(r).copied());
                    (gauge, shard.counters.clone(), gone)
                };
                let storage = self.state.storage();
                if !gone.is_empty() {
                    // Evicted or expired: their stored gauges go too.
                    gone.retain(|room| Some(room) != report.room.as_ref());
                    let keys = gone.iter().map(|room| format!("r/{room}")).collect();
                    storage.delete_multiple(keys).await?;
                }
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
    /// Fills the cache from storage once per object life: at most
    /// [`MAX_ROOMS_PER_SHARD`] gauges, and those already expired are
    /// deleted rather than loaded.
    async fn ensure_loaded(&self) -> Result<()> {
        if self.shard.borrow().is_some() {
            return Ok(());
        }
        let ttl_ms = settings(&self.env)?.gauge_ttl_ms;
        let now = runtime::now_ms();
        let mut expired = Vec::new();
        let storage = self.state.storage();
        let mut shard = Shard {
            counters: storage.get::<Deltas>("counters").await?.unwrap_or_default(),
            ..Shard::default()
        };
        let rooms = storage
            .list_with_options(ListOptions::new().prefix("r/").limit(MAX_ROOMS_PER_SHARD))
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
            if now.saturating_sub(gauge.1) > ttl_ms {
                expired.push(key);
            } else if let Some(room) = key.strip_prefix("r/") {
                shard.rooms.insert(room.to_owned(), gauge);
            }
        }
        if !expired.is_empty() {
            storage.delete_multiple(expired).await?;
        }
        // Another event may have filled it while we read: keep that one.
        self.shard.borrow_mut().get_or_insert(shard);
        Ok(())
    }
}
