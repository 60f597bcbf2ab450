//! Reading the settings: each value parsed and validated against its
//! declaration in `settings.rs` (name, default, range), and the rules that
//! tie settings together.
//!
//! Settings arrive as strings (wrangler `[vars]` and secrets). A bad value is
//! a [`ConfigError`] naming the setting: the Workers log it, answer `/health`
//! with 500 and refuse requests, never silently falling back to a default.

use crate::cors::AllowedOrigins;
use crate::log::Level;
use crate::peer::Limits;
use crate::settings::{self as declared, Kind, Setting};
use crate::ticket::{TicketKey, TicketLimits, TicketPolicy};
use jwt_simple::prelude::{Ed25519PublicKey, HS256Key};

/// A setting with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error in {setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

/// The shortest `ADMIN_TOKEN` accepted.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 24;

fn bad(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

/// Reads settings through a lookup function (the Worker's `env`).
pub struct Settings<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn new(lookup: F) -> Self {
        Settings { lookup }
    }

    /// A trimmed, non-empty value.
    fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    // The four readers taking a `&Setting` are inlined and hand on plain
    // values (name, range, default): a reference into the declared
    // constant would link the whole declaration, doc line included, into
    // the Workers (about 1.2 KiB gzipped of text the rooms Worker never shows).

    /// A text setting, its declared default when unset.
    #[inline(always)]
    fn text_or_default(&self, setting: &Setting) -> String {
        let default = match setting.kind {
            Kind::Text { default } => default,
            _ => "",
        };
        self.text(setting.name)
            .unwrap_or_else(|| default.to_owned())
    }

    /// A number setting, its declared default when unset.
    #[inline(always)]
    fn number(&self, setting: &Setting) -> Result<u64, ConfigError> {
        self.number_or(setting, setting.number_default())
    }

    /// A number setting, `default` when unset (a derived default).
    #[inline(always)]
    fn number_or(&self, setting: &Setting, default: u64) -> Result<u64, ConfigError> {
        let (min, max) = match setting.kind {
            Kind::Number { min, max, .. } | Kind::Derived { min, max } => (min, max),
            Kind::Flag { .. } | Kind::Text { .. } => (0, u64::MAX),
        };
        self.number_within(setting.name, min..=max, default)
    }

    fn number_within(
        &self,
        name: &'static str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let Some(text) = self.text(name) else {
            return Ok(default);
        };
        let value: u64 = text
            .parse()
            .map_err(|_| bad(name, format!("{text:?} is not a whole number")))?;
        if !range.contains(&value) {
            let (min, max) = range.into_inner();
            return Err(bad(name, format!("{value} is outside {min}..={max}")));
        }
        Ok(value)
    }

    #[inline(always)]
    fn flag(&self, setting: &Setting) -> Result<bool, ConfigError> {
        self.flag_named(
            setting.name,
            matches!(setting.kind, Kind::Flag { default: true }),
        )
    }

    fn flag_named(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.text(name).map(|t| t.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(bad(name, format!("{other:?} is not true or false"))),
        }
    }

    /// A secret shared by both tiers, at least 32 bytes when set.
    fn internal_secret(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match self.text(name) {
            Some(secret) if secret.len() < 32 => Err(bad(name, "must be at least 32 bytes")),
            other => Ok(other),
        }
    }

    /// Whoever holds it can remove any player, so a guessable one is refused.
    fn admin_token(&self) -> Result<Option<String>, ConfigError> {
        match self.text("ADMIN_TOKEN") {
            Some(token) if token.len() < MIN_ADMIN_TOKEN_BYTES => Err(bad(
                "ADMIN_TOKEN",
                format!("must be at least {MIN_ADMIN_TOKEN_BYTES} bytes"),
            )),
            other => Ok(other),
        }
    }

    fn log_level(&self) -> Result<Level, ConfigError> {
        match self.text("LOG_LEVEL") {
            None => Ok(Level::Info),
            Some(t) => Level::parse(&t).ok_or_else(|| {
                bad(
                    "LOG_LEVEL",
                    format!("{t:?} is not one of debug, info, warn, error"),
                )
            }),
        }
    }

    /// The rooms Worker's settings.
    pub fn rooms(&self) -> Result<RoomsWorkerConfig, ConfigError> {
        let limits = Limits {
            max_peers: self.number(&declared::MAX_PEERS_PER_ROOM)? as usize,
            max_message_bytes: self.number(&declared::MAX_MESSAGE_BYTES)? as usize,
            expire_timeout_ms: self.number(&declared::EXPIRE_TIMEOUT_MS)?,
            leave_grace_ms: self.number(&declared::LEAVE_GRACE_MS)?,
            alive_timeout_ms: self.number(&declared::ALIVE_TIMEOUT_MS)?,
            sweep_interval_ms: self.number(&declared::LIVENESS_SWEEP_MS)?,
            max_queued_messages: self.number(&declared::MAX_QUEUED_MESSAGES)? as usize,
            max_queued_bytes: self.number(&declared::MAX_QUEUED_BYTES)? as usize,
            max_queued_per_sender: self.number(&declared::MAX_QUEUED_PER_SENDER)? as usize,
            max_peers_per_group: self.number(&declared::MAX_PEERS_PER_GROUP)? as usize,
            max_new_destinations_per_minute: self
                .number(&declared::MAX_NEW_DESTINATIONS_PER_MINUTE)?
                as usize,
            peer_msgs_per_sec: self.number(&declared::PEER_MSGS_PER_SEC)? as u32,
            // With reports on, each object's stats shard is its sweeper.
            shard_sweeps: self.flag(&declared::STATS_REPORTS)?,
        };
        // A live room reports at least every liveness sweep, and sweeps come
        // at most `alive + sweep` apart, so its gauge lives 2.5 times that.
        let stats = StatsConfig {
            shards: self.number(&declared::STATS_SHARDS)? as u32,
            gauge_ttl_ms: self.number_or(
                &declared::STATS_TTL_MS,
                (limits.alive_timeout_ms + limits.sweep_interval_ms) * 5 / 2,
            )?,
            reports: self.flag(&declared::STATS_REPORTS)?,
        };
        let internal_secrets = [
            self.internal_secret("INTERNAL_SECRET")?,
            self.internal_secret("INTERNAL_SECRET_PREVIOUS")?,
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(RoomsWorkerConfig {
            limits,
            stats,
            open_group_separator: self.group_separator()?,
            internal_secrets,
            log_level: self.log_level()?,
            debug_endpoints: self.flag(&declared::DEBUG_ENDPOINTS)?,
        })
    }

    /// `OPEN_GROUP_SEPARATOR`: one character a peer id may hold between
    /// words (`-`, `_` or a space), or unset.
    fn group_separator(&self) -> Result<Option<char>, ConfigError> {
        let name = declared::OPEN_GROUP_SEPARATOR.name;
        // Not trimmed away: a space is one of the separators.
        let Some(raw) = (self.lookup)(name).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let text = match raw.trim() {
            "" => raw.as_str(),
            trimmed => trimmed,
        };
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c @ ('-' | '_' | ' ')), None) => Ok(Some(c)),
            _ => Err(bad(
                name,
                format!("{text:?} is not one of `-`, `_` or a space (the characters a peer id may hold between words)"),
            )),
        }
    }

    fn urls(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        let urls: Vec<String> = self
            .text(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        match urls.iter().find(|u| {
            !(u.starts_with("stun:") || u.starts_with("turn:") || u.starts_with("turns:"))
        }) {
            Some(bad_url) => Err(bad(
                name,
                format!("{bad_url:?} is not a stun:, turn: or turns: URL"),
            )),
            None => Ok(urls),
        }
    }

    fn required(&self, name: &'static str, why: &str) -> Result<String, ConfigError> {
        self.text(name)
            .ok_or_else(|| bad(name, format!("required {why}")))
    }

    /// `ICE_PROVIDER` and the settings of the chosen provider.
    fn ice(&self) -> Result<IcePolicy, ConfigError> {
        let ttl_secs = self.number(&declared::ICE_TTL_SECS)?;
        match self.text("ICE_PROVIDER").as_deref() {
            None | Some("static") => {
                let text = self.text_or_default(&declared::ICE_SERVERS);
                let list = crate::json::parse(&text).map_err(|e| {
                    bad(
                        "ICE_SERVERS",
                        format!("not a JSON list of {{urls, username?, credential?}}: {e}"),
                    )
                })?;
                Ok(IcePolicy::Static(list))
            }
            Some("turn-secret") => {
                let turn_urls = self.urls("TURN_URLS")?;
                if turn_urls.is_empty() {
                    return Err(bad("TURN_URLS", "required with ICE_PROVIDER=turn-secret"));
                }
                let secret = self.required("TURN_SECRET", "with ICE_PROVIDER=turn-secret")?;
                if secret.len() < 16 {
                    return Err(bad("TURN_SECRET", "must be at least 16 bytes"));
                }
                Ok(IcePolicy::TurnSecret {
                    stun_urls: self.urls("STUN_URLS")?,
                    turn_urls,
                    secret,
                    ttl_secs,
                })
            }
            Some("cloudflare") => {
                let base_url = self.text_or_default(&declared::CLOUDFLARE_TURN_BASE_URL);
                if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
                    return Err(bad("CLOUDFLARE_TURN_BASE_URL", "not an http(s) URL"));
                }
                let key_id =
                    self.required("CLOUDFLARE_TURN_KEY_ID", "with ICE_PROVIDER=cloudflare")?;
                if !key_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(bad(
                        "CLOUDFLARE_TURN_KEY_ID",
                        "letters, digits, '-' and '_' only",
                    ));
                }
                Ok(IcePolicy::Cloudflare {
                    base_url: base_url.trim_end_matches('/').to_owned(),
                    key_id,
                    api_token: self
                        .required("CLOUDFLARE_TURN_API_TOKEN", "with ICE_PROVIDER=cloudflare")?,
                    ttl_secs,
                })
            }
            Some(_) => Err(bad(
                "ICE_PROVIDER",
                "use 'static', 'turn-secret' or 'cloudflare'",
            )),
        }
    }

    /// The router's settings.
    pub fn router(&self) -> Result<RouterConfig, ConfigError> {
        let peerjs_key = self.text_or_default(&declared::PEERJS_KEY);
        if peerjs_key.len() > 64
            || !peerjs_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad("PEERJS_KEY", "use 1-64 letters, digits, '_' or '-'"));
        }
        let mounts = parse_mounts(&self.text_or_default(&declared::MOUNT_PATHS))?;
        let origins = AllowedOrigins::parse(&self.text_or_default(&declared::ALLOWED_ORIGINS))
            .map_err(|p| bad("ALLOWED_ORIGINS", p))?;
        let require_tickets = self.flag(&declared::REQUIRE_TICKETS)?;
        let leeway_secs = self.number(&declared::TICKET_LEEWAY_SECS)?;
        let secret = self.text("ROOM_TICKET_SECRET");
        let public_key = self.text("ROOM_TICKET_PUBLIC_KEY");
        let key = match (secret, public_key) {
            (Some(_), Some(_)) => return Err(bad(
                "ROOM_TICKET_SECRET",
                "set either ROOM_TICKET_SECRET (HS256) or ROOM_TICKET_PUBLIC_KEY (EdDSA), not both",
            )),
            (Some(secret), None) => {
                if secret.len() < 32 {
                    return Err(bad("ROOM_TICKET_SECRET", "must be at least 32 bytes"));
                }
                Some(TicketKey::Hs256(Box::new(HS256Key::from_bytes(
                    secret.as_bytes(),
                ))))
            }
            (None, Some(pem)) => {
                // A PEM pasted into a single-line var may carry literal "\n".
                let key = Ed25519PublicKey::from_pem(&pem.replace("\\n", "\n")).map_err(|_| {
                    bad(
                        "ROOM_TICKET_PUBLIC_KEY",
                        "not an Ed25519 public key in PEM form",
                    )
                })?;
                Some(TicketKey::EdDsa(Box::new(key)))
            }
            (None, None) => None,
        };
        let limits = TicketLimits {
            max_lifetime_secs: self.number(&declared::TICKET_MAX_LIFETIME_SECS)?,
            require_sub: self.flag(&declared::TICKET_REQUIRE_SUB)?,
        };
        let audience = self.text("TICKET_AUDIENCE");
        if require_tickets && key.is_some() && audience.is_none() {
            // Without an audience, a ticket signed with the same key for any
            // other service of the game's backend would open rooms here.
            return Err(bad(
                "TICKET_AUDIENCE",
                "tickets are required, so name the audience every ticket must carry in aud",
            ));
        }
        let tickets = match key {
            Some(key) => TicketPolicy::Signed {
                key,
                issuer: self.text("TICKET_ISSUER"),
                audience,
                leeway_secs,
                limits,
            },
            None if require_tickets => {
                return Err(bad(
                    "REQUIRE_TICKETS",
                    "tickets are required but neither ROOM_TICKET_SECRET nor ROOM_TICKET_PUBLIC_KEY is set",
                ))
            }
            None => TicketPolicy::RoomIdIsToken,
        };
        let connects_per_minute = self.number(&declared::CONNECTS_PER_MINUTE_PER_IP)? as u32;
        let connect_burst = self.number(&declared::CONNECT_BURST_PER_IP)? as u32;
        let ipv6_prefix_bits = self.number(&declared::IPV6_PREFIX_BITS)? as u8;
        let namespace = match self.text("NAMESPACE").as_deref() {
            None | Some("rooms") => Namespace::Rooms,
            Some("open") => Namespace::Open,
            Some(_) => return Err(bad("NAMESPACE", "use 'rooms' or 'open'")),
        };
        let ice = self.ice()?;
        if ice.hands_out_credentials() && matches!(tickets, TicketPolicy::RoomIdIsToken) {
            // Without a ticket key a token proves nothing, so anyone could
            // take relay bandwidth (and, with Cloudflare, an API call) per request.
            return Err(bad(
                "ICE_PROVIDER",
                "TURN credentials go to ticket holders only: set ROOM_TICKET_SECRET or ROOM_TICKET_PUBLIC_KEY, or use ICE_PROVIDER=static",
            ));
        }
        Ok(RouterConfig {
            namespace,
            peerjs_key,
            mounts,
            origins,
            tickets,
            connects_per_minute,
            connect_burst,
            ipv6_prefix_bits,
            local_dev: self.flag(&declared::LOCAL_DEV)?,
            demo: self.flag(&declared::DEMO)?,
            debug_endpoints: self.flag(&declared::DEBUG_ENDPOINTS)?,
            ice,
            metrics_token: self.text("METRICS_TOKEN"),
            admin_token: self.admin_token()?,
            internal_secret: self.internal_secret("INTERNAL_SECRET")?,
            log_level: self.log_level()?,
        })
    }
}

