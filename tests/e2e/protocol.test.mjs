// The PeerJS protocol of the GameRoom, over real sockets (test config:
// 4 peers a room, alive timeout 15 s, expire 5 s, leave grace 2 s, 100 msgs/s).
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { BASE, connect, join, unique, sleep, roomStats, eventually } from './lib.mjs';

const offer = (dst, extra = {}) => ({
  type: 'OFFER',
  dst,
  payload: { sdp: { type: 'offer', sdp: 'v=0' }, type: 'data', connectionId: 'dc_x', ...extra },
});

test('a fifth peer is refused with a room-full ERROR and a policy close; the four are unaffected', async () => {
  const room = unique('full');
  const peers = [];
  for (const id of ['p1', 'p2', 'p3', 'p4']) peers.push(await join(BASE, id, room));
  const fifth = await connect(BASE, { id: 'p5', token: room });
  const err = await fifth.next('ERROR');
  assert.match(err.payload.msg, /room is full/i);
  const closed = await fifth.closed;
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /full/i);
  peers[0].send(offer('p4'));
  const got = await peers[3].next('OFFER');
  assert.equal(got.src, 'p1');
  // A seat freed by a leave can be taken again.
  await peers[1].close();
  const again = await join(BASE, 'p6', room);
  await Promise.all([...peers.filter((_, i) => i !== 1).map((p) => p.close()), again.close()]);
});

test('a second socket claiming a live id gets ID-TAKEN and is closed; the holder keeps working', async () => {
  const room = unique('dup');
  const a = await join(BASE, 'alice', room);
  const b = await join(BASE, 'bob', room);
  const dup = await connect(BASE, { id: 'alice', token: room });
  const taken = await dup.next('ID-TAKEN');
  assert.equal(taken.payload.msg, 'ID is taken');
  assert.equal((await dup.closed).code, 1008);
  b.send(offer('alice'));
  assert.equal((await a.next('OFFER')).src, 'bob');
  await Promise.all([a.close(), b.close()]);
});

test('ten concurrent claims of one id resolve to exactly one winner', async () => {
  const room = unique('race');
  const clients = await Promise.all(
    Array.from({ length: 10 }, () => connect(BASE, { id: 'same', token: room })),
  );
  const firsts = await Promise.all(clients.map((c) => c.next((m) => m.type === 'OPEN' || m.type === 'ID-TAKEN')));
  const types = firsts.map((m) => m.type).sort();
  assert.equal(types.filter((t) => t === 'OPEN').length, 1, JSON.stringify(types));
  assert.equal(types.filter((t) => t === 'ID-TAKEN').length, 9);
  await Promise.all(clients.map((c) => c.close()));
});

test('a stale holder (no heartbeat for the alive timeout) is taken over: OPEN, old socket closed, no LEAVE', async () => {
  const room = unique('stale');
  const watcher = await join(BASE, 'watcher', room);
  const keepAlive = setInterval(() => watcher.send('{"type":"HEARTBEAT"}'), 1000);
  const old = await join(BASE, 'phoenix', room);
  await sleep(15_500); // past the 15 s alive timeout; `old` stays silent
  const fresh = await join(BASE, 'phoenix', room);
  watcher.send(offer('phoenix'));
  assert.equal((await fresh.next('OFFER')).src, 'watcher');
  const closed = await old.closed;
  assert.equal(closed.code, 4001);
  assert.match(closed.reason, /replaced/i);
  await sleep(2_500); // past the leave grace
  assert.equal(watcher.of('LEAVE').length, 0, 'a takeover sends no LEAVE');
  clearInterval(keepAlive);
  await Promise.all([watcher.close(), fresh.close()]);
});

test('OFFER, ANSWER, CANDIDATE, LEAVE and EXPIRE are relayed as exactly {type,src,dst,payload}', async () => {
  const room = unique('relay');
  const a = await join(BASE, 'a', room);
  const b = await join(BASE, 'b', room);
  for (const type of ['OFFER', 'ANSWER', 'CANDIDATE', 'LEAVE', 'EXPIRE']) {
    const payload = { n: type, nested: { list: [1, 2.5, 'x'] } };
    a.send({ type, dst: 'b', src: 'spoof', extra: 'dropped', payload });
    const got = await b.next((m) => m.type === type && m.payload?.n === type);
    assert.deepEqual(Object.keys(got).filter((k) => k !== 'receivedAt'), ['type', 'src', 'dst', 'payload']);
    assert.deepEqual([got.src, got.dst, got.payload], ['a', 'b', payload]);
  }
  // dst equal to the sender is delivered back, as the reference does.
  a.send(offer('a'));
  assert.equal((await a.next('OFFER')).src, 'a');
  await Promise.all([a.close(), b.close()]);
});

