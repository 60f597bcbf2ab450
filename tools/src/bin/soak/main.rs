//! `soak`: many small rooms for a long time, with churn, continuous relays
//! and a rooms-tier restart in the middle; every message is accounted for.
//!
//! Each peer sends relays (OFFER / ANSWER / CANDIDATE, seq-numbered) to the
//! other peers of its room at `--rate` per second, whether they are online or
//! not: a message to an absent peer is queued by the server and must come
//! out as a delivery when that peer returns, or as an EXPIRE to its sender.
//!
//! Churn: every peer leaves now and then (on average every `--churn-secs`),
//! stays away 1-8 s and comes back with the same id, as the stock client's
//! `reconnect()` does. A leave is graceful from the harness's point of view:
//! the leaver first waits until its own messages are settled (an EXPIRE
//! cannot reach a sender that is gone, by protocol), the others stop
//! addressing it for the last 300 ms before its socket closes, and after
//! sending its close it reads on until the server's close frame (what was
//! relayed before the server saw the close is still delivered).
//!
//! Restart: at `--restart-at` the tool runs `--restart-cmd` (the soak script
//! kills the rooms tier and starts it again). Sockets drop; peers reconnect
//! with the same id. Messages sent on a socket in the 2 s before it dropped,
//! or relayed towards such a socket, are reported apart as "in flight at the
//! restart"; everything else must be delivered or expired: `lost` is 0.
//!
//! Memory: the RSS of each `--pid-file LABEL=PATH` process tree is sampled
//! every `--sample-secs` (the file is re-read, so a restarted tier is
//! followed).
//!
//! ```text
//! soak --url http://127.0.0.1:9000 [--rooms 50 --peers 4 --secs 600 --rate 1]
//!      [--churn-secs 60 --restart-at 300 --restart-cmd "scripts/soak.sh restart-rooms"]
//!      [--pid-file router=/tmp/router.pid --pid-file rooms=/tmp/rooms.pid] [--json out.json]
//! ```

mod ledger;
mod report;

