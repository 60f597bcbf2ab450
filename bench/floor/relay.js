// The platform floor: the least a PeerJS relay on Durable Objects can do,
// so the benchmark can say how much of our cost is the platform's.
//
// Same hibernation rules as our GameRoom: one object per room (the token
// names it), sockets accepted with the Hibernation API and tagged with the
// peer id, HEARTBEAT answered by the runtime's auto-response without waking
// the object, a frame relayed with `src` set from the tag (never trusted
// from the client) to `getWebSockets(dst)`. Nothing else: no validation
// beyond JSON, no queue, no rate limit, no storage, no LEAVE, no stats.
// Never deployed; only `scripts/bench.sh` serves it, on bare workerd.
import { DurableObject } from "cloudflare:workers";

const HEARTBEAT = '{"type":"HEARTBEAT"}';

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    const token = url.searchParams.get("token");
    const id = url.searchParams.get("id");
    if (url.pathname !== "/peerjs" || !token || !id) return new Response("not found", { status: 404 });
    if (request.headers.get("Upgrade") !== "websocket") return new Response("upgrade required", { status: 426 });
    return env.ROOM.get(env.ROOM.idFromName(token)).fetch(request);
  },
};

export class Room extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT, HEARTBEAT));
  }

  async fetch(request) {
    const id = new URL(request.url).searchParams.get("id");
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [id]);
    server.send('{"type":"OPEN"}');
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(ws, message) {
    let frame;
    try { frame = JSON.parse(message); } catch { return; }
    if (typeof frame?.dst !== "string") return;
    frame.src = this.ctx.getTags(ws)[0];
    const out = JSON.stringify(frame);
    for (const peer of this.ctx.getWebSockets(frame.dst)) peer.send(out);
  }

  webSocketClose(ws, code) {
    try { ws.close(code, "closed"); } catch { /* already closed */ }
  }
}
