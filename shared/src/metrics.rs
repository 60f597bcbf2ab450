//! Cluster-wide metrics: the counters the core reports as effects, the
//! reports rooms send to the stats shards, a shard's state, and the
//! Prometheus and JSON renderings of the gathered figures.
//!
//! Flow: a room adds up [`Counter`]s in memory and, piggybacking on wakes
//! that happen anyway, sends a [`Report`] (its absolute peer count plus
//! counter deltas) to its stats shard. A [`Shard`] keeps a gauge per room
//! (forgotten when its report is older than a TTL, so gauges heal
//! themselves) and cumulative counters. The router gathers every shard's
//! [`Snapshot`], merges them and renders them.

use crate::frame::{DropReason, RelayKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefuseReason {
    RoomFull,
    IdTaken,
    BadQuery,
    BadKey,
    BadTicket,
    Origin,
    RateLimited,
    Config,
}

impl RefuseReason {
    pub fn label(self) -> &'static str {
        match self {
            RefuseReason::RoomFull => "room_full",
            RefuseReason::IdTaken => "id_taken",
            RefuseReason::BadQuery => "bad_query",
            RefuseReason::BadKey => "bad_key",
            RefuseReason::BadTicket => "bad_ticket",
            RefuseReason::Origin => "origin",
            RefuseReason::RateLimited => "rate_limited",
            RefuseReason::Config => "config",
        }
    }
}

/// Why a peer left the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeaveCause {
    /// Its socket closed and it did not come back within the grace period.
    Closed,
    /// No heartbeat or message for the alive timeout.
    Timeout,
    /// Closed by the server for flooding.
    Kicked,
}

impl LeaveCause {
    pub fn label(self) -> &'static str {
        match self {
            LeaveCause::Closed => "closed",
            LeaveCause::Timeout => "timeout",
            LeaveCause::Kicked => "kicked",
        }
    }
}

/// One countable thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    ConnectionAccepted,
    ConnectionRefused(RefuseReason),
    Relayed(RelayKind),
    Queued,
    Expired,
    Dropped(DropReason),
    RateLimited,
    Leave(LeaveCause),
    Takeover,
    /// The room object was constructed or ran a handler.
    RoomWake,
}

impl Counter {
    /// The Prometheus series this counter adds to, e.g.
    /// `peerjs_messages_relayed_total{type="OFFER"}`.
    pub fn series(self) -> String {
        let (name, label) = match self {
            Counter::ConnectionAccepted => (
                "peerjs_connections_total",
                Some(("result", "accepted", None)),
            ),
            Counter::ConnectionRefused(r) => (
                "peerjs_connections_total",
                Some(("result", "refused", Some(("reason", r.label())))),
            ),
            Counter::Relayed(k) => (
                "peerjs_messages_relayed_total",
                Some(("type", k.as_str(), None)),
            ),
            Counter::Queued => ("peerjs_messages_queued_total", None),
            Counter::Expired => ("peerjs_messages_expired_total", None),
            Counter::Dropped(r) => (
                "peerjs_messages_dropped_total",
                Some(("reason", r.label(), None)),
            ),
            Counter::RateLimited => ("peerjs_rate_limited_total", None),
            Counter::Leave(c) => ("peerjs_leaves_total", Some(("cause", c.label(), None))),
            Counter::Takeover => ("peerjs_takeovers_total", None),
            Counter::RoomWake => ("peerjs_room_wakes_total", None),
        };
        match label {
            None => name.to_owned(),
            Some((k, v, None)) => format!("{name}{{{k}=\"{}\"}}", escape_label(v)),
            Some((k, v, Some((k2, v2)))) => format!(
                "{name}{{{k}=\"{}\",{k2}=\"{}\"}}",
                escape_label(v),
                escape_label(v2)
            ),
        }
    }
}

/// Escapes a label value for the text exposition format.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counters added up between two reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deltas(pub BTreeMap<String, u64>);

