// Open mode (NAMESPACE=open) against the reference server peer@1.0.2, case
// by case: both get the same ids and each client its own random token, as
// the stock client makes up when an app sets none. Where we mean to match,
// both must give the same answer; each deliberate difference (docs/reference.md,
// "Deviations") asserts each side's behaviour.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { OPEN, REF, connect, join, httpGet, unique, sleep } from './lib.mjs';

const SERVERS = { ours: OPEN, reference: REF };
const strip = ({ receivedAt, ...rest }) => rest;
const token = () => Math.random().toString(36).slice(2);

async function both(scenario) {
  const out = {};
  for (const [name, base] of Object.entries(SERVERS)) out[name] = await scenario(base);
  return out;
}

function same(name, scenario) {
  test(`same (open): ${name}`, async () => {
    const { ours, reference } = await both(scenario);
    assert.deepEqual(ours, reference);
  });
}

same('GET / is the server-info JSON', async (base) => (await httpGet(base, '/')).body);

same('GET /peerjs/id is a UUID; /peerjs/peers is 401 (discovery off)', async (base) => {
  const id = await httpGet(base, '/peerjs/id');
  const peers = await httpGet(base, '/peerjs/peers');
  return [id.status, /^[0-9a-f-]{36}$/.test(id.text), peers.status];
});

same('a wrong key gets "Invalid key provided"', async (base) => {
  const c = await connect(base, { key: 'wrong', id: unique('a'), token: token() });
  return strip(await c.next('ERROR'));
});

same('a new id gets OPEN first', async (base) => {
  const c = await connect(base, { id: unique('p'), token: token() });
  const first = await c.next(() => true);
  await c.close();
  return strip(first);
});

same('peers with different tokens reach each other; src overwritten, exactly {type,src,dst,payload}', async (base) => {
  const [aId, bId] = [unique('a'), unique('b')];
  const a = await join(base, aId, token());
  const b = await join(base, bId, token());
  a.send({ type: 'OFFER', src: 'spoof', dst: bId, extra: 1, payload: { sdp: 'x' } });
  const offer = strip(await b.next('OFFER'));
  b.send({ type: 'ANSWER', dst: aId, payload: { sdp: 'y' } });
  const answer = strip(await a.next('ANSWER'));
  a.send({ type: 'CANDIDATE', dst: aId, payload: { self: true } });
  const self = strip(await a.next('CANDIDATE'));
  await Promise.all([a.close(), b.close()]);
  const anon = (m) => JSON.stringify(m).replaceAll(aId, 'A').replaceAll(bId, 'B');
  return [anon(offer), anon(answer), anon(self)];
});

same('a client-sent LEAVE is relayed like any message', async (base) => {
  const [aId, bId] = [unique('a'), unique('b')];
  const a = await join(base, aId, token());
  const b = await join(base, bId, token());
  a.send({ type: 'LEAVE', dst: bId });
  const got = strip(await b.next('LEAVE'));
  await Promise.all([a.close(), b.close()]);
  return [got.type, got.src === aId, got.dst === bId];
});

same('another token for a live id gets ID-TAKEN; the holder keeps working', async (base) => {
  const [id, otherId] = [unique('t'), unique('o')];
  const holder = await join(base, id, token());
  const thief = await connect(base, { id, token: token() });
  const refused = strip(await thief.next(() => true));
  const other = await join(base, otherId, token());
  other.send({ type: 'OFFER', dst: id, payload: { n: 1 } });
  const got = (await holder.next('OFFER')).payload;
  await Promise.all([holder.close(), other.close()]);
  return [refused, got];
});

same('messages to an id not connected yet arrive right after its OPEN, in order', async (base) => {
  const [aId, late] = [unique('a'), unique('late')];
  const a = await join(base, aId, token());
  for (const seq of [1, 2, 3]) a.send({ type: seq === 1 ? 'OFFER' : 'CANDIDATE', dst: late, payload: { seq } });
  await sleep(500);
  const c = await connect(base, { id: late, token: token() });
  await c.next((m) => m.payload?.seq === 3);
  await Promise.all([a.close(), c.close()]);
  return c.messages.map((m) => [m.type, m.src === aId || m.src === undefined, m.payload?.seq]);
});

