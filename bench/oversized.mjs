// Probe, not a test: how much wasm memory the rooms isolate holds after one
// peer sends N oversized frames (default 100 of 30 MiB), on a server started
// with DEBUG_ENDPOINTS=true (`/debug/rooms/{room}` reports the rooms
// isolate's wasm memory). Prints one JSON line.
//   node bench/oversized.mjs http://127.0.0.1:PORT [frames] [MiB]
import WebSocket from 'ws';

const [base = 'http://127.0.0.1:9000', frames = '100', mib = '30'] = process.argv.slice(2);
const room = `big${Date.now()}`;
const wsBase = base.replace(/^http/, 'ws');
const stats = async () => (await (await fetch(`${base}/debug/rooms/${room}`)).json()).wasm_memory_bytes;
const open = (id) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}/peerjs?key=peerjs&id=${id}&token=${room}`, { maxPayload: 64 << 20 });
    ws.once('message', () => resolve(ws)); // OPEN
    ws.once('error', reject);
  });

const a = await open('a');
const b = await open('b');
const before = await stats();
let closed = null;
a.on('close', (code) => (closed ??= { code, after_frames: sent }));
const envelope = '{"type":"OFFER","dst":"b","payload":"';
const frame = `${envelope}${'x'.repeat(Number(mib) * 1024 * 1024 - envelope.length - 2)}"}`;
let sent = 0;
const started = Date.now();
for (; sent < Number(frames) && a.readyState === WebSocket.OPEN; sent += 1) {
  await new Promise((resolve) => a.send(frame, resolve));
}
await new Promise((r) => setTimeout(r, 2_000));
const after = await stats();
console.log(JSON.stringify({
  frames_sent: sent,
  frame_mib: Number(mib),
  wasm_memory_before_mib: +(before / 2 ** 20).toFixed(1),
  wasm_memory_after_mib: +(after / 2 ** 20).toFixed(1),
  sender_closed: closed,
  seconds: (Date.now() - started) / 1000,
}));
a.terminate();
b.terminate();