impl Deltas {
    pub fn add(&mut self, counter: Counter, by: u64) {
        if by > 0 {
            *self.0.entry(counter.series()).or_insert(0) += by;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn merge(&mut self, other: &Deltas) {
        for (series, by) in &other.0 {
            *self.0.entry(series.clone()).or_insert(0) += by;
        }
    }
}

/// Counts kept between reports, keyed by [`Counter`] so that adding one on
/// the relay path is a map update, not a string build; turned into
/// [`Deltas`] (series names) only when a report is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(BTreeMap<Counter, u64>);

impl Tally {
    pub fn add(&mut self, counter: Counter, by: u64) {
        if by > 0 {
            *self.0.entry(counter).or_insert(0) += by;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Empties the tally into the series form a report carries.
    pub fn take_deltas(&mut self) -> Deltas {
        let mut deltas = Deltas::default();
        for (counter, by) in std::mem::take(&mut self.0) {
            deltas.add(counter, by);
        }
        deltas
    }
}

/// What a room (or the router, with `room: None`) sends its stats shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub room: Option<String>,
    /// The room's live peers now (absolute, so a lost report heals itself).
    pub peers: usize,
    pub at_ms: u64,
    pub deltas: Deltas,
}

/// One stats shard: a gauge per room and cumulative counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Room id -> (live peers, time of its last report).
    pub rooms: BTreeMap<String, (usize, u64)>,
    pub counters: Deltas,
}

/// Most rooms one shard tracks; beyond it the oldest reports are dropped.
pub const MAX_ROOMS_PER_SHARD: usize = 100_000;

impl Shard {
    pub fn apply(&mut self, report: &Report) {
        self.counters.merge(&report.deltas);
        if let Some(room) = &report.room {
            if report.peers == 0 {
                self.rooms.remove(room);
            } else {
                let newer = self
                    .rooms
                    .get(room)
                    .is_none_or(|(_, at)| *at <= report.at_ms);
                if newer {
                    self.rooms
                        .insert(room.clone(), (report.peers, report.at_ms));
                }
            }
        }
        if self.rooms.len() > MAX_ROOMS_PER_SHARD {
            if let Some(oldest) = self
                .rooms
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                self.rooms.remove(&oldest);
            }
        }
    }

    /// Forgets rooms whose last report is older than `ttl_ms`: they died
    /// without a goodbye (a live room reports at least every sweep).
    pub fn expire(&mut self, now_ms: u64, ttl_ms: u64) {
        self.rooms
            .retain(|_, (_, at)| now_ms.saturating_sub(*at) <= ttl_ms);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rooms_active: self.rooms.len() as u64,
            peers_active: self.rooms.values().map(|(p, _)| *p as u64).sum(),
            counters: self.counters.0.clone(),
        }
    }
}

/// Figures gathered from the shards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub rooms_active: u64,
    pub peers_active: u64,
    pub counters: BTreeMap<String, u64>,
}

impl Snapshot {
    pub fn merge(&mut self, other: &Snapshot) {
        self.rooms_active += other.rooms_active;
        self.peers_active += other.peers_active;
        for (series, n) in &other.counters {
            *self.counters.entry(series.clone()).or_insert(0) += n;
        }
    }

    /// Sum of every series of one metric.
    pub fn total(&self, metric: &str) -> u64 {
        self.counters
            .iter()
            .filter(|(series, _)| series.split('{').next() == Some(metric))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Every counter metric with its help text, in exposition order.
const COUNTERS: [(&str, &str); 9] = [
    (
        "peerjs_connections_total",
        "WebSocket connections by result (accepted, refused) and refusal reason.",
    ),
    (
        "peerjs_messages_relayed_total",
        "Messages relayed to a peer in the room, by type.",
    ),
    (
        "peerjs_messages_queued_total",
        "Messages stored for a peer not (yet) in the room.",
    ),
    (
        "peerjs_messages_expired_total",
        "Queued messages that expired undelivered.",
    ),
    (
        "peerjs_messages_dropped_total",
        "Client frames dropped, by reason.",
    ),
    (
        "peerjs_rate_limited_total",
        "Frames refused by the per-peer rate limit.",
    ),
    ("peerjs_leaves_total", "Peers that left a room, by cause."),
    (
        "peerjs_takeovers_total",
        "Connections that took over an id from an older socket.",
    ),
    (
        "peerjs_room_wakes_total",
        "Times a room object was constructed or ran a handler.",
    ),
];

/// Renders the Prometheus text exposition format (version 0.0.4).
pub fn render_prometheus(s: &Snapshot, version: &str) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    };
    gauge(
        &mut out,
        "peerjs_rooms_active",
        "Rooms with at least one live peer.",
        s.rooms_active,
    );
    gauge(
        &mut out,
        "peerjs_peers_active",
        "Live peers across all rooms.",
        s.peers_active,
    );
    for (name, help) in COUNTERS.iter() {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        let mut any = false;
        for (series, n) in s
            .counters
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
        {
            out.push_str(&format!("{series} {n}\n"));
            any = true;
        }
        if !any {
            out.push_str(&format!("{name} 0\n"));
        }
    }
    out.push_str(&format!(
        "# HELP peerjs_build_info Build of the router serving this scrape.\n# TYPE peerjs_build_info gauge\npeerjs_build_info{{version=\"{}\"}} 1\n",
        escape_label(version)
    ));
    out
}

