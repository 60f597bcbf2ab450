//! Which endpoint an HTTP request is for, given the configured mount paths.
//!
//! The PeerJS API is served under every mount path (default `/` and
//! `/peerjs/`, matching the stock client's default `path` and the common
//! `path: '/peerjs'`): `{mount}` server info, `{mount}{key}/id`,
//! `{mount}{key}/peers` and the WebSocket at `{mount}peerjs`. A path that
//! fits several mounts is resolved by the first mount (longest first) that
//! gives a match.

/// An endpoint of the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    Metrics,
    /// The demo page (`/demo`) and its files (`/demo/...`), only with `DEMO`.
    Demo(String),
    ServerInfo,
    /// `GET {mount}{key}/id`; the key is not checked, as in the reference.
    NewId,
    /// `GET {mount}{key}/peers`: the room roster.
    Peers,
    /// `GET {mount}{key}/ice-servers`: STUN/TURN servers for one call.
    IceServers,
    /// `{mount}peerjs`: the WebSocket endpoint.
    Socket,
    /// `GET /debug/rooms/{room}`: one room's wake counters (only with `DEBUG_ENDPOINTS`).
    RoomDebug(String),
    /// `GET /debug/homes/{id}`: one open-namespace home's counters, sockets,
    /// stored keys and alarm (only with `DEBUG_ENDPOINTS`).
    HomeDebug(String),
    /// `GET /debug/ghost/{room}`: report a room that then never reports again,
    /// to test that gauges heal (only with `DEBUG_ENDPOINTS`).
    GhostDebug(String),
    /// `GET /debug/panic/{room}`: the room's wasm panics, to test that every
    /// object outlives it (only with `DEBUG_ENDPOINTS`, in both tiers).
    PanicDebug(String),
    /// `/admin/rooms/{room}...`: the moderation API (only with `ADMIN_TOKEN`).
    Admin(AdminCall),
    NotFound,
}

/// One call of the admin API; names are not validated here (the router
/// answers a malformed one with 400, not 404).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCall {
    /// `GET /admin/rooms/{room}`
    Inspect { room: String },
    /// `POST /admin/rooms/{room}/peers/{id}/kick`
    Kick { room: String, peer: String },
    /// `POST /admin/rooms/{room}/close`
    Close { room: String },
}

impl AdminCall {
    pub fn room(&self) -> &str {
        match self {
            AdminCall::Inspect { room }
            | AdminCall::Kick { room, .. }
            | AdminCall::Close { room } => room,
        }
    }

    /// The HTTP method the call answers to.
    pub fn method(&self) -> &'static str {
        match self {
            AdminCall::Inspect { .. } => "GET",
            AdminCall::Kick { .. } | AdminCall::Close { .. } => "POST",
        }
    }

    /// Its name in logs.
    pub fn action(&self) -> &'static str {
        match self {
            AdminCall::Inspect { .. } => "inspect",
            AdminCall::Kick { .. } => "kick",
            AdminCall::Close { .. } => "close",
        }
    }
}

fn admin_call(rest: &str) -> Option<AdminCall> {
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let call = match segments.as_slice() {
        [room] => AdminCall::Inspect {
            room: decode_segment(room),
        },
        [room, "close"] => AdminCall::Close {
            room: decode_segment(room),
        },
        [room, "peers", peer, "kick"] => AdminCall::Kick {
            room: decode_segment(room),
            peer: decode_segment(peer),
        },
        _ => return None,
    };
    Some(call)
}

/// A path segment as the name it stands for: ids may hold spaces, which a
/// browser or curl sends as `%20`. A segment that does not decode to UTF-8
/// is kept as sent, and fails the name check with a 400 like any bad name.
fn decode_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_or_else(|_| segment.to_owned(), |name| name.into_owned())
}

/// Classifies `path` (no query string).
pub fn route(mounts: &[String], path: &str) -> Endpoint {
    match path {
        "/health" => return Endpoint::Health,
        "/metrics" => return Endpoint::Metrics,
        "/demo" | "/demo/" => return Endpoint::Demo("/demo/index.html".into()),
        _ => {}
    }
    if let Some(file) = path.strip_prefix("/demo/") {
        let plain = file.split('/').all(|seg| {
            !seg.is_empty()
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        });
        return if plain {
            Endpoint::Demo(path.to_owned())
        } else {
            Endpoint::NotFound
        };
    }
    if let Some(room) = path.strip_prefix("/debug/rooms/") {
        return Endpoint::RoomDebug(room.to_owned());
    }
    if let Some(id) = path.strip_prefix("/debug/homes/") {
        return Endpoint::HomeDebug(id.to_owned());
    }
    if let Some(room) = path.strip_prefix("/debug/ghost/") {
        return Endpoint::GhostDebug(room.to_owned());
    }
    if let Some(room) = path.strip_prefix("/debug/panic/") {
        return Endpoint::PanicDebug(room.to_owned());
    }
    if let Some(rest) = path.strip_prefix("/admin/rooms/") {
        return admin_call(rest).map_or(Endpoint::NotFound, Endpoint::Admin);
    }
    for mount in mounts {
        let Some(rest) = path.strip_prefix(mount.as_str()) else {
            continue;
        };
        let endpoint = match rest {
            "" => Endpoint::ServerInfo,
            "peerjs" => Endpoint::Socket,
            _ => match rest.split_once('/') {
                Some((key, "id")) if is_key_segment(key) => Endpoint::NewId,
                Some((key, "peers")) if is_key_segment(key) => Endpoint::Peers,
                Some((key, "ice-servers")) if is_key_segment(key) => Endpoint::IceServers,
                _ => continue,
            },
        };
        return endpoint;
    }
    Endpoint::NotFound
}

