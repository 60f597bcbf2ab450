// The admin API (/admin/rooms/...): off without ADMIN_TOKEN, the token
// checked, and each call's effect on real sockets: inspect, kick (with and
// without a block, racing a reconnect) and close. A private pair of Workers
// with an ADMIN_TOKEN; the shared plain server has none.
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BASE, AUDIENCE, backendTicket, connect, join, httpGet, httpRequest, startDev, eventually, unique, logEvents, sleep } from './lib.mjs';

const TOKEN = 'admin-token-for-the-e2e-tests-0123';
const auth = { Authorization: `Bearer ${TOKEN}` };
let dev;

before(async () => {
  dev = await startDev({ vars: [`ADMIN_TOKEN:${TOKEN}`] });
}, { starts: 1 });
after(() => dev?.stop());

const admin = (method, path, headers = auth) => httpRequest(dev.base, path, { method, headers });

const inspect = (room) => admin('GET', `/admin/rooms/${room}`);
const kick = (room, id, query = '') => admin('POST', `/admin/rooms/${room}/peers/${id}/kick${query}`);

test('without ADMIN_TOKEN the admin API is off and says so', async () => {
  const r = await httpGet(BASE, '/admin/rooms/anyroom', auth);
  assert.equal(r.status, 404, r.text);
  assert.match(r.body.error, /admin API is off.*ADMIN_TOKEN/);
});

test('a missing or wrong token is 401 naming Bearer; the right one on an empty room is 404', async () => {
  const room = unique('adm');
  for (const headers of [{}, { Authorization: 'Bearer wrong' }, { Authorization: `Basic ${TOKEN}` }, { Authorization: `Bearer ${TOKEN}x` }]) {
    const r = await admin('GET', `/admin/rooms/${room}`, headers);
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    assert.equal(r.headers.get('cache-control'), 'no-store');
  }
  const empty = await inspect(room);
  assert.equal(empty.status, 404);
  assert.match(empty.body.error, /no such room/);
  assert.equal((await admin('POST', `/admin/rooms/${room}/close`)).status, 404);
  assert.equal((await kick(room, 'nobody')).status, 404);
});

test('malformed calls are refused with the reason', async () => {
  const room = unique('adm');
  const cases = [
    ['GET', `/admin/rooms/${room}/close`, 405, /close takes POST/],
    ['POST', `/admin/rooms/${room}`, 405, /inspect takes GET/],
    ['GET', `/admin/rooms/${room}/peers/bob/kick`, 405, /kick takes POST/],
    ['GET', '/admin/rooms/bad.room', 400, /invalid room id/],
    ['POST', `/admin/rooms/${room}/peers/${'x'.repeat(300)}/kick`, 400, /invalid peer id/],
    ['POST', `/admin/rooms/${room}/peers/bob/kick?block=0`, 400, /block must be whole seconds from 1 to 86400/],
    ['POST', `/admin/rooms/${room}/peers/bob/kick?block=86401`, 400, /block must be/],
    ['POST', `/admin/rooms/${room}/peers/bob/kick?block=soon`, 400, /block must be/],
  ];
  for (const [method, path, status, reason] of cases) {
    const r = await admin(method, path);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error, reason, path);
  }
  assert.equal((await admin('GET', `/admin/rooms/${room}/open`)).status, 404);
});

test('an id with a space is inspected and removed by its percent-encoded name', async () => {
  const room = unique('adm');
  const a = await join(dev.base, 'alice', room);
  const p = await join(dev.base, 'Player 1', room);
  const r = await inspect(room);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.peers.map((x) => x.id).sort(), ['Player 1', 'alice']);
  const k = await kick(room, encodeURIComponent('Player 1'));
  assert.equal(k.status, 200, JSON.stringify(k.body));
  assert.match((await p.next('ERROR')).payload.msg, /removed from this room by a moderator/);
  assert.equal((await a.next('LEAVE', 5_000)).src, 'Player 1');
  a.close();
});