test('messages to an id not yet in the room are delivered in order right after its OPEN', async () => {
  const room = unique('queue');
  const a = await join(BASE, 'a', room);
  a.send(offer('late', { seq: 1 }));
  a.send({ type: 'CANDIDATE', dst: 'late', payload: { seq: 2 } });
  a.send({ type: 'ANSWER', dst: 'late', payload: { seq: 3 } });
  a.send({ type: 'LEAVE', dst: 'late' }); // dropped: LEAVE to an offline id
  await sleep(500);
  const late = await connect(BASE, { id: 'late', token: room });
  await late.next((m) => m.payload?.seq === 3);
  assert.deepEqual(
    late.messages.map((m) => [m.type, m.payload?.seq, m.src]),
    [['OPEN', undefined, undefined], ['OFFER', 1, 'a'], ['CANDIDATE', 2, 'a'], ['ANSWER', 3, 'a']],
  );
  await sleep(5_500);
  assert.equal(a.of('EXPIRE').length, 0, 'delivered messages never expire');
  await Promise.all([a.close(), late.close()]);
});

test('undeliverable messages expire with one EXPIRE per (sender, dst) pair', async () => {
  const room = unique('expire');
  const a = await join(BASE, 'a', room);
  const sentAt = Date.now();
  a.send(offer('ghost'));
  a.send({ type: 'CANDIDATE', dst: 'ghost', payload: { c: 1 } });
  a.send({ type: 'CANDIDATE', dst: 'ghost', payload: { c: 2 } });
  const expire = await a.next('EXPIRE');
  const after = expire.receivedAt - sentAt;
  assert.deepEqual([expire.src, expire.dst], ['ghost', 'a']);
  // Never before EXPIRE_TIMEOUT_MS (5 s, less a little clock slack); how
  // late is the machine's business, not a rule.
  assert.ok(after >= 4_500, `EXPIRE after only ${after} ms`);
  await sleep(1_500);
  assert.equal(a.of('EXPIRE').length, 1);
  // The expired messages are gone: a late ghost gets only OPEN.
  const ghost = await join(BASE, 'ghost', room);
  await sleep(300);
  assert.deepEqual(ghost.messages.map((m) => m.type), ['OPEN']);
  await Promise.all([a.close(), ghost.close()]);
});

test('a peer whose socket closes is announced with LEAVE; one back within the grace is not', async () => {
  const room = unique('leave');
  const a = await join(BASE, 'a', room);
  const b = await join(BASE, 'b', room);
  const c = await join(BASE, 'c', room);
  // c drops and comes back within the 2 s grace: nobody hears of it.
  c.kill();
  await sleep(500);
  const c2 = await join(BASE, 'c', room);
  // b goes for good.
  b.kill();
  const leave = await a.next('LEAVE');
  assert.deepEqual([leave.src, leave.dst], ['b', 'a']);
  assert.equal((await c2.next('LEAVE')).src, 'b');
  await sleep(1_000);
  assert.deepEqual(a.of('LEAVE').map((m) => m.src), ['b'], 'no LEAVE for c');
  await Promise.all([a.close(), c2.close()]);
});

test('bad frames are dropped without an ERROR and the socket stays usable', async () => {
  const room = unique('bad');
  const a = await join(BASE, 'a', room);
  const b = await join(BASE, 'b', room);
  const bad = [
    'not json',
    '123',
    'null',
    '[1,2]',
    '{"dst":"b"}',
    '{"type":"OPEN","dst":"b"}',
    '{"type":"SOMETHING","dst":"b"}',
    '{"type":"OFFER"}',
    '{"type":"OFFER","dst":""}',
    JSON.stringify({ type: 'OFFER', dst: 'b', payload: 'x'.repeat(65_536) }), // over 64 KiB
  ];
  for (const frame of bad) a.send(frame);
  a.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])); // invalid UTF-8, binary
  // Binary frames holding JSON are handled like text.
  a.ws.send(Buffer.from(JSON.stringify(offer('b', { via: 'binary' }))));
  const viaBinary = await b.next((m) => m.payload?.via === 'binary');
  assert.equal(viaBinary.src, 'a');
  a.send(offer('b', { after: true }));
  await b.next((m) => m.payload?.after === true);
  assert.equal(a.of('ERROR').length, 0);
  assert.equal(b.messages.filter((m) => m.type === 'OFFER').length, 2, 'only the two good OFFERs arrived');
  await Promise.all([a.close(), b.close()]);
});

