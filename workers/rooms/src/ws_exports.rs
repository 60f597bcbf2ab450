//! The Hibernation API's WebSocket events of `GameRoom` and `PeerHome`,
//! exported by hand instead of by `#[durable_object]`, and the declaration
//! of an object that is a host (`host_object!`).
//!
//! Why: the export the macro generates turns every message into a Rust
//! `String` or `Vec<u8>` (a copy into wasm memory) before any of our code
//! runs. The runtime accepts frames of up to 32 MiB, the isolate's wasm
//! memory is shared by every object in it and never shrinks, so a few such
//! frames would pin tens of MiB for good. Here the length is judged first
//! (`glue::read_message`); close and error go on to the `DurableObject`
//! trait exactly as the macro would send them.

/// Exports `webSocketMessage`, `webSocketClose` and `webSocketError` for a
/// Durable Object type whose `host` is a `crate::host::Host`.
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
                pub async fn websocket_message_export(
                    &self,
                    ws: ::worker::worker_sys::web_sys::WebSocket,
                    message: JsValue,
                ) -> ::std::result::Result<JsValue, JsValue> {
                    ::std::panic::AssertUnwindSafe(async move {
                        let limit = crate::runtime::message_limit(&self.host.config);
                        let incoming = glue::read_message(&message, limit);
                        drop(message);
                        self.host.on_message(ws.into(), incoming)
                            .await
                            .map(|_| JsValue::NULL)
                            .map_err(JsValue::from)
                    })
                    .await
                }

                #[wasm_bindgen(js_name = webSocketClose)]
                pub async fn websocket_close_export(
                    &self,
                    ws: ::worker::worker_sys::web_sys::WebSocket,
                    code: usize,
                    reason: String,
                    was_clean: bool,
                ) -> ::std::result::Result<JsValue, JsValue> {
                    ::std::panic::AssertUnwindSafe(async move {
                        <Self as ::worker::DurableObject>::websocket_close(
                            self,
                            ws.into(),
                            code,
                            reason,
                            was_clean,
                        )
                        .await
                        .map(|_| JsValue::NULL)
                        .map_err(JsValue::from)
                    })
                    .await
                }

                #[wasm_bindgen(js_name = webSocketError)]
                pub async fn websocket_error_export(
                    &self,
                    ws: ::worker::worker_sys::web_sys::WebSocket,
                    error: JsValue,
                ) -> ::std::result::Result<JsValue, JsValue> {
                    ::std::panic::AssertUnwindSafe(async move {
                        <Self as ::worker::DurableObject>::websocket_error(
                            self,
                            ws.into(),
                            error.into(),
                        )
                        .await
                        .map(|_| JsValue::NULL)
                        .map_err(JsValue::from)
                    })
                    .await
                }
            }
        };
    };
}

pub(crate) use websocket_exports;

/// Declares a Durable Object that is a [`crate::host::Host`] whose ids live
/// where `$placement` says: the struct, its `DurableObject` impl
/// (construction; close, error and alarm handed to the host unchanged; the
/// requests every such object answers, a join and the debug view, and the
/// others to the object's own `route`) and its hand-made WebSocket exports.
/// The object brings `join` (its join contract, after the router's
/// signature was checked here) and `route`.
macro_rules! host_object {
    ($object:ident, $placement:expr) => {
        // Hibernation WebSocket events are exported by hand, not by the macro.
        #[durable_object(alarm)]
        pub struct $object {
            host: crate::host::Host,
        }

        impl DurableObject for $object {
            fn new(state: State, env: Env) -> Self {
                $object {
                    host: crate::host::Host::new(state, env, $placement),
                }
            }

            async fn fetch(&self, req: Request) -> Result<Response> {
                use signaling_core::contract::{PATH_CONNECT, PATH_STATS, PATH_SWEEP};
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
                    _ => self.route(&path, req).await,
                }
            }

            async fn websocket_close(
                &self,
                ws: WebSocket,
                code: usize,
                _reason: String,
                _clean: bool,
            ) -> Result<()> {
                self.host.on_closed(ws, Some(code)).await
            }

            async fn websocket_error(&self, ws: WebSocket, _error: Error) -> Result<()> {
                self.host.on_closed(ws, None).await
            }

            async fn alarm(&self) -> Result<Response> {
                self.host.alarm().await
            }
        }

        crate::ws_exports::websocket_exports!($object);
    };
}

pub(crate) use host_object;
