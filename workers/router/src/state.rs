//! What one router isolate keeps between requests: the parsed configuration
//! (a configuration error is logged once per isolate), the per-client
//! connect limiter and the samplers of its refusal lines. Both are per isolate by nature; the README says so.

use signaling_core::config::{ConfigError, RouterConfig, Settings};
use signaling_core::flood::ConnectLimiter;
use signaling_core::log::{Level, LogEvent, Sampler};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::Env;

thread_local! {
    static CONFIG: RefCell<Option<Rc<Result<RouterConfig, ConfigError>>>> = const { RefCell::new(None) };
    static LIMITER: RefCell<Option<ConnectLimiter>> = const { RefCell::new(None) };
    static RATE_REFUSALS: RefCell<Sampler> = RefCell::new(Sampler::default());
    static ADMIN_REFUSALS: RefCell<Sampler> = RefCell::new(Sampler::default());
}

/// A kind of refusal a client can repeat at will, each logged at most once
/// per isolate per sample window.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// Over the per-client limit.
    RateLimited,
    /// The admin API with a missing or wrong token.
    AdminToken,
}

/// Whether a refusal of this kind may be logged now; `Some(held back)` if so.
pub fn sample_refusal(kind: Refusal, now_ms: u64) -> Option<u32> {
    let sampler = match kind {
        Refusal::RateLimited => &RATE_REFUSALS,
        Refusal::AdminToken => &ADMIN_REFUSALS,
    };
    sampler.with(|sampler| sampler.borrow_mut().admit(now_ms))
}

/// The isolate's configuration, parsed on first use.
pub fn config(env: &Env) -> Rc<Result<RouterConfig, ConfigError>> {
    CONFIG.with(|slot| {
        if let Some(cfg) = slot.borrow().as_ref() {
            return cfg.clone();
        }
        let parsed = Settings::new(|name| glue::setting(env, name)).router();
        if let Err(err) = &parsed {
            let line = LogEvent::new(Level::Error, "config_error")
                .field("setting", err.setting)
                .field("error", err.to_string())
                .render(glue::now_ms(), None);
            worker::console_error!("{}", line);
        }
        let cfg = Rc::new(parsed);
        *slot.borrow_mut() = Some(cfg.clone());
        cfg
    })
}

/// The secret internal requests are signed with, once the configuration is parsed.
pub fn signing_secret() -> Option<String> {
    CONFIG.with(|slot| {
        slot.borrow()
            .as_ref()
            .and_then(|cfg| cfg.as_ref().as_ref().ok()?.internal_secret.clone())
    })
}

/// Counts a connection attempt from the client `key` in this isolate;
/// false when over the limit.
pub fn allow_connect(key: &str, cfg: &RouterConfig) -> bool {
    LIMITER.with(|slot| {
        let mut slot = slot.borrow_mut();
        let limiter = slot
            .get_or_insert_with(|| ConnectLimiter::new(cfg.connects_per_minute, cfg.connect_burst));
        limiter.allow(key, glue::now_ms())
    })
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
}

/// 16 bytes from the runtime's CSPRNG.
pub fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    get_random_values(&mut bytes);
    bytes
}
