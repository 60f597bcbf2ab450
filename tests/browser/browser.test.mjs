// The unmodified peerjs@1.5.5 client in headless Chromium (one context and
// page per peer, see harness.mjs) against both Workers under wrangler dev in
// rooms mode. Runs inside a loopback-only network namespace
// (scripts/test.sh), so WebRTC stays on 127.0.0.1.
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { decodeRemoteFrames, launchBrowser, newPeer as newPagePeer, start, until } from './harness.mjs';
import { startDev, backendTicket, sleep, AUDIENCE } from '../e2e/lib.mjs';

const SECRET = 'browser-secret-0123456789abcdef012345';
let dev;
let devTickets;
let browser;
const timings = {};

before(async () => {
  [dev, devTickets] = await Promise.all([
    startDev(),
    startDev({ vars: [`ROOM_TICKET_SECRET:${SECRET}`, 'REQUIRE_TICKETS:true', `TICKET_AUDIENCE:${AUDIENCE}`] }),
  ]);
  browser = await launchBrowser();
}, { starts: 2 });

after(async () => {
  await browser?.close();
  dev?.stop();
  devTickets?.stop();
  console.log(`timings (ms): ${JSON.stringify(timings)}`);
});

const newPeer = (base = dev.base) => newPagePeer(browser, base);

let meshRoom;
let mesh = [];

test('1. four peers: all open, a full mesh of six DataConnections, messages both ways, one 256 KiB binary', async () => {
  meshRoom = `mesh${Date.now()}`;
  mesh = await Promise.all([0, 1, 2, 3].map(() => newPeer()));
  const opens = await Promise.all(mesh.map((p, i) => start(p, `m${i}`, meshRoom)));
  opens.forEach((o, i) => assert.equal(o.open, `m${i}`, JSON.stringify(o)));
  timings.peerOpen = Math.round(Math.max(...opens.map((o) => o.ms)));
  const pairs = [];
  for (let i = 0; i < 4; i += 1) for (let j = i + 1; j < 4; j += 1) pairs.push([i, j]);
  const results = await Promise.all(pairs.map(([i, j]) => mesh[i].eval((o) => h.connect(o), `m${j}`)));
  results.forEach((r, k) => assert.ok(r.ok !== undefined, `pair ${pairs[k]}: ${JSON.stringify(r)}`));
  timings.dataConnectionMax = Math.round(Math.max(...results.map((r) => r.ok)));
  for (const [i, j] of pairs) await mesh[j].eval((o) => h.waitOpen(o), `m${i}`);
  for (const [i, j] of pairs) {
    await mesh[i].eval(([o, msg]) => h.send(o, msg), [`m${j}`, `hello ${i}->${j}`]);
    await mesh[j].eval(([o, msg]) => h.send(o, msg), [`m${i}`, `hello ${j}->${i}`]);
  }
  for (const [i, j] of pairs) {
    assert.ok(await until(mesh[j], (o) => h.got(o).includes(`hello ${o.slice(1)}->` + peer.id.slice(1)), `m${i}`));
    assert.ok(await until(mesh[i], (o) => h.got(o).includes(`hello ${o.slice(1)}->` + peer.id.slice(1)), `m${j}`));
  }
  const expectedSum = await mesh[0].eval(() => {
    const buf = new Uint8Array(256 * 1024);
    for (let i = 0; i < buf.length; i += 1) buf[i] = (i * 31) % 251;
    h.send('m1', buf.buffer);
    return buf.reduce((a, b) => (a + b) % 65521, 0);
  });
  assert.ok(await until(mesh[1], () => h.got('m0').some((d) => d.bytes === 262144), null, 30000), '256 KiB arrived');
  const big = await mesh[1].eval(() => h.got('m0').find((d) => d.bytes === 262144));
  assert.equal(big.sum, expectedSum);
});

test('2. a media call with the fake camera: the callee decodes advancing video frames', async () => {
  const [caller, callee] = [mesh[0], mesh[1]];
  const startedAt = Date.now();
  await caller.eval(() => {
    const call = peer.call('m1', window.stream);
    call.on('stream', (s) => { window.callerRemote = s; });
  });
  assert.ok(await until(callee, () => !!window.remote, null, 30000), 'remote stream');
  const frames = await decodeRemoteFrames(callee, 10);
  timings.callToFrames = Date.now() - startedAt;
  assert.ok(frames.w > 0 && frames.h > 0, JSON.stringify(frames));
  assert.equal(frames.count, 10);
});

