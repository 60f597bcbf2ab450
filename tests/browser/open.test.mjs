// Open mode (NAMESPACE=open) with the unmodified peerjs@1.5.5 client
// configured as an existing app is: `new Peer(id, { host, port, path:
// '/peerjs', secure })`, no token, no roster; the ids are learnt out of
// band (here: the test hands them over, as a game's backend would).
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { decodeRemoteFrames, launchBrowser, newPeer as newPagePeer, start, until } from './harness.mjs';
import { startDev } from '../e2e/lib.mjs';

let dev;
let browser;
const timings = {};
const newPeer = () => newPagePeer(browser, dev.base);
/** As an existing app: id, host, port, path; no token (null: see harness.mjs). */
const startPlain = (p, id) => start(p, id, null);

before(async () => {
  dev = await startDev({ vars: ['NAMESPACE:open'] });
  browser = await launchBrowser();
}, { starts: 1 });

after(async () => {
  await browser?.close();
  dev?.stop();
  console.log(`open-mode timings (ms): ${JSON.stringify(timings)}`);
});

const stamp = Date.now().toString(36);
const ids = [0, 1, 2, 3].map((i) => `game${stamp}-player${i}`);
let players = [];

test('open 1. four clients with host/port/path only: all open, a mesh of six DataConnections, messages both ways', async () => {
  players = await Promise.all(ids.map(() => newPeer()));
  const opens = await Promise.all(players.map((p, i) => startPlain(p, ids[i])));
  opens.forEach((o, i) => assert.equal(o.open, ids[i], JSON.stringify(o)));
  timings.peerOpen = Math.round(Math.max(...opens.map((o) => o.ms)));
  const pairs = [];
  for (let i = 0; i < 4; i += 1) for (let j = i + 1; j < 4; j += 1) pairs.push([i, j]);
  const results = await Promise.all(pairs.map(([i, j]) => players[i].eval((o) => h.connect(o), ids[j])));
  results.forEach((r, k) => assert.ok(r.ok !== undefined, `pair ${pairs[k]}: ${JSON.stringify(r)}`));
  timings.dataConnectionMax = Math.round(Math.max(...results.map((r) => r.ok)));
  for (const [i, j] of pairs) await players[j].eval((o) => h.waitOpen(o), ids[i]);
  for (const [i, j] of pairs) {
    await players[i].eval(([o, msg]) => h.send(o, msg), [ids[j], `hi ${i}->${j}`]);
    await players[j].eval(([o, msg]) => h.send(o, msg), [ids[i], `hi ${j}->${i}`]);
  }
  for (const [i, j] of pairs) {
    assert.ok(await until(players[j], ([o, m]) => h.got(o).includes(m), [ids[i], `hi ${i}->${j}`]), `${i}->${j}`);
    assert.ok(await until(players[i], ([o, m]) => h.got(o).includes(m), [ids[j], `hi ${j}->${i}`]), `${j}->${i}`);
  }
});

test('open 2. a media call between two of them: the callee decodes advancing video frames', async () => {
  const [caller, callee] = [players[0], players[1]];
  await caller.eval((other) => {
    const call = peer.call(other, window.stream);
    call.on('stream', (s) => { window.callerRemote = s; });
  }, ids[1]);
  assert.ok(await until(callee, () => !!window.remote, null, 30000), 'remote stream');
  const frames = await decodeRemoteFrames(callee, 10);
  assert.ok(frames.w > 0 && frames.h > 0, JSON.stringify(frames));
  assert.equal(frames.count, 10);
});

test('open 3. a page that reloads gets its id back (a new random token) and the others connect to it again', async () => {
  const p = players[2];
  const reloaded = await newPagePeer(browser, dev.base, p); // the unload closes the old socket
  const r = await startPlain(reloaded, ids[2]);
  assert.equal(r.open, ids[2], JSON.stringify(r));
  const again = await players[0].eval((o) => h.connect(o), ids[2]);
  assert.ok(again.ok !== undefined, JSON.stringify(again));
  await players[0].eval((o) => h.send(o, 'welcome back'), ids[2]);
  assert.ok(await until(reloaded, (o) => h.got(o).includes('welcome back'), ids[0]));
  players[2] = reloaded;
});

test('open 4. a page that disappears is announced with LEAVE: those connected to it see their connections close', async () => {
  const goneAt = Date.now();
  await players[3].context.close(); // no destroy(): the socket just drops
  // The reloaded page (players[2]) has no connection to it any more.
  for (const p of [players[0], players[1]]) {
    const closed = await until(p, (o) => events.some((e) => e[0] === 'close' && e[1] === o), ids[3], 45000);
    assert.ok(closed, `the connection to the gone page closed; events: ${JSON.stringify(await p.eval(() => events))}`);
  }
  timings.leaveToClose = Date.now() - goneAt; // printed, never asserted
  for (const p of players.slice(0, 3)) await p.context.close();
});