use futures_util::{SinkExt, StreamExt};
use ledger::{Ledger, Receipt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tools::{
    emit_report, get_json, now_us, peer_socket_url, proc_usage, require_loopback, rss_by_command,
    scrape_metrics, CANDIDATE_LINE, HEARTBEAT,
};

/// The server's message counters (relayed, queued, expired, dropped by reason).
const MESSAGE_SERIES: &str = "peerjs_messages_";
const EXPIRED_SERIES: &str = "peerjs_messages_expired_total";

#[derive(Clone, Debug)]
struct Args {
    url: String,
    rooms: usize,
    peers: usize,
    secs: u64,
    rate: f64,
    churn_secs: f64,
    away_ms: (u64, u64),
    expire_ms: u64,
    restart_at: u64,
    restart_cmd: Option<String>,
    pid_files: Vec<(String, String)>,
    sample_secs: u64,
    /// The router serves `/debug/rooms/..` (DEBUG_ENDPOINTS=true): sample
    /// both tiers' wasm linear memory too.
    debug_endpoints: bool,
    json: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: "http://127.0.0.1:9000".into(),
        rooms: 50,
        peers: 4,
        secs: 600,
        rate: 1.0,
        churn_secs: 60.0,
        away_ms: (1_000, 8_000),
        expire_ms: 5_000,
        restart_at: 0,
        restart_cmd: None,
        pid_files: Vec::new(),
        sample_secs: 10,
        debug_endpoints: false,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|_| format!("bad number {v:?}"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--rooms" => a.rooms = num(value()?)? as usize,
            "--peers" => a.peers = num(value()?)? as usize,
            "--secs" => a.secs = num(value()?)? as u64,
            "--rate" => a.rate = num(value()?)?,
            "--churn-secs" => a.churn_secs = num(value()?)?,
            "--expire-ms" => a.expire_ms = num(value()?)? as u64,
            "--restart-at" => a.restart_at = num(value()?)? as u64,
            "--restart-cmd" => a.restart_cmd = Some(value()?),
            "--sample-secs" => a.sample_secs = (num(value()?)? as u64).max(1),
            "--json" => a.json = Some(value()?),
            "--debug-endpoints" => a.debug_endpoints = true,
            "--pid-file" => {
                let v = value()?;
                let (label, path) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--pid-file wants LABEL=PATH, got {v:?}"))?;
                a.pid_files.push((label.to_owned(), path.to_owned()));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    require_loopback(&a.url)?;
    if a.peers < 2 || a.rooms == 0 || a.rate <= 0.0 || a.rate > 50.0 {
        return Err("need at least 1 room of 2 peers and a rate in (0, 50] per second".into());
    }
    if a.restart_at > 0 && a.restart_cmd.is_none() {
        return Err("--restart-at needs --restart-cmd".into());
    }
    Ok(a)
}

fn now_ms() -> u64 {
    now_us() / 1000
}

/// What each peer shows the others.
#[derive(Default)]
struct PeerFlags {
    /// Its socket is open and OPEN was received.
    online: AtomicBool,
    /// It is about to close: do not address it (see the module header).
    closing: AtomicBool,
    /// Its socket dropped without it asking, and it has not reopened yet.
    dropped: AtomicBool,
    /// The current connection id, valid while `online`.
    conn: AtomicU64,
}

#[derive(Default)]
struct Tally {
    opens: AtomicU64,
    reconnects: AtomicU64,
    unexpected_drops: AtomicU64,
    connect_failures: AtomicU64,
    id_taken: AtomicU64,
    error_frames: AtomicU64,
    leaves: AtomicU64,
    left_unsettled: AtomicU64,
}

struct Soak {
    args: Args,
    run: String,
    flags: Vec<PeerFlags>,
    ledger: Mutex<Ledger>,
    tally: Tally,
    next_conn: AtomicU64,
    /// Peers stop sending once this is set; they close once `closing` is.
    stop_sending: AtomicBool,
    shutdown: AtomicBool,
    rng: Mutex<u64>,
}

impl Soak {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panicking peer task must not hide everyone else's figures.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn random(&self) -> u64 {
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        // xorshift64*: plenty for choosing delays and destinations.
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform_ms(&self, lo: u64, hi: u64) -> u64 {
        lo + self.random() % (hi.saturating_sub(lo) + 1)
    }

    fn peer_id(&self, g: usize) -> String {
        format!(
            "{}r{}p{}",
            self.run,
            g / self.args.peers,
            g % self.args.peers
        )
    }

    fn peer_index(&self, id: &str) -> Option<usize> {
        let rest = id.strip_prefix(&self.run)?.strip_prefix('r')?;
        let (room, peer) = rest.split_once('p')?;
        let (room, peer): (usize, usize) = (room.parse().ok()?, peer.parse().ok()?);
        (room < self.args.rooms && peer < self.args.peers).then_some(room * self.args.peers + peer)
    }

    fn socket_url(&self, g: usize) -> String {
        let room = format!("{}room{}", self.run, g / self.args.peers);
        peer_socket_url(&self.args.url, &self.peer_id(g), &room)
    }

    /// Someone in `g`'s room to write to, other than `g` and not closing.
    fn pick_destination(&self, g: usize) -> Option<usize> {
        let base = g - g % self.args.peers;
        let offset = 1 + (self.random() as usize) % (self.args.peers - 1);
        let dst = base + (g % self.args.peers + offset) % self.args.peers;
        (!self.flags[dst].closing.load(Ordering::Relaxed)).then_some(dst)
    }

    /// Records a message and returns the frame to send.
    fn compose(&self, g: usize, conn: u64) -> Option<String> {
        let dst = self.pick_destination(g)?;
        let dst_flags = &self.flags[dst];
        let dst_conn = dst_flags
            .online
            .load(Ordering::Relaxed)
            .then(|| dst_flags.conn.load(Ordering::Relaxed));
        let seq = self.ledger().record(g, dst, now_ms(), conn, dst_conn);
        let (kind, pad) = match seq % 3 {
            0 => ("OFFER", "v=0 o=- 1 2 IN IP4 127.0.0.1 ".repeat(30)),
            1 => ("ANSWER", "v=0 o=- 3 4 IN IP4 127.0.0.1 ".repeat(30)),
            _ => ("CANDIDATE", CANDIDATE_LINE.to_owned()),
        };
        Some(format!(
            r#"{{"type":"{kind}","dst":"{}","payload":{{"seq":{seq},"at":{},"sdp":"{pad}","connectionId":"dc_soak"}}}}"#,
            self.peer_id(dst),
            now_us()
        ))
    }

    /// A frame that arrived on `g`'s socket.
    fn receive(&self, g: usize, text: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return;
        };
        match v["type"].as_str().unwrap_or_default() {
            "OFFER" | "ANSWER" | "CANDIDATE" => self.relayed(g, &v),
            "EXPIRE" => {
                // EXPIRE names the unreachable peer as `src`; every message of
                // ours to it that the server still held is gone (per pair).
                let Some(dst) = v["src"].as_str().and_then(|id| self.peer_index(id)) else {
                    return;
                };
                self.ledger().expire(g, dst, now_ms());
            }
            "ERROR" => {
                self.tally.error_frames.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn relayed(&self, g: usize, v: &serde_json::Value) {
        let at = v["payload"]["at"].as_u64().unwrap_or(0);
        self.ledger().relayed(Receipt {
            receiver: g,
            src: v["src"].as_str().and_then(|id| self.peer_index(id)),
            to_me: v["dst"].as_str() == Some(self.peer_id(g).as_str()),
            seq: v["payload"]["seq"].as_u64(),
            latency_ms: now_us().saturating_sub(at) as f64 / 1000.0,
        });
    }

    fn unsettled_of(&self, g: usize) -> usize {
        self.ledger().unsettled_of(g)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `g`'s socket and waits for OPEN. `Err` says why it did not open.
/// Why a socket did not open.
#[derive(Debug, PartialEq, Eq)]
enum OpenError {
    /// No connection, no OPEN within 10 s, or another first frame.
    Connect,
    /// The server answered ID-TAKEN.
    IdTaken,
}

async fn open(soak: &Soak, g: usize) -> Result<Socket, OpenError> {
    let url = soak.socket_url(g);
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    );
    let Ok(Ok((mut ws, _))) = connect.await else {
        return Err(OpenError::Connect);
    };
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    match first {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"OPEN\"") => Ok(ws),
        Ok(Some(Ok(Message::Text(t)))) if t.contains("ID-TAKEN") => Err(OpenError::IdTaken),
        _ => Err(OpenError::Connect),
    }
}

/// One peer for the whole run: connect, talk, sometimes leave and return,
/// reconnect when the server drops it.
async fn peer(soak: Arc<Soak>, g: usize, deadline: Instant) {
    let flags = &soak.flags[g];
    let send_every = Duration::from_secs_f64(1.0 / soak.args.rate);
    let mut first = true;
    while !soak.shutdown.load(Ordering::Relaxed) {
        let mut ws = match open(&soak, g).await {
            Ok(ws) => ws,
            Err(why) => {
                let counter = match why {
                    OpenError::IdTaken => &soak.tally.id_taken,
                    OpenError::Connect => &soak.tally.connect_failures,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let conn = soak.next_conn.fetch_add(1, Ordering::Relaxed);
        flags.conn.store(conn, Ordering::Relaxed);
        flags.online.store(true, Ordering::Relaxed);
        flags.dropped.store(false, Ordering::Relaxed);
        soak.tally.opens.fetch_add(1, Ordering::Relaxed);
        if !first {
            soak.tally.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;

        let churn_mean_ms = (soak.args.churn_secs * 1000.0) as u64;
        let leave_at = Instant::now()
            + Duration::from_millis(soak.uniform_ms(churn_mean_ms / 2, churn_mean_ms * 3 / 2));
        let mut send_tick = tokio::time::interval(send_every);
        send_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        heartbeat.tick().await;
        let mut leaving_since: Option<Instant> = None;
        let graceful = loop {
            let wind_down = soak.stop_sending.load(Ordering::Relaxed);
            let want_leave = Instant::now() >= leave_at && Instant::now() < deadline;
            if (want_leave || wind_down) && leaving_since.is_none() {
                leaving_since = Some(Instant::now());
            }
            // Leaving: wait for our messages to settle (bounded), then warn
            // the others off for 300 ms, then close.
            if let Some(since) = leaving_since {
                let settled = soak.unsettled_of(g) == 0;
                let waited = since.elapsed() > Duration::from_millis(soak.args.expire_ms + 3_000);
                let ready = if wind_down {
                    soak.shutdown.load(Ordering::Relaxed)
                } else {
                    settled || waited
                };
                if ready && !flags.closing.swap(true, Ordering::Relaxed) {
                    if !settled && !wind_down {
                        soak.tally.left_unsettled.fetch_add(1, Ordering::Relaxed);
                    }
                    let until = tokio::time::sleep(Duration::from_millis(300));
                    tokio::pin!(until);
                    loop {
                        tokio::select! {
                            _ = &mut until => break,
                            msg = ws.next() => match msg {
                                Some(Ok(Message::Text(t))) => soak.receive(g, &t),
                                Some(Ok(_)) => {}
                                _ => break,
                            },
                        }
                    }
                    break true;
                }
            }
            let may_send = leaving_since.is_none();
            tokio::select! {
                _ = send_tick.tick(), if may_send => {
                    if let Some(frame) = soak.compose(g, conn) {
                        if ws.send(Message::Text(frame.into())).await.is_err() {
                            break false;
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    if ws.send(Message::Text(HEARTBEAT.into())).await.is_err() {
                        break false;
                    }
                }
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => soak.receive(g, &t),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break false,
                    Some(Ok(_)) => {}
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        };
        flags.online.store(false, Ordering::Relaxed);
        if graceful {
            // Frames the server relayed before it saw our close are still on
            // their way: read them until its close frame ends the stream.
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg {
                        soak.receive(g, &t);
                    }
                }
            })
            .await;
            soak.tally.leaves.fetch_add(1, Ordering::Relaxed);
            if soak.shutdown.load(Ordering::Relaxed) {
                break;
            }
            // The server has seen the close well before anyone addresses us
            // again; then we are away and messages to us are queued.
            tokio::time::sleep(Duration::from_millis(500)).await;
            flags.closing.store(false, Ordering::Relaxed);
            let (lo, hi) = soak.args.away_ms;
            tokio::time::sleep(Duration::from_millis(
                soak.uniform_ms(lo, hi).saturating_sub(500),
            ))
            .await;
        } else {
            soak.tally.unexpected_drops.fetch_add(1, Ordering::Relaxed);
            flags.dropped.store(true, Ordering::Relaxed);
            soak.ledger().dropped(g, conn, now_ms());
            // Like an app calling peer.reconnect() on 'disconnected'.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// RSS over time of each labelled process tree.
#[derive(Default)]
struct MemorySeries {
    samples: Vec<(f64, String, u64)>,
}

fn read_pid(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let seed = now_us() | 1;
    let soak = Arc::new(Soak {
        run: format!("k{:x}", seed % 0xff_ffff),
        flags: (0..args.rooms * args.peers)
            .map(|_| PeerFlags::default())
            .collect(),
        ledger: Mutex::new(Ledger::default()),
        tally: Tally::default(),
        next_conn: AtomicU64::new(1),
        stop_sending: AtomicBool::new(false),
        shutdown: AtomicBool::new(false),
        rng: Mutex::new(seed),
        args: args.clone(),
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let counters_at_start = scrape_metrics(&args.url, MESSAGE_SERIES).await;

    let memory = Arc::new(Mutex::new(MemorySeries::default()));
    let cpu_at_start: Vec<(String, f64)> = args
        .pid_files
        .iter()
        .filter_map(|(label, path)| Some((label.clone(), proc_usage(&[read_pid(path)?]).0)))
        .collect();
    {
        let (memory, pid_files, every) = (memory.clone(), args.pid_files.clone(), args.sample_secs);
        let debug_path = args
            .debug_endpoints
            .then(|| format!("/debug/rooms/{}room0", soak.run));
        let url = args.url.clone();
        tokio::spawn(async move {
            loop {
                // Our own heap: the wasm linear memory of each tier's isolate.
                if let Some(path) = &debug_path {
                    if let Some(v) = get_json(&url, path).await {
                        let t = started.elapsed().as_secs_f64();
                        for (field, label) in [
                            ("wasm_memory_bytes", "rooms/wasm"),
                            ("router_wasm_memory_bytes", "router/wasm"),
                        ] {
                            if let (Some(bytes), Ok(mut m)) = (v[field].as_u64(), memory.lock()) {
                                m.samples.push((t, label.to_owned(), bytes / 1024));
                            }
                        }
                    }
                }
                for (label, path) in &pid_files {
                    if let Some(pid) = read_pid(path) {
                        let t = started.elapsed().as_secs_f64();
                        let parts = rss_by_command(pid);
                        let total = parts.iter().map(|(_, rss)| rss).sum();
                        if let Ok(mut m) = memory.lock() {
                            m.samples.push((t, label.clone(), total));
                            // The runtime apart from wrangler's node processes.
                            for (command, rss) in parts {
                                m.samples.push((t, format!("{label}/{command}"), rss));
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(every)).await;
            }
        });
    }

    // Peers join at 50 a second, as players trickle in.
    let mut tasks = Vec::new();
    for g in 0..args.rooms * args.peers {
        tasks.push(tokio::spawn(peer(soak.clone(), g, deadline)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("soak: {} peers started", tasks.len());

    // Progress once a minute; the restart at its time.
    let mut restart: Option<(u64, u64, u64)> = None; // (kill, back, all reconnected) in ms
    let mut next_progress = started + Duration::from_secs(60);
    while Instant::now() < deadline {
        if restart.is_none()
            && args.restart_at > 0
            && started.elapsed().as_secs() >= args.restart_at
        {
            let cmd = args.restart_cmd.clone().unwrap_or_default();
            eprintln!("soak: restarting the rooms tier: {cmd}");
            let kill_ms = now_ms();
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .status()
                .await;
            let back_ms = now_ms();
            if !status.as_ref().is_ok_and(|s| s.success()) {
                eprintln!("soak: the restart command failed: {status:?}");
            }
            // Wait until every peer the restart dropped has reopened.
            let give_up = Instant::now() + Duration::from_secs(60);
            tokio::time::sleep(Duration::from_millis(500)).await;
            while Instant::now() < give_up
                && soak.flags.iter().any(|f| f.dropped.load(Ordering::Relaxed))
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            restart = Some((kill_ms, back_ms, now_ms()));
            eprintln!(
                "soak: rooms tier back after {} ms, all dropped peers reconnected after {} ms",
                back_ms - kill_ms,
                now_ms() - kill_ms
            );
        }
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(60);
            let l = soak.ledger();
            eprintln!(
                "soak: {:>4.0} s  sent {}  delivered {}  expired {}  online {}",
                started.elapsed().as_secs_f64(),
                l.sent.len(),
                l.delivered,
                l.expired,
                soak.flags
                    .iter()
                    .filter(|f| f.online.load(Ordering::Relaxed))
                    .count()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Wind down: no new messages; wait until everything sent is settled
    // (delivered, or expired and reported) or the expiry has surely passed.
    soak.stop_sending.store(true, Ordering::Relaxed);
    let drain_until = Instant::now() + Duration::from_millis(args.expire_ms + 15_000);
    while Instant::now() < drain_until && soak.ledger().any_unsettled() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    soak.shutdown.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    // Room reports reach the stats shards within a few seconds.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let counters_at_end = scrape_metrics(&args.url, MESSAGE_SERIES).await;
    // What the server itself counted during the run, per series.
    let server_counters: Option<Vec<(String, f64)>> = counters_at_end.map(|end| {
        let start = counters_at_start.unwrap_or_default();
        end.into_iter()
            .map(|(series, v)| {
                let before = start
                    .iter()
                    .find(|(s, _)| *s == series)
                    .map_or(0.0, |(_, b)| *b);
                (series, v - before)
            })
            .filter(|(_, delta)| *delta != 0.0)
            .collect()
    });
    let cpu: Vec<(String, f64)> = cpu_at_start
        .iter()
        .map(|(label, c0)| {
            let now = args
                .pid_files
                .iter()
                .find(|(l, _)| l == label)
                .and_then(|(_, p)| read_pid(p))
                .map_or(0.0, |pid| proc_usage(&[pid]).0);
            // A restarted tier starts from zero again: then report its new total.
            (label.clone(), if now >= *c0 { now - c0 } else { now })
        })
        .collect();

    let elapsed_secs = started.elapsed().as_secs_f64();
    let memory_samples = memory.lock().map(|m| m.samples.clone()).unwrap_or_default();
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let t = &soak.tally;
    let inputs = report::Inputs {
        rooms: args.rooms,
        peers_per_room: args.peers,
        secs: args.secs,
        rate_per_peer: args.rate,
        expire_ms: args.expire_ms,
        started_ms: now_ms().saturating_sub((elapsed_secs * 1000.0) as u64),
        restart,
        server_counters: server_counters.as_deref(),
        expired_series: EXPIRED_SERIES,
        memory: &memory_samples,
        cpu: &cpu,
        peers: report::PeerCounts {
            opens: count(&t.opens),
            reconnects: count(&t.reconnects),
            leaves: count(&t.leaves),
            left_unsettled: count(&t.left_unsettled),
            unexpected_drops: count(&t.unexpected_drops),
            connect_failures: count(&t.connect_failures),
            id_taken: count(&t.id_taken),
            error_frames: count(&t.error_frames),
        },
        elapsed_secs,
    };
    let report = report::Report::build(&soak.ledger(), |g| soak.peer_id(g), inputs);
    let json = serde_json::to_value(&report).unwrap_or_default();
    emit_report("soak", &json, args.json.as_deref());
    std::process::exit(if report.clean() { 0 } else { 1 });
}