/// How `/ice-servers` answers (`ICE_PROVIDER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IcePolicy {
    /// `static`: the `ICE_SERVERS` list as it is (STUN-only or fixed
    /// credentials; for local dev).
    Static(Vec<crate::ice::IceServer>),
    /// `turn-secret`: fresh TURN REST API credentials from `TURN_SECRET`.
    TurnSecret {
        stun_urls: Vec<String>,
        turn_urls: Vec<String>,
        secret: String,
        ttl_secs: u64,
    },
    /// `cloudflare`: Cloudflare Realtime TURN's `generate-ice-servers`.
    Cloudflare {
        base_url: String,
        key_id: String,
        api_token: String,
        ttl_secs: u64,
    },
}

impl IcePolicy {
    /// Whether each answer mints fresh TURN credentials (relay bandwidth
    /// the operator pays for), rather than passing on a fixed list.
    pub fn hands_out_credentials(&self) -> bool {
        !matches!(self, IcePolicy::Static(_))
    }
}

/// The rooms Worker's configuration: the peer limits and how objects report.
#[derive(Debug, Clone)]
pub struct RoomsWorkerConfig {
    pub limits: Limits,
    pub stats: StatsConfig,
    /// `OPEN_GROUP_SEPARATOR`: in the open namespace, ids share one object
    /// by the part before it (see `placement.rs`).
    pub open_group_separator: Option<char>,
    /// `INTERNAL_SECRET` and, during a rotation, `INTERNAL_SECRET_PREVIOUS`:
    /// when any is set, internal requests must carry the router's signature.
    pub internal_secrets: Vec<String>,
    pub log_level: Level,
    /// `DEBUG_ENDPOINTS`: answers the router's test hooks that change
    /// something (a deliberate panic); for local tests only.
    pub debug_endpoints: bool,
}

