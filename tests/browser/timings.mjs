// Side-by-side browser timings: the same 4-peer mesh and media call with the
// unmodified client, against our Workers (wrangler dev) and against the
// reference peer@1.0.2. Not a test: prints figures. Run inside a loopback
// namespace, like the suite:
//   unshare -n -- bash -c 'ip link set lo up && node tests/browser/timings.mjs'
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { startDev, freePort, sleep } from '../e2e/lib.mjs';

const root = new URL('../..', import.meta.url).pathname;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns'];

/** A static page with the client, for the reference (which serves no pages). */
async function staticServer() {
  const client = readFileSync(`${root}node_modules/peerjs/dist/peerjs.min.js`);
  const page = '<!doctype html><meta charset="utf-8"><script src="/peerjs.min.js"></script>';
  const port = await freePort();
  const server = createServer((req, res) => {
    if (req.url.startsWith('/peerjs.min.js')) res.end(client);
    else res.end(page);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}/`, close: () => server.close() };
}

async function measure(browser, pageUrl, serverPort, room) {
  const pages = [];
  for (let i = 0; i < 4; i += 1) {
    const page = await (await browser.newContext()).newPage();
    await page.goto(pageUrl);
    pages.push(page);
  }
  const open = await Promise.all(pages.map((p, i) => p.evaluate(async ([i, port, room]) => {
    window.stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const t = performance.now();
    window.peer = new Peer(`${room}t${i}`, { host: '127.0.0.1', port, path: '/', token: room, secure: false, config: { iceServers: [] } });
    peer.on('connection', (c) => c.on('open', () => {}));
    peer.on('call', (call) => { call.answer(window.stream); call.on('stream', (s) => { window.remote = s; }); });
    await new Promise((r) => peer.on('open', r));
    return performance.now() - t;
  }, [i, serverPort, room])));
  const pairs = [];
  for (let i = 0; i < 4; i += 1) for (let j = i + 1; j < 4; j += 1) pairs.push([i, j]);
  const conn = await Promise.all(pairs.map(([i, j]) => pages[i].evaluate((o) => new Promise((r) => {
    const t = performance.now();
    const c = peer.connect(o);
    c.on('open', () => r(performance.now() - t));
  }), `${room}t${j}`)));
  const call = await pages[0].evaluate((callee) => new Promise((r) => {
    const t = performance.now();
    const c = peer.call(callee, window.stream);
    c.on('stream', async (s) => {
      const v = document.createElement('video');
      v.muted = true; v.srcObject = s; document.body.appendChild(v); await v.play();
      v.requestVideoFrameCallback(() => r(performance.now() - t));
    });
  }), `${room}t1`);
  for (const p of pages) await p.context().close();
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { openMedianMs: Math.round(med(open)), openMaxMs: Math.round(Math.max(...open)),
    connectMedianMs: Math.round(med(conn)), connectMaxMs: Math.round(Math.max(...conn)), callToFirstFrameMs: Math.round(call) };
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
const results = {};
const dev = await startDev();
try {
  const port = Number(new URL(dev.base).port);
  await measure(browser, `${dev.base}/demo/harness.html`, port, `warm${Date.now()}`); // first run warms the Workers
  results.ours = await measure(browser, `${dev.base}/demo/harness.html`, port, `room${Date.now()}`);
} finally {
  dev.stop();
}
const refPort = await freePort();
const ref = spawn('node', [`${root}node_modules/peer/dist/bin/peerjs.js`, '--port', String(refPort)], { stdio: 'ignore' });
const statics = await staticServer();
try {
  await sleep(1500);
  await measure(browser, statics.url, refPort, 'warm');
  results.reference = await measure(browser, statics.url, refPort, 'room');
} finally {
  ref.kill();
  statics.close();
}
await browser.close();
console.log(JSON.stringify(results, null, 2));
process.exit(0);
