//! What the objects keep in storage and in their sockets' attachments,
//! converted by serde_json: one string crosses between wasm and JS.
//!
//! Why not workers-rs's `Storage::get`/`put` and `serialize_attachment`:
//! they convert through `serde_wasm_bindgen`, one call into JS per field,
//! and linking that deserializer (with the float formatting its error
//! messages reach) cost the rooms bundle about 9 KiB gzipped.
//!
//! - Storage keeps structured values, as every earlier build wrote them:
//!   the JSON text is parsed by the runtime (`JSON.parse`) before `put`,
//!   and a value read is turned back into text (`JSON.stringify`; a `Map`,
//!   as earlier builds wrote the counters, first into an object). So a
//!   rollback to an earlier build reads what this one wrote, and this one
//!   reads what they wrote.
//! - An attachment is the JSON text itself (cheaper to clone than an
//!   object); a deploy closes every socket, so no build reads another's.

use serde::{de::DeserializeOwned, Serialize};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::ext::WebSocketExt;
use worker::{js_sys, wasm_bindgen_futures::JsFuture, Result, Storage, WebSocket};

/// The value stored at `key`, `None` when there is none.
pub async fn get<T: DeserializeOwned>(storage: &Storage, key: &str) -> Result<Option<T>> {
    let value = JsFuture::from(storage.as_raw().get(key)?).await?;
    decode(value)
}

/// Stores `value` at `key` (as a structured value, see the header).
pub async fn put<T: Serialize>(storage: &Storage, key: &str, value: &T) -> Result<()> {
    let structured = js_sys::JSON::parse(&serde_json::to_string(value)?)?;
    storage.put_raw(key, structured).await
}

/// Stores `text` at `key` as it is (a frame of the offline queue).
pub async fn put_text(storage: &Storage, key: &str, text: &str) -> Result<()> {
    storage.put_raw(key, JsValue::from_str(text)).await
}

/// The entries whose keys start with `prefix`, at most `limit` of them
/// (their values for [`decode`]).
pub async fn list_prefixed(storage: &Storage, prefix: &str, limit: usize) -> Result<js_sys::Map> {
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"prefix".into(), &prefix.into())?;
    js_sys::Reflect::set(&options, &"limit".into(), &(limit as f64).into())?;
    let listed = JsFuture::from(storage.as_raw().list_with_options(options)?).await?;
    Ok(listed.dyn_into::<js_sys::Map>()?)
}

/// A structured value read from storage; `None` for nothing (undefined
/// or null).
pub fn decode<T: DeserializeOwned>(value: JsValue) -> Result<Option<T>> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let value = match value.dyn_into::<js_sys::Map>() {
        Ok(map) => js_sys::Object::from_entries(&map)?.into(),
        Err(value) => value,
    };
    let text = js_sys::JSON::stringify(&value)?;
    Ok(Some(signaling_core::json::parse(&String::from(text))?))
}

/// The attachment `ws` carries through hibernation (JSON text), `None`
/// before the first.
pub fn attachment<T: DeserializeOwned>(ws: &WebSocket) -> Result<Option<T>> {
    let socket: &worker::worker_sys::web_sys::WebSocket = ws.as_ref();
    match socket.deserialize_attachment()?.as_string() {
        Some(text) => Ok(Some(signaling_core::json::parse(&text)?)),
        None => Ok(None),
    }
}

/// Sets the attachment of `ws` (the runtime allows 2,048 bytes).
pub fn attach<T: Serialize>(ws: &WebSocket, value: &T) -> Result<()> {
    let socket: &worker::worker_sys::web_sys::WebSocket = ws.as_ref();
    let text = serde_json::to_string(value)?;
    socket.serialize_attachment(JsValue::from_str(&text))?;
    Ok(())
}
