//! The router's side of `/metrics`: its own refusal counters (batched and
//! shipped to a stats shard in the background) and the scrape itself,
//! gathered from every shard through the rooms Worker, cached briefly and
//! gathered once at a time per isolate, so scrapers cannot hammer the
//! shards; the bearer token is compared in constant time.

use crate::{http, ROOMS_BINDING};
use signaling_core::config::RouterConfig;
use signaling_core::contract;
use signaling_core::metrics::{self, Counter, Deltas, Report, Snapshot, Tally};
use std::cell::RefCell;
use worker::*;

/// Router deltas are shipped at most this often (and before every scrape).
const FLUSH_INTERVAL_MS: u64 = 2_000;
/// A gathered snapshot is reused for this long.
const CACHE_MS: u64 = 2_000;

#[derive(Default)]
struct RouterStats {
    pending: Tally,
    last_flush_ms: u64,
    /// Last gathered snapshot, for the cache and for messagesPerSecond.
    cached: Option<(u64, Snapshot)>,
    /// A scrape is gathering from the shards now (see [`gather`]).
    gathering: bool,
    previous: Option<(u64, u64)>,
}

thread_local! {
    static STATS: RefCell<RouterStats> = RefCell::new(RouterStats::default());
}

pub fn count(counter: Counter) {
    STATS.with(|s| s.borrow_mut().pending.add(counter, 1));
}

fn take_pending(now: u64, force: bool) -> Option<Deltas> {
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        if s.pending.is_empty()
            || (!force && now.saturating_sub(s.last_flush_ms) < FLUSH_INTERVAL_MS)
        {
            return None;
        }
        s.last_flush_ms = now;
        Some(s.pending.take_deltas())
    })
}

/// Sends one report to the stats shards through the rooms Worker.
async fn send_report(env: &Env, report: &Report) -> Result<()> {
    let body = serde_json::to_string(report)?;
    let req = http::internal_request(Method::Post, contract::PATH_REPORT, &[], Some(body))?;
    env.service(ROOMS_BINDING)?.fetch_request(req).await?;
    Ok(())
}

async fn ship(env: &Env, deltas: Deltas, now: u64) -> Result<()> {
    let report = Report {
        room: None,
        peers: 0,
        at_ms: now,
        deltas,
        sweep_ms: None,
    };
    send_report(env, &report).await
}

/// Test hook: reports `room` with 2 peers once, then never again, like a
/// room that died without a goodbye.
pub async fn ghost(env: &Env, room: &str, now: u64) -> Result<Response> {
    if !signaling_core::ids::is_valid_room_id(room) {
        return http::json_error(400, "invalid room id");
    }
    let report = Report {
        room: Some(room.to_owned()),
        peers: 2,
        at_ms: now,
        deltas: Deltas::default(),
        sweep_ms: None,
    };
    send_report(env, &report).await?;
    http::json(&serde_json::json!({ "ghost": room }))
}

/// Ships pending router counters in the background when they are due.
pub fn flush_in_background(env: &Env, ctx: &Context, now: u64) {
    if let Some(deltas) = take_pending(now, false) {
        let env = env.clone();
        ctx.wait_until(async move {
            let _ = ship(&env, deltas, now).await;
        });
    }
}

/// The cluster snapshot: the cached one while fresh, else one gather that
/// every scrape arriving meanwhile in this isolate waits for (one fan-out
/// to the shards per isolate per `CACHE_MS`, however many scrapers).
async fn gather(env: &Env, now: u64) -> Result<Option<Snapshot>> {
    loop {
        let (cached, in_flight) = STATS.with(|s| {
            let s = s.borrow();
            let fresh = s
                .cached
                .clone()
                .filter(|(at, _)| now.saturating_sub(*at) < CACHE_MS)
                .map(|(_, snapshot)| snapshot);
            (fresh, s.gathering)
        });
        if let Some(snapshot) = cached {
            return Ok(Some(snapshot));
        }
        if !in_flight {
            break;
        }
        // Another scrape is gathering: wait for its snapshot.
        Delay::from(std::time::Duration::from_millis(20)).await;
        if glue::now_ms().saturating_sub(now) > GATHER_WAIT_MS {
            break; // it failed or stalled; gather ourselves
        }
    }
    STATS.with(|s| s.borrow_mut().gathering = true);
    let result = fetch_snapshot(env, now).await;
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        s.gathering = false;
        if let Ok(Some(snapshot)) = &result {
            s.cached = Some((now, snapshot.clone()));
        }
    });
    result
}

/// How long a scrape waits for another one's gather before its own.
const GATHER_WAIT_MS: u64 = 5_000;

async fn fetch_snapshot(env: &Env, now: u64) -> Result<Option<Snapshot>> {
    if let Some(deltas) = take_pending(now, true) {
        ship(env, deltas, now).await?;
    }
    let req = http::internal_request(Method::Get, contract::PATH_METRICS, &[], None)?;
    let resp = env.service(ROOMS_BINDING)?.fetch_request(req).await?;
    if resp.status_code() != 200 {
        return Ok(None);
    }
    Ok(Some(glue::body_json(resp).await?))
}

/// `GET /metrics`: Prometheus text, or the original JSON on `Accept: application/json`.
/// Outside local dev, `/metrics` is never open: it names rooms and counts.
pub async fn scrape(req: &Request, env: &Env, cfg: &RouterConfig, now: u64) -> Result<Response> {
    match &cfg.metrics_token {
        None if !cfg.local_dev => {
            return http::json_error(
                503,
                "Metrics are off: set the METRICS_TOKEN secret (required outside local dev)",
            );
        }
        None => {}
        Some(token) => {
            let header = req.headers().get("Authorization").ok().flatten();
            let given = signaling_core::secret::bearer(header.as_deref());
            if !given.is_some_and(|g| signaling_core::secret::matches(g, token)) {
                return http::unauthorized(
                    "Unauthorized: send 'Authorization: Bearer <METRICS_TOKEN>'",
                );
            }
        }
    }
    let snapshot = match gather(env, now).await? {
        Some(snapshot) => snapshot,
        None => return http::json_error(502, "stats shards could not answer"),
    };
    let wants_json = req
        .headers()
        .get("Accept")
        .ok()
        .flatten()
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        let relayed = snapshot.sum(&metrics::RELAYED);
        let rate = STATS.with(|s| {
            let mut s = s.borrow_mut();
            let rate = metrics::rate_per_sec(s.previous, now, relayed);
            s.previous = Some((now, relayed));
            rate
        });
        return http::json(&metrics::render_json(&snapshot, now, rate));
    }
    let mut resp = Response::ok(metrics::render_prometheus(
        &snapshot,
        env!("CARGO_PKG_VERSION"),
    ))?;
    resp.headers_mut()
        .set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")?;
    resp.headers_mut().set("Cache-Control", "no-store")?;
    Ok(resp)
}