test('3. a fifth peer gets server-error saying the room is full; the four are unaffected', async () => {
  const fifth = await newPeer();
  const r = await start(fifth, 'm4', meshRoom);
  assert.equal(r.error?.type, 'server-error');
  assert.match(r.error.message, /full/i);
  await mesh[2].eval(() => h.send('m3', 'still here'));
  assert.ok(await until(mesh[3], () => h.got('m2').includes('still here')));
  await fifth.context.close();
});

test('10b. a late joiner uses the roster to connect to everyone (after one leaves)', async () => {
  // Frees a seat: m3 leaves cleanly, then a late joiner reads the roster.
  await mesh[3].eval(() => peer.destroy());
  await sleep(300);
  const late = await newPeer();
  await start(late, 'late', meshRoom);
  const ids = await late.eval(async (room) => (await fetch(`/peerjs/peers?token=${room}`)).json(), meshRoom);
  assert.deepEqual(ids.sort(), ['late', 'm0', 'm1', 'm2']);
  for (const id of ids.filter((i) => i !== 'late')) {
    const r = await late.eval((o) => h.connect(o), id);
    assert.ok(r.ok !== undefined, `${id}: ${JSON.stringify(r)}`);
  }
  mesh[3] = late;
});

test('4. a page closed abruptly: the others see LEAVE and their connections close', async () => {
  const goneAt = Date.now();
  await mesh[2].context.close(); // no destroy(): the socket just drops
  for (const p of [mesh[0], mesh[1]]) {
    assert.ok(await until(p, () => events.some((e) => e[0] === 'close' && e[1] === 'm2')), 'the connection to m2 closed');
  }
  timings.leaveToClose = Date.now() - goneAt; // printed, never asserted
});

test('5. disconnect() then reconnect(): open again with the same id, and a new connection works', async () => {
  const p = mesh[1];
  await p.eval(() => peer.disconnect());
  await sleep(300);
  await p.eval(() => peer.reconnect());
  assert.ok(await until(p, () => events.filter((e) => e[0] === 'open').length >= 2));
  assert.equal(await p.eval(() => peer.id), 'm1');
  const other = await newPeer();
  await start(other, 'visitor', meshRoom);
  const r = await other.eval(() => h.connect('m1'));
  assert.ok(r.ok !== undefined, JSON.stringify(r));
  await other.context.close();
});

test('6. a second page claiming an id in the room gets unavailable-id; the original keeps working', async () => {
  const dup = await newPeer();
  const r = await start(dup, 'm0', meshRoom);
  assert.equal(r.error?.type, 'unavailable-id');
  await mesh[0].eval(() => h.send('m1', 'original alive'));
  assert.ok(await until(mesh[1], () => h.got('m0').includes('original alive')));
  await dup.context.close();
});

test('7. connect() to an id that never joins: peer-unavailable', async () => {
  const t0 = Date.now();
  const r = await mesh[0].eval(() => h.connect('nobody-here'));
  assert.equal(r.error?.type, 'peer-unavailable');
  timings.peerUnavailable = Date.now() - t0; // printed, never asserted
});

