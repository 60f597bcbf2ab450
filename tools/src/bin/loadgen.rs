//! `loadgen`: opens R rooms x P peers against a PeerJS server and runs the
//! handshake a real client runs, checking every message.
//!
//! Per room, every pair (i < j) exchanges an OFFER (~4 KiB SDP) i -> j, an
//! ANSWER (~4 KiB) j -> i, then 10 CANDIDATEs each way; then an optional
//! steady phase. Each message carries a sequence number and a send time; the
//! receiver checks `src`, per-sender order and exactly-once delivery. Peers
//! send `{"type":"HEARTBEAT"}` every 5 s like the stock client.
//!
//! With `--flood-rate N`, one more peer joins room 0 and, from the start of
//! the steady phase, sends N frames a second (LEAVE to an absent id, as a
//! misbehaving client would) until the server closes it or the phase ends.
//! The steady phase's relay latency is reported on its own (`steady_relay_ms`)
//! so a run with a flood can be set beside one without.
//!
//! With `--own-tokens`, every peer sends a token of its own instead of its
//! room's, as an app on the open namespace (`NAMESPACE=open`) or on the
//! reference server does; the "rooms" are then only who talks to whom.
//! `--group-ids` names a room's peers `<run>r<room>-p<n>`, so that with
//! `OPEN_GROUP_SEPARATOR=-` they share one object.
//!
//! With `--connect-only`, no handshake is sent: the run measures what joins
//! and heartbeats cost alone (the figures a join's cost is read from).
//!
//! Everything is bounded: connections open at `--connect-rate` per second,
//! the run stops at `--max-secs`, and only 127.0.0.1 is accepted as target.
//!
//! ```text
//! loadgen --url http://127.0.0.1:9000 --rooms 1000 --peers 4 [--steady-secs 0 --steady-rate 0]
//!         [--idle-secs 0] [--wake-after-secs 0] [--flood-rate 0] [--own-tokens] [--group-ids] [--connect-only] [--pids 123,456] [--json out.json] [--label ours]
//! ```

use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tools::{
    descriptors, emit_report, now_us, peer_socket_url, percentile, proc_usage, require_loopback,
    scrape_metric, CANDIDATE_LINE, HEARTBEAT,
};

/// Our server's room wake counter (the reference server has none).
const WAKES: &str = "peerjs_room_wakes_total";

#[derive(Clone, Debug)]
struct Args {
    url: String,
    rooms: usize,
    peers: usize,
    connect_rate: u64,
    steady_secs: u64,
    steady_rate: u64,
    idle_secs: u64,
    wake_after_secs: u64,
    max_secs: u64,
    pids: Vec<u32>,
    json: Option<String>,
    label: String,
    sdp_bytes: usize,
    flood_rate: u64,
    own_tokens: bool,
    group_ids: bool,
    connect_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: "http://127.0.0.1:9000".into(),
        rooms: 10,
        peers: 4,
        connect_rate: 500,
        steady_secs: 0,
        steady_rate: 0,
        idle_secs: 0,
        wake_after_secs: 0,
        max_secs: 600,
        pids: Vec::new(),
        json: None,
        label: "server".into(),
        sdp_bytes: 4096,
        flood_rate: 0,
        own_tokens: false,
        group_ids: false,
        connect_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("bad number {v:?}"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--rooms" => a.rooms = num(value()?)? as usize,
            "--peers" => a.peers = num(value()?)? as usize,
            "--connect-rate" => a.connect_rate = num(value()?)?.max(1),
            "--steady-secs" => a.steady_secs = num(value()?)?,
            "--steady-rate" => a.steady_rate = num(value()?)?,
            "--idle-secs" => a.idle_secs = num(value()?)?,
            "--wake-after-secs" => a.wake_after_secs = num(value()?)?,
            "--max-secs" => a.max_secs = num(value()?)?,
            "--sdp-bytes" => a.sdp_bytes = num(value()?)? as usize,
            "--flood-rate" => a.flood_rate = num(value()?)?,
            "--label" => a.label = value()?,
            "--own-tokens" => {
                a.own_tokens = true;
                continue;
            }
            "--connect-only" => {
                a.connect_only = true;
                continue;
            }
            "--group-ids" => {
                a.group_ids = true;
                continue;
            }
            "--json" => a.json = Some(value()?),
            "--pids" => {
                a.pids = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().map_err(|_| format!("bad pid {s:?}")))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    require_loopback(&a.url)?;
    if a.peers < 2 || a.rooms == 0 {
        return Err("need at least 1 room of 2 peers".into());
    }
    Ok(a)
}

/// Shared tallies.
#[derive(Default)]
struct Tally {
    opened: AtomicU64,
    refused: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    duplicated: AtomicU64,
    misrouted: AtomicU64,
    out_of_order: AtomicU64,
    connect_ms: Mutex<Vec<f64>>,
    latency_us: Mutex<Vec<u64>>,
    steady_latency_us: Mutex<Vec<u64>>,
    wake_latency_us: Mutex<Vec<u64>>,
}

/// What one peer expects to receive: (sender, seq) pairs.
type Expected = Arc<Mutex<HashSet<(String, u64)>>>;

/// A peer's id; `run` ends with `-` under `--group-ids`, so that every id
/// of one room shares the prefix before its first `-`.
fn peer_id(room: usize, peer: usize, run: &str) -> String {
    match run.strip_suffix('-') {
        Some(run) => format!("{run}r{room}-p{peer}"),
        None => format!("{run}r{room}p{peer}"),
    }
}

/// Which part of the run a relayed message belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Handshake = 0,
    Steady = 1,
    /// The first relay into each room after it sat idle (`--wake-after-secs`).
    Wake = 2,
}

