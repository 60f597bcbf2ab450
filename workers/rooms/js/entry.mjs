// The rooms Worker's entry module: what worker-build generated
// (`glue.js`: the wasm's bindings, the Worker's fetch and the Durable
// Object classes), with `PeerHome` declared as a class that extends
// `DurableObject`.
//
// Why: the runtime lets one object call a method of another (JS RPC) only
// when the callee's class extends `DurableObject`, and the classes the
// wasm bindings generate do not. A delivery between two homes of the open
// namespace is such a call (`deliver`), which costs far less than a
// `fetch` with a Request and a Response (docs/open-namespace.md, Cost).
// Every event goes on to the wasm object unchanged; no logic lives here.
// Before all of it, the microtask queue both Workers share
// (`microtasks.mjs` says why).
import "./microtasks.mjs";
import { DurableObject } from "cloudflare:workers";
import worker, { GameRoom, PeerHome as WasmPeerHome, StatsShard } from "./glue.js";

export default worker;
export { GameRoom, StatsShard };

export class PeerHome extends DurableObject {
  #home;

  constructor(ctx, env) {
    super(ctx, env);
    this.#home = new WasmPeerHome(ctx, env);
  }

  fetch(request) {
    return this.#home.fetch(request);
  }

  alarm() {
    return this.#home.alarm();
  }

  webSocketMessage(ws, message) {
    return this.#home.webSocketMessage(ws, message);
  }

  webSocketClose(ws, code, reason, wasClean) {
    return this.#home.webSocketClose(ws, code, reason, wasClean);
  }

  webSocketError(ws, error) {
    return this.#home.webSocketError(ws, error);
  }

  // Parcels from another home: `contract` is its signed contract lines,
  // `body` the parcels (signaling_core::delivery). Answers the reply
  // (signaling_core::delivery::Reply, as text).
  deliver(contract, body) {
    return this.#home.deliver(contract, body);
  }
}
