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

use crate::flat_map::FlatMap;
use crate::frame::{DropReason, RelayKind};
use serde::{Deserialize, Serialize};

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
    /// A moderator removed the id from the room for a while.
    Blocked,
}

impl RefuseReason {
    pub const ALL: [RefuseReason; 9] = [
        RefuseReason::RoomFull,
        RefuseReason::IdTaken,
        RefuseReason::BadQuery,
        RefuseReason::BadKey,
        RefuseReason::BadTicket,
        RefuseReason::Origin,
        RefuseReason::RateLimited,
        RefuseReason::Config,
        RefuseReason::Blocked,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RefuseReason::RoomFull => "room_full",
            RefuseReason::IdTaken => "id_taken",
            RefuseReason::BadQuery => "bad_query",
            RefuseReason::BadKey => "bad_key",
            RefuseReason::BadTicket => "bad_ticket",
            RefuseReason::Origin => "origin",
            RefuseReason::Blocked => "blocked",
            RefuseReason::RateLimited => "rate_limited",
            RefuseReason::Config => "config",
        }
    }
}

/// Why a peer left: counted by cause, and stored with a pending LEAVE
/// (serialized by variant name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LeaveCause {
    /// Its socket closed and it did not come back within the grace period.
    Closed,
    /// No heartbeat or message for the alive timeout.
    Timeout,
    /// Closed by the server for flooding.
    Kicked,
    /// Removed by a moderator through the admin API.
    Removed,
}

impl LeaveCause {
    pub const ALL: [LeaveCause; 4] = [
        LeaveCause::Closed,
        LeaveCause::Timeout,
        LeaveCause::Kicked,
        LeaveCause::Removed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LeaveCause::Closed => "closed",
            LeaveCause::Timeout => "timeout",
            LeaveCause::Kicked => "kicked",
            LeaveCause::Removed => "removed",
        }
    }
}

/// Prometheus metric types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One metric family, defined once: name, help, type and label names. Every
/// sample of the family carries exactly these labels, in this order.
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

pub const ROOMS_ACTIVE: Family = Family {
    name: "peerjs_rooms_active",
    help: "Rooms with at least one live peer.",
    kind: Kind::Gauge,
    labels: &[],
};
pub const PEERS_ACTIVE: Family = Family {
    name: "peerjs_peers_active",
    help: "Live peers across all rooms.",
    kind: Kind::Gauge,
    labels: &[],
};
pub const CONNECTIONS: Family = Family {
    name: "peerjs_connections_total",
    help: "WebSocket connections by result (accepted, refused) and refusal reason (none when accepted).",
    kind: Kind::Counter,
    labels: &["result", "reason"],
};
pub const RELAYED: Family = Family {
    name: "peerjs_messages_relayed_total",
    help: "Messages relayed to a peer in the room, by type.",
    kind: Kind::Counter,
    labels: &["type"],
};
pub const QUEUED: Family = Family {
    name: "peerjs_messages_queued_total",
    help: "Messages stored for a peer not (yet) in the room.",
    kind: Kind::Counter,
    labels: &[],
};
pub const EXPIRED: Family = Family {
    name: "peerjs_messages_expired_total",
    help: "Queued messages that expired undelivered.",
    kind: Kind::Counter,
    labels: &[],
};
pub const DROPPED: Family = Family {
    name: "peerjs_messages_dropped_total",
    help: "Client frames dropped, by reason (rate_limited: over the per-peer message rate).",
    kind: Kind::Counter,
    labels: &["reason"],
};
pub const LEAVES: Family = Family {
    name: "peerjs_leaves_total",
    help: "Peers that left a room, by cause (kicked: closed for flooding).",
    kind: Kind::Counter,
    labels: &["cause"],
};
pub const TAKEOVERS: Family = Family {
    name: "peerjs_takeovers_total",
    help: "Connections that took over an id from an older socket.",
    kind: Kind::Counter,
    labels: &[],
};
pub const ROOM_WAKES: Family = Family {
    name: "peerjs_room_wakes_total",
    help: "Times a room object was constructed or ran a handler.",
    kind: Kind::Counter,
    labels: &[],
};
pub const BUILD_INFO: Family = Family {
    name: "peerjs_build_info",
    help: "Build of the router serving this scrape.",
    kind: Kind::Gauge,
    labels: &["version"],
};

