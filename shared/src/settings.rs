//! The one table of settings: each setting's name, tier, kind, default,
//! range and one line of doc, declared once.
//!
//! `config.rs` parses through these declarations, `Limits::default`
//! takes its defaults from them, and `docs/reference.md`'s configuration
//! table is [`markdown_table`]'s output (a test fails when the two differ).
//! `scripts/dev.sh` forwards the settings named in that table and
//! `scripts/deploy.sh` requires the secrets it marks "required to deploy",
//! so neither script keeps a list of its own.

/// Which Worker reads a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Router,
    Rooms,
    Both,
}

impl Tier {
    fn label(self) -> &'static str {
        match self {
            Tier::Router => "router",
            Tier::Rooms => "rooms",
            Tier::Both => "both",
        }
    }
}

/// What a setting holds and what it is when unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number within `min..=max`.
    Number { default: u64, min: u64, max: u64 },
    /// A whole number within `min..=max` whose default is computed from
    /// other settings (the note says how).
    Derived { min: u64, max: u64 },
    /// `true`/`false`/`1`/`0`/`yes`/`no`/`on`/`off`.
    Flag { default: bool },
    /// Free text (a list, a choice, a URL); `default` as written in `[vars]`,
    /// empty when unset means off.
    Text { default: &'static str },
}

/// Whether `scripts/deploy.sh` refuses to deploy a tier without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploy {
    /// Not needed to deploy.
    Optional,
    /// Required to deploy the tiers that read it.
    Required,
    /// Required unless the named other setting is set instead.
    RequiredOr(&'static str),
}

/// One setting, as the operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub tier: Tier,
    pub kind: Kind,
    /// A secret is set with `wrangler secret put` and never logged.
    pub secret: bool,
    pub deploy: Deploy,
    /// What the default column adds to the declared default (an environment
    /// that sets another value, a default derived from other settings).
    pub default_note: &'static str,
    pub doc: &'static str,
}

impl Setting {
    /// The number default; 0 for other kinds (never read for them).
    pub const fn number_default(&self) -> u64 {
        match self.kind {
            Kind::Number { default, .. } => default,
            _ => 0,
        }
    }

    /// The flag default; false for other kinds (never read for them).
    pub const fn flag_default(&self) -> bool {
        match self.kind {
            Kind::Flag { default } => default,
            _ => false,
        }
    }

    fn default_cell(&self) -> String {
        let declared = match self.kind {
            Kind::Number { default, .. } => format!("`{default}`"),
            Kind::Derived { .. } => return self.default_note.to_owned(),
            Kind::Flag { default } => format!("`{default}`"),
            Kind::Text { default: "" } => "unset".to_owned(),
            Kind::Text { default } => format!("`{default}`"),
        };
        match self.default_note {
            "" => declared,
            note => format!("{declared} {note}"),
        }
    }

    fn range_cell(&self) -> String {
        match self.kind {
            Kind::Number { min, max, .. } | Kind::Derived { min, max } => format!("{min}-{max}"),
            _ => String::new(),
        }
    }

    fn secret_cell(&self) -> String {
        match (self.secret, self.deploy) {
            (false, _) => String::new(),
            (true, Deploy::Optional) => "secret".to_owned(),
            (true, Deploy::Required) => "secret, required to deploy".to_owned(),
            (true, Deploy::RequiredOr(other)) => {
                format!("secret, this or `{other}` required to deploy")
            }
        }
    }
}

const fn number(
    name: &'static str,
    tier: Tier,
    default: u64,
    min: u64,
    max: u64,
    doc: &'static str,
) -> Setting {
    Setting {
        name,
        tier,
        kind: Kind::Number { default, min, max },
        secret: false,
        deploy: Deploy::Optional,
        default_note: "",
        doc,
    }
}

const fn flag(name: &'static str, tier: Tier, default: bool, doc: &'static str) -> Setting {
    Setting {
        name,
        tier,
        kind: Kind::Flag { default },
        secret: false,
        deploy: Deploy::Optional,
        default_note: "",
        doc,
    }
}

const fn text(name: &'static str, tier: Tier, default: &'static str, doc: &'static str) -> Setting {
    Setting {
        name,
        tier,
        kind: Kind::Text { default },
        secret: false,
        deploy: Deploy::Optional,
        default_note: "",
        doc,
    }
}

const fn secret(name: &'static str, tier: Tier, deploy: Deploy, doc: &'static str) -> Setting {
    Setting {
        name,
        tier,
        kind: Kind::Text { default: "" },
        secret: true,
        deploy,
        default_note: "",
        doc,
    }
}