test('repeated bad tokens make at most one warn line per 10 s, which says how many it held back', async () => {
  const room = unique('adm');
  const mark = dev.log().length;
  const refusedLines = () => logEvents(dev.log().slice(mark)).filter((e) => e.event === 'admin_refused');
  const wrong = { Authorization: 'Bearer wrong-token' };
  const burstStarted = Date.now();
  for (let i = 0; i < 8; i += 1) assert.equal((await admin('GET', `/admin/rooms/${room}`, wrong)).status, 401);
  const burstSecs = (Date.now() - burstStarted) / 1000;
  // Once the window has passed, the next refusal is logged with the count.
  await sleep(10_500);
  assert.equal((await admin('GET', `/admin/rooms/${room}`, wrong)).status, 401);
  const lines = await eventually(refusedLines, (l) => l.some((e) => e.unlogged_before >= 7), 'a line counting the held-back refusals', { timeout: 30_000 });
  // One line per window: the burst's (unless an earlier test's filled it) and the one after.
  assert.ok(lines.length <= 2 + Math.floor(burstSecs / 10), JSON.stringify(lines));
  for (const line of lines) assert.equal(line.level, 'warn');
});

test('inspect lists the live peers with their join time and last activity', async () => {
  const room = unique('adm');
  const before = Date.now();
  const a = await join(dev.base, 'alice', room);
  const b = await join(dev.base, 'bob', room);
  const r = await inspect(room);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.peers.map((p) => p.id), ['alice', 'bob']);
  for (const p of r.body.peers) {
    assert.ok(p.joined_ms >= before - 5_000 && p.joined_ms <= Date.now() + 5_000, JSON.stringify(p));
    assert.ok(p.last_seen_ms >= p.joined_ms, JSON.stringify(p));
    assert.equal(p.stale, false);
  }
  assert.equal(r.headers.get('cache-control'), 'no-store');
  a.close();
  b.close();
});

test('kick: the peer sees the reason and 4003, the others LEAVE at once, a block refuses its return', async () => {
  const room = unique('adm');
  const a = await join(dev.base, 'alice', room);
  const b = await join(dev.base, 'bob', room);
  const r = await kick(room, 'bob', '?block=60');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.closed, 1);
  assert.equal(r.body.told, 1);
  assert.ok(r.body.blocked_until_ms > Date.now() + 50_000, JSON.stringify(r.body));
  const error = await b.next('ERROR');
  assert.match(error.payload.msg, /removed from this room by a moderator/);
  // (A raw client sees the close once the runtime lets the socket go; the
  // stock client closes its side on the ERROR.)
  assert.equal((await b.closed).code, 4003);
  // No leave grace: LEAVE arrives well before the grace would have ended.
  const leave = await a.next('LEAVE', 5_000);
  assert.equal(leave.src, 'bob');
  const back = await connect(dev.base, { id: 'bob', token: room });
  const refusal = await back.next('ERROR');
  assert.match(refusal.payload.msg, /you may rejoin in \d+ s/);
  assert.equal((await back.closed).code, 4003);
  const after = await inspect(room);
  assert.deepEqual(after.body.peers.map((p) => p.id), ['alice']);
  assert.deepEqual(after.body.blocked.map((x) => x.id), ['bob']);
  // Without a block, the kicked id may come straight back.
  const c = await join(dev.base, 'carol', room);
  assert.equal((await kick(room, 'carol')).status, 200);
  await c.next('ERROR');
  const carolAgain = await join(dev.base, 'carol', room);
  assert.equal((await kick(room, 'nobody')).status, 404, 'a peer not in the room');
  a.close();
  carolAgain.close();
});

