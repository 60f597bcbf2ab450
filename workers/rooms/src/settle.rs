//! An event handled to its end before the export returns, when it can be.
//!
//! Why: most WebSocket frames (a relay between live peers) and most
//! deliveries between homes need no storage and no call to another object,
//! so their handler never waits on anything. An `async` export would still
//! hand the runtime a Promise and finish in a later microtask, and a
//! handler that returns a Promise costs the runtime more CPU than one that
//! returns at once: the platform floor with its frame handler made `async`
//! took 15% more server CPU for the same relays (docs/benchmarks-reading.md).
//! So [`settle`] polls the handler's future once, in the export: done, and
//! the export answers at once; not done, and the same future goes on as a
//! Promise the runtime waits for.
//!
//! A future may keep the waker of its first poll (workers-rs's `Delay`
//! does), so every poll, the first included, gets a [`Relay`] waker that
//! wakes whichever task polled last; the Promise's task always polls once
//! when it starts, so a wake before it exists loses nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;

/// A handler's future, boxed: one `settle` (and one Promise task) serves
/// every event.
pub type Handler = Pin<Box<dyn Future<Output = worker::Result<JsValue>>>>;

/// What an export answers: the handler's value if it finished in the first
/// poll (a failure throws), else a Promise of it.
pub fn settle(mut handler: Handler) -> Result<JsValue, JsValue> {
    let relay = Arc::new(Relay::default());
    let waker = Waker::from(Arc::clone(&relay));
    match handler.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(done) => done.map_err(JsValue::from),
        Poll::Pending => {
            let rest = std::future::poll_fn(move |cx| {
                relay.follow(cx.waker());
                handler.as_mut().poll(&mut Context::from_waker(&waker))
            });
            Ok(future_to_promise(async move { rest.await.map_err(JsValue::from) }).into())
        }
    }
}

/// A waker that passes each wake on to the task that polled last.
#[derive(Default)]
struct Relay(Mutex<Option<Waker>>);

impl Relay {
    fn follow(&self, task: &Waker) {
        if let Ok(mut slot) = self.0.lock() {
            match slot.as_ref() {
                Some(known) if known.will_wake(task) => {}
                _ => *slot = Some(task.clone()),
            }
        }
    }
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let task = self.0.lock().ok().and_then(|slot| slot.clone());
        if let Some(task) = task {
            task.wake();
        }
    }
}
