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

use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tools::{
    emit_report, get_json, now_us, percentile, proc_usage, require_loopback, rss_by_command,
    scrape_metrics,
};

/// The server's message counters (relayed, queued, expired, dropped by reason).
const MESSAGE_SERIES: &str = "peerjs_messages_";
const EXPIRED_SERIES: &str = "peerjs_messages_expired_total";
/// A frame sent this long before its socket dropped may have died with it.
const IN_FLIGHT_MS: u64 = 2_000;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Pending,
    Delivered,
    Expired,
}

/// One message the harness sent, and what became of it.
struct Sent {
    src: usize,
    dst: usize,
    sent_ms: u64,
    /// The sender's connection it went out on, and the receiver's at that time.
    src_conn: u64,
    dst_conn: Option<u64>,
    fate: Fate,
}

/// Every message, by seq, plus each sender's unsettled seqs (for EXPIRE).
#[derive(Default)]
struct Ledger {
    sent: Vec<Sent>,
    pending_by_src: HashMap<usize, BTreeSet<u64>>,
    /// Send to receipt, for messages whose receiver was online when sent.
    relay_latency_ms: Vec<f64>,
    /// Send to receipt, for messages the server queued for an absent peer.
    queued_latency_ms: Vec<f64>,
    delivered: u64,
    expired: u64,
    duplicated: u64,
    misrouted: u64,
    delivered_after_expire: u64,
    expire_without_pending: u64,
    /// Connection id -> when it dropped without the harness closing it.
    dropped_conns: HashMap<u64, u64>,
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
        format!(
            "{}/peerjs?key=peerjs&id={}&token={}room{}&version=1.5.5",
            self.args.url.replace("http://", "ws://"),
            self.peer_id(g),
            self.run,
            g / self.args.peers
        )
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
        let mut ledger = self.ledger();
        let seq = ledger.sent.len() as u64;
        ledger.sent.push(Sent {
            src: g,
            dst,
            sent_ms: now_ms(),
            src_conn: conn,
            dst_conn,
            fate: Fate::Pending,
        });
        ledger.pending_by_src.entry(g).or_default().insert(seq);
        drop(ledger);
        let (kind, pad) = match seq % 3 {
            0 => ("OFFER", "v=0 o=- 1 2 IN IP4 127.0.0.1 ".repeat(30)),
            1 => ("ANSWER", "v=0 o=- 3 4 IN IP4 127.0.0.1 ".repeat(30)),
            _ => (
                "CANDIDATE",
                "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host".to_owned(),
            ),
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
                let mut ledger = self.ledger();
                let pending: Vec<u64> = ledger
                    .pending_by_src
                    .get(&g)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                let mut matched = 0;
                for seq in pending {
                    let Some(m) = ledger.sent.get_mut(seq as usize) else {
                        continue;
                    };
                    // EXPIRE names no message: take it for every unsettled one
                    // of the pair. One that was still on its way when the
                    // server expired the pair is queued afresh and settles
                    // later: a delivery then overrides this (counted in
                    // `delivered_after_expire`), a second EXPIRE finds nothing
                    // (`expire_without_pending`). The server's own expired
                    // counter checks the total (`expired_unconfirmed`).
                    if m.dst == dst {
                        m.fate = Fate::Expired;
                        matched += 1;
                        if let Some(s) = ledger.pending_by_src.get_mut(&g) {
                            s.remove(&seq);
                        }
                    }
                }
                ledger.expired += matched;
                if matched == 0 {
                    ledger.expire_without_pending += 1;
                }
            }
            "ERROR" => {
                self.tally.error_frames.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn relayed(&self, g: usize, v: &serde_json::Value) {
        let src = v["src"].as_str().and_then(|id| self.peer_index(id));
        let to_me = v["dst"].as_str() == Some(self.peer_id(g).as_str());
        let seq = v["payload"]["seq"].as_u64();
        let at = v["payload"]["at"].as_u64().unwrap_or(0);
        let mut ledger = self.ledger();
        let Some(seq) = seq else {
            ledger.misrouted += 1;
            return;
        };
        let (fate, was_queued) = match ledger.sent.get(seq as usize) {
            Some(m) if Some(m.src) == src && m.dst == g && to_me => (m.fate, m.dst_conn.is_none()),
            _ => {
                ledger.misrouted += 1;
                return;
            }
        };
        match fate {
            Fate::Delivered => ledger.duplicated += 1,
            Fate::Pending | Fate::Expired => {
                if fate == Fate::Expired {
                    ledger.delivered_after_expire += 1;
                    ledger.expired -= 1;
                }
                if let Some(m) = ledger.sent.get_mut(seq as usize) {
                    m.fate = Fate::Delivered;
                }
                if let Some(s) = src.and_then(|s| ledger.pending_by_src.get_mut(&s)) {
                    s.remove(&seq);
                }
                ledger.delivered += 1;
                let latency = now_us().saturating_sub(at) as f64 / 1000.0;
                if was_queued {
                    ledger.queued_latency_ms.push(latency);
                } else {
                    ledger.relay_latency_ms.push(latency);
                }
            }
        }
    }

    fn unsettled_of(&self, g: usize) -> usize {
        self.ledger().pending_by_src.get(&g).map_or(0, |s| s.len())
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `g`'s socket and waits for OPEN. `Err` says why it did not open.
async fn open(soak: &Soak, g: usize) -> Result<Socket, &'static str> {
    let url = soak.socket_url(g);
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    );
    let Ok(Ok((mut ws, _))) = connect.await else {
        return Err("connect");
    };
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    match first {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"OPEN\"") => Ok(ws),
        Ok(Some(Ok(Message::Text(t)))) if t.contains("ID-TAKEN") => Err("id-taken"),
        _ => Err("connect"),
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
                let counter = if why == "id-taken" {
                    &soak.tally.id_taken
                } else {
                    &soak.tally.connect_failures
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
                    if ws.send(Message::Text(r#"{"type":"HEARTBEAT"}"#.into())).await.is_err() {
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
            soak.ledger().dropped_conns.insert(conn, now_ms());
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
    while Instant::now() < drain_until
        && soak.ledger().pending_by_src.values().any(|s| !s.is_empty())
    {
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

    let report = build_report(
        &soak,
        &args,
        restart,
        server_counters.as_deref(),
        &memory.lock().map(|m| m.samples.clone()).unwrap_or_default(),
        &cpu,
        started.elapsed().as_secs_f64(),
    );
    emit_report("soak", &report, args.json.as_deref());
    let clean = report["lost"] == 0
        && report["duplicated"] == 0
        && report["misrouted"] == 0
        && report["expired_unconfirmed"] == 0;
    std::process::exit(if clean { 0 } else { 1 });
}

/// A queued message whose sender the restart dropped before it could expire:
/// the server expires it, but an EXPIRE cannot reach a sender that is not
/// connected (same in the reference server). Checked in aggregate against
/// the server's own expired counter.
fn expired_while_offline(m: &Sent, dropped: &HashMap<u64, u64>, expire_ms: u64) -> bool {
    m.dst_conn.is_none()
        && dropped.get(&m.src_conn).is_some_and(|drop_ms| {
            *drop_ms >= m.sent_ms && *drop_ms <= m.sent_ms + expire_ms + IN_FLIGHT_MS
        })
}

/// Where an unsettled message falls when the run is over.
fn in_restart_window(m: &Sent, dropped: &HashMap<u64, u64>) -> bool {
    let died_soon_after = |conn: u64| {
        dropped
            .get(&conn)
            .is_some_and(|drop_ms| m.sent_ms + IN_FLIGHT_MS >= *drop_ms && m.sent_ms <= *drop_ms)
    };
    died_soon_after(m.src_conn) || m.dst_conn.is_some_and(died_soon_after)
}

fn build_report(
    soak: &Soak,
    args: &Args,
    restart: Option<(u64, u64, u64)>,
    server_counters: Option<&[(String, f64)]>,
    memory: &[(f64, String, u64)],
    cpu: &[(String, f64)],
    elapsed: f64,
) -> serde_json::Value {
    let ledger = soak.ledger();
    let started_ms = now_ms().saturating_sub((elapsed * 1000.0) as u64);
    let mut lost = 0u64;
    let mut in_flight_at_restart = 0u64;
    let mut expired_while_sender_offline = 0u64;
    let mut lost_samples = Vec::new();
    for (seq, m) in ledger.sent.iter().enumerate() {
        if m.fate != Fate::Pending {
            continue;
        }
        if in_restart_window(m, &ledger.dropped_conns) {
            in_flight_at_restart += 1;
        } else if expired_while_offline(m, &ledger.dropped_conns, args.expire_ms) {
            expired_while_sender_offline += 1;
        } else {
            lost += 1;
            if lost_samples.len() < 10 {
                lost_samples.push(serde_json::json!({
                    "seq": seq, "src": soak.peer_id(m.src), "dst": soak.peer_id(m.dst),
                    "sent_at_s": m.sent_ms.saturating_sub(started_ms) as f64 / 1000.0,
                    "receiver_online_when_sent": m.dst_conn.is_some(),
                }));
            }
        }
    }
    // Messages the server held in its queue when the rooms tier died: sent
    // to an absent peer, before the kill, still unsettled at the kill.
    let restart_report = restart.map(|(kill, back, reconnected)| {
        let queued: Vec<&Sent> = ledger
            .sent
            .iter()
            .filter(|m| {
                m.dst_conn.is_none() && m.sent_ms < kill && m.sent_ms + args.expire_ms > kill
            })
            .collect();
        let count = |f: Fate| queued.iter().filter(|m| m.fate == f).count();
        let unsettled = queued.iter().filter(|m| m.fate == Fate::Pending);
        let in_flight = unsettled
            .clone()
            .filter(|m| in_restart_window(m, &ledger.dropped_conns))
            .count();
        let sender_offline = unsettled
            .clone()
            .filter(|m| {
                !in_restart_window(m, &ledger.dropped_conns)
                    && expired_while_offline(m, &ledger.dropped_conns, args.expire_ms)
            })
            .count();
        serde_json::json!({
            "at_secs": (kill.saturating_sub(started_ms)) as f64 / 1000.0,
            "rooms_tier_down_ms": back - kill,
            "all_reconnected_ms": reconnected - kill,
            "queued_at_kill": queued.len(),
            "queued_delivered": count(Fate::Delivered),
            "queued_expired_reported": count(Fate::Expired),
            "queued_expired_sender_offline": sender_offline,
            "queued_in_flight": in_flight,
            "queued_lost": unsettled.count() - in_flight - sender_offline,
        })
    });
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let (lat, queued_lat) = (
        sorted(&ledger.relay_latency_ms),
        sorted(&ledger.queued_latency_ms),
    );
    let mut labels: Vec<String> = memory.iter().map(|(_, l, _)| l.clone()).collect();
    labels.sort();
    labels.dedup();
    let memory_by_label: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|label| {
            let series: Vec<(f64, u64)> = memory
                .iter()
                .filter(|(_, l, _)| l == label)
                .map(|(t, _, rss)| (*t, *rss))
                .collect();
            (label.clone(), serde_json::json!(series))
        })
        .collect();
    let sent = ledger.sent.len() as u64;
    let server_expired = server_counters.map(|c| {
        c.iter()
            .find(|(s, _)| s == EXPIRED_SERIES)
            .map_or(0.0, |(_, v)| *v)
    });
    // Every message the harness counts as expired (told, or its sender was
    // offline) must be in the server's own count: more would mean messages
    // the server lost were taken for expired.
    let unconfirmed = match server_expired {
        Some(server) => {
            let claimed = (ledger.expired + expired_while_sender_offline) as f64;
            (claimed - server).max(0.0).round() as u64
        }
        None => expired_while_sender_offline,
    };
    let memory_summary: serde_json::Map<String, serde_json::Value> = memory_by_label
        .iter()
        .map(|(label, series)| {
            let points: Vec<(f64, u64)> = series
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| Some((p[0].as_f64()?, p[1].as_u64()?)))
                        .collect()
                })
                .unwrap_or_default();
            let mib = |p: Option<&(f64, u64)>| p.map(|(_, m)| *m);
            // A tier that was restarted is judged per life: the sample just
            // before the kill, and the first one 30 s after it.
            let kill_s =
                restart.map(|(kill, _, _)| kill.saturating_sub(started_ms) as f64 / 1000.0);
            let before = kill_s.and_then(|k| points.iter().rev().find(|(t, _)| *t < k));
            let after = kill_s.and_then(|k| points.iter().find(|(t, _)| *t >= k + 30.0));
            (
                label.clone(),
                serde_json::json!({
                    "start": mib(points.first()),
                    "before_restart": mib(before),
                    "after_restart_30s": mib(after),
                    "end": mib(points.last()),
                    "max": points.iter().map(|(_, m)| *m).max(),
                }),
            )
        })
        .collect();
    serde_json::json!({
        "rooms": args.rooms,
        "peers_per_room": args.peers,
        "secs": args.secs,
        "rate_per_peer": args.rate,
        "sent": sent,
        "delivered": ledger.delivered,
        "expired": ledger.expired,
        "lost": lost,
        "in_flight_at_restart": in_flight_at_restart,
        "expired_while_sender_offline": expired_while_sender_offline,
        "expired_unconfirmed": unconfirmed,
        "duplicated": ledger.duplicated,
        "misrouted": ledger.misrouted,
        "delivered_after_expire": ledger.delivered_after_expire,
        "expire_without_pending": ledger.expire_without_pending,
        "server_expired_total_delta": server_expired,
        "server_message_counters": server_counters
            .map(|c| c.iter().map(|(s, v)| (s.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>()),
        "lost_samples": lost_samples,
        "relay_ms": { "p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99), "max": lat.last().copied().unwrap_or(0.0) },
        "queued_delivery_ms": { "p50": percentile(&queued_lat, 0.5), "p99": percentile(&queued_lat, 0.99), "max": queued_lat.last().copied().unwrap_or(0.0) },
        "opens": soak.tally.opens.load(Ordering::Relaxed),
        "reconnects": soak.tally.reconnects.load(Ordering::Relaxed),
        "leaves": soak.tally.leaves.load(Ordering::Relaxed),
        "left_unsettled": soak.tally.left_unsettled.load(Ordering::Relaxed),
        "unexpected_drops": soak.tally.unexpected_drops.load(Ordering::Relaxed),
        "connect_failures": soak.tally.connect_failures.load(Ordering::Relaxed),
        "id_taken": soak.tally.id_taken.load(Ordering::Relaxed),
        "error_frames": soak.tally.error_frames.load(Ordering::Relaxed),
        "restart": restart_report,
        "memory_summary_kib": memory_summary,
        "memory_kib": memory_by_label,
        "server_cpu_secs": cpu.iter().map(|(l, c)| (l.clone(), serde_json::json!(c))).collect::<serde_json::Map<_, _>>(),
        "elapsed_secs": elapsed,
    })
}
