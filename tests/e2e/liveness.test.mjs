// Slow liveness cases, in their own file so they run beside the others:
// eviction from memory (hibernation) and a half-open peer.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { BASE, join, unique, sleep, roomStats } from './lib.mjs';

const HEARTBEAT = '{"type":"HEARTBEAT"}';

test('after the room is evicted, relay, EXPIRE and LEAVE still work, and heartbeats never woke it', async () => {
  const room = unique('hib');
  const a = await join(BASE, 'a', room);
  const b = await join(BASE, 'b', room);
  const c = await join(BASE, 'c', room);
  const beats = setInterval(() => [a, b, c].forEach((p) => p.send(HEARTBEAT)), 1_000);
  const before = await roomStats(BASE, room);
  await sleep(14_000); // workerd evicts an idle object after about 10 s
  const after = await roomStats(BASE, room);
  clearInterval(beats);
  const sentBeats = a.of('HEARTBEAT').length + b.of('HEARTBEAT').length + c.of('HEARTBEAT').length;
  assert.ok(sentBeats >= 30, `${sentBeats} heartbeats answered`);
  assert.equal(after.handler_wakes, before.handler_wakes, 'no handler ran while idle');

  a.send({ type: 'OFFER', dst: 'b', payload: { after: 'eviction' } });
  const got = await b.next('OFFER');
  assert.equal(got.src, 'a');
  const woke = await roomStats(BASE, room);
  assert.equal(woke.constructions, before.constructions + 1, 'the relay found a fresh instance: the room had been evicted');

  a.send({ type: 'OFFER', dst: 'ghost', payload: {} });
  const expire = await a.next('EXPIRE');
  assert.equal(expire.src, 'ghost');
  c.kill();
  assert.equal((await a.next('LEAVE')).src, 'c');
  await Promise.all([a.close(), b.close()]);
});

test('a half-open peer that stops heartbeating is closed and announced with LEAVE', async () => {
  const room = unique('half');
  const a = await join(BASE, 'a', room);
  const silent = await join(BASE, 'silent', room);
  const beats = setInterval(() => a.send(HEARTBEAT), 1_000);
  // Alive timeout 15 s, sweep 10 s in the test config: swept within 25 s of
  // its last sign of life.
  const leave = await a.next('LEAVE', 40_000);
  clearInterval(beats);
  assert.equal(leave.src, 'silent');
  const closed = await silent.closed;
  assert.equal(closed.code, 4002);
  assert.match(closed.reason, /heartbeat/i);
  await a.close();
});

test('an idle room of heartbeating peers is swept by its stats shard and stores nothing: no record, no alarm', async () => {
  const room = unique('idle');
  const peers = await Promise.all(['a', 'b', 'c'].map((id) => join(BASE, id, room)));
  const beats = setInterval(() => peers.forEach((p) => p.send(HEARTBEAT)), 1_000);
  await sleep(1_000); // past the membership report
  const joined = await roomStats(BASE, room);
  assert.equal(joined.stored_keys, 0, 'a join into an empty room stores nothing');
  assert.equal(joined.alarm, null, 'and sets no alarm: the sweep is the shard\'s call');
  // The first sweep is due 15 + 10 s after the joins (test config) and the
  // shard calls it within its 5 s tick.
  await sleep(32_000);
  const idle = await roomStats(BASE, room);
  clearInterval(beats);
  assert.ok(idle.wakes > joined.wakes, `the shard's sweep woke the room (wakes ${joined.wakes} -> ${idle.wakes})`);
  assert.equal(idle.stored_keys, 0, 'the sweep wrote no record');
  assert.equal(idle.alarm, null, 'and set no alarm');
  for (const p of peers) assert.equal(p.of('LEAVE').length, 0, 'nobody was swept');
  await Promise.all(peers.map((p) => p.close()));
});
