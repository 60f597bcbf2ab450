// What the browser suites share: Chromium launched for loopback WebRTC, one
// page per peer with the unmodified peerjs@1.5.5 client and small helpers
// (`window.h`) installed, and polling with generous deadlines.
//
// Why the flags below: loopback ICE candidates are only gathered with --allow-loopback-in-peer-connection, and only shown as IPs (not mDNS
// names, which nothing resolves here) with WebRtcHideLocalIpsWithMdns off;
// fake media devices and auto-accepted permission prompts stand in for a
// camera; the background-networking, component-update, sync and QUIC flags
// keep Chromium from reaching for the internet, which the namespace has not.
import { chromium } from 'playwright-core';
import { sleep } from '../e2e/lib.mjs';

export function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
}

/**
 * One peer: its own context and page with the client loaded and helpers
 * installed. Given an existing peer's `{ context, page }`, the page loads
 * again instead (a reload: the old page's unload closes its socket).
 */
export async function newPeer(browser, base, existing) {
  const context = existing?.context ?? (await browser.newContext());
  const page = existing?.page ?? (await context.newPage());
  await page.goto(`${base}/demo/harness.html`);
  await page.evaluate(() => {
    window.events = [];
    window.conns = {};
    window.received = {};
    window.h = {
      // Creates the Peer; resolves with {open: id} or {error: {type, message}}.
      start(id, token, extra = {}) {
        const started = performance.now();
        return new Promise(async (resolve) => {
          // Media permission makes Chromium enumerate loopback candidates.
          window.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
          const server = { host: location.hostname, port: Number(location.port), secure: false };
          // token === null: configured as an existing app is, with host,
          // port and path only (the client makes up its token, ICE servers
          // are its defaults, unreachable here, so only host candidates).
          const opts = token === null
            ? { ...server, path: '/peerjs', ...extra }
            : { ...server, path: '/', token, config: { iceServers: [] }, ...extra };
          const peer = id ? new Peer(id, opts) : new Peer(opts);
          window.peer = peer;
          peer.on('open', (pid) => { events.push(['open', pid]); resolve({ open: pid, ms: performance.now() - started }); });
          peer.on('error', (e) => { events.push(['error', e.type, e.message]); resolve({ error: { type: e.type, message: e.message } }); });
          peer.on('disconnected', () => events.push(['disconnected']));
          peer.on('connection', (c) => h.track(c));
          peer.on('call', (call) => {
            call.answer(window.stream);
            window.call = call;
            call.on('stream', (s) => { window.remote = s; });
          });
        });
      },
      track(c) {
        conns[c.peer] = c;
        c.on('data', (d) => {
          const bytes = d instanceof ArrayBuffer ? new Uint8Array(d) : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : null;
          (received[c.peer] ??= []).push(bytes ? { bytes: bytes.length, sum: bytes.reduce((a, b) => (a + b) % 65521, 0) } : d);
        });
        c.on('close', () => events.push(['close', c.peer, performance.now()]));
        return new Promise((resolve) => (c.open ? resolve() : c.on('open', resolve)));
      },
      connect(other) {
        const started = performance.now();
        const c = peer.connect(other, { reliable: true });
        return Promise.race([
          h.track(c).then(() => ({ ok: performance.now() - started })),
          new Promise((r) => peer.on('error', (e) => r({ error: { type: e.type, message: e.message } }))),
          new Promise((r) => setTimeout(() => r({ error: { type: 'timeout' } }), 60000)),
        ]);
      },
      waitOpen(other) {
        return new Promise((resolve) => {
          const check = () => (conns[other]?.open ? resolve(true) : setTimeout(check, 50));
          check();
        });
      },
      send(other, data) { conns[other].send(data); },
      got(other) { return received[other] ?? []; },
    };
  });
  return { context, page, eval: (fn, arg) => page.evaluate(fn, arg) };
}

export const start = (p, id, token, extra) => p.eval(([i, t, e]) => h.start(i, t, e), [id, token, extra]);
/** Polls `fn` in the page until it holds; generous: a busy machine is slow, not wrong. */
export const until = async (p, fn, arg, ms = 30000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await p.eval(fn, arg)) return true;
    await sleep(100);
  }
  return false;
};

/**
 * Plays the page's remote stream (`window.remote`, set when a call is
 * answered) in a video element and waits for `frames` decoded frames;
 * answers the video's size and the frames counted.
 */
export const decodeRemoteFrames = (p, frames) => p.eval(async (wanted) => {
  const v = document.createElement('video');
  v.muted = true;
  v.autoplay = true;
  v.srcObject = window.remote;
  document.body.appendChild(v);
  await v.play();
  let count = 0;
  await new Promise((resolve) => {
    const tick = () => { count += 1; if (count >= wanted) resolve(); else v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
  });
  return { w: v.videoWidth, h: v.videoHeight, count, t: v.currentTime };
}, frames);
