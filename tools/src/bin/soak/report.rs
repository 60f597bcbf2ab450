//! The soak report: a typed struct, serialised once at the end (field names
//! are the JSON the soak script and its test read), built from the ledger's
//! settlement, the server's own counters, memory samples and CPU.

use crate::ledger::{Ledger, QueuedAtKill, Settlement};
use serde::Serialize;
use std::collections::BTreeMap;
use tools::percentile;

/// The restart: when, how long the tier was down, and the queue it held.
#[derive(Debug, Serialize)]
pub struct Restart {
    pub at_secs: f64,
    pub rooms_tier_down_ms: u64,
    pub all_reconnected_ms: u64,
    #[serde(flatten)]
    pub queued: QueuedAtKill,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(values: &[f64]) -> Self {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Percentiles {
            p50: percentile(&v, 0.5),
            p99: percentile(&v, 0.99),
            max: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// One lost message, for the reader to look up in the logs.
#[derive(Debug, Serialize)]
pub struct LostSample {
    pub seq: u64,
    pub src: String,
    pub dst: String,
    pub sent_at_s: f64,
    pub receiver_online_when_sent: bool,
}

/// RSS of one labelled process tree at the moments that matter (KiB).
#[derive(Debug, Serialize)]
pub struct MemorySummary {
    pub start: Option<u64>,
    pub before_restart: Option<u64>,
    pub after_restart_30s: Option<u64>,
    pub end: Option<u64>,
    pub max: Option<u64>,
}

/// The harness's own counts of what the peers did.
#[derive(Debug, Default, Serialize)]
pub struct PeerCounts {
    pub opens: u64,
    pub reconnects: u64,
    pub leaves: u64,
    pub left_unsettled: u64,
    pub unexpected_drops: u64,
    pub connect_failures: u64,
    pub id_taken: u64,
    pub error_frames: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub rooms: usize,
    pub peers_per_room: usize,
    pub secs: u64,
    pub rate_per_peer: f64,
    pub sent: u64,
    pub delivered: u64,
    pub expired: u64,
    pub lost: u64,
    pub in_flight_at_restart: u64,
    pub expired_while_sender_offline: u64,
    /// Expiries the harness claims beyond the server's own count: more would
    /// mean messages the server lost were taken for expired.
    pub expired_unconfirmed: u64,
    /// Expiries due in the last report interval before the rooms-tier kill:
    /// the server counted them in memory and may have lost the count.
    pub expired_near_kill: u64,
    pub duplicated: u64,
    pub misrouted: u64,
    pub delivered_after_expire: u64,
    pub expire_without_pending: u64,
    pub server_expired_total_delta: Option<f64>,
    pub server_message_counters: Option<BTreeMap<String, f64>>,
    pub lost_samples: Vec<LostSample>,
    pub relay_ms: Percentiles,
    pub queued_delivery_ms: Percentiles,
    #[serde(flatten)]
    pub peers: PeerCounts,
    pub restart: Option<Restart>,
    pub memory_summary_kib: BTreeMap<String, MemorySummary>,
    pub memory_kib: BTreeMap<String, Vec<(f64, u64)>>,
    pub server_cpu_secs: BTreeMap<String, f64>,
    pub elapsed_secs: f64,
}

/// How long counts may sit in memory before storage has them, which a
/// crash of the rooms tier loses (`workers/rooms/src/stats.rs`): a room
/// reports every 2 s (membership changes 0.5 s late), plus a margin for the
/// report in flight, and its shard writes its counters at most every 10 s.
const UNREPORTED_WINDOW_MS: u64 = 4_000 + 10_000;

/// What the run measured besides the ledger.
pub struct Inputs<'a> {
    pub rooms: usize,
    pub peers_per_room: usize,
    pub secs: u64,
    pub rate_per_peer: f64,
    pub expire_ms: u64,
    pub started_ms: u64,
    /// (kill, back, all reconnected), in ms since the epoch.
    pub restart: Option<(u64, u64, u64)>,
    /// The server's counters' change over the run, per series.
    pub server_counters: Option<&'a [(String, f64)]>,
    pub expired_series: &'a str,
    /// (seconds into the run, label, KiB).
    pub memory: &'a [(f64, String, u64)],
    pub cpu: &'a [(String, f64)],
    pub peers: PeerCounts,
    pub elapsed_secs: f64,
}

impl Report {
    pub fn build(ledger: &Ledger, peer_id: impl Fn(usize) -> String, i: Inputs<'_>) -> Report {
        let Settlement {
            lost,
            in_flight_at_restart,
            expired_while_sender_offline,
            lost_seqs,
        } = ledger.settle(i.expire_ms);
        let lost_samples = lost_seqs
            .iter()
            .filter_map(|seq| ledger.sent.get(*seq as usize).map(|m| (*seq, m)))
            .map(|(seq, m)| LostSample {
                seq,
                src: peer_id(m.src),
                dst: peer_id(m.dst),
                sent_at_s: m.sent_ms.saturating_sub(i.started_ms) as f64 / 1000.0,
                receiver_online_when_sent: m.dst_conn.is_some(),
            })
            .collect();
        let since_start_s = |ms: u64| ms.saturating_sub(i.started_ms) as f64 / 1000.0;
        let restart = i.restart.map(|(kill, back, reconnected)| Restart {
            at_secs: since_start_s(kill),
            rooms_tier_down_ms: back - kill,
            all_reconnected_ms: reconnected - kill,
            queued: ledger.queued_at_kill(kill, i.expire_ms),
        });
        let server_expired = i.server_counters.map(|c| {
            c.iter()
                .find(|(s, _)| s == i.expired_series)
                .map_or(0.0, |(_, v)| *v)
        });
        let expired_near_kill = i.restart.map_or(0, |(kill, _, _)| {
            ledger.expiries_near_kill(kill, UNREPORTED_WINDOW_MS, i.expire_ms)
        });
        let expired_unconfirmed = match server_expired {
            Some(server) => {
                let claimed = (ledger.expired + expired_while_sender_offline) as f64;
                (claimed - server - expired_near_kill as f64)
                    .max(0.0)
                    .round() as u64
            }
            None => expired_while_sender_offline,
        };
        let mut memory_kib: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
        for (t, label, kib) in i.memory {
            memory_kib
                .entry(label.clone())
                .or_default()
                .push((*t, *kib));
        }
        // A tier that was restarted is judged per life: the sample just
        // before the kill, and the first one 30 s after it.
        let kill_s = i.restart.map(|(kill, _, _)| since_start_s(kill));
        let memory_summary_kib = memory_kib
            .iter()
            .map(|(label, points)| {
                let before = kill_s.and_then(|k| points.iter().rev().find(|(t, _)| *t < k));
                let after = kill_s.and_then(|k| points.iter().find(|(t, _)| *t >= k + 30.0));
                let kib = |p: Option<&(f64, u64)>| p.map(|(_, m)| *m);
                let summary = MemorySummary {
                    start: kib(points.first()),
                    before_restart: kib(before),
                    after_restart_30s: kib(after),
                    end: kib(points.last()),
                    max: points.iter().map(|(_, m)| *m).max(),
                };
                (label.clone(), summary)
            })
            .collect();
        Report {
            rooms: i.rooms,
            peers_per_room: i.peers_per_room,
            secs: i.secs,
            rate_per_peer: i.rate_per_peer,
            sent: ledger.sent.len() as u64,
            delivered: ledger.delivered,
            expired: ledger.expired,
            lost,
            in_flight_at_restart,
            expired_while_sender_offline,
            expired_unconfirmed,
            expired_near_kill,
            duplicated: ledger.duplicated,
            misrouted: ledger.misrouted,
            delivered_after_expire: ledger.delivered_after_expire,
            expire_without_pending: ledger.expire_without_pending,
            server_expired_total_delta: server_expired,
            server_message_counters: i.server_counters.map(|c| c.iter().cloned().collect()),
            lost_samples,
            relay_ms: Percentiles::of(&ledger.relay_latency_ms),
            queued_delivery_ms: Percentiles::of(&ledger.queued_latency_ms),
            peers: i.peers,
            restart,
            memory_summary_kib,
            memory_kib,
            server_cpu_secs: i.cpu.iter().cloned().collect(),
            elapsed_secs: i.elapsed_secs,
        }
    }

    /// Nothing lost, duplicated, misrouted or unconfirmed.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.misrouted == 0
            && self.expired_unconfirmed == 0
    }
}