test('a flooding peer is rate limited, then gets ERROR and a policy close; the others\' relays still arrive', async () => {
  const room = unique('flood');
  const flooder = await join(BASE, 'flooder', room);
  const a = await join(BASE, 'a', room);
  const b = await join(BASE, 'b', room);
  for (let i = 0; i < 2_000; i += 1) flooder.send({ type: 'LEAVE', dst: 'nobody', payload: { i } });
  const err = await flooder.next('ERROR');
  assert.equal(err.payload.msg, 'Rate limit exceeded');
  const closed = await flooder.closed;
  assert.equal(closed.code, 1008);
  a.send(offer('b', { probe: true }));
  const probe = await b.next((m) => m.payload?.probe === true, 30_000, 'the probe OFFER after the flood');
  assert.equal(probe.src, 'a');
  assert.equal((await a.next('LEAVE')).src, 'flooder');
  await Promise.all([a.close(), b.close()]);
});

test('HEARTBEAT is answered by the runtime without waking the room', async () => {
  const room = unique('hb');
  const a = await join(BASE, 'a', room);
  const before = await roomStats(BASE, room);
  for (let i = 0; i < 20; i += 1) a.send('{"type":"HEARTBEAT"}');
  await a.next((m) => a.of('HEARTBEAT').length >= 20, 5_000, '20 heartbeat replies');
  const after = await roomStats(BASE, room);
  assert.equal(after.handler_wakes, before.handler_wakes, '20 heartbeats, no handler ran');
  await a.close();
});

test('an emptied room leaves no storage and no alarm behind', async () => {
  const room = unique('empty');
  const a = await join(BASE, 'a', room);
  const b = await join(BASE, 'b', room);
  a.send(offer('ghost')); // queued, expires
  await a.close();
  await b.close();
  // Leave grace (2 s) and expiry (5 s) run on the server's clock.
  const stats = await eventually(() => roomStats(BASE, room),
    (s) => s.stored_keys === 0 && s.alarm === null, 'no storage and no alarm');
  assert.equal(stats.stored_keys, 0);
  assert.equal(stats.alarm, null);
});

test('concurrent senders queueing for an absent peer while others join and leave: every message arrives once, in order, nothing left in storage', async () => {
  // Many queueing frames, joins and closes in flight at once in one room:
  // each handler must start from the record the previous one left.
  const room = unique('interleave');
  const senders = await Promise.all(['a', 'b', 'c'].map((id) => join(BASE, id, room)));
  const perSender = 30;
  const churn = (async () => {
    for (let i = 0; i < 4; i += 1) {
      const d = await join(BASE, 'd', room);
      await d.close();
    }
  })();
  for (let n = 1; n <= perSender; n += 1) {
    for (const s of senders) s.send(offer('x', { n }));
    if (n % 5 === 0) await sleep(20);
  }
  await churn;
  await sleep(500);
  const x = await join(BASE, 'x', room);
  const total = senders.length * perSender;
  await x.next(() => x.of('OFFER').length >= total, 5_000, `${total} queued OFFERs`);
  await sleep(300);
  for (const id of ['a', 'b', 'c']) {
    const got = x.of('OFFER').filter((m) => m.src === id).map((m) => m.payload.n);
    assert.deepEqual(got, Array.from({ length: perSender }, (_, i) => i + 1), `from ${id}`);
  }
  await Promise.all([...senders, x].map((s) => s.close()));
  const stats = await eventually(() => roomStats(BASE, room),
    (s) => s.stored_keys === 0 && s.alarm === null, 'no storage and no alarm after the leave grace');
  assert.equal(stats.stored_keys, 0, 'no queued frame left behind');
  assert.equal(stats.alarm, null);
});
