// The vertical slice: health, and an OFFER between two peers of one room,
// with `src` set by the server and nothing crossing into another room.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { BASE, join, httpGet, unique, sleep } from './lib.mjs';

test('/health answers with status, timestamp and version', async () => {
  const r = await httpGet(BASE, '/health');
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'ok');
  assert.ok(Math.abs(r.body.timestamp - Date.now()) < 60_000, 'timestamp is now');
  assert.match(r.body.version, /^\d+\.\d+\.\d+/);
});

test('two peers in one room exchange an OFFER with src set by the server; another room hears nothing', async () => {
  const room1 = unique('r');
  const room2 = unique('r');
  const a = await join(BASE, 'A', room1);
  const b = await join(BASE, 'B', room1);
  const other = await join(BASE, 'B', room2);
  const payload = { sdp: { type: 'offer', sdp: 'v=0\r\n' }, type: 'data', connectionId: 'dc_1' };
  a.send({ type: 'OFFER', src: 'mallory', dst: 'B', payload });
  const offer = await b.next('OFFER');
  assert.deepEqual(
    { type: offer.type, src: offer.src, dst: offer.dst, payload: offer.payload },
    { type: 'OFFER', src: 'A', dst: 'B', payload },
  );
  await sleep(300);
  assert.deepEqual(other.messages.map((m) => m.type), ['OPEN'], 'room2 only got its OPEN');
  await Promise.all([a.close(), b.close(), other.close()]);
});