/// Declares [`Counter`] and [`Counter::all`] from one list, so that the
/// list of every series cannot miss a variant: a variant with a payload
/// lists every value of it (its type's `ALL`).
macro_rules! counters {
    ($( $(#[$doc:meta])* $variant:ident $(($payload:ty))? ),* $(,)?) => {
        /// One countable thing: a family and its label values. Each event is
        /// counted once (a frame over the rate is a `Dropped(RateLimited)`;
        /// the kick that may follow is a `Leave(Kicked)` when its LEAVE goes out).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Counter {
            $( $(#[$doc])* $variant $(($payload))? ),*
        }

        impl Counter {
            /// Every counter with every label value, in exposition order:
            /// the scrape shows each at 0 until it first counts, so a series
            /// never appears out of nowhere and no family changes its label set.
            pub fn all() -> Vec<Counter> {
                let mut all = Vec::new();
                $( counters!(@push all $variant $($payload)?); )*
                all
            }
        }
    };
    (@push $all:ident $variant:ident) => { $all.push(Counter::$variant) };
    (@push $all:ident $variant:ident $payload:ty) => {
        $all.extend(<$payload>::ALL.map(Counter::$variant))
    };
}

counters! {
    ConnectionAccepted,
    ConnectionRefused(RefuseReason),
    Relayed(RelayKind),
    Queued,
    Expired,
    Dropped(DropReason),
    Leave(LeaveCause),
    Takeover,
    /// The room object was constructed or ran a handler.
    RoomWake,
}

impl Counter {
    /// The counter's family and its label values (in the order of the
    /// family's label names): the one place a counter is described.
    pub fn sample(self) -> (&'static Family, Vec<&'static str>) {
        match self {
            Counter::ConnectionAccepted => (&CONNECTIONS, vec!["accepted", "none"]),
            Counter::ConnectionRefused(r) => (&CONNECTIONS, vec!["refused", r.label()]),
            Counter::Relayed(k) => (&RELAYED, vec![k.as_str()]),
            Counter::Queued => (&QUEUED, vec![]),
            Counter::Expired => (&EXPIRED, vec![]),
            Counter::Dropped(r) => (&DROPPED, vec![r.label()]),
            Counter::Leave(c) => (&LEAVES, vec![c.label()]),
            Counter::Takeover => (&TAKEOVERS, vec![]),
            Counter::RoomWake => (&ROOM_WAKES, vec![]),
        }
    }

    pub fn family(self) -> &'static Family {
        self.sample().0
    }

    /// The Prometheus series this counter adds to, e.g.
    /// `peerjs_messages_relayed_total{type="OFFER"}`: also its key in
    /// reports and in the shards' storage, which stay plain strings so that
    /// tiers deployed at different times still understand each other.
    pub fn series(self) -> String {
        let (family, values) = self.sample();
        series(family, &values)
    }
}

/// A series name: the family's name and its labels with these values.
fn series(family: &Family, values: &[&str]) -> String {
    if family.labels.is_empty() {
        return family.name.to_owned();
    }
    let labels: Vec<String> = family
        .labels
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{}{{{}}}", family.name, labels.join(","))
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
pub struct Deltas(#[serde(with = "crate::flat_map::as_object")] pub FlatMap<String, u64>);

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
pub struct Tally(FlatMap<Counter, u64>);

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
    /// When the room wants the shard to call its sweep next (`None`: it
    /// holds nobody, or sweeps on its own alarm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_ms: Option<u64>,
}

/// What a report changed that the shard's storage must follow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Rooms evicted to stay within [`MAX_ROOMS_PER_SHARD`]: their stored
    /// gauges go.
    pub evicted: Vec<String>,
    /// The room is new here, left, or its peer count changed: its stored
    /// gauge must be written (only then: a gauge that merely got fresher
    /// lives in memory, so an idle room costs its shard no write).
    pub gauge_changed: bool,
}

/// The shard calls the sweeps that are due at most this often, so its own
/// alarm is set at most 720 times an hour however many rooms it sweeps; a
/// sweep comes at most this late.
pub const SWEEP_TICK_MS: u64 = 5_000;

/// A sweep call that got no answer is tried again this much later.
pub const SWEEP_RETRY_MS: u64 = 10_000;

/// Sweep calls one run of the shard's alarm makes at most (subrequests per
/// invocation are limited); the rest are due at the next tick.
pub const MAX_SWEEPS_PER_RUN: usize = 500;

/// One stats shard: a gauge per room and cumulative counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Room id -> (live peers, time of its last report).
    #[serde(with = "crate::flat_map::as_object")]
    pub rooms: FlatMap<String, (usize, u64)>,
    pub counters: Deltas,
    /// When [`Shard::expire_due`] last swept (in memory only).
    #[serde(skip)]
    pub last_expiry_ms: u64,
    /// Room -> when the shard calls its sweep (in memory only: after a
    /// reload every stored room is due at once, see [`Shard::restore`]).
    #[serde(skip)]
    pub sweeps: FlatMap<String, u64>,
    /// Rooms read back from storage whose gauge is older than the TTL,
    /// with when: not counted until their sweep answers (a room that died
    /// without a goodbye must not come back to life with a reload).
    #[serde(skip)]
    pub unconfirmed: FlatMap<String, u64>,
}

/// Most rooms one shard tracks; beyond it the oldest reports are dropped.
pub const MAX_ROOMS_PER_SHARD: usize = 100_000;

impl Shard {
    /// Adds a report; says what storage must follow.
    pub fn apply(&mut self, report: &Report) -> Applied {
        let mut applied = Applied::default();
        self.counters.merge(&report.deltas);
        if let Some(room) = &report.room {
            self.unconfirmed.remove(room);
            if report.peers == 0 {
                applied.gauge_changed = self.rooms.remove(room).is_some();
                self.sweeps.remove(room);
            } else {
                let before = self.rooms.get(room).copied();
                if before.is_none_or(|(_, at)| at <= report.at_ms) {
                    self.rooms
                        .insert(room.clone(), (report.peers, report.at_ms));
                    applied.gauge_changed = before.map(|(peers, _)| peers) != Some(report.peers);
                    match report.sweep_ms {
                        Some(due) => self.sweeps.insert(room.clone(), due),
                        None => self.sweeps.remove(room),
                    };
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
                self.sweeps.remove(&oldest);
                self.unconfirmed.remove(&oldest);
                applied.evicted.push(oldest);
            }
        }
        applied
    }

    /// A gauge read back from storage after the shard was evicted
    /// (`stored_at_ms`: its last change, which for an idle room is long
    /// ago): its sweep is due at once, and its answer corrects the gauge.
    /// One older than `ttl_ms` is not counted until then; either way it
    /// has a TTL from `now_ms` to answer in.
    pub fn restore(
        &mut self,
        room: String,
        peers: usize,
        stored_at_ms: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) {
        if now_ms.saturating_sub(stored_at_ms) > ttl_ms {
            self.unconfirmed.insert(room.clone(), now_ms);
        }
        self.sweeps.insert(room.clone(), now_ms);
        self.rooms.insert(room, (peers, now_ms));
    }

    /// The rooms whose sweep is due at `now_ms`, at most
    /// [`MAX_SWEEPS_PER_RUN`] (the rest stay due for the next run); each
    /// is due again [`SWEEP_RETRY_MS`] later until its answer says when.
    pub fn due_sweeps(&mut self, now_ms: u64) -> Vec<String> {
        let due: Vec<String> = self
            .sweeps
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(room, _)| room.clone())
            .take(MAX_SWEEPS_PER_RUN)
            .collect();
        for room in &due {
            self.sweeps.insert(room.clone(), now_ms + SWEEP_RETRY_MS);
        }
        due
    }

    /// When the shard's alarm should next run, if any sweep is planned:
    /// the earliest due, but not before `not_before_ms` (the tick after the
    /// last run).
    pub fn next_sweep_run(&self, not_before_ms: u64) -> Option<u64> {
        self.sweeps
            .values()
            .min()
            .map(|at| (*at).max(not_before_ms))
    }

    /// [`Shard::expire`] on the report path, at most every quarter TTL: a
    /// shard nobody scrapes still forgets dead rooms (and the caller
    /// deletes their keys), so its storage stays the size of the live set.
    pub fn expire_due(&mut self, now_ms: u64, ttl_ms: u64) -> Vec<String> {
        if now_ms.saturating_sub(self.last_expiry_ms) < (ttl_ms / 4).max(1_000) {
            return Vec::new();
        }
        self.last_expiry_ms = now_ms;
        self.expire(now_ms, ttl_ms)
    }

    /// Forgets rooms whose last report is older than `ttl_ms`: they died
    /// without a goodbye (a live room reports at least every sweep).
    /// Returns the rooms forgotten, so the caller can delete their keys.
    pub fn expire(&mut self, now_ms: u64, ttl_ms: u64) -> Vec<String> {
        let mut gone = Vec::new();
        self.rooms.retain(|room, (_, at)| {
            let fresh = now_ms.saturating_sub(*at) <= ttl_ms;
            if !fresh {
                gone.push(room.clone());
            }
            fresh
        });
        for room in &gone {
            self.sweeps.remove(room);
            self.unconfirmed.remove(room);
        }
        gone
    }

    pub fn snapshot(&self) -> Snapshot {
        let counted = self
            .rooms
            .iter()
            .filter(|(room, _)| !self.unconfirmed.contains_key(*room));
        let (rooms, peers) =
            counted.fold((0, 0), |(r, p), (_, (peers, _))| (r + 1, p + *peers as u64));
        Snapshot {
            rooms_active: rooms,
            peers_active: peers,
            counters: self.counters.0.clone(),
        }
    }
}

/// The shard a room reports to (FNV-1a: stable across isolates and
/// deploys, so a room always lands on the same shard).
pub fn shard_of(room: &str, shards: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in room.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % shards.max(1)
}

/// Messages per second between two readings of a cumulative count
/// (`previous` = (time, count)); 0 for the first reading or no time passed.
pub fn rate_per_sec(previous: Option<(u64, u64)>, now_ms: u64, count: u64) -> f64 {
    match previous {
        Some((at, before)) if now_ms > at => {
            count.saturating_sub(before) as f64 * 1000.0 / (now_ms - at) as f64
        }
        _ => 0.0,
    }
}

/// Figures gathered from the shards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub rooms_active: u64,
    pub peers_active: u64,
    #[serde(with = "crate::flat_map::as_object")]
    pub counters: FlatMap<String, u64>,
}

