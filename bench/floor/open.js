// The platform floor of the open namespace: the least a PeerJS relay with
// one Durable Object per peer id can do, so the benchmark can say how much
// of our open namespace's cost is the platform's.
//
// Each id's object (named by the id) holds its socket, accepted with the
// Hibernation API, HEARTBEAT answered by the runtime's auto-response. A
// frame gets `src` from the object's own id (never trusted from the
// client) and goes to the destination id's object, which writes it to its
// socket. How it goes is the `MODE` binding: "rpc" calls the destination's
// `deliver` method (JS RPC), "fetch" sends it a POST. Nothing else: no
// validation beyond JSON, no queue for an offline id, no rate limit, no
// storage, no LEAVE, no EXPIRE, no stats, no signature. Never deployed;
// only `scripts/bench.sh` serves it, on bare workerd (open-rpc.capnp,
// open-fetch.capnp).
import { DurableObject } from "cloudflare:workers";

const HEARTBEAT = '{"type":"HEARTBEAT"}';

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    const id = url.searchParams.get("id");
    if (url.pathname !== "/peerjs" || !url.searchParams.get("token") || !id) {
      return new Response("not found", { status: 404 });
    }
    if (request.headers.get("Upgrade") !== "websocket") return new Response("upgrade required", { status: 426 });
    return env.HOME.get(env.HOME.idFromName(id)).fetch(request);
  },
};

export class Home extends DurableObject {
  #id = null;
  #stubs = new Map(); // dst id -> stub: calls on one stub keep their order

  constructor(ctx, env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT, HEARTBEAT));
  }

  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/deliver") {
      this.deliver(await request.text());
      return new Response(null, { status: 204 });
    }
    const id = url.searchParams.get("id");
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [id]);
    server.send('{"type":"OPEN"}');
    return new Response(null, { status: 101, webSocket: client });
  }

  deliver(text) {
    for (const ws of this.ctx.getWebSockets()) ws.send(text);
  }

  webSocketMessage(ws, message) {
    let frame;
    try { frame = JSON.parse(message); } catch { return; }
    if (typeof frame?.dst !== "string" || frame.dst === "") return;
    this.#id ??= this.ctx.getTags(ws)[0];
    frame.src = this.#id;
    const text = JSON.stringify(frame);
    let stub = this.#stubs.get(frame.dst);
    if (!stub) {
      stub = this.env.HOME.get(this.env.HOME.idFromName(frame.dst));
      this.#stubs.set(frame.dst, stub);
    }
    const sent = this.env.MODE === "rpc"
      ? stub.deliver(text)
      : stub.fetch("https://home/deliver", { method: "POST", body: text });
    sent.catch(() => { /* the floor drops what it cannot deliver */ });
  }

  webSocketClose(ws, code) {
    try { ws.close(code, "closed"); } catch { /* already closed */ }
  }
}
