// The same wire-level cases against our Workers and the reference server
// peer@1.0.2. Where we mean to match, both must give the same answer; where
// we deviate on purpose (docs/reference.md, "Deviations"), each side's behaviour is
// asserted explicitly. The reference has no rooms: it gets the same ids,
// and the token only as the per-client secret it is there.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { BASE, REF, connect, join, httpGet, unique, sleep } from './lib.mjs';

const SERVERS = { ours: BASE, reference: REF };
const strip = ({ receivedAt, ...rest }) => rest;

/** Runs `scenario(base, room)` on both servers and returns both results. */
async function both(scenario) {
  const out = {};
  for (const [name, base] of Object.entries(SERVERS)) out[name] = await scenario(base, unique('d'));
  return out;
}

function same(name, scenario) {
  test(`same: ${name}`, async () => {
    const { ours, reference } = await both(scenario);
    assert.deepEqual(ours, reference);
  });
}

same('GET / is the server-info JSON', async (base) => (await httpGet(base, '/')).body);

same('GET /peerjs/id is a 36-char UUID in plain text', async (base) => {
  const r = await httpGet(base, '/peerjs/id?ts=1&version=1.5.5');
  return [r.status, /^[0-9a-f-]{36}$/.test(r.text)];
});

same('missing parameters get the reference ERROR text', async (base) => {
  const c = await connect(base, { raw: `${base.replace(/^http/, 'ws')}/peerjs?key=peerjs&id=a` });
  return strip(await c.next('ERROR'));
});

same('a wrong key gets "Invalid key provided"', async (base) => {
  const c = await connect(base, { key: 'wrong', id: 'a', token: 'tok' });
  return strip(await c.next('ERROR'));
});

same('a new id gets OPEN first', async (base, room) => {
  const c = await connect(base, { id: unique('p'), token: room });
  const first = await c.next(() => true);
  await c.close();
  return strip(first);
});

same('relay overwrites src and sends exactly {type,src,dst,payload}', async (base, room) => {
  const [aId, bId] = [unique('a'), unique('b')];
  const a = await join(base, aId, room);
  const b = await join(base, bId, room);
  a.send({ type: 'CANDIDATE', src: 'spoof', dst: bId, extra: 1, payload: { candidate: { candidate: 'c', sdpMid: '0' } } });
  const got = strip(await b.next('CANDIDATE'));
  a.send({ type: 'OFFER', dst: aId, payload: { self: true } });
  const self = strip(await a.next('OFFER'));
  await Promise.all([a.close(), b.close()]);
  // Ids differ per server; compare the shape with them replaced.
  return [JSON.stringify(got).replaceAll(aId, 'A').replaceAll(bId, 'B'), JSON.stringify(self).replaceAll(aId, 'A')];
});

same('messages to an id not yet connected arrive right after its OPEN, in order', async (base, room) => {
  const aId = unique('a');
  const a = await join(base, aId, room);
  const late = unique('late');
  for (const seq of [1, 2, 3]) a.send({ type: seq === 1 ? 'OFFER' : 'CANDIDATE', dst: late, payload: { seq } });
  await sleep(300);
  const c = await connect(base, { id: late, token: room });
  await c.next((m) => m.payload?.seq === 3);
  await Promise.all([a.close(), c.close()]);
  return c.messages.map((m) => [m.type, m.src === aId || m.src === undefined, m.payload?.seq]);
});

same('an undeliverable OFFER expires with one EXPIRE from the missing id', async (base, room) => {
  const a = await join(base, unique('a'), room);
  a.send({ type: 'OFFER', dst: 'nobody', payload: {} });
  a.send({ type: 'CANDIDATE', dst: 'nobody', payload: {} });
  const { dst, ...expire } = strip(await a.next('EXPIRE'));
  await sleep(1_500);
  const count = a.of('EXPIRE').length;
  await a.close();
  return [expire, count];
});

same('unknown types and messages without dst are ignored and the socket stays usable', async (base, room) => {
  const [a, b] = [unique('a'), unique('b')];
  const pa = await join(base, a, room);
  const pb = await join(base, b, room);
  for (const f of [{ type: 'WHAT', dst: b }, { type: 'OFFER' }, { dst: b }]) pa.send(f);
  pa.send({ type: 'OFFER', dst: b, payload: { ok: 1 } });
  const got = strip(await pb.next('OFFER'));
  await sleep(200);
  const errors = pa.of('ERROR').length;
  await Promise.all([pa.close(), pb.close()]);
  return [got.payload, errors];
});

test('deviation: malformed JSON is dropped by us with the socket kept; the reference drops the connection', async () => {
  const { ours, reference } = await both(async (base, room) => {
    const [a, b] = [unique('a'), unique('b')];
    const pa = await join(base, a, room);
    const pb = await join(base, b, room);
    pa.send('not json');
    await sleep(300);
    pa.send({ type: 'OFFER', dst: b, payload: {} });
    await sleep(700);
    await Promise.all([pa.close(), pb.close()]);
    return pb.of('OFFER').length;
  });
  assert.equal(ours, 1);
  assert.equal(reference, 0);
});

test('deviation: HEARTBEAT is echoed by our auto-response; the reference stays silent', async () => {
  const { ours, reference } = await both(async (base, room) => {
    const a = await join(base, unique('a'), room);
    a.send('{"type":"HEARTBEAT"}');
    await sleep(500);
    await a.close();
    return a.of('HEARTBEAT').length;
  });
  assert.equal(ours, 1);
  assert.equal(reference, 0);
});

test('deviation: a closed peer is announced with LEAVE by us; the reference says nothing', async () => {
  const { ours, reference } = await both(async (base, room) => {
    const b = unique('b');
    const a = await join(base, unique('a'), room);
    const pb = await join(base, b, room);
    pb.kill();
    await sleep(3_500);
    await a.close();
    return a.of('LEAVE').map((m) => m.src === b);
  });
  assert.deepEqual(ours, [true]);
  assert.deepEqual(reference, []);
});

test('deviation: a second socket with the same id and token is refused by us; the reference silently re-attaches it', async () => {
  const { ours, reference } = await both(async (base, room) => {
    const id = unique('a');
    const a = await join(base, id, room);
    const again = await connect(base, { id, token: room });
    await sleep(700);
    await a.close();
    return again.messages.map((m) => m.type);
  });
  assert.deepEqual(ours, ['ID-TAKEN']);
  assert.deepEqual(reference, [], 'no OPEN: a reconnecting stock client never emits open');
});

test('deviation: frames over 64 KiB are dropped by us; the reference relays them', async () => {
  const { ours, reference } = await both(async (base, room) => {
    const bId = unique('b');
    const a = await join(base, unique('a'), room);
    const b = await join(base, bId, room);
    a.send({ type: 'OFFER', dst: bId, payload: { big: 'x'.repeat(70_000) } });
    await sleep(700);
    await Promise.all([a.close(), b.close()]);
    return b.of('OFFER').length;
  });
  assert.equal(ours, 0);
  assert.equal(reference, 1);
});

test('deviation: different tokens are different rooms for us; the reference has one namespace', async () => {
  const { ours, reference } = await both(async (base, room) => {
    const bId = unique('b');
    const a = await join(base, unique('a'), room);
    const b = await join(base, bId, `${room}other`);
    a.send({ type: 'OFFER', dst: bId, payload: {} });
    await sleep(500);
    await Promise.all([a.close(), b.close()]);
    return b.of('OFFER').length;
  });
  assert.equal(ours, 0);
  assert.equal(reference, 1);
});
