// GET {mount}{key}/peers with the room credential: the live peers of that room.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { BASE, connect, join, httpGet, unique, sleep } from './lib.mjs';

const roster = async (room, how = 'query') => {
  const r = how === 'query'
    ? await httpGet(BASE, `/peerjs/peers?token=${room}`)
    : await httpGet(BASE, '/peerjs/peerjs/peers', { Authorization: `Bearer ${room}` });
  assert.equal(r.status, 200, r.text);
  return r.body;
};

test('the roster follows joins, leaves and takeovers', async () => {
  const room = unique('ros');
  assert.deepEqual(await roster(room), [], 'a room that does not exist is empty');
  const peers = [];
  for (const id of ['d', 'a', 'c', 'b']) {
    peers.push(await join(BASE, id, room));
    assert.equal((await roster(room)).length, peers.length);
  }
  assert.deepEqual(await roster(room, 'bearer'), ['a', 'b', 'c', 'd']);
  await peers[0].close();
  await sleep(200);
  assert.deepEqual(await roster(room), ['a', 'b', 'c'], 'a closed socket is gone at once');
  // A stale holder taken over: listed once.
  const beats = setInterval(() => peers.slice(2).forEach((p) => p.send('{"type":"HEARTBEAT"}')), 1000);
  await sleep(15_500);
  assert.deepEqual(await roster(room), ['b', 'c'], 'a stale peer (a) is not listed');
  const a2 = await join(BASE, 'a', room);
  assert.deepEqual(await roster(room), ['a', 'b', 'c']);
  clearInterval(beats);
  await Promise.all([a2.close(), peers[2].close(), peers[3].close()]);
});

test('the roster needs the credential and carries CORS headers', async () => {
  const noCred = await httpGet(BASE, '/peerjs/peers', { Origin: 'https://x.example' });
  assert.equal(noCred.status, 401);
  assert.equal(noCred.headers.get('www-authenticate'), 'Bearer', 'a 401 names its scheme (RFC 9110 §11.6.1)');
  assert.equal(noCred.headers.get('access-control-allow-origin'), 'https://x.example');
  const bad = await httpGet(BASE, '/peerjs/peers?token=bad.room');
  assert.equal(bad.status, 403);
  assert.match(bad.body.error, /room id/i);
  const ok = await httpGet(BASE, `/peerjs/peers?token=${unique('c')}`, { Origin: 'https://x.example' });
  assert.equal(ok.headers.get('access-control-allow-origin'), 'https://x.example');
  assert.match(ok.headers.get('vary'), /Origin/);
});