const fn noted(setting: Setting, default_note: &'static str) -> Setting {
    Setting {
        default_note,
        ..setting
    }
}

// The router's settings.
pub const PEERJS_KEY: Setting = text(
    "PEERJS_KEY",
    Tier::Router,
    "peerjs",
    "the `key` clients must send (1-64 letters, digits, `_` or `-`)",
);
pub const MOUNT_PATHS: Setting = text(
    "MOUNT_PATHS",
    Tier::Router,
    "/,/peerjs/",
    "comma list of API mount paths",
);
pub const NAMESPACE: Setting = text("NAMESPACE", Tier::Router, "rooms", "how peers find each other: `rooms` (the token names a room) or `open` (the reference's one id namespace; the token is the client's own secret); see [Moving an existing PeerJS app](#moving-an-existing-peerjs-app)");
pub const ALLOWED_ORIGINS: Setting = text(
    "ALLOWED_ORIGINS",
    Tier::Router,
    "*",
    "`*` or comma list of origins (`https://game.example`)",
);
pub const ROOM_TICKET_SECRET: Setting = secret(
    "ROOM_TICKET_SECRET",
    Tier::Router,
    Deploy::RequiredOr("ROOM_TICKET_PUBLIC_KEY"),
    "HS256 key (at least 32 bytes); enables tickets",
);
pub const ROOM_TICKET_PUBLIC_KEY: Setting = secret(
    "ROOM_TICKET_PUBLIC_KEY",
    Tier::Router,
    Deploy::RequiredOr("ROOM_TICKET_SECRET"),
    "Ed25519 public key (PEM) for EdDSA tickets, instead of the secret",
);
pub const TICKET_ISSUER: Setting =
    text("TICKET_ISSUER", Tier::Router, "", "required `iss` when set");
