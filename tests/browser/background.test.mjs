// Players' tabs in the background, against the deployed defaults
// (ALIVE_TIMEOUT_MS and LIVENESS_SWEEP_MS as shipped, not the test env's).
//
// Chromium throttles the timers of a hidden page: after a grace period
// (5 minutes; 10 s here, the only setting changed) a chain of timers wakes
// once a minute, unless the page uses WebRTC. The stock client heartbeats by
// a setTimeout chain, so a hidden lobby tab sends one HEARTBEAT a minute.
// A tab that is really gone (a lid shut, a network dropped under it) keeps
// a half-open socket and says nothing: a frozen page.
//
// Playwright keeps every page 'visible', so this file drives Chromium over
// the DevTools protocol itself: a tab opened after another hides it, as a
// user switching tabs does.
import { test, before, after, TEST_TIMEOUT_MS } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { startDev, connect, join, sleep, unique, freePort } from '../e2e/lib.mjs';

const HEARTBEAT = '{"type":"HEARTBEAT"}';
let dev;
let chromium;

before(async () => {
  // No --env test: the deployed defaults are what this file is about.
  dev = await startDev({ wranglerEnv: null });
  chromium = await launchChromium();
}, { starts: 1 });

after(async () => {
  // Each step on its own: a Chromium that will not go must not keep the
  // Workers (and this file's process) alive.
  try {
    await chromium?.stop();
  } finally {
    dev?.stop();
  }
});

/** Chromium with its DevTools endpoint, flags as the harness's (loopback WebRTC), no Playwright. */
async function launchChromium() {
  const port = await freePort();
  const profile = mkdtempSync(pathJoin(tmpdir(), 'chromium-bg-'));
  const child = spawn('/usr/bin/chromium', [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--enable-features=IntensiveWakeUpThrottling:grace_period_seconds/10',
    `--remote-debugging-port=${port}`, `--user-data-dir=${profile}`, 'about:blank',
  ], { stdio: 'ignore', detached: true }); // its own process group: stop() kills renderers too
  const endpoint = `http://127.0.0.1:${port}`;
  const sockets = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      await (await fetch(`${endpoint}/json/version`)).json();
      break;
    } catch {
      await sleep(200);
    }
  }
  return {
    /** A new tab in front (the one before it is now hidden), driven by Runtime.evaluate. */
    async tab(url) {
      const target = await (await fetch(`${endpoint}/json/new?${url}`, { method: 'PUT' })).json();
      const ws = new WebSocket(target.webSocketDebuggerUrl);
      sockets.push(ws);
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
      let last = 0;
      const waiting = new Map();
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        waiting.get(m.id)?.(m);
        waiting.delete(m.id);
      };
      const send = (method, params = {}) => new Promise((resolve) => {
        last += 1;
        waiting.set(last, resolve);
        ws.send(JSON.stringify({ id: last, method, params }));
      });
      const evaluate = async (expression) => {
        const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
        if (r.result?.exceptionDetails) throw new Error(JSON.stringify(r.result.exceptionDetails));
        return r.result?.result?.value;
      };
      // Loaded before anything runs in it.
      const loadDeadline = Date.now() + 60_000;
      const loaded = `location.href === ${JSON.stringify(url)} && document.readyState === 'complete'`;
      while (Date.now() < loadDeadline && !(await evaluate(loaded))) await sleep(100);
      return { evaluate, lifecycle: (state) => send('Page.setWebLifecycleState', { state }), close: () => ws.close() };
    },
    /** Kills Chromium and waits for it, then removes its profile (best effort: it is a temp dir). */
    async stop() {
      for (const ws of sockets) ws.close();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
        await Promise.race([exited, sleep(10_000)]);
      }
      try {
        rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
      } catch (e) {
        console.log(`# left Chromium's profile ${profile}: ${e.code ?? e.message}`);
      }
    },
  };
}

/**
 * A stock client (peerjs@1.5.5, unmodified) in its own tab, joined as `id`;
 * each HEARTBEAT it sends is timed in `beats`, each event kept in `events`.
 */
async function player(id, room, { camera = false } = {}) {
  const t = await chromium.tab(`${dev.base}/demo/harness.html`);
  const opened = await t.evaluate(`(async () => {
    window.beats = []; window.events = []; window.conns = [];
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      if (typeof data === 'string' && data.includes('"HEARTBEAT"')) beats.push(Date.now());
      return send.call(this, data);
    };
    // Media permission is what makes Chromium offer loopback candidates.
    if (${camera}) window.stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const peer = new Peer(${JSON.stringify(id)}, { host: location.hostname, port: Number(location.port), path: '/',
      secure: false, token: ${JSON.stringify(room)}, config: { iceServers: [] } });
    window.peer = peer;
    peer.on('disconnected', () => events.push('disconnected'));
    peer.on('error', (e) => events.push('error ' + e.type));
    peer.on('connection', (c) => { conns.push(c); c.on('close', () => events.push('connection closed')); });
    return new Promise((resolve) => { peer.on('open', resolve); peer.on('error', (e) => resolve(e.type)); });
  })()`);
  assert.equal(opened, id);
  return t;
}

