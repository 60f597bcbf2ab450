// Adversarial clients against a private pair of Workers (per-IP limit off,
// so the connection churn below cannot starve the other test files).
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { connect, join, httpGet, sleep, startDev, roomStats, eventually } from './lib.mjs';

let dev;
before(async () => {
  dev = await startDev({ vars: ['CONNECTS_PER_MINUTE_PER_IP:0'] });
}, { starts: 1 });
after(() => dev?.stop());

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('frames of 64 KiB + 1 byte and of 1 MiB, and JSON nested 10,000 deep, are dropped; the socket stays usable', async () => {
  const room = `adv${Date.now()}`;
  const a = await join(dev.base, 'a', room);
  const b = await join(dev.base, 'b', room);
  const envelope = '{"type":"OFFER","dst":"b","payload":"';
  const exact = 65_536 + 1 - envelope.length - 2;
  a.send(`${envelope}${'x'.repeat(exact)}"}`); // 64 KiB + 1
  a.send(`${envelope}${'y'.repeat(1 << 20)}"}`); // 1 MiB
  a.send(`${'['.repeat(10_000)}${']'.repeat(10_000)}`);
  a.send(`{"type":"OFFER","dst":${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
  a.send({ type: 'OFFER', dst: 'b', payload: { fine: true } });
  const got = await b.next('OFFER');
  assert.equal(got.payload.fine, true, 'only the well-formed OFFER arrived first');
  await sleep(300);
  assert.equal(b.of('OFFER').length, 1);
  assert.equal(a.of('ERROR').length, 0);
  await Promise.all([a.close(), b.close()]);
});

test('a peer that keeps sending oversized frames is closed with 1009 and told why; the others get LEAVE', async () => {
  const room = `big${Date.now()}`;
  const a = await join(dev.base, 'a', room);
  const b = await join(dev.base, 'b', room);
  for (let i = 0; i < 4; i++) a.send({ type: 'OFFER', dst: 'b', payload: { big: 'x'.repeat(70_000) } });
  const err = await a.next('ERROR');
  assert.match(err.payload.msg, /^Messages too big \(the limit is 65536 bytes\)$/);
  assert.equal((await a.closed).code, 1009);
  assert.equal((await b.next('LEAVE')).src, 'a');
  assert.equal(b.of('OFFER').length, 0, 'no oversized frame was relayed');
  await b.close();
});

test('10,000 frames a second from one peer: it is closed with its reason, the others\' relays all arrive in order', async () => {
  // What a user notices is asserted; how fast is `make bench`'s business.
  const room = `flood${Date.now()}`;
  const flooder = await join(dev.base, 'flooder', room);
  const a = await join(dev.base, 'a', room);
  const b = await join(dev.base, 'b', room);
  const flood = (async () => {
    for (let s = 0; s < 10 && flooder.ws.readyState === 1; s += 1) {
      for (let i = 0; i < 1_000 && flooder.ws.readyState === 1; i += 1) flooder.send({ type: 'LEAVE', dst: 'nobody' });
      await sleep(100); // 1,000 per 100 ms
    }
  })();
  const latencies = [];
  for (let i = 0; i < 20; i += 1) {
    const t = Date.now();
    a.send({ type: 'OFFER', dst: 'b', payload: { probe: i } });
    await b.next((m) => m.payload?.probe === i, 30_000, `probe ${i} (a -> b) during the flood`);
    latencies.push(Date.now() - t);
    await sleep(50);
  }
  await flood;
  assert.equal((await flooder.next('ERROR')).payload.msg, 'Rate limit exceeded');
  const closed = await flooder.closed;
  assert.equal(closed.code, 1008, `flooder closed with ${JSON.stringify(closed)}`);
  const probes = b.of('OFFER').map((m) => m.payload.probe);
  assert.deepEqual(probes, [...Array(20).keys()], 'every probe arrived once, in order');
  assert.ok(b.of('OFFER').every((m) => m.src === 'a'));
  assert.equal(a.of('ERROR').length + b.of('ERROR').length, 0, 'the others were not refused');
  // Printed for the reader, never asserted (figures: `make bench`).
  console.log(`probe relay during the flood, ms: median ${median(latencies)}, max ${Math.max(...latencies)}`);
  await Promise.all([a.close(), b.close()]);
});

test('1,000 rapid connect/disconnect cycles on one id leave no peers, no storage and no alarm', async () => {
  const room = `churn${Date.now()}`;
  for (let i = 0; i < 1_000; i += 1) {
    const c = await connect(dev.base, { id: 'churner', token: room });
    const first = await c.next((m) => m.type === 'OPEN' || m.type === 'ID-TAKEN');
    if (i % 2 === 0) c.kill(); else c.ws.close();
    // An ID-TAKEN means the previous socket's close had not landed yet: allowed, not a leak.
    assert.ok(first.type === 'OPEN' || first.type === 'ID-TAKEN');
  }
  // Leave grace and the final alarm run on the server's clock: wait for them.
  const roster = await eventually(() => httpGet(dev.base, `/peerjs/peers?token=${room}`),
    (r) => Array.isArray(r.body) && r.body.length === 0, 'an empty roster');
  assert.deepEqual(roster.body, []);
  const stats = await eventually(() => roomStats(dev.base, room),
    (s) => s.stored_keys === 0 && s.alarm === null, 'no storage and no alarm');
  assert.equal(stats.stored_keys, 0, JSON.stringify(stats));
  assert.equal(stats.alarm, null, JSON.stringify(stats));
});
