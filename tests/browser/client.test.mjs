// The room helper (web/client/peerjs-rooms.js) over the unmodified
// peerjs@1.5.5 in headless Chromium: the mesh it builds from the roster,
// streams and data both ways, LEAVE as peer-left, a dropped server
// connection it comes back from with the same id, a moderator's kick it
// reports in plain words and does not undo, a refusal it rejects with, and
// the same player in a second tab, which it does not fight for the id.
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { launchBrowser, until } from './harness.mjs';
import { startDev, backendTicket, sleep, AUDIENCE } from '../e2e/lib.mjs';

const ADMIN_TOKEN = 'admin-token-for-the-browser-suite-0123';
const TICKET_KEY = 'client-suite-ticket-secret-0123456789abcdef';
let dev;
/** With tickets: a ticket whose `sub` is the id lets a second tab take the id over. */
let devTickets;
let browser;

before(async () => {
  [dev, devTickets] = await Promise.all([
    startDev({ vars: [`ADMIN_TOKEN:${ADMIN_TOKEN}`] }),
    startDev({ vars: [`ROOM_TICKET_SECRET:${TICKET_KEY}`, `TICKET_AUDIENCE:${AUDIENCE}`] }),
  ]);
  browser = await launchBrowser();
}, { starts: 2 });

after(async () => {
  await browser?.close();
  dev?.stop();
  devTickets?.stop();
});