pub const TICKET_AUDIENCE: Setting = text("TICKET_AUDIENCE", Tier::Router, "", "required `aud` when set; with `REQUIRE_TICKETS` it must be set (a ticket your backend signed with the same key for another service must not open rooms here)");
pub const TICKET_LEEWAY_SECS: Setting = number(
    "TICKET_LEEWAY_SECS",
    Tier::Router,
    5,
    0,
    300,
    "clock tolerance for `exp`/`nbf`/`iat`",
);
pub const TICKET_MAX_LIFETIME_SECS: Setting = number("TICKET_MAX_LIFETIME_SECS", Tier::Router, 14_400, 60, 30 * 86_400, "a ticket whose `exp` is further than this from now is refused: a leaked ticket is worth hours, not years. Every ticket must also carry `iat`");
pub const TICKET_REQUIRE_SUB: Setting = flag("TICKET_REQUIRE_SUB", Tier::Router, false, "`true`: every room ticket must name its peer id in `sub` (then no sub-less join exists to be refused a proven id)");
pub const REQUIRE_TICKETS: Setting = flag("REQUIRE_TICKETS", Tier::Router, false, "`true`: a missing ticket key, or a missing `TICKET_AUDIENCE`, is a configuration error (set in staging and production)");
pub const CONNECTS_PER_MINUTE_PER_IP: Setting = noted(number("CONNECTS_PER_MINUTE_PER_IP", Tier::Router, 60, 0, 100_000, "per-client connects and `/id`/`/peers` calls per minute, per isolate (0 = off); local dev is higher because every loopback client shares one key"), "(`6000` in local dev)");
pub const CONNECT_BURST_PER_IP: Setting = noted(
    number(
        "CONNECT_BURST_PER_IP",
        Tier::Router,
        20,
        0,
        100_000,
        "burst for the above",
    ),
    "(`1000` in local dev)",
);
pub const IPV6_PREFIX_BITS: Setting = number("IPV6_PREFIX_BITS", Tier::Router, 64, 16, 128, "an IPv6 client is limited by this prefix of its address: one subscriber holds a whole /64, so per address it would get a burst per address");
pub const DEMO: Setting = noted(
    flag("DEMO", Tier::Router, false, "serves `/demo`"),
    "(`true` in local dev)",
);
pub const LOCAL_DEV: Setting = noted(flag("LOCAL_DEV", Tier::Router, false, "the settings are local development's: the router answers only loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`) and refuses every other host with 403 (a WebSocket with an ERROR and 1008), so `wrangler deploy` without `--env` (which also has `workers_dev = false`) serves nobody"), "(`true` at the top level and in `test`)");
pub const ICE_PROVIDER: Setting = text("ICE_PROVIDER", Tier::Router, "static", "what `/ice-servers` answers: `static` (the `ICE_SERVERS` list), `turn-secret` (a TURN server with a shared secret, e.g. coturn's `use-auth-secret`: username `expiry:id`, password base64 HMAC-SHA1 of it), `cloudflare` (Cloudflare Realtime TURN's `generate-ice-servers`, called once per request). The two TURN providers hand out credentials to ticket holders only: without `ROOM_TICKET_SECRET` or `ROOM_TICKET_PUBLIC_KEY` they are a configuration error naming `ICE_PROVIDER` (a room id or a client's own token proves nothing, so anyone could spend the relay's bandwidth)");
pub const ICE_SERVERS: Setting = text(
    "ICE_SERVERS",
    Tier::Router,
    "[]",
    "`static`: a JSON list of `{urls, username?, credential?}` (loopback needs no STUN)",
);
pub const TURN_URLS: Setting = text(
    "TURN_URLS",
    Tier::Router,
    "",
    "`turn-secret` (required): comma list of `turn:`/`turns:` URLs",
);
pub const STUN_URLS: Setting = text(
    "STUN_URLS",
    Tier::Router,
    "",
    "`turn-secret`: comma list of `stun:` URLs",
);
pub const TURN_SECRET: Setting = secret("TURN_SECRET", Tier::Router, Deploy::Optional, "`turn-secret`: the TURN server's shared secret (at least 16 bytes); with coturn, `use-auth-secret` and `static-auth-secret` = this");
pub const CLOUDFLARE_TURN_KEY_ID: Setting = text(
    "CLOUDFLARE_TURN_KEY_ID",
    Tier::Router,
    "",
    "`cloudflare`: the TURN key (letters, digits, `-`, `_`)",
);
pub const CLOUDFLARE_TURN_API_TOKEN: Setting = secret(
    "CLOUDFLARE_TURN_API_TOKEN",
    Tier::Router,
    Deploy::Optional,
    "`cloudflare`: the TURN key's API token",
);
pub const CLOUDFLARE_TURN_BASE_URL: Setting = text("CLOUDFLARE_TURN_BASE_URL", Tier::Router, "https://rtc.live.cloudflare.com", "`cloudflare`: the API's base URL (tests point it at a local stand-in: the real API is not reachable from the test machine)");
pub const ICE_TTL_SECS: Setting = number(
    "ICE_TTL_SECS",
    Tier::Router,
    3_600,
    60,
    86_400,
    "lifetime of a TURN credential",
);
pub const ADMIN_TOKEN: Setting = secret("ADMIN_TOKEN", Tier::Router, Deploy::Optional, "turns the [admin API](#moderation-the-admin-api) on; at least 24 bytes (a shorter one is a configuration error); compared in constant time, never logged");
pub const METRICS_TOKEN: Setting = secret("METRICS_TOKEN", Tier::Router, Deploy::Required, "`/metrics` needs `Authorization: Bearer <token>` (compared in constant time); outside `LOCAL_DEV` it is required: without it `/metrics` answers 503");