/// The JSON shape of the original spec.
pub fn render_json(s: &Snapshot, now_ms: u64, messages_per_second: f64) -> serde_json::Value {
    let accepted = s
        .counters
        .get(&Counter::ConnectionAccepted.series())
        .copied()
        .unwrap_or(0);
    let connections = s.total("peerjs_connections_total");
    let refused = connections - accepted.min(connections);
    let error_rate = if connections == 0 {
        0.0
    } else {
        refused as f64 / connections as f64
    };
    serde_json::json!({
        "status": "ok",
        "timestamp": now_ms,
        "metrics": {
            "activeRooms": s.rooms_active,
            "activePeers": s.peers_active,
            "messagesPerSecond": messages_per_second,
            "errorRate": error_rate,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_names_and_labels() {
        assert_eq!(
            Counter::Relayed(RelayKind::Offer).series(),
            r#"peerjs_messages_relayed_total{type="OFFER"}"#
        );
        assert_eq!(
            Counter::ConnectionRefused(RefuseReason::RoomFull).series(),
            r#"peerjs_connections_total{result="refused",reason="room_full"}"#
        );
        assert_eq!(Counter::Takeover.series(), "peerjs_takeovers_total");
        assert_eq!(escape_label("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }

    #[test]
    fn a_tally_becomes_series_deltas_once() {
        let mut tally = Tally::default();
        tally.add(Counter::Relayed(RelayKind::Offer), 2);
        tally.add(Counter::Relayed(RelayKind::Offer), 1);
        tally.add(Counter::Takeover, 0);
        let deltas = tally.take_deltas();
        assert_eq!(
            deltas
                .0
                .get(r#"peerjs_messages_relayed_total{type="OFFER"}"#),
            Some(&3)
        );
        assert_eq!(deltas.0.len(), 1, "zero adds leave no series");
        assert!(tally.is_empty());
    }

    #[test]
    fn shards_keep_gauges_fresh_and_counters_cumulative() {
        let mut shard = Shard::default();
        let mut d = Deltas::default();
        d.add(Counter::Relayed(RelayKind::Offer), 3);
        shard.apply(&Report {
            room: Some("r1".into()),
            peers: 2,
            at_ms: 1_000,
            deltas: d.clone(),
        });
        shard.apply(&Report {
            room: Some("r2".into()),
            peers: 4,
            at_ms: 1_500,
            deltas: d,
        });
        // An older report never overwrites a newer gauge.
        shard.apply(&Report {
            room: Some("r1".into()),
            peers: 1,
            at_ms: 500,
            deltas: Deltas::default(),
        });
        let snap = shard.snapshot();
        assert_eq!((snap.rooms_active, snap.peers_active), (2, 6));
        assert_eq!(snap.total("peerjs_messages_relayed_total"), 6);
        // r1 stops reporting: it drops out after the TTL; r2 reported later stays.
        shard.expire(61_200, 60_000);
        assert_eq!(shard.snapshot().rooms_active, 1);
        // An emptied room says goodbye with peers = 0.
        shard.apply(&Report {
            room: Some("r2".into()),
            peers: 0,
            at_ms: 62_000,
            deltas: Deltas::default(),
        });
        assert_eq!(shard.snapshot().rooms_active, 0);
        assert_eq!(
            shard.snapshot().total("peerjs_messages_relayed_total"),
            6,
            "counters stay"
        );
    }

    #[test]
    fn prometheus_text_has_help_type_and_every_metric() {
        let mut snap = Snapshot {
            rooms_active: 2,
            peers_active: 5,
            ..Snapshot::default()
        };
        snap.counters
            .insert(Counter::Dropped(DropReason::Malformed).series(), 7);
        let text = render_prometheus(&snap, "0.1.0");
        for name in [
            "peerjs_rooms_active",
            "peerjs_peers_active",
            "peerjs_connections_total",
            "peerjs_messages_relayed_total",
            "peerjs_messages_queued_total",
            "peerjs_messages_expired_total",
            "peerjs_messages_dropped_total",
            "peerjs_rate_limited_total",
            "peerjs_leaves_total",
            "peerjs_takeovers_total",
            "peerjs_room_wakes_total",
            "peerjs_build_info",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
        }
        assert!(text.contains("peerjs_messages_dropped_total{reason=\"malformed\"} 7\n"));
        assert!(text.contains("peerjs_rooms_active 2\n"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn json_shape_of_the_original_spec() {
        let mut snap = Snapshot {
            rooms_active: 1,
            peers_active: 2,
            ..Snapshot::default()
        };
        snap.counters
            .insert(Counter::ConnectionAccepted.series(), 3);
        snap.counters.insert(
            Counter::ConnectionRefused(RefuseReason::BadTicket).series(),
            1,
        );
        let v = render_json(&snap, 5, 1.5);
        assert_eq!(v["metrics"]["activeRooms"], 1);
        assert_eq!(v["metrics"]["activePeers"], 2);
        assert_eq!(v["metrics"]["errorRate"], 0.25);
        assert_eq!(v["metrics"]["messagesPerSecond"], 1.5);
    }
}
