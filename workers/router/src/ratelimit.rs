//! The Cloudflare rate-limiting binding (`[[ratelimits]]`), called through
//! two JS properties instead of workers-rs's wrapper, whose serde round
//! trip through `serde-wasm-bindgen` cost the router about 10 KiB of
//! gzipped wasm (the bundle has a size budget).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::js_sys::{Object, Promise, Reflect};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

/// Name of the optional binding (docs/reference.md, "Security model").
pub const BINDING: &str = "CONNECT_LIMITER";

#[wasm_bindgen]
extern "C" {
    type RateLimit;
    #[wasm_bindgen(method, catch)]
    fn limit(this: &RateLimit, options: &Object) -> Result<Promise, JsValue>;
}

/// `None` without the binding; else whether `key` is within its limit
/// (`Err` with the runtime's words when the call itself failed).
pub async fn check(env: &Env, key: &str) -> Option<Result<bool, String>> {
    let binding = Reflect::get(env, &JsValue::from_str(BINDING))
        .ok()
        .filter(JsValue::is_object)?;
    let binding: RateLimit = binding.unchecked_into();
    Some(call(&binding, key).await.map_err(|e| format!("{e:?}")))
}

async fn call(binding: &RateLimit, key: &str) -> Result<bool, JsValue> {
    let options = Object::new();
    Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key))?;
    let outcome = JsFuture::from(binding.limit(&options)?).await?;
    Ok(Reflect::get(&outcome, &JsValue::from_str("success"))?
        .as_bool()
        .unwrap_or(true))
}
