//! The parts of a request URL the router reads (origin, path, query), cut
//! from the URL string the runtime hands over, without a URL parser.
//!
//! The Workers runtime gives `request.url` already parsed and serialized by
//! the WHATWG URL rules (dot segments resolved, the host lower-cased,
//! characters that need it percent-encoded), so splitting that string is
//! the same as asking a parser for its parts; and the router then needs no
//! URL crate, whose IDNA tables cost about 68 KiB gzipped of wasm.

/// A request URL as the runtime serialized it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// `scheme://authority`, no trailing slash (empty if the URL has none).
    pub origin: &'a str,
    /// From the first `/` after the authority, up to `?` or `#`; `/` if empty.
    pub path: &'a str,
    /// After `?`, up to `#`; empty if there is no query.
    pub query: &'a str,
}

impl<'a> Target<'a> {
    pub fn parse(url: &'a str) -> Self {
        let url = url.split('#').next().unwrap_or("");
        let (before, query) = url.split_once('?').unwrap_or((url, ""));
        let after_scheme = before.find("://").map_or(0, |i| i + 3);
        let (origin, path) = match before[after_scheme..].find('/') {
            Some(i) => before.split_at(after_scheme + i),
            None => (before, ""),
        };
        Target {
            origin,
            path: if path.is_empty() { "/" } else { path },
            query,
        }
    }

    /// The host, without port or userinfo (`[::1]` keeps its brackets).
    pub fn host(&self) -> &'a str {
        let authority = self
            .origin
            .find("://")
            .map_or(self.origin, |i| &self.origin[i + 3..]);
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        match authority.strip_prefix('[') {
            Some(rest) => rest
                .find(']')
                .map_or(authority, |end| &authority[..end + 2]),
            None => authority.split(':').next().unwrap_or(authority),
        }
    }

    /// True when the host is this machine: `localhost` (or a name under
    /// it), `127.0.0.0/8`, `[::1]`.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host.ends_with(".localhost")
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The first value of query parameter `name`, decoded like
    /// `URLSearchParams` (percent-escapes, `+` as space).
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_and_whether_it_is_this_machine() {
        let cases = [
            ("http://127.0.0.1:9000/peerjs?x", "127.0.0.1", true),
            ("http://localhost/", "localhost", true),
            ("http://app.localhost:8787/", "app.localhost", true),
            ("http://[::1]:9000/", "[::1]", true),
            (
                "https://peerjs.game.example/peerjs",
                "peerjs.game.example",
                false,
            ),
            (
                "https://peerjs-router.acct.workers.dev/",
                "peerjs-router.acct.workers.dev",
                false,
            ),
            (
                "https://user@localhost.evil.example/",
                "localhost.evil.example",
                false,
            ),
            ("http://[2001:db8::1]:80/", "[2001:db8::1]", false),
            ("http://10.0.0.1/", "10.0.0.1", false),
        ];
        for (url, host, loopback) in cases {
            let target = Target::parse(url);
            assert_eq!(target.host(), host, "{url}");
            assert_eq!(target.is_loopback(), loopback, "{url}");
        }
    }

    #[test]
    fn splits_origin_path_and_query() {
        let t = Target::parse("https://peer.example:8443/peerjs/peerjs/id?ts=1&x=a+b%21#frag");
        assert_eq!(t.origin, "https://peer.example:8443");
        assert_eq!(t.path, "/peerjs/peerjs/id");
        assert_eq!(t.query, "ts=1&x=a+b%21");
        assert_eq!(t.param("x").as_deref(), Some("a b!"));
        assert_eq!(t.param("missing"), None);
    }

    #[test]
    fn a_bare_origin_has_the_root_path_and_no_query() {
        let t = Target::parse("http://127.0.0.1:9000");
        assert_eq!(
            (t.origin, t.path, t.query),
            ("http://127.0.0.1:9000", "/", "")
        );
        let t = Target::parse("http://127.0.0.1:9000?deep=1");
        assert_eq!((t.path, t.param("deep").as_deref()), ("/", Some("1")));
    }

    #[test]
    fn the_first_value_wins_and_a_question_mark_in_the_query_is_data() {
        let t = Target::parse("http://h/health?deep=1&deep=0&q=a?b");
        assert_eq!(t.param("deep").as_deref(), Some("1"));
        assert_eq!(t.param("q").as_deref(), Some("a?b"));
    }
}
