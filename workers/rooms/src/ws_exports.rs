//! The Hibernation API's WebSocket events of `GameRoom` and `PeerHome`,
//! exported by hand instead of by `#[durable_object]`, and the declaration
//! of an object that is a host (`host_object!`).
//!
//! Why: the export the macro generates turns every message into a Rust
//! `String` or `Vec<u8>` (a copy into wasm memory) before any of our code
//! runs. The runtime accepts frames of up to 32 MiB, the isolate's wasm
//! memory is shared by every object in it and never shrinks, so a few such
//! frames would pin tens of MiB for good. Here the length is judged first
//! (`glue::read_message`). And each event is settled at once when it can
//! be (`settle.rs`): a relay between live peers returns no Promise.

/// Exports `webSocketMessage`, `webSocketClose` and `webSocketError` for a
/// Durable Object type whose `host` is an `Rc<crate::host::Host>` (shared
/// with the event's future when it has to wait).
// rustfmt re-indents an attribute inside a macro on every run; keep it as written.
#[rustfmt::skip]
macro_rules! websocket_exports {
    ($object:ident) => {
        const _: () = {
            use ::worker::wasm_bindgen::prelude::*;
            use ::worker::wasm_bindgen::JsValue;

            #[wasm_bindgen(
                wasm_bindgen = ::worker::wasm_bindgen,
                wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
                js_sys = ::worker::js_sys
            )]
            impl $object {
                #[wasm_bindgen(js_name = webSocketMessage)]
                pub fn websocket_message_export(
                    &self,
                    ws: ::worker::worker_sys::web_sys::WebSocket,
                    message: JsValue,
                ) -> ::std::result::Result<JsValue, JsValue> {
                    let limit = crate::runtime::message_limit(&self.host.config);
                    let incoming = glue::read_message(&message, limit);
                    drop(message);
                    let host = ::std::rc::Rc::clone(&self.host);
                    crate::settle::settle(Box::pin(async move {
                        host.on_message(ws.into(), incoming).await.map(|()| JsValue::UNDEFINED)
                    }))
                }

                #[wasm_bindgen(js_name = webSocketClose)]
                pub fn websocket_close_export(
                    &self,
                    ws: ::worker::worker_sys::web_sys::WebSocket,
                    code: usize,
                ) -> ::std::result::Result<JsValue, JsValue> {
                    let host = ::std::rc::Rc::clone(&self.host);
                    crate::settle::settle(Box::pin(async move {
                        host.on_closed(ws.into(), Some(code)).await.map(|()| JsValue::UNDEFINED)
                    }))
                }

                #[wasm_bindgen(js_name = webSocketError)]
                pub fn websocket_error_export(
                    &self,
                    ws: ::worker::worker_sys::web_sys::WebSocket,
                ) -> ::std::result::Result<JsValue, JsValue> {
                    let host = ::std::rc::Rc::clone(&self.host);
                    crate::settle::settle(Box::pin(async move {
                        host.on_closed(ws.into(), None).await.map(|()| JsValue::UNDEFINED)
                    }))
                }
            }
        };
    };
}

pub(crate) use websocket_exports;

/// Declares a Durable Object that is a [`crate::host::Host`] whose ids live
/// where `$placement` says: the struct, its `DurableObject` impl
/// (construction; the alarm handed to the host unchanged; the
/// requests every such object answers, a join and the debug view, and the
/// others to the object's own `route`) and its hand-made WebSocket exports.
/// The object brings `join` (its join contract, after the router's
/// signature was checked here) and `route`.
macro_rules! host_object {
    ($object:ident, $placement:expr) => {
        // Hibernation WebSocket events are exported by hand, not by the macro.
        #[durable_object(alarm)]
        pub struct $object {
            host: ::std::rc::Rc<crate::host::Host>,
        }

        impl DurableObject for $object {
            fn new(state: State, env: Env) -> Self {
                $object {
                    host: ::std::rc::Rc::new(crate::host::Host::new(state, env, $placement)),
                }
            }

            async fn fetch(&self, req: Request) -> Result<Response> {
                use signaling_core::contract::{PATH_CONNECT, PATH_PANIC, PATH_STATS, PATH_SWEEP};
                let path = crate::runtime::path_of(&req);
                match path.as_str() {
                    PATH_CONNECT => {
                        // Checked here too, not only at the Worker's entry: a
                        // Worker bound to the namespace directly must not
                        // forge `Proven` either.
                        let config = &self.host.config;
                        if let Err(err) =
                            crate::runtime::verify_contract(config, PATH_CONNECT, &req)
                        {
                            return crate::runtime::json_error(403, &err.to_string());
                        }
                        self.host.event(true, self.join(&req)).await
                    }
                    // Observing the counters must not change them: no wake counted.
                    PATH_STATS => self.host.debug_view().await,
                    PATH_SWEEP => self.host.sweep().await,
                    // The test hook: a deliberate panic, so the tests can
                    // show that every object outlives one (worker-build's
                    // Proxy makes each object again after the wasm instance
                    // is replaced). Without the setting, the object's own 404.
                    PATH_PANIC if self.host.debug_endpoints() => {
                        panic!("deliberate panic: /debug/panic (DEBUG_ENDPOINTS is set)")
                    }
                    _ => self.route(&path, req).await,
                }
            }

            async fn alarm(&self) -> Result<Response> {
                self.host.alarm().await
            }
        }

        crate::ws_exports::websocket_exports!($object);
    };
}

pub(crate) use host_object;