/** A page of `base` with the stock client and the helper loaded, events recorded in `window.log`. */
async function player(base = dev.base) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/demo/harness.html`);
  const p = { context, page, eval: (fn, arg) => page.evaluate(fn, arg) };
  await p.eval(async () => {
    window.helper = await import('/demo/vendor/peerjs-rooms.js');
    window.log = [];
    window.got = {};
    window.join = async (id, token) => {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      const record = (name) => (...args) => log.push([name, ...args.map((a) => (typeof a === 'string' || typeof a === 'number' ? a : a?.reason ?? a?.text ?? a?.attempt ?? null))]);
      const on = {};
      for (const name of ['open', 'reconnected', 'reconnecting', 'peer-joined', 'peer-left', 'connection', 'stream', 'closed']) on[name] = record(name);
      on.error = (e) => log.push(['error', e.type, e.text]);
      on.closed = (c) => log.push(['closed', c.reason, c.text]);
      on.data = (from, data) => (got[from] ??= []).push(data);
      try {
        window.room = await helper.joinRoom({ host: location.hostname, port: Number(location.port), path: '/', token, id, stream, on });
        return { open: room.id };
      } catch (e) {
        return { refused: e.text ?? e.message };
      }
    };
  });
  return p;
}

/** ann and ben in `room`, ann's DataConnection to ben open. */
async function annAndBen(room) {
  const [a, b] = [await player(), await player()];
  await join(a, 'ann', room);
  await join(b, 'ben', room);
  assert.ok(await until(a, () => [...room.peers.values()].some((e) => e.data?.open), null, 60_000), 'ann never reached ben');
  return [a, b];
}

const join = (p, id, token) => p.eval(([i, t]) => join(i, t), [id, token]);
const events = (p, name) => p.eval((n) => log.filter((e) => e[0] === n), name);
/** Ids of the peers with an open DataConnection and a stream, as the helper holds them. */
const linked = (p) => p.eval(() => [...room.peers].filter(([, e]) => e.data?.open && e.stream).map(([id]) => id).sort());
/** Plays each remote stream until a frame was decoded; answers the ids that played. */
const playing = (p) => p.eval(async () => {
  const ids = [];
  for (const [id, e] of room.peers) {
    const v = document.createElement('video');
    v.muted = true;
    v.srcObject = e.stream;
    document.body.appendChild(v);
    await v.play();
    await new Promise((r) => v.requestVideoFrameCallback(r));
    if (v.videoWidth > 0) ids.push(id);
  }
  return ids.sort();
});

test('helper: three players joining one by one end up in a full mesh with streams and data both ways', async () => {
  const room = `hc${Date.now()}`;
  const ps = [];
  for (const id of ['ann', 'ben', 'cid']) {
    const p = await player();
    assert.deepEqual(await join(p, id, room), { open: id });
    ps.push(p);
  }
  const expected = { ann: ['ben', 'cid'], ben: ['ann', 'cid'], cid: ['ann', 'ben'] };
  for (const [i, id] of ['ann', 'ben', 'cid'].entries()) {
    const ok = await until(ps[i], (want) => JSON.stringify([...room.peers].filter(([, e]) => e.data?.open && e.stream).map(([x]) => x).sort()) === JSON.stringify(want), expected[id], 60_000);
    assert.ok(ok, `${id} holds ${JSON.stringify(await linked(ps[i]))}, log ${JSON.stringify(await events(ps[i], 'error'))}`);
    assert.deepEqual(await playing(ps[i]), expected[id], `${id} decodes a frame of each`);
  }
  for (const [i, id] of ['ann', 'ben', 'cid'].entries()) {
    assert.equal(await ps[i].eval((me) => room.broadcast(`hello from ${me}`), id), 2);
  }
  for (const [i, id] of ['ann', 'ben', 'cid'].entries()) {
    const ok = await until(ps[i], (want) => want.every((o) => got[o]?.includes(`hello from ${o}`)), expected[id]);
    assert.ok(ok, `${id} got ${JSON.stringify(await ps[i].eval(() => got))}`);
  }
  // A page that goes away: the others hear LEAVE and say peer-left.
  await ps[2].context.close();
  for (const p of ps.slice(0, 2)) {
    const ok = await until(p, () => log.some((e) => e[0] === 'peer-left' && e[1] === 'cid'), null, 60_000);
    assert.ok(ok, JSON.stringify(await p.eval(() => log)));
    assert.deepEqual(await linked(p), p === ps[0] ? ['ben'] : ['ann']);
  }
  for (const p of ps.slice(0, 2)) assert.deepEqual(await events(p, 'error'), []);
  await Promise.all(ps.slice(0, 2).map((p) => p.context.close()));
});

test('helper: a dropped server connection comes back with the same id; the mesh holds and a newcomer reaches everyone', async () => {
  const room = `hr${Date.now()}`;
  const [a, b] = await annAndBen(room);
  // What a network drop looks like to the client: its WebSocket closes.
  await a.eval(() => room.peer.socket._socket.close());
  assert.ok(await until(a, () => log.some((e) => e[0] === 'reconnected'), null, 60_000), JSON.stringify(await a.eval(() => log)));
  const reconnecting = await events(a, 'reconnecting');
  assert.equal(reconnecting.length, 1, JSON.stringify(reconnecting));
  assert.equal(await a.eval(() => room.id), 'ann');
  assert.equal(await a.eval(() => room.send('ben', 'still here')), true);
  assert.ok(await until(b, () => got.ann?.includes('still here')));
  const c = await player();
  assert.deepEqual(await join(c, 'cid', room), { open: 'cid' });
  const ok = await until(c, () => JSON.stringify([...room.peers].filter(([, e]) => e.data?.open).map(([x]) => x).sort()) === '["ann","ben"]', null, 60_000);
  assert.ok(ok, JSON.stringify(await c.eval(() => log)));
  await Promise.all([a, b, c].map((p) => p.context.close()));
});

test('helper: a kick reaches the player in plain words, it does not reconnect, the others see peer-left', async () => {
  const room = `hk${Date.now()}`;
  const [a, b] = await annAndBen(room);
  const res = await fetch(`${dev.base}/admin/rooms/${room}/peers/ben/kick`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200, await res.text());
  assert.ok(await until(b, () => log.some((e) => e[0] === 'closed')), JSON.stringify(await b.eval(() => log)));
  const errors = await events(b, 'error');
  assert.ok(errors.some(([, type, text]) => type === 'server-error' && /removed from this room by a moderator/.test(text)), JSON.stringify(errors));
  assert.deepEqual((await events(b, 'closed')).map((e) => e[1]), ['refused']);
  assert.ok(await until(a, () => log.some((e) => e[0] === 'peer-left' && e[1] === 'ben'), null, 30_000));
  // Given time to come back, it does not.
  await new Promise((r) => setTimeout(r, 3_000));
  assert.deepEqual(await events(b, 'reconnecting'), []);
  const roster = await (await fetch(`${dev.base}/peerjs/peers`, { headers: { Authorization: `Bearer ${room}` } })).json();
  assert.deepEqual(roster, ['ann']);
  await Promise.all([a, b].map((p) => p.context.close()));
});

test('helper: a refused join rejects with the server reason in plain words', async () => {
  const room = `hf${Date.now()}`;
  const ps = [];
  for (const id of ['p1', 'p2', 'p3', 'p4']) {
    const p = await player();
    assert.deepEqual(await join(p, id, room), { open: id });
    ps.push(p);
  }
  const fifth = await player();
  const r = await join(fifth, 'p5', room);
  assert.match(r.refused ?? '', /^The server refused: .*full/i, JSON.stringify(r));
  await Promise.all([...ps, fifth].map((p) => p.context.close()));
});

test('helper: the same player in a second tab takes the id; the first says so in plain words and does not take it back', async () => {
  const room = `tw${Date.now()}`;
  const ticket = backendTicket({ room, sub: 'twin' }, {}, TICKET_KEY);
  const first = await player(devTickets.base);
  assert.deepEqual(await join(first, 'twin', ticket), { open: 'twin' });
  const second = await player(devTickets.base);
  assert.deepEqual(await join(second, 'twin', ticket), { open: 'twin' });
  assert.ok(await until(first, () => log.some((e) => e[0] === 'closed'), null, 30_000), JSON.stringify(await first.eval(() => log)));
  const closed = await events(first, 'closed');
  assert.deepEqual(closed.map((e) => e[1]), ['replaced'], JSON.stringify(closed));
  assert.match(closed[0][2], /another tab or device/);
  // Given time to come back (the helper's first retry is within 500 ms), it does not.
  await sleep(3_000);
  assert.deepEqual(await events(first, 'reconnecting'), []);
  assert.deepEqual(await events(second, 'closed'), []);
  assert.deepEqual(await events(second, 'reconnecting'), []);
  const roster = await (await fetch(`${devTickets.base}/peerjs/peers`, { headers: { Authorization: `Bearer ${ticket}` } })).json();
  assert.deepEqual(roster, ['twin']);
  await Promise.all([first, second].map((p) => p.context.close()));
});

test('helper: two players whose roster reads return together both dial; the glare rule leaves one connection of each kind', async () => {
  // Each helper's roster read is held until both are waiting, then both are
  // released at once, so both connect() and call() the other at about the
  // same moment: with the stock client alone that is two DataConnections and
  // two calls (browser.test.mjs). Whether both really dial depends on whose
  // OFFER arrives first, so the pair is tried until both did (at most 6
  // times); every try must end with one shared connection.
  const join2 = (p, id, room) => p.eval(async ([i, r]) => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    window.got = [];
    window.left = [];
    window.waiting = false;
    window.release = false;
    // Counts the DataConnections this side starts.
    window.dialed = 0;
    class CountingPeer extends Peer {
      connect(...args) {
        window.dialed += 1;
        return super.connect(...args);
      }
    }
    const heldRoster = async (url, init) => {
      if (!String(url).endsWith('/peers')) return fetch(url, init);
      for (;;) {
        const res = await fetch(url, init);
        if ((await res.clone().json()).length >= 2) {
          window.waiting = true;
          while (!window.release) await new Promise((resolve) => setTimeout(resolve, 2));
          return res;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    window.room = await helper.joinRoom({
      host: location.hostname, port: Number(location.port), path: '/', token: r, id: i, stream, fetch: heldRoster, Peer: CountingPeer,
      on: { data: (from, d) => got.push(d), 'peer-left': (who) => left.push(who) },
    });
    return room.id;
  }, [id, room]);
  const tries = [];
  for (let attempt = 0; attempt < 6; attempt += 1) {
    const room = `hg${attempt}${Date.now()}`;
    const [a, b] = [await player(), await player()];
    assert.deepEqual(await Promise.all([join2(a, 'gx', room), join2(b, 'gy', room)]), ['gx', 'gy']);
    assert.ok(await until(a, () => waiting) && await until(b, () => waiting), 'a roster read never listed both');
    await Promise.all([a.eval(() => { window.release = true; }), b.eval(() => { window.release = true; })]);
    const linkedTo = (p, other) => until(p, (o) => !!room.peers.get(o)?.data?.open && !!room.peers.get(o)?.stream, other, 60_000);
    assert.ok(await linkedTo(a, 'gy') && await linkedTo(b, 'gx'), 'no data connection and stream both ways');
    // One DataConnection, the same on both sides, carrying data; nobody left.
    const kept = (p, other) => p.eval((o) => room.peers.get(o).data.connectionId, other);
    assert.equal(await kept(a, 'gy'), await kept(b, 'gx'));
    await a.eval(() => room.send('gy', 'one-link'));
    assert.ok(await until(b, () => got.includes('one-link')), JSON.stringify(await b.eval(() => got)));
    assert.deepEqual([await a.eval(() => left), await b.eval(() => left)], [[], []]);
    const dialed = [await a.eval(() => dialed), await b.eval(() => dialed)];
    tries.push(dialed);
    await Promise.all([a, b].map((p) => p.context.close()));
    if (dialed[0] === 1 && dialed[1] === 1) break;
  }
  console.log(`helper glare: DataConnections started by (gx, gy) per try: ${JSON.stringify(tries)}`);
  assert.ok(tries.some(([x, y]) => x === 1 && y === 1), `never both dialed: ${JSON.stringify(tries)}`);
});