same('an undeliverable OFFER expires with one EXPIRE from the missing id', async (base) => {
  const ghost = unique('ghost');
  const a = await join(base, unique('a'), token());
  a.send({ type: 'OFFER', dst: ghost, payload: {} });
  a.send({ type: 'CANDIDATE', dst: ghost, payload: {} });
  const { dst, ...expire } = strip(await a.next('EXPIRE', 20_000));
  await sleep(1_500);
  const count = a.of('EXPIRE').length;
  await a.close();
  return [{ ...expire, src: expire.src === ghost }, count];
});

same('unknown types and messages without dst are ignored and the socket stays usable', async (base) => {
  const [aId, bId] = [unique('a'), unique('b')];
  const a = await join(base, aId, token());
  const b = await join(base, bId, token());
  for (const f of [{ type: 'WHAT', dst: bId }, { type: 'OFFER' }, { dst: bId }]) a.send(f);
  a.send({ type: 'OFFER', dst: bId, payload: { ok: 1 } });
  const got = strip(await b.next('OFFER'));
  await sleep(200);
  const errors = a.of('ERROR').length;
  await Promise.all([a.close(), b.close()]);
  return [got.payload, errors];
});

test('deviation (open): the same id and token again replaces the old socket and gets OPEN; the reference re-attaches silently', async () => {
  const { ours, reference } = await both(async (base) => {
    const [id, tok] = [unique('r'), token()];
    const first = await join(base, id, tok);
    const again = await connect(base, { id, token: tok });
    await sleep(1_000);
    const firstClose = await Promise.race([first.closed.then((c) => c.code), sleep(15_000).then(() => 'open')]);
    again.kill();
    first.kill();
    return { again: again.messages.map((m) => m.type), firstClose };
  });
  assert.deepEqual(ours, { again: ['OPEN'], firstClose: 4001 });
  assert.deepEqual(reference.again, [], 'no OPEN: a reconnecting stock client never emits open');
});

test('deviation (open): a peer that closes is announced with LEAVE to those it signaled with; the reference says nothing', async () => {
  const { ours, reference } = await both(async (base) => {
    const [aId, bId] = [unique('a'), unique('b')];
    const a = await join(base, aId, token());
    const b = await join(base, bId, token());
    b.send({ type: 'OFFER', dst: aId, payload: {} });
    await a.next('OFFER');
    b.kill();
    await sleep(4_000);
    await a.close();
    return a.of('LEAVE').map((m) => m.src === bId);
  });
  assert.deepEqual(ours, [true]);
  assert.deepEqual(reference, []);
});

test('deviation (open): HEARTBEAT echoed, malformed JSON dropped with the socket kept, frames over 64 KiB dropped', async () => {
  const { ours, reference } = await both(async (base) => {
    const bId = unique('b');
    const a = await join(base, unique('a'), token());
    const b = await join(base, bId, token());
    a.send('{"type":"HEARTBEAT"}');
    a.send({ type: 'OFFER', dst: bId, payload: { big: 'x'.repeat(70_000) } });
    await sleep(500);
    a.send('not json');
    await sleep(300);
    a.send({ type: 'OFFER', dst: bId, payload: { after: 'malformed' } });
    await sleep(700);
    a.kill();
    b.kill();
    return {
      heartbeats: a.of('HEARTBEAT').length,
      big: b.of('OFFER').filter((m) => m.payload.big).length,
      afterMalformed: b.of('OFFER').filter((m) => m.payload.after).length,
    };
  });
  assert.deepEqual(ours, { heartbeats: 1, big: 0, afterMalformed: 1 });
  assert.deepEqual(reference, { heartbeats: 0, big: 1, afterMalformed: 0 });
});