/// How rooms report to the stats shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsConfig {
    /// `STATS_SHARDS`: how many shard objects the reports spread over.
    pub shards: u32,
    /// `STATS_TTL_MS`: a room's gauge is forgotten once its last report is older.
    pub gauge_ttl_ms: u64,
    /// `STATS_REPORTS`: `false` stops rooms reporting (to measure its cost).
    pub reports: bool,
}

/// How peers find each other (`NAMESPACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// `rooms` (default): the `token` names a room (or is a room ticket);
    /// ids are unique within a room.
    Rooms,
    /// `open`: the reference server's one id namespace; the `token` is the
    /// client's own secret (or a ticket whose `sub` is the id).
    Open,
}

/// The router's configuration.
pub struct RouterConfig {
    pub namespace: Namespace,
    pub peerjs_key: String,
    /// Normalised mount paths, each starting and ending with `/`.
    pub mounts: Vec<String>,
    pub origins: AllowedOrigins,
    pub tickets: TicketPolicy,
    pub connects_per_minute: u32,
    pub connect_burst: u32,
    /// `IPV6_PREFIX_BITS`: how much of an IPv6 address names one client.
    pub ipv6_prefix_bits: u8,
    /// `LOCAL_DEV`: the settings are local development's (demo on, no
    /// tickets, high limits); the router then serves loopback hosts only.
    pub local_dev: bool,
    pub demo: bool,
    /// Serves `/debug/rooms/{room}` (wake counters); for local tests only.
    pub debug_endpoints: bool,
    pub metrics_token: Option<String>,
    /// `ADMIN_TOKEN`: the admin API's bearer token; without it the API is off.
    pub admin_token: Option<String>,
    /// `INTERNAL_SECRET`: signs every internal request (see `contract::sign`).
    pub internal_secret: Option<String>,
    /// Where `{mount}{key}/ice-servers` gets its answer (`ICE_PROVIDER`).
    pub ice: IcePolicy,
    pub log_level: Level,
}