const gapsOf = (beats) => beats.slice(1).map((b, i) => Math.round((b - beats[i]) / 1000));

// Chromium's timers run on minutes here: the waits below are up to 200 s and
// 240 s of real time on top of the usual limit.
const SCENARIO_MS = TEST_TIMEOUT_MS + 440_000;

test('a hidden lobby tab keeps its id and its seat; a tab that is really gone is announced', { timeout: SCENARIO_MS }, async () => {
  const room = unique('bg');
  const host = await join(dev.base, 'host', room);
  const fourth = await join(dev.base, 'fourth', room);
  const beating = setInterval(() => [host, fourth].forEach((c) => c.send(HEARTBEAT)), 5_000);
  try {
    const gone = await player('gone', room);
    const lobby = await player('lobby', room);
    // A pair in a call in another room, hidden too: a page using WebRTC.
    const pairRoom = unique('bgcall');
    const callee = await player('callee', pairRoom, { camera: true });
    const caller = await player('caller', pairRoom, { camera: true });
    assert.equal(await caller.evaluate(`new Promise((resolve) => {
      const c = peer.connect('callee'); conns.push(c);
      c.on('open', () => resolve('open')); setTimeout(() => resolve('no DataConnection in 60 s'), 60000);
    })`), 'open');
    await chromium.tab('about:blank'); // in front: every player's tab is hidden now
    await gone.lifecycle('frozen');
    const frozenAt = Date.now();
    assert.equal(await lobby.evaluate('document.visibilityState'), 'hidden');

    // The tab that is really gone is announced, and its seat is free again:
    // a newcomer fills the room.
    const leave = await host.next((m) => m.type === 'LEAVE', 200_000, 'LEAVE for the gone tab');
    const announcedS = Math.round((leave.receivedAt - frozenAt) / 1000);
    assert.equal(leave.src, 'gone');
    const newcomer = await join(dev.base, 'newcomer', room);

    // Wait until the lobby tab has been held to a wake a minute, and is
    // 40 s into a silence: the room is full and its seat looks idle.
    const deadline = Date.now() + 240_000;
    let beats = [];
    while (Date.now() < deadline) {
      const seen = await lobby.evaluate('({ beats, events })');
      beats = seen.beats;
      assert.deepEqual(seen.events, [], `the lobby tab, heartbeat gaps ${JSON.stringify(gapsOf(beats))} s`);
      if (gapsOf(beats).some((g) => g >= 50) && Date.now() - beats.at(-1) >= 40_000) break;
      await sleep(1_000);
    }
    const silentS = Math.round((Date.now() - beats.at(-1)) / 1000);
    assert.ok(silentS >= 40, `the lobby tab never fell silent for 40 s: heartbeat gaps ${JSON.stringify(gapsOf(beats))}`);
    const fifth = await connect(dev.base, { id: 'fifth', token: room });
    const refused = await fifth.next(() => true);
    assert.equal(refused.type, 'ERROR', `a fifth player while the lobby tab was silent ${silentS} s: ${JSON.stringify(refused)}`);
    assert.match(refused.payload.msg, /Room is full/);
    const claimant = await connect(dev.base, { id: 'lobby', token: room });
    const claimed = await claimant.next(() => true);
    assert.equal(claimed.type, 'ID-TAKEN', `its id claimed while it was silent ${silentS} s: ${JSON.stringify(claimed)}`);
    await sleep(5_000);
    assert.deepEqual(host.of('LEAVE').map((m) => m.src), ['gone'], 'only the gone tab was announced');

    const lobbyEnd = await lobby.evaluate('({ open: peer.open, events, beats })');
    const pairEnd = await caller.evaluate('({ open: peer.open, events, beats, dc: conns[0].open })');
    console.log(`hidden lobby tab, heartbeat gaps (s): ${JSON.stringify(gapsOf(lobbyEnd.beats))}`);
    console.log(`hidden tab in a call, heartbeat gaps (s): ${JSON.stringify(gapsOf(pairEnd.beats))}`);
    console.log(`frozen tab: announced with LEAVE ${announcedS} s after it froze`);
    assert.deepEqual(lobbyEnd.events, [], 'the lobby tab saw no error and no disconnect');
    assert.equal(lobbyEnd.open, true);
    assert.deepEqual(pairEnd.events, [], 'the tab in a call saw no error and no disconnect');
    assert.equal(pairEnd.dc, true, 'its DataConnection is still open');

    // The frozen tab, woken, finds its socket closed by the server.
    await gone.lifecycle('active');
    const goneDeadline = Date.now() + 30_000;
    let goneEvents = [];
    while (Date.now() < goneDeadline && !goneEvents.includes('disconnected')) {
      goneEvents = await gone.evaluate('events');
      await sleep(500);
    }
    assert.ok(goneEvents.includes('disconnected'), `the woken tab's events: ${JSON.stringify(goneEvents)}`);
    newcomer.close();
  } finally {
    clearInterval(beating);
    host.close();
    fourth.close();
  }
});