test('8. no id: the client fetches one from /id and opens with it', async () => {
  const p = await newPeer();
  const r = await start(p, undefined, `noid${Date.now()}`);
  assert.match(r.open, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  await p.context.close();
});

test('9. isolation: a peer of room B cannot reach a peer of room A', async () => {
  const p = await newPeer();
  await start(p, 'outsider', `other${Date.now()}`);
  const r = await p.eval(() => h.connect('m0'));
  assert.equal(r.error?.type, 'peer-unavailable');
  await p.context.close();
});

test('10. tickets required: a valid ticket joins; expired or another sub gets server-error with the reason', async () => {
  const room = `t${Date.now()}`;
  const ok = await newPeer(devTickets.base);
  const good = backendTicket({ room, sub: 'ticketed' }, {}, SECRET);
  assert.equal((await start(ok, 'ticketed', good)).open, 'ticketed');
  const expired = await newPeer(devTickets.base);
  const r1 = await start(expired, 'e1', backendTicket({ room }, { expiresIn: -60 }, SECRET));
  assert.deepEqual(r1.error, { type: 'server-error', message: 'Invalid room ticket: expired' });
  const other = await newPeer(devTickets.base);
  const r2 = await start(other, 'e2', backendTicket({ room, sub: 'someone' }, {}, SECRET));
  assert.deepEqual(r2.error, { type: 'server-error', message: 'Invalid room ticket: issued for another peer id' });
  await Promise.all([ok, expired, other].map((p) => p.context.close()));
});

test('11. after 15 s idle (room evicted), a new peer joins and connects to every other peer', async () => {
  await sleep(15_000); // the clients keep heartbeating; the room hibernates
  const p = await newPeer();
  await start(p, 'after-idle', meshRoom);
  for (const id of ['m0', 'm1', 'late']) {
    const r = await p.eval((o) => h.connect(o), id);
    assert.ok(r.ok !== undefined, `${id}: ${JSON.stringify(r)}`);
  }
  await p.context.close();
  for (const q of mesh) await q.context.close().catch(() => {});
});

test('glare: two stock clients that connect() and call() each other at the same moment end with two of each, all working', async () => {
  // PeerJS does not resolve glare: each side's connect() and call() is its
  // own connection (its own connectionId), so the pair holds two
  // DataConnections and, when both answer, two MediaConnections. Never none.
  const room = `glare${Date.now()}`;
  const [a, b] = [await newPeer(), await newPeer()];
  await start(a, 'ga', room);
  await start(b, 'gb', room);
  const setUp = (p) => p.eval(() => {
    window.glare = { data: [], calls: [], got: [], streams: 0 };
    peer.on('connection', (c) => { glare.data.push(c); c.on('data', (d) => glare.got.push(d)); });
    peer.on('call', (call) => { glare.calls.push(call); call.on('stream', () => { glare.streams += 1; }); });
  });
  await Promise.all([setUp(a), setUp(b)]);
  const dial = (p, other) => p.eval((o) => {
    const c = peer.connect(o, { reliable: true });
    c.on('data', (d) => glare.got.push(d));
    const call = peer.call(o, window.stream);
    call.on('stream', () => { glare.streams += 1; });
    glare.data.push(c);
    glare.calls.push(call);
  }, other);
  await Promise.all([dial(a, 'gb'), dial(b, 'ga')]);
  const settled = (p) => until(p, () => glare.data.filter((c) => c.open).length === 2 && glare.streams === 2, null, 60_000);
  const [okA, okB] = await Promise.all([settled(a), settled(b)]);
  const seen = (p) => p.eval(() => ({ open: glare.data.filter((c) => c.open).length, ids: new Set(glare.data.map((c) => c.connectionId)).size, streams: glare.streams }));
  const [sa, sb] = [await seen(a), await seen(b)];
  console.log(`glare, stock client: ga ${JSON.stringify(sa)}, gb ${JSON.stringify(sb)}`);
  assert.ok(okA && okB, `ga ${JSON.stringify(sa)}, gb ${JSON.stringify(sb)}`);
  assert.deepEqual([sa, sb], [{ open: 2, ids: 2, streams: 2 }, { open: 2, ids: 2, streams: 2 }]);
  // Both DataConnections carry data: an app that keeps either one works.
  await a.eval(() => glare.data.forEach((c, i) => c.send(`from-ga-${i}`)));
  assert.ok(await until(b, () => glare.got.length === 2), JSON.stringify(await b.eval(() => glare.got)));
  await Promise.all([a.context.close(), b.context.close()]);
});

test('demo page: two tabs in a call show each other, the roster and no error (screenshot for the README)', async () => {
  const room = `demo${Date.now()}`;
  const tabs = [];
  for (const id of ['alice', 'bob']) {
    const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
    const page = await context.newPage();
    await page.goto(`${dev.base}/demo?room=${room}&id=${id}`);
    tabs.push({ context, page });
    await page.waitForFunction(() => window.demoPeer?.open === true, null, { timeout: 30000 });
  }
  for (const { page } of tabs) {
    // Own video plus the other's, playing.
    await page.waitForFunction(
      () => [...document.querySelectorAll('video')].filter((v) => v.videoWidth > 0 && v.currentTime > 0).length >= 2,
      null,
      { timeout: 30000 },
    );
    await page.waitForFunction(() => document.querySelectorAll('#roster li').length === 2, null, { timeout: 30000 });
    assert.equal(await page.textContent('#error'), '');
  }
  const shots = await Promise.all(tabs.map(({ page }) => page.screenshot()));
  const board = await (await browser.newContext({ viewport: { width: 1640, height: 620 } })).newPage();
  await board.setContent(
    `<body style="margin:0;background:#444;display:flex;gap:20px;padding:10px">${shots
      .map((b) => `<img src="data:image/png;base64,${b.toString('base64')}" style="border:1px solid #888">`)
      .join('')}</body>`,
  );
  const { mkdirSync } = await import('node:fs');
  mkdirSync(new URL('../../target/screenshots/', import.meta.url), { recursive: true });
  await board.screenshot({ path: new URL('../../target/screenshots/demo-call.png', import.meta.url).pathname });
  await Promise.all(tabs.map(({ context }) => context.close()));
});