test('a block covers the ticket: the removed player cannot come back under another id with it', { starts: 1 }, async () => {
  // Tickets that name no id (TICKET_REQUIRE_SUB off, the default).
  const key = 'admin-suite-ticket-secret-0123456789abcdef';
  const signed = await startDev({ vars: [`ADMIN_TOKEN:${TOKEN}`, `ROOM_TICKET_SECRET:${key}`, `TICKET_AUDIENCE:${AUDIENCE}`] });
  try {
    const room = unique('adt');
    // Each player's own ticket, as a backend mints them: two tickets with the
    // same claims signed in the same second are byte-identical, one holder.
    const ticket = (claims = {}) => backendTicket({ room, player: randomUUID(), ...claims }, {}, key);
    const [bobs, bobsSession] = [ticket(), ticket({ jti: 'session-bob' })];
    const a = await join(signed.base, 'alice', ticket());
    const b = await join(signed.base, 'bob', bobs);
    const c = await join(signed.base, 'carl', bobsSession);
    for (const id of ['bob', 'carl']) {
      const r = await httpRequest(signed.base, `/admin/rooms/${room}/peers/${id}/kick?block=60`, { method: 'POST', headers: auth });
      assert.equal(r.status, 200, r.text);
    }
    await b.next('ERROR');
    await c.next('ERROR');
    // The same ticket under another id: refused, with the time left.
    const disguised = await connect(signed.base, { id: 'bobby', token: bobs });
    assert.match((await disguised.next('ERROR')).payload.msg, /you may rejoin in \d+ s/);
    assert.equal((await disguised.closed).code, 4003);
    // A ticket re-signed for the same session (same jti): refused too.
    const resigned = await connect(signed.base, { id: 'carla', token: ticket({ jti: 'session-bob' }) });
    assert.match((await resigned.next('ERROR')).payload.msg, /you may rejoin in \d+ s/);
    // Anyone else's ticket still gets in.
    const dora = await join(signed.base, 'dora', ticket());
    const inspected = await httpRequest(signed.base, `/admin/rooms/${room}`, { headers: auth });
    assert.deepEqual(inspected.body.peers.map((p) => p.id).sort(), ['alice', 'dora']);
    a.close();
    dora.close();
  } finally {
    signed.stop();
  }
});

test('a kick racing a reconnect: the id ends up out of the room either way', async () => {
  const room = unique('adm');
  const a = await join(dev.base, 'alice', room);
  const r = await join(dev.base, 'racer', room);
  r.kill(); // in its leave grace now, about to come back
  await eventually(() => inspect(room), (x) => x.body.leaving?.includes('racer'), 'racer in its leave grace');
  const [again, kicked] = await Promise.all([
    connect(dev.base, { id: 'racer', token: room }),
    kick(room, 'racer', '?block=30'),
  ]);
  assert.equal(kicked.status, 200, JSON.stringify(kicked.body));
  // Whichever came first, the returning socket is told and closed: either the
  // kick closed it (it had rejoined) or the block refused it.
  const error = await again.next('ERROR');
  assert.match(error.payload.msg, /removed from this room by a moderator/);
  assert.equal((await again.closed).code, 4003);
  await a.next((m) => m.type === 'LEAVE' && m.src === 'racer', 5_000, 'LEAVE for racer');
  const after = await inspect(room);
  assert.deepEqual(after.body.peers.map((p) => p.id), ['alice']);
  assert.deepEqual(after.body.leaving, []);
  a.close();
});

test('close: everyone is told and closed with 4004, nothing is left, the room can be used again', async () => {
  const room = unique('adm');
  const a = await join(dev.base, 'alice', room);
  const b = await join(dev.base, 'bob', room);
  a.send({ type: 'OFFER', dst: 'ghost', payload: {} }); // queued for an absent peer
  await eventually(() => inspect(room), (x) => x.body.queued_messages === 1, 'the queued message');
  const r = await admin('POST', `/admin/rooms/${room}/close`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.closed, r.body.dropped_messages], [2, 1]);
  for (const p of [a, b]) {
    const error = await p.next('ERROR');
    assert.match(error.payload.msg, /room was closed by a moderator/);
    assert.equal((await p.closed).code, 4004);
  }
  const gone = await inspect(room);
  assert.equal(gone.status, 404, 'no peers, queue, leaves or blocks left');
  const stats = await httpGet(dev.base, `/debug/rooms/${room}`);
  assert.equal(stats.status, 200, stats.text);
  assert.deepEqual([stats.body.stored_keys, stats.body.alarm], [0, null], JSON.stringify(stats.body));
  const again = await join(dev.base, 'alice', room);
  again.close();
});
