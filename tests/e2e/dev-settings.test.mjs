// `make dev` as a newcomer runs it: settings from the environment reach both
// Workers, and the defaults carry a local load from one machine.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { connect, join, startDev } from './lib.mjs';

test('NAME=value reaches both Workers: MAX_PEERS_PER_ROOM (rooms) and PEERJS_KEY (router)', { starts: 1 }, async () => {
  const dev = await startDev({ wranglerEnv: null, env: { MAX_PEERS_PER_ROOM: '2', PEERJS_KEY: 'custom' } });
  try {
    const room = `settings${Date.now()}`;
    const a = await join(dev.base, 'a', room, { key: 'custom' });
    const b = await join(dev.base, 'b', room, { key: 'custom' });
    const c = await connect(dev.base, { id: 'c', token: room, key: 'custom' });
    const refused = await c.next('ERROR');
    assert.equal(refused.payload.msg, 'Room is full (2 peers)');
    const wrongKey = await connect(dev.base, { id: 'd', token: `${room}x` });
    assert.equal((await wrongKey.next('ERROR')).payload.msg, 'Invalid key provided');
    await Promise.all([a.close(), b.close()]);
  } finally {
    dev.stop();
  }
});

test('make dev defaults: 1,000 connections (250 rooms of 4) from one machine all get OPEN', { starts: 1 }, async () => {
  const dev = await startDev({ wranglerEnv: null });
  try {
    const stamp = Date.now();
    const peers = [];
    const refusals = [];
    for (let r = 0; r < 250; r += 1) {
      const room = `load${stamp}r${r}`;
      const four = await Promise.all(['p0', 'p1', 'p2', 'p3'].map(async (id) => {
        const c = await connect(dev.base, { id, token: room });
        const first = await c.next((m) => m.type === 'OPEN' || m.type === 'ERROR' || m.type === 'ID-TAKEN');
        if (first.type !== 'OPEN') refusals.push(`${room}/${id}: ${first.type} ${first.payload?.msg ?? ''}`);
        return c;
      }));
      peers.push(...four);
    }
    assert.deepEqual(refusals.slice(0, 10), [], `${refusals.length} of 1,000 refused`);
    assert.equal(peers.filter((c) => c.of('OPEN').length === 1).length, 1_000);
    for (const c of peers) c.kill();
  } finally {
    dev.stop();
  }
});
