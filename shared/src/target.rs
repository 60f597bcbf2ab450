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
