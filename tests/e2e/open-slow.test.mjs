// The open namespace's slow cases, in their own file so they run beside the
// fast ones: a stale holder taken over, a half-open peer swept, a home
// evicted from memory between events, and tickets that prove an id (a
// private dev session with tickets required).
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { OPEN, SECRET, connect, join, httpGet, unique, sleep, startDev, mintTicket, backendTicket, nowSecs, AUDIENCE } from './lib.mjs';

const HEARTBEAT = '{"type":"HEARTBEAT"}';
const token = () => Math.random().toString(36).slice(2);
const home = async (id) => (await httpGet(OPEN, `/debug/homes/${id}`)).body;

test('a stale holder (silent for ALIVE_TIMEOUT_MS) may be replaced by any token', async () => {
  const id = unique('stale');
  const silent = await join(OPEN, id, token());
  await sleep(16_000); // the 15 s alive timeout, no heartbeats sent
  const newcomer = await connect(OPEN, { id, token: token() });
  assert.equal((await newcomer.next(() => true)).type, 'OPEN');
  assert.equal((await silent.closed).code, 4001);
  await newcomer.close();
});

test('a half-open peer is swept and announced with LEAVE to its correspondents', async () => {
  const [silentId, aId] = [unique('half'), unique('a')];
  const silent = await join(OPEN, silentId, token());
  const a = await join(OPEN, aId, token());
  const beats = setInterval(() => a.send(HEARTBEAT), 1_000);
  silent.send({ type: 'OFFER', dst: aId, payload: {} });
  await a.next('OFFER');
  // Alive timeout 15 s, sweep 10 s in the test config: swept within 25 s.
  const leave = await a.next('LEAVE', 45_000);
  clearInterval(beats);
  assert.equal(leave.src, silentId);
  const closed = await silent.closed;
  assert.equal(closed.code, 4002);
  await a.close();
});

test('after both homes are evicted, relay, queue, EXPIRE and LEAVE still work; heartbeats never woke them', async () => {
  const [aId, bId] = [unique('a'), unique('b')];
  const a = await join(OPEN, aId, token());
  const b = await join(OPEN, bId, token());
  a.send({ type: 'OFFER', dst: bId, payload: {} });
  await b.next('OFFER');
  const beats = setInterval(() => [a, b].forEach((p) => p.send(HEARTBEAT)), 1_000);
  const before = await home(aId);
  await sleep(14_000); // workerd evicts an idle object after about 10 s
  const after = await home(aId);
  clearInterval(beats);
  assert.ok(a.of('HEARTBEAT').length >= 10, 'heartbeats answered');
  assert.equal(after.handler_wakes, before.handler_wakes, 'no handler ran while idle');

  a.send({ type: 'OFFER', dst: bId, payload: { after: 'eviction' } });
  assert.equal((await b.next((m) => m.payload?.after)).src, aId);
  const woke = await home(aId);
  assert.equal(woke.constructions, before.constructions + 1, 'the relay found a fresh instance: the home had been evicted');

  a.send({ type: 'OFFER', dst: unique('ghost'), payload: {} });
  await a.next('EXPIRE');
  b.kill();
  assert.equal((await a.next('LEAVE')).src, bId);
  await a.close();
});

test('with tickets required, the token is a ticket whose sub is the peer id (no room needed)', { starts: 1 }, async () => {
  const secret = SECRET || 'open-mode-secret-0123456789abcdef0123';
  const dev = await startDev({
    vars: ['NAMESPACE:open', `ROOM_TICKET_SECRET:${secret}`, 'REQUIRE_TICKETS:true', `TICKET_AUDIENCE:${AUDIENCE}`],
  });
  const ticket = (claims, options = {}) => backendTicket(claims, options, secret);
  const refused = async (id, tok) => {
    const c = await connect(dev.base, { id, token: tok });
    const first = await c.next(() => true);
    return [first.type, first.payload?.msg, (await c.closed).code];
  };
  try {
    const [aId, bId] = [unique('a'), unique('b')];
    const a = await join(dev.base, aId, ticket({ sub: aId }));
    const b = await join(dev.base, bId, ticket({ sub: bId }));
    a.send({ type: 'OFFER', dst: bId, payload: {} });
    assert.equal((await b.next('OFFER')).src, aId);

    assert.deepEqual(await refused('c', ticket({})), ['ERROR', 'Invalid ticket: no sub (the open namespace needs the peer id in sub)', 1008]);
    assert.deepEqual(await refused('c', ticket({ sub: 'd' })), ['ERROR', 'Invalid room ticket: issued for another peer id', 1008]);
    assert.deepEqual(await refused('c', token()), ['ERROR', 'Invalid room ticket: not a JWT', 1008]);
    assert.deepEqual(await refused('c', ticket({ sub: 'c' }, { expiresIn: -60 })), ['ERROR', 'Invalid room ticket: expired', 1008]);
    // A ticket for one room does not own the id in the whole namespace.
    assert.deepEqual(await refused('c', ticket({ sub: 'c', room: 'lobby' })), ['ERROR', 'Invalid ticket: a room ticket cannot prove a peer id in the open namespace (mint one without room)', 1008]);
    // Another service's ticket (another audience) proves nothing here.
    assert.deepEqual(await refused('c', ticket({ sub: 'c' }, { audience: 'another-service' })), ['ERROR', 'Invalid room ticket: wrong audience', 1008]);

    // A fresh ticket for the same id proves it: it replaces the live holder
    // (a reload, or a second device of the same player).
    const again = await join(dev.base, aId, ticket({ sub: aId, iat: nowSecs() + 1 }));
    assert.equal((await a.closed).code, 4001);
    b.send({ type: 'ANSWER', dst: aId, payload: {} });
    assert.equal((await again.next('ANSWER')).src, bId);
    await Promise.all([again.close(), b.close()]);
  } finally {
    dev.stop();
  }
});