fn payload(seq: u64, pad: &str, phase: Phase) -> String {
    let phase = phase as u8;
    format!(
        r#"{{"seq":{seq},"at":{},"phase":{phase},"sdp":"{pad}","connectionId":"dc_load"}}"#,
        now_us()
    )
}

struct Conn {
    tx: mpsc::UnboundedSender<String>,
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects one peer and waits for its OPEN; counts the outcome and the
/// connect-to-OPEN time.
async fn connect_open(args: &Args, room_token: &str, id: &str, tally: &Tally) -> Option<WsStream> {
    let ws_url = peer_socket_url(&args.url, id, room_token);
    let started = Instant::now();
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(&ws_url),
    )
    .await
    else {
        tally.refused.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let opened = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                return t.contains("\"OPEN\"");
            }
        }
        false
    })
    .await;
    if opened != Ok(true) {
        tally.refused.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    tally.opened.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut v) = tally.connect_ms.lock() {
        v.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Some(ws)
}

/// Opens one peer and spawns its writer and its reader.
async fn open_peer(
    args: &Args,
    room_token: &str,
    id: &str,
    tally: Arc<Tally>,
    expected: Expected,
    deadline: Instant,
) -> Option<Conn> {
    let ws = connect_open(args, room_token, id, &tally).await?;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    // Writer: outgoing frames plus a HEARTBEAT every 5 s, until the deadline.
    tokio::spawn(async move {
        let mut beat = tokio::time::interval(Duration::from_secs(5));
        beat.tick().await;
        loop {
            tokio::select! {
                Some(text) = rx.recv() => { if sink.send(Message::Text(text.into())).await.is_err() { break; } }
                _ = beat.tick() => {
                    if sink.send(Message::Text(HEARTBEAT.into())).await.is_err() { break; }
                }
                _ = tokio::time::sleep_until(deadline.into()) => { let _ = sink.close().await; break; }
            }
        }
    });
    // Reader: checks every relayed message.
    let me = id.to_owned();
    tokio::spawn(async move {
        let mut last_seq: HashMap<String, u64> = HashMap::new();
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let kind = v["type"].as_str().unwrap_or_default();
            if !matches!(kind, "OFFER" | "ANSWER" | "CANDIDATE") {
                continue;
            }
            let src = v["src"].as_str().unwrap_or_default().to_owned();
            let seq = v["payload"]["seq"].as_u64().unwrap_or(0);
            let at = v["payload"]["at"].as_u64().unwrap_or(0);
            let dst = v["dst"].as_str().unwrap_or_default();
            let known = expected
                .lock()
                .map(|mut e| e.remove(&(src.clone(), seq)))
                .unwrap_or(false);
            if dst != me || !known {
                // Either not for us, from someone else, or already seen.
                let dup = last_seq.get(&src).is_some_and(|l| *l >= seq) && dst == me;
                if dup {
                    tally.duplicated.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.misrouted.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            if last_seq.get(&src).is_some_and(|l| *l >= seq) {
                tally.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            last_seq.insert(src, seq);
            tally.received.fetch_add(1, Ordering::Relaxed);
            let latency = now_us().saturating_sub(at);
            if let Ok(mut l) = tally.latency_us.lock() {
                l.push(latency);
            }
            let phase_list = match v["payload"]["phase"].as_u64() {
                Some(1) => Some(&tally.steady_latency_us),
                Some(2) => Some(&tally.wake_latency_us),
                _ => None,
            };
            if let Some(Ok(mut l)) = phase_list.map(|l| l.lock()) {
                l.push(latency);
            }
        }
    });
    Some(Conn { tx })
}

/// What the flooding peer saw of the server's answer to its flood.
#[derive(Default)]
struct FloodOutcome {
    sent: u64,
    error: Option<String>,
    close_code: Option<u16>,
    closed_after_ms: Option<f64>,
}

/// Sends `rate` frames a second, in ten batches a second, until `until` or
/// until the server closes the socket; reads what the server says meanwhile.
async fn flood(ws: WsStream, rate: u64, until: Instant) -> FloodOutcome {
    let (mut sink, mut stream) = ws.split();
    let started = Instant::now();
    let closed = std::sync::atomic::AtomicBool::new(false);
    // Set when the flood ends on its own, so our own closing handshake is
    // not mistaken for the server cutting the flooder off.
    let done = std::sync::atomic::AtomicBool::new(false);
    let batch = (rate / 10).max(1);
    let frame = r#"{"type":"LEAVE","dst":"nobody"}"#;
    let write = async {
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while Instant::now() < until && !closed.load(Ordering::Relaxed) {
            tick.tick().await;
            for _ in 0..batch {
                if sink.feed(Message::Text(frame.into())).await.is_err() {
                    return sent;
                }
                sent += 1;
            }
            if sink.flush().await.is_err() {
                return sent;
            }
        }
        done.store(true, Ordering::Relaxed);
        let _ = sink.close().await;
        sent
    };
    let read = async {
        let mut seen = FloodOutcome::default();
        let last = until + Duration::from_secs(5);
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(last.into(), stream.next()).await {
            match msg {
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    if v["type"] == "ERROR" && seen.error.is_none() {
                        seen.error = v["payload"]["msg"].as_str().map(str::to_owned);
                    }
                }
                Message::Close(_) if done.load(Ordering::Relaxed) => break,
                Message::Close(frame) => {
                    seen.close_code = frame.map(|f| u16::from(f.code));
                    seen.closed_after_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                    closed.store(true, Ordering::Relaxed);
                    break;
                }
                _ => {}
            }
        }
        closed.store(true, Ordering::Relaxed);
        seen
    };
    let (sent, mut outcome) = tokio::join!(write, read);
    outcome.sent = sent;
    outcome
}

/// Latencies recorded in microseconds, as ascending milliseconds.
fn sorted_ms(recorded: &Mutex<Vec<u64>>) -> Vec<f64> {
    let mut ms: Vec<f64> = recorded
        .lock()
        .map(|v| v.iter().map(|u| *u as f64 / 1000.0).collect())
        .unwrap_or_default();
    ms.sort_by(f64::total_cmp);
    ms
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let run = format!("{:x}", now_us() % 0xffff_ffff);
    let run = if args.group_ids { run + "-" } else { run };
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_secs);
    let (cpu0, rss0) = proc_usage(&args.pids);
    let client0 = proc_usage(&[std::process::id()]).0;
    let peak_rss = Arc::new(AtomicU64::new(rss0));
    {
        let pids = args.pids.clone();
        let peak = peak_rss.clone();
        tokio::spawn(async move {
            loop {
                let (_, rss) = proc_usage(&pids);
                peak.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    // Phase 1: connect every peer, at a bounded rate.
    let mut rooms: Vec<Vec<Option<Conn>>> = Vec::new();
    let mut expected: Vec<Vec<Expected>> = Vec::new();
    let gap = Duration::from_micros(1_000_000 / args.connect_rate);
    let mut opens = Vec::new();
    for r in 0..args.rooms {
        let token = format!("{run}room{r}");
        let mut exp_room = Vec::new();
        for p in 0..args.peers {
            let exp: Expected = Arc::new(Mutex::new(HashSet::new()));
            exp_room.push(exp.clone());
            let id = peer_id(r, p, &run);
            let tk = if args.own_tokens {
                format!("{run}t{r}x{p}")
            } else {
                token.clone()
            };
            let (a, t) = (args.clone(), tally.clone());
            opens.push(tokio::spawn(async move {
                open_peer(&a, &tk, &id, t, exp, deadline).await
            }));
            tokio::time::sleep(gap).await;
        }
        expected.push(exp_room);
    }
    let flooder = if args.flood_rate > 0 {
        let id = format!("{run}flooder");
        connect_open(&args, &format!("{run}room0"), &id, &tally).await
    } else {
        None
    };
    let mut it = opens.into_iter();
    for _ in 0..args.rooms {
        let mut room = Vec::new();
        for _ in 0..args.peers {
            room.push(match it.next() {
                Some(h) => h.await.ok().flatten(),
                None => None,
            });
        }
        rooms.push(room);
    }
    let connected_at = Instant::now();
    let resident = proc_usage(&args.pids).1;
    let fds = descriptors(&args.pids);

    // Phase 2: the handshake of every pair, then the steady phase.
    let pad_full: String = "a".repeat(args.sdp_bytes);
    let seq = AtomicU64::new(1);
    let send = |rooms: &Vec<Vec<Option<Conn>>>,
                r: usize,
                from: usize,
                to: usize,
                kind: &str,
                phase: Phase| {
        let (Some(src), Some(_)) = (&rooms[r][from], &rooms[r][to]) else {
            return;
        };
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let pad = if kind == "CANDIDATE" {
            CANDIDATE_LINE
        } else {
            &pad_full
        };
        if let Ok(mut e) = expected[r][to].lock() {
            e.insert((peer_id(r, from, &run), n));
        }
        let frame = format!(
            r#"{{"type":"{kind}","dst":"{}","payload":{}}}"#,
            peer_id(r, to, &run),
            payload(n, pad, phase)
        );
        if src.tx.send(frame).is_ok() {
            tally.sent.fetch_add(1, Ordering::Relaxed);
        }
    };
    let relay_started = Instant::now();
    let handshakes = if args.connect_only { 0 } else { rooms.len() };
    for (r, room) in rooms.iter().enumerate().take(handshakes) {
        let _ = room;
        for i in 0..args.peers {
            for j in (i + 1)..args.peers {
                send(&rooms, r, i, j, "OFFER", Phase::Handshake);
                send(&rooms, r, j, i, "ANSWER", Phase::Handshake);
                for _ in 0..10 {
                    send(&rooms, r, i, j, "CANDIDATE", Phase::Handshake);
                    send(&rooms, r, j, i, "CANDIDATE", Phase::Handshake);
                }
            }
        }
        // Rooms start their handshakes at the pace they connected, as real
        // games would, not all in the same millisecond.
        tokio::time::sleep(gap * args.peers as u32).await;
    }
    let mut flooding = None;
    if args.steady_secs > 0 && args.steady_rate > 0 {
        let end = Instant::now() + Duration::from_secs(args.steady_secs);
        if let Some(ws) = flooder {
            flooding = Some(tokio::spawn(flood(ws, args.flood_rate, end)));
        }
        let tick = Duration::from_micros(1_000_000 / args.steady_rate);
        let mut k = 0usize;
        while Instant::now() < end && Instant::now() < deadline {
            let r = k % args.rooms;
            let i = (k / args.rooms) % args.peers;
            let j = (i + 1) % args.peers;
            send(&rooms, r, i, j, "CANDIDATE", Phase::Steady);
            k += 1;
            tokio::time::sleep(tick).await;
        }
    }
    // Drain: wait until everything arrived or 60 s passed; what is still
    // missing then is counted as lost.
    let drain_end = Instant::now() + Duration::from_secs(60);
    while tally.received.load(Ordering::Relaxed) < tally.sent.load(Ordering::Relaxed)
        && Instant::now() < drain_end
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let relay_secs = relay_started.elapsed().as_secs_f64();
    let flood_outcome = match flooding {
        Some(handle) => handle.await.ok(),
        None => None,
    };
    // Idle phase: only heartbeats flow; room wakes are read from /metrics
    // at both ends of it (ours only: the reference has no such counter).
    let mut idle_wakes: Option<(f64, f64)> = None;
    if args.idle_secs > 0 {
        let w0 = scrape_metric(&args.url, WAKES).await;
        let idle_started = Instant::now();
        let idle_end = (Instant::now() + Duration::from_secs(args.idle_secs)).min(deadline);
        tokio::time::sleep_until(idle_end.into()).await;
        tokio::time::sleep(Duration::from_millis(2_100)).await; // past the scrape cache
        if let (Some(a), Some(b)) = (w0, scrape_metric(&args.url, WAKES).await) {
            idle_wakes = Some((b - a, idle_started.elapsed().as_secs_f64()));
        }
    }
    // Wake phase: every room sits idle (heartbeats only) long enough for
    // its object to be evicted, then one OFFER goes into each: the first
    // relay after a wake, timed like any other.
    if args.wake_after_secs > 0 {
        tokio::time::sleep(Duration::from_secs(args.wake_after_secs)).await;
        for r in 0..args.rooms {
            send(&rooms, r, 0, 1, "OFFER", Phase::Wake);
            tokio::time::sleep(gap).await;
        }
        let drain_end = Instant::now() + Duration::from_secs(30);
        while tally.received.load(Ordering::Relaxed) < tally.sent.load(Ordering::Relaxed)
            && Instant::now() < drain_end
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (cpu1, _) = proc_usage(&args.pids);
    let client1 = proc_usage(&[std::process::id()]).0;
    let elapsed = started.elapsed().as_secs_f64();

    let mut connect: Vec<f64> = tally
        .connect_ms
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    connect.sort_by(f64::total_cmp);
    let lat = sorted_ms(&tally.latency_us);
    let steady = sorted_ms(&tally.steady_latency_us);
    let woken = sorted_ms(&tally.wake_latency_us);
    let sent = tally.sent.load(Ordering::Relaxed);
    let received = tally.received.load(Ordering::Relaxed);
    let opened = tally.opened.load(Ordering::Relaxed);
    let server_cpu = cpu1 - cpu0;
    let client_cpu = client1 - client0;
    // A run that did not hold its sockets, or whose server died, reports
    // why instead of figures that would read as a result.
    let wanted = (args.rooms * args.peers) as u64;
    let failed = if !args.pids.is_empty() && server_cpu < 0.0 {
        Some("the server process ended during the run".to_owned())
    } else if opened < wanted {
        Some(format!(
            "only {opened} of {wanted} sockets opened ({} refused)",
            tally.refused.load(Ordering::Relaxed)
        ))
    } else {
        None
    };
    let report = serde_json::json!({
        "label": args.label,
        "failed": failed,
        "rooms": args.rooms,
        "peers_per_room": args.peers,
        "opened": opened,
        "refused": tally.refused.load(Ordering::Relaxed),
        "connect_ms": { "p50": percentile(&connect, 0.5), "p99": percentile(&connect, 0.99) },
        "relay_ms": { "p50": percentile(&lat, 0.5), "p90": percentile(&lat, 0.9), "p99": percentile(&lat, 0.99), "max": lat.last().copied().unwrap_or(0.0) },
        "steady_relay_ms": (!steady.is_empty()).then(|| serde_json::json!({ "count": steady.len(), "p50": percentile(&steady, 0.5), "p99": percentile(&steady, 0.99), "max": steady.last().copied().unwrap_or(0.0) })),
        "wake_relay_ms": (!woken.is_empty()).then(|| serde_json::json!({ "count": woken.len(), "p50": percentile(&woken, 0.5), "p99": percentile(&woken, 0.99), "max": woken.last().copied().unwrap_or(0.0) })),
        "flood": flood_outcome.map(|f| serde_json::json!({
            "rate": args.flood_rate,
            "frames_sent": f.sent,
            "error": f.error,
            "close_code": f.close_code,
            "closed_after_ms": f.closed_after_ms,
        })),
        "messages_sent": sent,
        "messages_received": received,
        "messages_per_sec": received as f64 / relay_secs.max(0.001),
        "lost": sent.saturating_sub(received + tally.duplicated.load(Ordering::Relaxed)),
        "duplicated": tally.duplicated.load(Ordering::Relaxed),
        "misrouted": tally.misrouted.load(Ordering::Relaxed),
        "out_of_order": tally.out_of_order.load(Ordering::Relaxed),
        "server_cpu_secs": server_cpu,
        "server_peak_rss_kib": peak_rss.load(Ordering::Relaxed),
        "server_rss_per_peer_kib": if opened > 0 { (resident.saturating_sub(rss0)) as f64 / opened as f64 } else { 0.0 },
        "server_fds": { "sockets": fds.sockets, "files": fds.files, "other": fds.other },
        "client_cpu_secs": client_cpu,
        "client_cpu_share": if server_cpu + client_cpu > 0.0 { client_cpu / (server_cpu + client_cpu) } else { 0.0 },
        "connect_secs": connected_at.duration_since(started).as_secs_f64(),
        "idle_room_wakes": idle_wakes.map(|(w, _)| w),
        "wakes_per_room_hour": idle_wakes.map(|(w, secs)| w / args.rooms as f64 / (secs / 3600.0)),
        "elapsed_secs": elapsed,
    });
    emit_report("loadgen", &report, args.json.as_deref());
    let clean = report["failed"].is_null()
        && report["lost"] == 0
        && report["duplicated"] == 0
        && report["misrouted"] == 0
        && report["refused"] == 0;
    std::process::exit(if clean { 0 } else { 1 });
}