impl Snapshot {
    pub fn merge(&mut self, other: &Snapshot) {
        self.rooms_active += other.rooms_active;
        self.peers_active += other.peers_active;
        for (series, n) in &other.counters {
            *self.counters.entry(series.clone()).or_insert(0) += n;
        }
    }

    /// The count of one counter (0 if it never counted).
    pub fn get(&self, counter: Counter) -> u64 {
        self.counters.get(&counter.series()).copied().unwrap_or(0)
    }

    /// Sum of every known series of one family.
    pub fn sum(&self, family: &Family) -> u64 {
        Counter::all()
            .into_iter()
            .filter(|c| c.family().name == family.name)
            .map(|c| self.get(c))
            .sum()
    }
}

/// Renders the Prometheus text exposition format (version 0.0.4): the two
/// gauges, every known counter series (0 until it first counts), and the
/// build. A series a shard holds that no [`Counter`] names any more (left by
/// an older deploy) is not rendered.
pub fn render_prometheus(s: &Snapshot, version: &str) -> String {
    let mut out = String::new();
    let header = |out: &mut String, family: &Family| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n",
            name = family.name,
            help = family.help,
            kind = family.kind.as_str()
        ));
    };
    for (family, value) in [
        (&ROOMS_ACTIVE, s.rooms_active),
        (&PEERS_ACTIVE, s.peers_active),
    ] {
        header(&mut out, family);
        out.push_str(&format!("{} {value}\n", family.name));
    }
    let mut current: Option<&Family> = None;
    for counter in Counter::all() {
        let family = counter.family();
        if current.is_none_or(|f| f.name != family.name) {
            header(&mut out, family);
            current = Some(family);
        }
        let series = counter.series();
        let value = s.counters.get(&series).copied().unwrap_or(0);
        out.push_str(&format!("{series} {value}\n"));
    }
    header(&mut out, &BUILD_INFO);
    out.push_str(&format!("{} 1\n", series(&BUILD_INFO, &[version])));
    out
}

