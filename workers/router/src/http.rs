//! Request and response helpers: internal requests to the rooms tier, JSON
//! bodies, CORS headers, and refusals delivered after
//! the upgrade (an HTTP error before it is invisible to the stock client,
//! which only reports "network").

use signaling_core::contract;
use signaling_core::cors::OriginDecision;
use signaling_core::frame;
use worker::*;

pub fn json<T: serde::Serialize>(body: &T) -> Result<Response> {
    Response::from_json(body)
}

pub use glue::json_error;

/// `401` naming the scheme the credential goes in (RFC 9110 §11.6.1).
pub fn unauthorized(msg: &str) -> Result<Response> {
    let mut resp = json_error(401, msg)?;
    resp.headers_mut().set("WWW-Authenticate", "Bearer")?;
    Ok(resp)
}

/// Adds the CORS headers the origin decision calls for.
pub fn with_cors(mut resp: Response, decision: &OriginDecision) -> Result<Response> {
    for (name, value) in decision.response_headers() {
        resp.headers_mut().set(name, &value)?;
    }
    Ok(resp)
}

/// Completes the upgrade only to send `{"type":"ERROR","payload":{"msg"}}`
/// and close with `code`, so the stock client shows the reason.
pub fn refuse_socket(msg: &str, code: u16) -> Result<Response> {
    let pair = WebSocketPair::new()?;
    pair.server.accept()?;
    pair.server.send_with_str(frame::render_error(msg))?;
    // A close reason is at most 123 bytes.
    let reason: String = msg.chars().take(120).collect();
    pair.server.close(Some(code), Some(reason))?;
    Response::from_websocket(pair.client)
}

/// A request to the rooms Worker, built from scratch so nothing a client sent
/// crosses over: the contract version plus `headers`.
pub fn internal_request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Result<Request> {
    let h = Headers::new();
    h.set(contract::HEADER_VERSION, &contract::VERSION.to_string())?;
    for (name, value) in headers {
        h.set(name, value)?;
    }
    if let Some(secret) = crate::state::signing_secret() {
        let read = |name: &str| h.get(name).ok().flatten();
        let signature = contract::sign(&secret, path, read, glue::now_ms());
        h.set(contract::HEADER_SIGNATURE, &signature)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h);
    if let Some(body) = body {
        init.with_body(Some(body.into()));
    }
    Request::new_with_init(&format!("{}{path}", crate::INTERNAL_ORIGIN), &init)
}
