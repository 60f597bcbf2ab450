//! `GET {mount}{key}/ice-servers`: the STUN/TURN servers for one call,
//! with short-lived TURN credentials, for the bearer of a valid room token
//! (the ticket in production, the room id in local dev). The answer is
//! never cached and no credential is ever logged.

use crate::http::{json, json_error, unauthorized};
use signaling_core::config::{IcePolicy, Namespace, RouterConfig};
use signaling_core::ice::{self, IceServer};
use signaling_core::target::Target;
use worker::*;

pub async fn ice_servers(req: &Request, cfg: &RouterConfig) -> Result<Response> {
    let bearer = req.headers().get("Authorization").ok().flatten();
    let url = req.inner().url();
    let target = Target::parse(&url);
    let token = signaling_core::secret::bearer(bearer.as_deref())
        .map(str::to_owned)
        .or_else(|| target.param("token"))
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return unauthorized(
            "Unauthorized: give the room token as 'Authorization: Bearer <token>' or ?token=",
        );
    };
    let id = target.param("id");
    if let Some(id) = &id {
        if !signaling_core::ids::is_valid_peer_id(id) {
            return json_error(400, &signaling_core::query::QueryError::BadId.to_string());
        }
    }
    let now = glue::now_ms() / 1000;
    // The same rules as a join: a ticket's sub, when given, must be the id.
    let checked = match (cfg.namespace, &id) {
        (Namespace::Rooms, Some(id)) => cfg.tickets.admit(&token, id, now).map(|_| ()),
        (Namespace::Rooms, None) => cfg.tickets.room_of(&token, now).map(|_| ()),
        (Namespace::Open, Some(id)) => cfg.tickets.prove_id(&token, id, now).map(|_| ()),
        (Namespace::Open, None) if cfg.tickets.is_signed() => {
            return json_error(400, "Give ?id= (the ticket's sub) with a ticket");
        }
        (Namespace::Open, None) => Ok(()),
    };
    if let Err(err) = checked {
        return json_error(403, &err.to_string());
    }
    let peer = id.as_deref().unwrap_or("anonymous");
    let servers = match &cfg.ice {
        IcePolicy::Static(list) => list.clone(),
        IcePolicy::TurnSecret {
            stun_urls,
            turn_urls,
            secret,
            ttl_secs,
        } => ice::turn_rest_servers(stun_urls, turn_urls, secret, peer, now, *ttl_secs),
        IcePolicy::Cloudflare {
            base_url,
            key_id,
            api_token,
            ttl_secs,
        } => match cloudflare(base_url, key_id, api_token, *ttl_secs).await {
            Ok(servers) => servers,
            Err(reason) => {
                glue::log(
                    cfg.log_level,
                    None,
                    &signaling_core::log::LogEvent::new(
                        signaling_core::log::Level::Error,
                        "ice_provider_error",
                    )
                    .field("error", reason),
                );
                return json_error(502, "TURN provider unavailable, retry later");
            }
        },
    };
    let mut resp = json(&serde_json::json!({ "iceServers": servers }))?;
    resp.headers_mut().set("Cache-Control", "no-store")?;
    Ok(resp)
}

/// One `generate-ice-servers` call per request: nothing is cached across
/// tickets. The error text names the status, never the token.
async fn cloudflare(
    base_url: &str,
    key_id: &str,
    api_token: &str,
    ttl_secs: u64,
) -> std::result::Result<Vec<IceServer>, String> {
    let url = format!("{base_url}/v1/turn/keys/{key_id}/credentials/generate-ice-servers");
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|e| e.to_string());
    set("Authorization", &format!("Bearer {api_token}"))?;
    set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(ice::cloudflare_request(ttl_secs).into()));
    let request = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    let resp = Fetch::Request(request)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status_code();
    if !(200..300).contains(&status) {
        return Err(format!("generate-ice-servers answered {status}"));
    }
    let text = glue::body_text(resp).await.map_err(|e| e.to_string())?;
    ice::cloudflare_answer(&text).map_err(|e| e.to_string())
}