fn is_key_segment(key: &str) -> bool {
    !key.is_empty() && !key.contains('/')
}

/// The server-info body, identical to the reference server's `app.json`.
pub const SERVER_INFO: &str = r#"{"name":"PeerJS Server","description":"A server side element to broker connections between PeerJS clients.","website":"https://peerjs.com/"}"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> Vec<String> {
        crate::config::parse_mounts("/,/peerjs/").expect("valid")
    }

    #[test]
    fn both_default_mounts_serve_the_api() {
        let m = mounts();
        assert_eq!(route(&m, "/"), Endpoint::ServerInfo);
        assert_eq!(route(&m, "/peerjs/"), Endpoint::ServerInfo);
        assert_eq!(
            route(&m, "/peerjs"),
            Endpoint::Socket,
            "stock default path '/'"
        );
        assert_eq!(
            route(&m, "/peerjs/peerjs"),
            Endpoint::Socket,
            "path '/peerjs'"
        );
        assert_eq!(
            route(&m, "/peerjs/id"),
            Endpoint::NewId,
            "key 'peerjs' under '/'"
        );
        assert_eq!(route(&m, "/peerjs/peerjs/id"), Endpoint::NewId);
        assert_eq!(route(&m, "/anykey/id"), Endpoint::NewId);
        assert_eq!(route(&m, "/peerjs/peers"), Endpoint::Peers);
        assert_eq!(route(&m, "/peerjs/peerjs/peers"), Endpoint::Peers);
    }

    #[test]
    fn fixed_endpoints_and_unknown_paths() {
        let m = mounts();
        assert_eq!(route(&m, "/health"), Endpoint::Health);
        assert_eq!(route(&m, "/metrics"), Endpoint::Metrics);
        assert_eq!(
            route(&m, "/demo"),
            Endpoint::Demo("/demo/index.html".into())
        );
        assert_eq!(
            route(&m, "/demo/vendor/peerjs.min.js"),
            Endpoint::Demo("/demo/vendor/peerjs.min.js".into())
        );
        assert_eq!(route(&m, "/demo/../secret"), Endpoint::NotFound);
        assert_eq!(
            route(&m, "/debug/rooms/r1"),
            Endpoint::RoomDebug("r1".into())
        );
        assert_eq!(
            route(&m, "/debug/homes/alice"),
            Endpoint::HomeDebug("alice".into())
        );
        assert_eq!(
            route(&m, "/debug/panic/r1"),
            Endpoint::PanicDebug("r1".into())
        );
        assert_eq!(route(&m, "/nope"), Endpoint::NotFound);
        assert_eq!(route(&m, "/peerjs/id/extra"), Endpoint::NotFound);
        assert_eq!(route(&m, "//id"), Endpoint::NotFound);
    }

    #[test]
    fn a_single_custom_mount() {
        let m = crate::config::parse_mounts("/signal").expect("valid");
        assert_eq!(route(&m, "/signal/peerjs"), Endpoint::Socket);
        assert_eq!(route(&m, "/signal/k/id"), Endpoint::NewId);
        assert_eq!(route(&m, "/peerjs"), Endpoint::NotFound);
    }

    #[test]
    fn server_info_is_the_reference_json() {
        let v: serde_json::Value = serde_json::from_str(SERVER_INFO).expect("JSON");
        assert_eq!(v["name"], "PeerJS Server");
    }

    #[test]
    fn admin_calls_are_routed_by_shape_and_anything_else_under_admin_is_not_found() {
        let m = mounts();
        assert_eq!(
            route(&m, "/admin/rooms/r1"),
            Endpoint::Admin(AdminCall::Inspect { room: "r1".into() })
        );
        assert_eq!(
            route(&m, "/admin/rooms/r1/close"),
            Endpoint::Admin(AdminCall::Close { room: "r1".into() })
        );
        assert_eq!(
            route(&m, "/admin/rooms/r1/peers/bob/kick"),
            Endpoint::Admin(AdminCall::Kick {
                room: "r1".into(),
                peer: "bob".into()
            })
        );
        for path in [
            "/admin/rooms/",
            "/admin/rooms//close",
            "/admin/rooms/r1/peers/bob",
            "/admin/rooms/r1/peers//kick",
            "/admin/rooms/r1/open",
            "/admin/rooms/r1/close/now",
        ] {
            assert_eq!(route(&m, path), Endpoint::NotFound, "{path}");
        }
    }

    #[test]
    fn admin_names_are_percent_decoded_per_segment() {
        let m = mounts();
        // A browser or curl sends the id "Player 1" as "Player%201".
        assert_eq!(
            route(&m, "/admin/rooms/game%2D7/peers/Player%201/kick"),
            Endpoint::Admin(AdminCall::Kick {
                room: "game-7".into(),
                peer: "Player 1".into()
            })
        );
        // An encoded slash stays inside its segment (and fails validation
        // later as a name), and bad escapes are passed on undecoded.
        assert_eq!(
            route(&m, "/admin/rooms/a%2Fb/close"),
            Endpoint::Admin(AdminCall::Close { room: "a/b".into() })
        );
        assert_eq!(
            route(&m, "/admin/rooms/r%FF1"),
            Endpoint::Admin(AdminCall::Inspect {
                room: "r%FF1".into()
            })
        );
    }
}
