//! Helpers shared by the load tools (`loadgen`, `soak`): the loopback guard,
//! the stock client's socket URL and wire constants, wall-clock stamps,
//! percentiles, process CPU/RSS from `/proc`, and a one-shot `/metrics`
//! reader. Nothing here talks to anything but 127.0.0.1.

use std::time::{SystemTime, UNIX_EPOCH};

/// Refuses any target that is not this machine: load tools must never be
/// pointed at someone else's server.
pub fn require_loopback(url: &str) -> Result<(), String> {
    let host = url
        .trim_start_matches("http://")
        .trim_start_matches("ws://");
    if host.starts_with("127.0.0.1:") || host.starts_with("localhost:") {
        Ok(())
    } else {
        Err("only loopback targets are allowed (127.0.0.1 or localhost)".into())
    }
}

pub use signaling_core::frame::HEARTBEAT;

/// A host ICE candidate line, as CANDIDATE payloads carry.
pub const CANDIDATE_LINE: &str = "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host";

/// The WebSocket URL the stock client 1.5.5 opens as `id` with `token`
/// (the room, in rooms mode) against a server at `base` (`http://...`).
pub fn peer_socket_url(base: &str, id: &str, token: &str) -> String {
    format!(
        "{}/peerjs?key=peerjs&id={id}&token={token}&version=1.5.5",
        base.replace("http://", "ws://")
    )
}

/// Microseconds since the Unix epoch; stamped into payloads so a receiver
/// can compute the relay latency.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Nearest-rank percentile of an ascending slice (`p` in 0..=1).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// CPU seconds (user + system) and RSS in KiB of the given processes and all
/// their descendants (wrangler -> node -> workerd).
pub fn proc_usage(pids: &[u32]) -> (f64, u64) {
    let all = with_descendants(pids);
    let cpu = all.iter().map(|p| cpu_secs(*p)).sum();
    let rss = all.iter().map(|p| rss_kib(*p)).sum();
    (cpu, rss)
}

/// Open file descriptors of a process tree, by kind: sockets, files
/// (SQLite databases and their journals, logs), and the rest (eventfds,
/// epoll, pipes, timers). What runs out first when a process holds
/// thousands of sockets under a descriptor limit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Descriptors {
    pub sockets: u64,
    pub files: u64,
    pub other: u64,
}

pub fn descriptors(pids: &[u32]) -> Descriptors {
    let mut d = Descriptors::default();
    for p in with_descendants(pids) {
        let Ok(entries) = std::fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        for entry in entries.flatten() {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            let target = target.to_string_lossy();
            if target.starts_with("socket:") {
                d.sockets += 1;
            } else if target.starts_with('/') {
                d.files += 1;
            } else {
                d.other += 1;
            }
        }
    }
    d
}

/// RSS in KiB of a process tree, summed per command name (`workerd`,
/// `node`, ...), so the runtime can be told apart from the dev tooling.
pub fn rss_by_command(pid: u32) -> Vec<(String, u64)> {
    let mut by: Vec<(String, u64)> = Vec::new();
    for p in with_descendants(&[pid]) {
        let name = std::fs::read_to_string(format!("/proc/{p}/comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_default();
        let rss = rss_kib(p);
        match by.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += rss,
            None => by.push((name, rss)),
        }
    }
    by
}

fn cpu_secs(pid: u32) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    stat_fields(pid).map_or(0.0, |fields| {
        let user: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let system: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        (user + system) / tick
    })
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn with_descendants(pids: &[u32]) -> Vec<u32> {
    let mut all: Vec<u32> = pids.to_vec();
    let parents = parent_links();
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        for (child, parent) in &parents {
            if *parent == p && !all.contains(child) {
                all.push(*child);
            }
        }
        i += 1;
    }
    all
}

/// `/proc/<pid>/stat` fields after the command name (field 0 is the state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit(')').next()?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// (pid, parent pid) for every process, read once.
fn parent_links() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter_map(|pid| {
            let ppid = stat_fields(pid)?.get(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// The raw HTTP/1.1 response (status line, headers, body) a loopback
/// server gives to `GET path`, read to the end.
async fn http_get(base: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    Some(text)
}

/// The JSON object a loopback server answers to `GET path`, if any (small
/// bodies only: the object is cut from the first `{` to the last `}`).
pub async fn get_json(base: &str, path: &str) -> Option<serde_json::Value> {
    let text = http_get(base, path).await?;
    let body = text.split_once("\r\n\r\n")?.1;
    let json = body.get(body.find('{')?..=body.rfind('}')?)?;
    serde_json::from_str(json).ok()
}

/// Every sample of a server's Prometheus `/metrics` whose series name starts
/// with `prefix`, keyed by the full series text (labels included); `None`
/// when the server is unreachable or has no metrics.
pub async fn scrape_metrics(base: &str, prefix: &str) -> Option<Vec<(String, f64)>> {
    let body = http_get(base, "/metrics").await?;
    let samples: Vec<(String, f64)> = body
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.trim().parse().ok()?))
        })
        .collect();
    (!samples.is_empty()).then_some(samples)
}

/// Prints a tool's JSON report and writes it to `path` when one was given.
pub fn emit_report(tool: &str, report: &serde_json::Value, path: Option<&str>) {
    println!(
        "{}",
        serde_json::to_string_pretty(report).unwrap_or_default()
    );
    if let Some(path) = path {
        if let Err(e) = std::fs::write(path, report.to_string()) {
            eprintln!("{tool}: cannot write {path}: {e}");
        }
    }
}

/// One unlabelled series from a server's `/metrics` (see [`scrape_metrics`]).
pub async fn scrape_metric(base: &str, series: &str) -> Option<f64> {
    scrape_metrics(base, series)
        .await?
        .into_iter()
        .find_map(|(name, value)| (name == series).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_pass() {
        assert!(require_loopback("http://127.0.0.1:9000").is_ok());
        assert!(require_loopback("ws://localhost:1234").is_ok());
        assert!(require_loopback("http://example.com:9000").is_err());
        assert!(require_loopback("http://127.0.0.1.evil.test:80").is_err());
    }

    #[test]
    fn percentiles_pick_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 1.0), 5.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let (_, rss) = proc_usage(&[std::process::id()]);
        assert!(rss > 0);
    }
}
