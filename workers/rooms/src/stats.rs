//! `StatsShard`: one of the Durable Objects rooms report their figures to,
//! and the gathering of all shards for the router's `/metrics`.
//!
//! Rooms are spread over `STATS_SHARDS` shards by a hash of the room id, so
//! no single object is a hot spot. A shard keeps a gauge per room and
//! cumulative counters (`signaling_core::metrics::Shard`), persisted in its
//! storage: room gauges under `r/<room>`, counters under `counters`.

use crate::runtime;
use signaling_core::config::StatsConfig;
use signaling_core::contract;
use signaling_core::log::{Level, LogEvent};
use signaling_core::metrics::{
    shard_of, Counter, Deltas, Report, Shard, Snapshot, Tally, MAX_ROOMS_PER_SHARD, SWEEP_TICK_MS,
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
    let body = wasm_bindgen::JsValue::from_str(&serde_json::to_string(report)?);
    runtime::internal_post("https://stats.internal/report", &[], Some(&body))
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
    /// A reporter for the tier's stats settings. Its interval starts at
    /// construction: the first relay after a wake does not report at once
    /// (its counts go with the next report or sweep answer), so a burst of
    /// rooms waking together does not wake their shards with a report each.
    pub fn new(stats: Option<StatsConfig>) -> Self {
        let pending = Pending::default();
        pending.last_report_ms.set(runtime::now_ms());
        Reporter {
            pending: Rc::new(pending),
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

    /// Reports the live peer count and when the object wants its next
    /// sweep (`gauge`, read when the report is built) and the counter
    /// deltas in the background (`waitUntil`), never on the relay path's
    /// critical path. A relay (`membership` false) reports at most every
    /// `REPORT_INTERVAL_MS`; a membership change always leads to a report,
    /// `MEMBERSHIP_REPORT_DELAY_MS` later, shared with every change until
    /// then. While one is scheduled nothing else is sent. A report that
    /// fails leaves the sweep to the object's own alarm, `fallback_ms`
    /// later (the shard may not know when to call it).
    pub fn report(
        &self,
        state: &State,
        env: &Env,
        room: &str,
        gauge: impl FnOnce() -> (usize, Option<u64>) + 'static,
        membership: bool,
        fallback_ms: u64,
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
        let storage = state.storage();
        pending.scheduled.set(membership);
        state.wait_until(async move {
            if pending.scheduled.get() {
                Delay::from(Duration::from_millis(MEMBERSHIP_REPORT_DELAY_MS)).await;
                pending.scheduled.set(false);
            }
            let (peers, sweep_ms) = gauge();
            let report = pending.take_report(&room, peers, sweep_ms);
            let at_ms = report.at_ms;
            if let Err(err) = send_report(env, shards, report).await {
                let event = LogEvent::new(Level::Error, "internal_error")
                    .field("what", "stats report failed")
                    .field("error", err.to_string());
                runtime::log(Level::Error, Some(&room), &event);
                // Unless an alarm is already set (it sweeps too).
                if let Ok(None) = storage.get_alarm().await {
                    let _ = runtime::set_alarm(&storage, at_ms + fallback_ms).await;
                }
            }
        });
    }

    /// The report a sweep call answers with, made now: the counter deltas
    /// go with it, and it counts as this object's latest report.
    pub fn report_now(&self, room: &str, peers: usize, sweep_ms: Option<u64>) -> Report {
        self.pending.take_report(room, peers, sweep_ms)
    }
}

impl Pending {
    /// A report made now, with the counter deltas so far; it counts as the
    /// object's latest.
    fn take_report(&self, room: &str, peers: usize, sweep_ms: Option<u64>) -> Report {
        let at_ms = runtime::now_ms();
        self.last_report_ms.set(at_ms);
        Report {
            room: Some(room.to_owned()),
            peers,
            at_ms,
            deltas: self.deltas.borrow_mut().take_deltas(),
            sweep_ms,
        }
    }
}

/// Gathers and merges every shard's snapshot.
pub async fn gather(env: &Env) -> Result<Snapshot> {
    let mut total = Snapshot::default();
    for index in 0..settings(env)?.shards {
        let resp = shard_stub(env, index)?
            .fetch_with_str("https://stats.internal/snapshot")
            .await?;
        let part: Snapshot = glue::body_json(resp).await?;
        total.merge(&part);
    }
    Ok(total)
}

/// Counters a shard was sent are written at most this often (one row per
/// write, whatever the number of reports in between). The pending write
/// holds the shard awake until it is done, so eviction loses nothing; a
/// crash of the process loses at most this much of its counts.
const COUNTERS_FLUSH_MS: u64 = 10_000;

/// Sweep calls a shard has in flight at once.
const SWEEP_CONCURRENCY: usize = 50;

/// The object behind a report's key: a room, or (`open/{peer}`) a home.
fn object_stub(env: &Env, key: &str) -> Result<Stub> {
    match key.strip_prefix("open/") {
        Some(home) => env
            .durable_object(crate::outbox::HOME_BINDING)?
            .get_by_name(home),
        None => env.durable_object(crate::ROOM_BINDING)?.get_by_name(key),
    }
}

/// Calls one object's sweep; its answer is its report.
async fn call_sweep(env: &Env, key: &str) -> Result<Report> {
    let url = format!("https://object.internal{}", contract::PATH_SWEEP);
    let req = runtime::internal_post(&url, &[], None)?;
    let resp = object_stub(env, key)?.fetch_with_request(req).await?;
    glue::body_json(resp).await
}

/// One shard: the gauges and counters of the rooms (and homes) that report
/// to it, and their liveness sweeps. An object whose peers heartbeat costs
/// nothing between changes of who is in it: the shard's alarm calls its
/// sweep when due (`contract::PATH_SWEEP`), the answer carries its report,
/// and a gauge is written only when its peer count changes.
#[durable_object(alarm)]
pub struct StatsShard {
    state: State,
    env: Env,
    shard: Rc<RefCell<Option<Shard>>>,
    /// A counters write is scheduled.
    flush_pending: Rc<Cell<bool>>,
    last_flush_ms: Rc<Cell<u64>>,
    /// The alarm as last set (`None`: none, or not known since a wake).
    alarm_ms: Cell<Option<u64>>,
    /// When the alarm last ran: the next run comes a tick later at the earliest.
    last_run_ms: Cell<u64>,
}

impl DurableObject for StatsShard {
    fn new(state: State, env: Env) -> Self {
        StatsShard {
            state,
            env,
            shard: Rc::default(),
            flush_pending: Rc::default(),
            last_flush_ms: Rc::default(),
            alarm_ms: Cell::new(None),
            last_run_ms: Cell::new(0),
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
                let report: Report = signaling_core::json::parse(&req.text().await?)?;
                self.ensure_loaded().await?;
                self.take(&report).await?;
                self.plan_alarm().await?;
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

    /// Calls the sweeps that are due, a bounded number at once, and takes
    /// each answer as that object's report; one that fails is tried again
    /// later (`SWEEP_RETRY_MS`) and its gauge expires if it never answers.
    async fn alarm(&self) -> Result<Response> {
        self.alarm_ms.set(None);
        let now = runtime::now_ms();
        self.last_run_ms.set(now);
        self.ensure_loaded().await?;
        let due = {
            let mut cache = self.shard.borrow_mut();
            cache.get_or_insert_with(Shard::default).due_sweeps(now)
        };
        for batch in due.chunks(SWEEP_CONCURRENCY) {
            let calls = batch.iter().map(|key| call_sweep(&self.env, key));
            let answers = futures_util::future::join_all(calls).await;
            for (key, answer) in batch.iter().zip(answers) {
                match answer {
                    Ok(report) if report.room.as_deref() == Some(key.as_str()) => {
                        self.take(&report).await?
                    }
                    Ok(_) => log_failure(key, "the sweep answered for another object".into()),
                    Err(err) => log_failure(key, err.to_string()),
                }
            }
        }
        self.plan_alarm().await?;
        Response::ok("swept")
    }
}

fn log_failure(key: &str, error: String) {
    let event = LogEvent::new(Level::Warn, "internal_error")
        .field("what", "sweep call failed")
        .field("error", error);
    runtime::log(Level::Warn, Some(key), &event);
}

impl StatsShard {
    /// Applies one report to the cached shard (without yielding), then has
    /// storage follow: gauges that changed or went, and the counters
    /// (written at most every `COUNTERS_FLUSH_MS`).
    async fn take(&self, report: &Report) -> Result<()> {
        let ttl_ms = settings(&self.env)?.gauge_ttl_ms;
        let (applied, gone, gauge) = {
            let mut cache = self.shard.borrow_mut();
            let shard = cache.get_or_insert_with(Shard::default);
            let applied = shard.apply(report);
            let gone = shard.expire_due(runtime::now_ms(), ttl_ms);
            let gauge = report.room.as_ref().map(|r| shard.rooms.get(r).copied());
            (applied, gone, gauge)
        };
        let storage = self.state.storage();
        let deleted: Vec<String> = (applied.evicted.iter().chain(&gone))
            .filter(|room| Some(*room) != report.room.as_ref())
            .map(|room| format!("r/{room}"))
            .collect();
        if !deleted.is_empty() {
            storage.delete_multiple(deleted).await?;
        }
        if let (Some(room), Some(gauge), true) = (&report.room, gauge, applied.gauge_changed) {
            let key = format!("r/{room}");
            match gauge {
                Some(gauge) => crate::stored::put(&storage, &key, &gauge).await?,
                None => {
                    storage.delete(&key).await?;
                }
            }
        }
        if !report.deltas.is_empty() {
            self.flush_counters_soon();
        }
        Ok(())
    }

    /// Writes the counters `COUNTERS_FLUSH_MS` after the last write (at
    /// once if that has passed), with every report taken until then.
    fn flush_counters_soon(&self) {
        if self.flush_pending.replace(true) {
            return;
        }
        let (shard, pending, last) = (
            Rc::clone(&self.shard),
            Rc::clone(&self.flush_pending),
            Rc::clone(&self.last_flush_ms),
        );
        let storage = self.state.storage();
        let wait = (last.get() + COUNTERS_FLUSH_MS).saturating_sub(runtime::now_ms());
        self.state.wait_until(async move {
            if wait > 0 {
                Delay::from(Duration::from_millis(wait)).await;
            }
            pending.set(false);
            last.set(runtime::now_ms());
            let counters = shard.borrow().as_ref().map(|s| s.counters.clone());
            if let Some(counters) = counters {
                if let Err(err) = crate::stored::put(&storage, "counters", &counters).await {
                    let event = LogEvent::new(Level::Error, "internal_error")
                        .field("what", "stats counters write failed")
                        .field("error", err.to_string());
                    runtime::log(Level::Error, None, &event);
                }
            }
        });
    }

    /// Sets the alarm for the earliest sweep due, a tick after the last run
    /// at the earliest, unless it is already set no later.
    async fn plan_alarm(&self) -> Result<()> {
        let not_before = self.last_run_ms.get() + SWEEP_TICK_MS;
        let wanted = self
            .shard
            .borrow()
            .as_ref()
            .and_then(|s| s.next_sweep_run(not_before));
        let Some(at_ms) = wanted else {
            return Ok(()); // a run that finds nothing due costs less than a delete
        };
        if self.alarm_ms.get().is_some_and(|set| set <= at_ms) {
            return Ok(());
        }
        self.alarm_ms.set(Some(at_ms));
        runtime::set_alarm(&self.state.storage(), at_ms).await
    }

    /// Fills the cache from storage once per object life: at most
    /// [`MAX_ROOMS_PER_SHARD`] gauges, each due for a sweep at once (see
    /// `Shard::restore`: a stored gauge is as old as its last change, not
    /// its last sign of life), and the alarm as the runtime holds it.
    async fn ensure_loaded(&self) -> Result<()> {
        if self.shard.borrow().is_some() {
            return Ok(());
        }
        let now = runtime::now_ms();
        let ttl_ms = settings(&self.env)?.gauge_ttl_ms;
        let storage = self.state.storage();
        let mut shard = Shard {
            counters: crate::stored::get::<Deltas>(&storage, "counters")
                .await?
                .unwrap_or_default(),
            ..Shard::default()
        };
        let rooms = crate::stored::list_prefixed(&storage, "r/", MAX_ROOMS_PER_SHARD).await?;
        for entry in rooms.entries() {
            let Ok(pair) = entry else { continue };
            let pair: js_sys::Array = pair.into();
            let (Some(key), Ok(Some((peers, stored_at)))) = (
                pair.get(0).as_string(),
                crate::stored::decode::<(usize, u64)>(pair.get(1)),
            ) else {
                continue;
            };
            if let Some(room) = key.strip_prefix("r/") {
                shard.restore(room.to_owned(), peers, stored_at, now, ttl_ms);
            }
        }
        let alarm = storage.get_alarm().await?;
        // Another event may have filled it while we read: keep that one.
        if self.shard.borrow().is_none() {
            self.alarm_ms.set(alarm.map(|at| at as u64));
            *self.shard.borrow_mut() = Some(shard);
            // The restored rooms' sweeps are due now.
            self.plan_alarm().await?;
        }
        Ok(())
    }
}