/// The JSON shape of the original spec.
pub fn render_json(s: &Snapshot, now_ms: u64, messages_per_second: f64) -> serde_json::Value {
    let accepted = s.get(Counter::ConnectionAccepted);
    let connections = s.sum(&CONNECTIONS);
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
        assert_eq!(
            Counter::ConnectionAccepted.series(),
            r#"peerjs_connections_total{result="accepted",reason="none"}"#,
            "one label set per family"
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
    fn a_shard_nobody_scrapes_still_forgets_dead_rooms_and_says_which() {
        let ttl = 60_000;
        let mut shard = Shard::default();
        let report = |room: &str, at_ms: u64| Report {
            room: Some(room.into()),
            peers: 2,
            at_ms,
            ..Report::default()
        };
        shard.apply(&report("dead", 1_000));
        assert!(shard.expire_due(1_000, ttl).is_empty());
        let mut forgotten = Vec::new();
        // Only live rooms report from now on; nobody scrapes.
        for t in (2_000..200_000).step_by(1_000) {
            shard.apply(&report("live", t));
            forgotten.extend(shard.expire_due(t, ttl));
        }
        assert_eq!(forgotten, vec!["dead".to_owned()]);
        assert_eq!(shard.rooms.keys().collect::<Vec<_>>(), ["live"]);
    }

    #[test]
    fn rooms_evicted_over_the_cap_are_named_for_deletion() {
        let mut shard = Shard::default();
        for i in 0..MAX_ROOMS_PER_SHARD as u64 {
            shard.rooms.insert(format!("r{i}"), (1, 10 + i));
        }
        let applied = shard.apply(&Report {
            room: Some("newcomer".into()),
            peers: 1,
            at_ms: 1_000_000,
            ..Report::default()
        });
        assert_eq!(
            applied.evicted,
            vec!["r0".to_owned()],
            "the oldest report goes"
        );
        assert_eq!(shard.rooms.len(), MAX_ROOMS_PER_SHARD);
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
            ..Report::default()
        });
        shard.apply(&Report {
            room: Some("r2".into()),
            peers: 4,
            at_ms: 1_500,
            deltas: d,
            ..Report::default()
        });
        // An older report never overwrites a newer gauge.
        shard.apply(&Report {
            room: Some("r1".into()),
            peers: 1,
            at_ms: 500,
            ..Report::default()
        });
        let snap = shard.snapshot();
        assert_eq!((snap.rooms_active, snap.peers_active), (2, 6));
        assert_eq!(snap.sum(&RELAYED), 6);
        // r1 stops reporting: it drops out after the TTL; r2 reported later stays.
        assert_eq!(shard.expire(61_200, 60_000), vec!["r1".to_owned()]);
        assert_eq!(shard.expire(61_200, 60_000), Vec::<String>::new());
        assert_eq!(shard.snapshot().rooms_active, 1);
        // An emptied room says goodbye with peers = 0.
        shard.apply(&Report {
            room: Some("r2".into()),
            peers: 0,
            at_ms: 62_000,
            ..Report::default()
        });
        assert_eq!(shard.snapshot().rooms_active, 0);
        assert_eq!(shard.snapshot().sum(&RELAYED), 6, "counters stay");
    }

    #[test]
    fn the_shard_calls_each_rooms_sweep_when_due_and_writes_a_gauge_only_when_it_changes() {
        let mut shard = Shard::default();
        let report = |peers, at_ms, sweep_ms| Report {
            room: Some("r".into()),
            peers,
            at_ms,
            sweep_ms,
            ..Report::default()
        };
        assert!(shard.apply(&report(4, 1_000, Some(116_000))).gauge_changed);
        assert_eq!(shard.next_sweep_run(6_000), Some(116_000));
        assert!(shard.due_sweeps(115_999).is_empty());
        assert_eq!(shard.due_sweeps(116_000), ["r"]);
        // No answer yet: tried again later, not at every tick.
        assert_eq!(
            shard.next_sweep_run(121_000),
            Some(116_000 + SWEEP_RETRY_MS)
        );
        // The sweep's answer: same peers, later due. Fresher, not changed.
        let answered = shard.apply(&report(4, 116_000, Some(231_000)));
        assert!(!answered.gauge_changed, "an idle room costs no gauge write");
        assert_eq!(
            shard.rooms.get("r").copied().unwrap_or_default(),
            (4, 116_000),
            "but its gauge is fresh"
        );
        assert!(
            shard
                .apply(&report(3, 120_000, Some(231_000)))
                .gauge_changed
        );
        // The room empties: its gauge goes, and so does its sweep.
        assert!(shard.apply(&report(0, 130_000, None)).gauge_changed);
        assert_eq!(shard.next_sweep_run(0), None);
        // After the shard's eviction a stored gauge is due for a sweep at
        // once; one older than the TTL counts only once its sweep answers.
        let ttl = 300_000;
        shard.restore("s".into(), 2, 400_000, 500_000, ttl);
        shard.restore("old".into(), 3, 1_000, 500_000, ttl);
        assert_eq!(shard.due_sweeps(500_000), ["old", "s"]);
        assert_eq!(
            shard.rooms.get("s").copied().unwrap_or_default(),
            (2, 500_000)
        );
        assert_eq!(
            (shard.snapshot().rooms_active, shard.snapshot().peers_active),
            (1, 2)
        );
        shard.apply(&Report {
            room: Some("old".into()),
            peers: 3,
            at_ms: 500_100,
            sweep_ms: Some(615_000),
            ..Report::default()
        });
        assert_eq!(
            (shard.snapshot().rooms_active, shard.snapshot().peers_active),
            (2, 5)
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
        // Known label sets are there at 0 before they count; no family is
        // ever printed without its labels.
        assert!(text.contains("peerjs_messages_dropped_total{reason=\"queue_full\"} 0\n"));
        assert!(text.contains("peerjs_connections_total{result=\"accepted\",reason=\"none\"} 0\n"));
        assert!(!text.contains("peerjs_connections_total 0"));
        assert!(
            !text.contains("peerjs_rate_limited_total"),
            "counted once, as a drop"
        );
        // Each family's samples carry exactly its label names.
        for counter in Counter::all() {
            let family = counter.family();
            assert_eq!(counter.sample().1.len(), family.labels.len(), "{counter:?}");
            assert_eq!(text.matches(&format!("# TYPE {} ", family.name)).count(), 1);
        }
    }

    #[test]
    fn a_room_always_reports_to_the_same_shard_and_rooms_spread() {
        // FNV-1a 32 of "" and "a" (published test vectors).
        // (0x811c9dc5 and 0xe40c292c, modulo 1000.)
        assert_eq!(shard_of("", 1_000), 261);
        assert_eq!(shard_of("a", 1_000), 220);
        assert_eq!(shard_of("room-1", 8), shard_of("room-1", 8));
        assert_eq!(
            shard_of("anything", 0),
            0,
            "no shards configured acts as one"
        );
        let mut used = [0u32; 8];
        for i in 0..800 {
            used[shard_of(&format!("room{i}"), 8) as usize] += 1;
        }
        assert!(used.iter().all(|n| (50..=150).contains(n)), "{used:?}");
    }

    #[test]
    fn messages_per_second_between_two_scrapes() {
        assert_eq!(rate_per_sec(None, 5_000, 100), 0.0, "first scrape");
        assert_eq!(rate_per_sec(Some((1_000, 100)), 3_000, 500), 200.0);
        assert_eq!(
            rate_per_sec(Some((3_000, 500)), 3_000, 600),
            0.0,
            "no time passed"
        );
        assert_eq!(
            rate_per_sec(Some((1_000, 500)), 2_000, 100),
            0.0,
            "a reset is not negative"
        );
    }

    #[test]
    fn every_counter_is_listed_once() {
        let all = Counter::all();
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert!(all.contains(&Counter::Dropped(DropReason::SenderNotLive)));
        assert!(all.contains(&Counter::ConnectionRefused(RefuseReason::Config)));
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
