//! Origin policy: which web pages may use the API and open sockets.
//!
//! CORS headers protect the HTTP API only; browsers do not apply CORS to
//! WebSocket upgrades, so the router also refuses an upgrade whose `Origin`
//! is not allowed (403 before the upgrade). Requests without an `Origin`
//! (non-browser clients) are not cross-origin and are let through.

/// The `ALLOWED_ORIGINS` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    Any,
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Parses `*` or a comma-separated list of origins like `https://game.example`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(AllowedOrigins::Any);
        }
        let mut list = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let valid_scheme = item.starts_with("https://") || item.starts_with("http://");
            if !valid_scheme || item.ends_with('/') || item.contains('*') {
                return Err(format!(
                    "{item:?} is not an origin (expected scheme://host[:port], no path)"
                ));
            }
            list.push(item.to_ascii_lowercase());
        }
        if list.is_empty() {
            return Err("empty list (use * to allow every origin)".into());
        }
        Ok(AllowedOrigins::List(list))
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }

    /// Decides a request with this `Origin` header.
    pub fn decide(&self, origin: Option<&str>) -> OriginDecision {
        match origin {
            None => OriginDecision::NoOrigin,
            Some(o) if self.allows(o) => OriginDecision::Allowed(o.to_owned()),
            Some(_) => OriginDecision::Denied,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginDecision {
    /// No `Origin` header: not a cross-origin browser request.
    NoOrigin,
    /// Reflect this origin.
    Allowed(String),
    Denied,
}

/// Methods the API answers.
pub const ALLOW_METHODS: &str = "GET, HEAD, OPTIONS";
/// How long browsers may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 600;

impl OriginDecision {
    /// Headers for an ordinary response. `Vary: Origin` always, since the
    /// answer depends on it.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("Vary", "Origin".to_owned())];
        if let OriginDecision::Allowed(origin) = self {
            headers.push(("Access-Control-Allow-Origin", origin.clone()));
        }
        headers
    }

    /// Headers for a preflight (`OPTIONS`) response; `requested_headers` is
    /// the `Access-Control-Request-Headers` value, reflected when allowed.
    pub fn preflight_headers(
        &self,
        requested_headers: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut headers = self.response_headers();
        if let OriginDecision::Allowed(_) = self {
            headers.push(("Access-Control-Allow-Methods", ALLOW_METHODS.to_owned()));
            let allowed = requested_headers
                .filter(|h| h.len() <= 1024)
                .unwrap_or("Authorization, Content-Type");
            headers.push(("Access-Control-Allow-Headers", allowed.to_owned()));
            headers.push(("Access-Control-Max-Age", PREFLIGHT_MAX_AGE_SECS.to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_reflects_any_origin() {
        let d = AllowedOrigins::Any.decide(Some("https://x.example"));
        assert_eq!(d, OriginDecision::Allowed("https://x.example".into()));
        assert!(d
            .response_headers()
            .contains(&("Access-Control-Allow-Origin", "https://x.example".into())));
        assert!(d.response_headers().contains(&("Vary", "Origin".into())));
    }

    #[test]
    fn a_list_allows_only_its_origins() {
        let o = AllowedOrigins::parse("https://a.example, http://localhost:8080").expect("valid");
        assert!(matches!(
            o.decide(Some("https://a.example")),
            OriginDecision::Allowed(_)
        ));
        assert!(matches!(
            o.decide(Some("HTTPS://A.EXAMPLE")),
            OriginDecision::Allowed(_)
        ));
        assert!(matches!(
            o.decide(Some("http://localhost:8080")),
            OriginDecision::Allowed(_)
        ));
        assert_eq!(
            o.decide(Some("https://evil.example")),
            OriginDecision::Denied
        );
        assert_eq!(
            o.decide(Some("https://a.example.evil")),
            OriginDecision::Denied
        );
        assert_eq!(o.decide(None), OriginDecision::NoOrigin);
        let denied = o.decide(Some("https://evil.example")).response_headers();
        assert!(!denied
            .iter()
            .any(|(k, _)| *k == "Access-Control-Allow-Origin"));
    }

    #[test]
    fn bad_lists_are_configuration_errors() {
        for bad in [
            "",
            " , ",
            "a.example",
            "https://a.example/",
            "https://*.example",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn preflight_lists_methods_headers_and_max_age() {
        let d = AllowedOrigins::Any.decide(Some("https://a.example"));
        let h = d.preflight_headers(Some("authorization"));
        assert!(h.contains(&("Access-Control-Allow-Methods", ALLOW_METHODS.into())));
        assert!(h.contains(&("Access-Control-Allow-Headers", "authorization".into())));
        assert!(h.contains(&("Access-Control-Max-Age", "600".into())));
        let denied = AllowedOrigins::parse("https://b.example")
            .expect("valid")
            .decide(Some("https://a.example"))
            .preflight_headers(None);
        assert!(!denied
            .iter()
            .any(|(k, _)| k.starts_with("Access-Control-Allow")));
    }
}
