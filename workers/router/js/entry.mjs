// The router's entry module: what worker-build generated (`glue.js`: the
// wasm's bindings and the Worker's fetch), after the microtask queue both
// Workers share (`microtasks.mjs` says why). No logic lives here.
import "./microtasks.mjs";
export { default } from "./glue.js";
