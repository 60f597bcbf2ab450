// A wasm panic in one room (the `/debug/panic/{room}` test hook) replaces
// the rooms tier's wasm instance, which every object of the isolate shares.
// What a user must see: every connected peer, in that room and in others,
// goes on relaying without reconnecting, and a newcomer joins as before.
// (The request that panicked gets no answer: its future died with the old
// instance. The runtime ends it when its caller gives up.) A private pair of
// Workers: the panic wipes the in-memory state of every object in the isolate.
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { join, startDev, unique, sleep } from './lib.mjs';

let dev;

before(async () => {
  dev = await startDev();
}, { starts: 1 });
after(() => dev?.stop());

/** `from` sends an OFFER to `to`, who must receive it with `src` set. */
async function relays(from, fromId, to, toId, seq) {
  from.send({ type: 'OFFER', dst: toId, payload: { sdp: 'x', seq } });
  const got = await to.next((m) => m.type === 'OFFER' && m.payload?.seq === seq, 30_000, `OFFER ${seq}`);
  assert.equal(got.src, fromId);
}

test('after a wasm panic in one room, every connected peer still relays and newcomers join', async () => {
  const [roomA, roomB] = [unique('pa'), unique('pb')];
  const a1 = await join(dev.base, 'a1', roomA);
  const a2 = await join(dev.base, 'a2', roomA);
  const b1 = await join(dev.base, 'b1', roomB);
  const b2 = await join(dev.base, 'b2', roomB);
  try {
    await relays(a1, 'a1', a2, 'a2', 1);
    await relays(b1, 'b1', b2, 'b2', 1);

    const panicked = fetch(`${dev.base}/debug/panic/${roomA}`, { signal: AbortSignal.timeout(60_000) })
      .then((r) => r.status, (e) => e.name);
    const logged = /deliberate panic: \/debug\/panic/;
    for (let i = 0; i < 120 && !logged.test(dev.log()); i++) await sleep(250);
    assert.match(dev.log(), logged, 'the room never panicked');

    // The other room first: its object was made by the replaced instance.
    await relays(b2, 'b2', b1, 'b1', 2);
    await relays(a2, 'a2', a1, 'a1', 2);
    const a3 = await join(dev.base, 'a3', roomA);
    try {
      await relays(a1, 'a1', a3, 'a3', 3);
    } finally {
      a3.close();
    }
    assert.match(dev.log(), /Reinitializing Wasm application/);
    assert.notEqual(await Promise.race([panicked, sleep(10).then(() => 'pending')]), 200);
  } finally {
    for (const c of [a1, a2, b1, b2]) c.close();
  }
});