/// Parses `MOUNT_PATHS`: comma-separated paths, normalised like the stock
/// client normalises its `path` option (leading and trailing `/`).
pub fn parse_mounts(text: &str) -> Result<Vec<String>, ConfigError> {
    let mut mounts = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let inner = item.trim_matches('/');
        if !inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
            || inner.contains("//")
        {
            return Err(bad("MOUNT_PATHS", format!("{item:?} is not a plain path")));
        }
        let path = if inner.is_empty() {
            "/".to_owned()
        } else {
            format!("/{inner}/")
        };
        if !mounts.contains(&path) {
            mounts.push(path);
        }
    }
    if mounts.is_empty() {
        return Err(bad("MOUNT_PATHS", "no mount path given"));
    }
    // Longest first, so "/peerjs/" wins over "/" when both match.
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::new(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let rooms = settings(&[]).rooms().expect("defaults are valid");
        assert_eq!(rooms.limits, Limits::default());
        assert_eq!(rooms.limits.max_peers, 4);
        assert_eq!(rooms.limits.alive_timeout_ms, 90_000);
        let stats = StatsConfig {
            shards: 8,
            gauge_ttl_ms: 300_000,
            reports: true,
        };
        assert_eq!(rooms.stats, stats);
        let slower = settings(&[("LIVENESS_SWEEP_MS", "90000")])
            .rooms()
            .expect("valid");
        assert_eq!(slower.stats.gauge_ttl_ms, 450_000, "2.5 x (alive + sweep)");
        let router = settings(&[]).router().expect("defaults are valid");
        assert_eq!(router.peerjs_key, "peerjs");
        assert_eq!(router.mounts, vec!["/peerjs/".to_owned(), "/".to_owned()]);
        assert_eq!(router.origins, AllowedOrigins::Any);
        assert!(matches!(router.tickets, TicketPolicy::RoomIdIsToken));
        assert!(!router.demo);
        assert_eq!(router.admin_token, None, "the admin API is off by default");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: &[(&str, &str)] = &[
            ("MAX_PEERS_PER_ROOM", "0"),
            ("MAX_PEERS_PER_ROOM", "four"),
            ("ALIVE_TIMEOUT_MS", "-1"),
            ("LOG_LEVEL", "loud"),
            ("STATS_SHARDS", "0"),
            ("STATS_SHARDS", "eight"),
            ("STATS_TTL_MS", "soon"),
            ("STATS_REPORTS", "False-ish"),
            ("INTERNAL_SECRET", "short"),
            ("INTERNAL_SECRET_PREVIOUS", "short"),
        ];
        for (name, value) in cases {
            let err = settings(&[(name, value)]).rooms().expect_err(name);
            assert_eq!(err.setting, *name);
            assert!(err.to_string().contains(name));
        }
        let router_cases: &[(&str, &str)] = &[
            ("ALLOWED_ORIGINS", "example.com"),
            ("DEMO", "maybe"),
            ("ROOM_TICKET_SECRET", "short"),
            ("ROOM_TICKET_PUBLIC_KEY", "not a pem"),
            ("MOUNT_PATHS", "/a b/"),
            ("PEERJS_KEY", "a key"),
            ("IPV6_PREFIX_BITS", "8"),
            ("TICKET_MAX_LIFETIME_SECS", "forever"),
            ("TICKET_REQUIRE_SUB", "perhaps"),
            ("ICE_PROVIDER", "mine"),
            ("ICE_SERVERS", "stun:x"),
            ("ICE_TTL_SECS", "5"),
            ("ADMIN_TOKEN", "letmein"),
        ];
        for (name, value) in router_cases {
            let err = settings(&[(name, value)]).router().err().expect(name);
            assert_eq!(err.setting, *name);
        }
    }

    #[test]
    fn requiring_tickets_without_a_key_is_an_error() {
        let err = settings(&[("REQUIRE_TICKETS", "true")])
            .router()
            .err()
            .expect("error");
        assert_eq!(err.setting, "REQUIRE_TICKETS");
        let no_audience = settings(&[
            ("REQUIRE_TICKETS", "true"),
            ("ROOM_TICKET_SECRET", "0123456789abcdef0123456789abcdef"),
        ])
        .router()
        .err()
        .expect("an audience is required with tickets");
        assert_eq!(no_audience.setting, "TICKET_AUDIENCE");
        let ok = settings(&[
            ("REQUIRE_TICKETS", "true"),
            ("ROOM_TICKET_SECRET", "0123456789abcdef0123456789abcdef"),
            ("TICKET_AUDIENCE", "peerjs.game.example"),
        ])
        .router()
        .expect("valid");
        assert!(matches!(ok.tickets, TicketPolicy::Signed { .. }));
    }

    #[test]
    fn each_ice_provider_names_what_it_misses() {
        let err = |pairs: &[(&str, &str)]| settings(pairs).router().err().map(|e| e.setting);
        assert_eq!(err(&[("ICE_PROVIDER", "turn-secret")]), Some("TURN_URLS"));
        assert_eq!(
            err(&[
                ("ICE_PROVIDER", "turn-secret"),
                ("TURN_URLS", "turn:t:3478")
            ]),
            Some("TURN_SECRET")
        );
        assert_eq!(
            err(&[("ICE_PROVIDER", "turn-secret"), ("TURN_URLS", "http://t")]),
            Some("TURN_URLS")
        );
        assert_eq!(
            err(&[("ICE_PROVIDER", "cloudflare")]),
            Some("CLOUDFLARE_TURN_KEY_ID")
        );
        let ok = settings(&[
            ("ICE_PROVIDER", "turn-secret"),
            (
                "TURN_URLS",
                "turn:127.0.0.1:3478?transport=udp, turns:t.example:5349",
            ),
            ("TURN_SECRET", "0123456789abcdef"),
            ("ROOM_TICKET_SECRET", "0123456789abcdef0123456789abcdef"),
        ])
        .router()
        .expect("valid");
        assert!(
            matches!(ok.ice, IcePolicy::TurnSecret { ref turn_urls, ttl_secs: 3_600, .. } if turn_urls.len() == 2)
        );
        let dev = settings(&[]).router().expect("valid");
        assert_eq!(dev.ice, IcePolicy::Static(Vec::new()));
    }

    #[test]
    fn turn_credentials_go_to_ticket_holders_only() {
        let turn = [
            ("ICE_PROVIDER", "turn-secret"),
            ("TURN_URLS", "turn:127.0.0.1:3478"),
            ("TURN_SECRET", "0123456789abcdef"),
        ];
        let cloudflare = [
            ("ICE_PROVIDER", "cloudflare"),
            ("CLOUDFLARE_TURN_KEY_ID", "k"),
            ("CLOUDFLARE_TURN_API_TOKEN", "t"),
        ];
        for provider in [&turn[..], &cloudflare[..]] {
            // Without a ticket key any token would do: an open relay.
            for namespace in ["rooms", "open"] {
                let mut pairs = provider.to_vec();
                pairs.push(("NAMESPACE", namespace));
                let err = settings(&pairs).router().err().expect("refused");
                assert_eq!(err.setting, "ICE_PROVIDER");
                assert!(err.to_string().contains("ROOM_TICKET_SECRET"), "{err}");
            }
            let mut signed = provider.to_vec();
            signed.push(("ROOM_TICKET_SECRET", "0123456789abcdef0123456789abcdef"));
            assert!(settings(&signed).router().is_ok());
        }
    }

    #[test]
    fn mounts_are_normalised_like_the_client_path() {
        assert_eq!(
            parse_mounts("peerjs, /, /a/b").expect("valid"),
            vec!["/peerjs/".to_owned(), "/a/b/".to_owned(), "/".to_owned()]
        );
        assert!(parse_mounts(" , ").is_err());
    }
}