// The rooms Worker's settings.
pub const MAX_PEERS_PER_ROOM: Setting = number(
    "MAX_PEERS_PER_ROOM",
    Tier::Rooms,
    4,
    1,
    64,
    "live peers per room",
);
pub const MAX_MESSAGE_BYTES: Setting = number(
    "MAX_MESSAGE_BYTES",
    Tier::Rooms,
    65_536,
    256,
    1 << 20,
    "largest frame handled",
);
pub const PEER_MSGS_PER_SEC: Setting = number(
    "PEER_MSGS_PER_SEC",
    Tier::Rooms,
    100,
    0,
    100_000,
    "per-peer message rate (0 = off)",
);
pub const ALIVE_TIMEOUT_MS: Setting = number("ALIVE_TIMEOUT_MS", Tier::Rooms, 90_000, 1_000, 3_600_000, "silence after which a peer is stale: it may lose its seat to a newcomer when the room is full, its id to a new socket, and the sweep closes it. A hidden browser tab sends one heartbeat a minute, so keep it well above 60 s (see \"Background tabs\")");
pub const LIVENESS_SWEEP_MS: Setting = number("LIVENESS_SWEEP_MS", Tier::Rooms, 30_000, 1_000, 3_600_000, "how long after `ALIVE_TIMEOUT_MS` runs out a silent peer may wait for the sweep: it is announced within `ALIVE_TIMEOUT_MS` + this (+ up to 5 s, the stats shard's tick) of its last sign of life (2 minutes by default; the reference takes 60-90 s). Sweeps are planned from the oldest sign of life, only while sockets exist, and called by the room's stats shard: an idle room of heartbeating peers wakes about every 115 s and writes nothing");
pub const EXPIRE_TIMEOUT_MS: Setting = number(
    "EXPIRE_TIMEOUT_MS",
    Tier::Rooms,
    5_000,
    500,
    600_000,
    "how long offline messages wait",
);
pub const LEAVE_GRACE_MS: Setting = number(
    "LEAVE_GRACE_MS",
    Tier::Rooms,
    2_000,
    0,
    60_000,
    "how long a closed peer may come back before LEAVE",
);
pub const MAX_QUEUED_MESSAGES: Setting = number("MAX_QUEUED_MESSAGES", Tier::Rooms, 128, 0, 10_000, "offline queue bound per room, or per home in open mode (count); in a room one sender holds at most 1/`MAX_PEERS_PER_ROOM` of it (and of the bytes), so one member cannot starve the others");
pub const MAX_QUEUED_BYTES: Setting = number(
    "MAX_QUEUED_BYTES",
    Tier::Rooms,
    512 * 1024,
    0,
    64 << 20,
    "offline queue bound per room, or per home in open mode (bytes)",
);
pub const OPEN_GROUP_SEPARATOR: Setting = text("OPEN_GROUP_SEPARATOR", Tier::Rooms, "", "open mode: ids share one object by the part before the first of this character (`-`, `_` or a space): `game42-alice` and `game42-bob` live in `game42`, an id without it in its own; unset: one object per id; see [Groups](open-namespace.md#groups)");
pub const MAX_PEERS_PER_GROUP: Setting = number("MAX_PEERS_PER_GROUP", Tier::Rooms, 64, 1, 1_000, "open mode with `OPEN_GROUP_SEPARATOR`: live peers one group's object holds at most; a join past it gets an ERROR that says so");
pub const MAX_NEW_DESTINATIONS_PER_MINUTE: Setting = number("MAX_NEW_DESTINATIONS_PER_MINUTE", Tier::Rooms, 120, 1, 100_000, "open mode: distinct ids one peer may send to in a minute (each may cost a request between objects and a queue); past it the peer gets an ERROR that says so and is closed with 1008");
pub const MAX_QUEUED_PER_SENDER: Setting = number("MAX_QUEUED_PER_SENDER", Tier::Rooms, 32, 1, 10_000, "open mode: of a home's queue, at most this many from one sender, so one sender cannot fill it for everyone (rooms mode: the fair share above)");
pub const STATS_SHARDS: Setting = number("STATS_SHARDS", Tier::Rooms, 8, 1, 256, "number of stats Durable Objects rooms report to: each room reports at most every few seconds and an object takes about 1,000 requests/s, so 8 carry tens of thousands of active rooms while a scrape costs 8 subrequests");
pub const STATS_REPORTS: Setting = flag(
    "STATS_REPORTS",
    Tier::Rooms,
    true,
    "`false` stops rooms reporting to the stats shards (`/metrics` then shows no room figures); each room then sweeps on its own alarm, a row written per sweep",
);
pub const STATS_TTL_MS: Setting = Setting {
    kind: Kind::Derived { min: 1_000, max: 86_400_000 },
    default_note: "2.5 x (`ALIVE_TIMEOUT_MS` + `LIVENESS_SWEEP_MS`)",
    ..number("STATS_TTL_MS", Tier::Rooms, 0, 0, 0, "a room's gauge is forgotten when its last report or sweep answer is older (the shard calls a live room's sweep at least every `ALIVE_TIMEOUT_MS` + `LIVENESS_SWEEP_MS`)")
};

// Both.
pub const DEBUG_ENDPOINTS: Setting = noted(flag("DEBUG_ENDPOINTS", Tier::Both, false, "test hooks: `/debug/rooms/{room}` (a room's wake counters, stored keys, alarm), `/debug/homes/{id}` (the same for an open-namespace home), `/debug/ghost/{room}` (a room report that never repeats) and `/debug/panic/{room}` (the room's wasm panics, to show every object outlives it; the rooms tier panics only with this set too)"), "(`true` in the `test` env)");
pub const INTERNAL_SECRET: Setting = secret("INTERNAL_SECRET", Tier::Both, Deploy::Required, "at least 32 bytes, the same in both tiers: the router signs every internal request (HMAC-SHA256 over path, contract headers and time, 60 s window) and the rooms tier refuses unsigned or mis-signed ones, so another Worker given the service binding cannot forge `Proven: 1`; a mismatch shows in `/health?deep=1`");
pub const INTERNAL_SECRET_PREVIOUS: Setting = secret("INTERNAL_SECRET_PREVIOUS", Tier::Rooms, Deploy::Optional, "during a rotation, the old `INTERNAL_SECRET`, still accepted: set the new secret on the rooms tier with the old one here, then on the router, then remove this");
pub const LOG_LEVEL: Setting = text(
    "LOG_LEVEL",
    Tier::Both,
    "info",
    "`debug`, `info`, `warn`, `error`",
);

