// Both Workers' microtask queue for their Rust futures: imported first by
// each entry module (workers/*/js/entry.mjs), copied beside it at build.
//
// wasm-bindgen's task queue (js-sys `futures::queue`) calls the global
// `queueMicrotask` each time a Rust future is woken: several times per
// join, report and alarm. workerd's `queueMicrotask` wraps every task in
// runtime objects that survive V8's minor collections, so they pile up in
// the old generation until a full (mark-compact) collection, which stops
// the whole process (28-109 ms each, measured on bare workerd): the tail of
// connect->OPEN (docs/benchmarks-reading.md, "Spot checks of 2026-12-07,
// night"). A settled Promise's `then` queues the same kind of microtask,
// in the same order, with nothing that outlives it. A task that throws
// becomes an unhandled rejection, which the runtime logs, as it logs an
// error thrown from a `queueMicrotask` task.
const settled = Promise.resolve();
globalThis.queueMicrotask = (task) => void settled.then(task);