/// Every setting, in the order the reference lists them.
pub const ALL: &[Setting] = &[
    PEERJS_KEY,
    MOUNT_PATHS,
    NAMESPACE,
    ALLOWED_ORIGINS,
    ROOM_TICKET_SECRET,
    ROOM_TICKET_PUBLIC_KEY,
    TICKET_ISSUER,
    TICKET_AUDIENCE,
    TICKET_LEEWAY_SECS,
    TICKET_MAX_LIFETIME_SECS,
    TICKET_REQUIRE_SUB,
    REQUIRE_TICKETS,
    CONNECTS_PER_MINUTE_PER_IP,
    CONNECT_BURST_PER_IP,
    IPV6_PREFIX_BITS,
    DEMO,
    LOCAL_DEV,
    DEBUG_ENDPOINTS,
    ICE_PROVIDER,
    ICE_SERVERS,
    TURN_URLS,
    STUN_URLS,
    TURN_SECRET,
    CLOUDFLARE_TURN_KEY_ID,
    CLOUDFLARE_TURN_API_TOKEN,
    CLOUDFLARE_TURN_BASE_URL,
    ICE_TTL_SECS,
    ADMIN_TOKEN,
    METRICS_TOKEN,
    MAX_PEERS_PER_ROOM,
    MAX_MESSAGE_BYTES,
    PEER_MSGS_PER_SEC,
    ALIVE_TIMEOUT_MS,
    LIVENESS_SWEEP_MS,
    EXPIRE_TIMEOUT_MS,
    LEAVE_GRACE_MS,
    MAX_QUEUED_MESSAGES,
    MAX_QUEUED_BYTES,
    MAX_QUEUED_PER_SENDER,
    OPEN_GROUP_SEPARATOR,
    MAX_PEERS_PER_GROUP,
    MAX_NEW_DESTINATIONS_PER_MINUTE,
    STATS_SHARDS,
    STATS_REPORTS,
    STATS_TTL_MS,
    INTERNAL_SECRET,
    INTERNAL_SECRET_PREVIOUS,
    LOG_LEVEL,
];

/// The configuration table of `docs/reference.md`, one row per setting.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| setting | tier | default | range | secret | meaning |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for s in ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            s.name,
            s.tier.label(),
            s.default_cell(),
            s.range_cell(),
            s.secret_cell(),
            s.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The markers around the generated table in `docs/reference.md`.
    const BEGIN: &str = "<!-- settings table: generated by shared/src/settings.rs -->\n";
    const END: &str = "<!-- end of settings table -->";

    #[test]
    fn the_documented_table_is_the_declared_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reference.md");
        let doc = std::fs::read_to_string(path).expect("docs/reference.md exists");
        let (before, documented, after) = doc
            .split_once(BEGIN)
            .and_then(|(before, rest)| rest.split_once(END).map(|(t, a)| (before, t, a)))
            .expect("docs/reference.md holds the settings table between its markers");
        let declared = markdown_table();
        if documented != declared {
            if std::env::var_os("SETTINGS_TABLE_WRITE").is_some() {
                let fixed = format!("{before}{BEGIN}{declared}{END}{after}");
                std::fs::write(path, fixed).expect("docs/reference.md is writable");
            }
            panic!(
                "docs/reference.md's settings table differs from shared/src/settings.rs;\n\
                 regenerate it with SETTINGS_TABLE_WRITE=1 cargo test -p signaling-core settings\n\
                 declared:\n{declared}"
            );
        }
    }

    #[test]
    fn each_setting_is_declared_once() {
        let mut names: Vec<_> = ALL.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a setting is declared twice");
    }

    #[test]
    fn number_defaults_sit_in_their_range() {
        for s in ALL {
            if let Kind::Number { default, min, max } = s.kind {
                assert!((min..=max).contains(&default), "{}", s.name);
            }
        }
    }

    #[test]
    fn an_alternative_secret_names_a_declared_setting_that_points_back() {
        for s in ALL {
            if let Deploy::RequiredOr(other) = s.deploy {
                let other = ALL.iter().find(|o| o.name == other).expect("declared");
                assert_eq!(other.deploy, Deploy::RequiredOr(s.name));
            }
        }
    }
}
