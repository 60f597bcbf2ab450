// The open namespace (NAMESPACE=open), rule by rule, over real sockets: a
// client that sets no token of its own (the stock client then makes up a
// random one) reaches any other id of the deployment, as on the reference
// server. Every peer id has its own home (a PeerHome Durable Object); what
// crosses between homes is checked here from the outside, and the homes'
// emptiness through the test env's `/debug/homes/{id}`.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { OPEN, connect, join, httpGet, unique, sleep, eventually } from './lib.mjs';

const strip = ({ receivedAt, ...rest }) => rest;
/** A random token, as the stock client makes up when the app sets none. */
const token = () => Math.random().toString(36).slice(2);
const home = async (id) => (await httpGet(OPEN, `/debug/homes/${id}`)).body;
const empty = (h) => h.stored_keys === 0 && h.alarm === null && h.sockets === 0;

test('peers with their own random tokens reach each other by id; src is overwritten', async () => {
  const [aId, bId] = [unique('a'), unique('b')];
  const a = await join(OPEN, aId, token());
  const b = await join(OPEN, bId, token());
  a.send({ type: 'OFFER', src: 'spoof', dst: bId, payload: { sdp: 'x', type: 'offer' }, extra: 1 });
  assert.deepEqual(strip(await b.next('OFFER')), { type: 'OFFER', src: aId, dst: bId, payload: { sdp: 'x', type: 'offer' } });
  b.send({ type: 'ANSWER', dst: aId, payload: { sdp: 'y' } });
  assert.equal((await a.next('ANSWER')).src, bId);
  for (const n of [1, 2, 3]) a.send({ type: 'CANDIDATE', dst: bId, payload: { n } });
  await b.next((m) => m.type === 'CANDIDATE' && m.payload.n === 3);
  assert.deepEqual(b.of('CANDIDATE').map((m) => m.payload.n), [1, 2, 3], 'in order');
  a.send({ type: 'OFFER', dst: aId, payload: { self: true } });
  assert.equal((await a.next((m) => m.payload?.self)).src, aId, 'to itself, as the reference allows');
  await Promise.all([a.close(), b.close()]);
});

test('the same id with the same token replaces the first socket (reload) and gets OPEN; messages follow it', async () => {
  const [id, peerId, tok] = [unique('r'), unique('p'), token()];
  const first = await join(OPEN, id, tok);
  const peer = await join(OPEN, peerId, token());
  const second = await join(OPEN, id, tok);
  const closed = await first.closed;
  assert.equal(closed.code, 4001);
  assert.match(closed.reason, /replaced/i);
  peer.send({ type: 'OFFER', dst: id, payload: { to: 'second' } });
  assert.equal((await second.next('OFFER')).payload.to, 'second');
  await sleep(2_500); // past the leave grace: a replacement is no LEAVE
  assert.deepEqual(peer.of('LEAVE'), []);
  await Promise.all([second.close(), peer.close()]);
});

test('the same id with another token while the holder is live gets ID-TAKEN; the holder keeps its id', async () => {
  const id = unique('t');
  const holder = await join(OPEN, id, token());
  const thief = await connect(OPEN, { id, token: token() });
  assert.deepEqual(strip(await thief.next(() => true)), { type: 'ID-TAKEN', payload: { msg: 'ID is taken' } });
  assert.equal((await thief.closed).code, 1008);
  const other = await join(OPEN, unique('o'), token());
  other.send({ type: 'OFFER', dst: id, payload: { still: 'holder' } });
  assert.equal((await holder.next('OFFER')).payload.still, 'holder');
  await Promise.all([holder.close(), other.close()]);
});

test('messages to an id not connected yet are queued and arrive right after its OPEN, in order', async () => {
  const [aId, late] = [unique('a'), unique('late')];
  const a = await join(OPEN, aId, token());
  a.send({ type: 'OFFER', dst: late, payload: { seq: 1 } });
  a.send({ type: 'CANDIDATE', dst: late, payload: { seq: 2 } });
  a.send({ type: 'CANDIDATE', dst: late, payload: { seq: 3 } });
  await eventually(() => home(late), (h) => h.stored_keys >= 3, 'the three parcels in the late home');
  const c = await connect(OPEN, { id: late, token: token() });
  await c.next((m) => m.payload?.seq === 3);
  assert.deepEqual(c.messages.map((m) => [m.type, m.src, m.payload?.seq]), [
    ['OPEN', undefined, undefined], ['OFFER', aId, 1], ['CANDIDATE', aId, 2], ['CANDIDATE', aId, 3],
  ]);
  // Nothing is left in storage: the delivered parcels and the queue's
  // record are deleted, and the correspondent (a) is in the socket's attachment.
  await eventually(() => home(late), (h) => h.stored_keys === 0 && h.sockets === 1, 'the delivered parcels deleted, the socket live');
  await Promise.all([a.close(), c.close()]);
});

test('undelivered messages expire: one EXPIRE per (sender, dst) pair, and every home involved empties itself', async () => {
  const [a1, a2, ghost] = [unique('s1'), unique('s2'), unique('ghost')];
  const s1 = await join(OPEN, a1, token());
  const s2 = await join(OPEN, a2, token());
  for (const s of [s1, s2]) {
    s.send({ type: 'OFFER', dst: ghost, payload: {} });
    s.send({ type: 'CANDIDATE', dst: ghost, payload: {} });
  }
  for (const [s, id] of [[s1, a1], [s2, a2]]) {
    const { receivedAt, ...expire } = await s.next('EXPIRE', 30_000);
    assert.deepEqual(expire, { type: 'EXPIRE', src: ghost, dst: id });
  }
  await sleep(1_000);
  assert.equal(s1.of('EXPIRE').length + s2.of('EXPIRE').length, 2, 'one EXPIRE per pair');
  await eventually(() => home(ghost), empty, 'the ghost home empty: no storage, no alarm');
  await Promise.all([s1.close(), s2.close()]);
});

test('one sender cannot fill a home\'s queue: at most MAX_QUEUED_PER_SENDER (32) each, others still queue', async () => {
  const [loud, quiet, late] = [unique('loud'), unique('quiet'), unique('late')];
  const l = await join(OPEN, loud, token());
  const q = await join(OPEN, quiet, token());
  for (let n = 0; n < 40; n += 1) l.send({ type: 'CANDIDATE', dst: late, payload: { n } });
  await eventually(() => home(late), (h) => h.stored_keys >= 32, 'the loud sender\'s share queued');
  q.send({ type: 'OFFER', dst: late, payload: { quiet: true } });
  await eventually(() => home(late), (h) => h.stored_keys >= 33, 'the quiet sender\'s OFFER queued too');
  const c = await join(OPEN, late, token());
  await c.next((m) => m.payload?.quiet);
  await sleep(500);
  assert.equal(c.of('CANDIDATE').length, 32, 'the loud sender got its share, no more');
  assert.deepEqual(c.of('CANDIDATE').map((m) => m.payload.n), [...Array(32).keys()], 'the first 32, in order');
  await Promise.all([l.close(), q.close(), c.close()]);
});

test('a peer that leaves is announced with LEAVE to those it signaled with, after the grace; others hear nothing', async () => {
  const [goneId, talkedId, strangerId] = [unique('gone'), unique('talked'), unique('stranger')];
  const gone = await join(OPEN, goneId, token());
  const talked = await join(OPEN, talkedId, token());
  const stranger = await join(OPEN, strangerId, token());
  gone.send({ type: 'OFFER', dst: talkedId, payload: {} });
  await talked.next('OFFER');
  talked.send({ type: 'ANSWER', dst: goneId, payload: {} });
  await gone.next('ANSWER');
  gone.kill();
  const leave = await talked.next('LEAVE', 20_000);
  assert.deepEqual(strip(leave), { type: 'LEAVE', src: goneId, dst: talkedId });
  await sleep(1_000);
  assert.deepEqual(stranger.of('LEAVE'), [], 'no LEAVE to a peer that never signaled with it');
  assert.equal(talked.of('LEAVE').length, 1);
  await eventually(() => home(goneId), empty, 'the gone peer\'s home empty');
  await Promise.all([talked.close(), stranger.close()]);
});

test('a peer back within the leave grace (same token) is no LEAVE, and its queue waited for it', async () => {
  const [id, peerId, tok] = [unique('back'), unique('p'), token()];
  const first = await join(OPEN, id, tok);
  const peer = await join(OPEN, peerId, token());
  first.send({ type: 'OFFER', dst: peerId, payload: {} });
  await peer.next('OFFER');
  await first.close();
  peer.send({ type: 'CANDIDATE', dst: id, payload: { while: 'away' } });
  const again = await join(OPEN, id, tok);
  assert.equal((await again.next('CANDIDATE')).payload.while, 'away');
  await sleep(3_000);
  assert.deepEqual(peer.of('LEAVE'), [], 'came back within LEAVE_GRACE_MS');
  await Promise.all([again.close(), peer.close()]);
});

test('HEARTBEAT is answered, oversized and malformed frames are dropped with the socket kept', async () => {
  const [aId, bId] = [unique('a'), unique('b')];
  const a = await join(OPEN, aId, token());
  const b = await join(OPEN, bId, token());
  a.send('{"type":"HEARTBEAT"}');
  await a.next('HEARTBEAT');
  a.send('{not json');
  a.send({ type: 'OFFER', dst: bId, payload: { big: 'x'.repeat(70_000) } });
  a.send({ type: 'OFFER', dst: bId, payload: { small: true } });
  const got = await b.next('OFFER');
  assert.equal(got.payload.small, true, 'the oversized frame never arrived; the next one did');
  await Promise.all([a.close(), b.close()]);
});

test('HTTP API in open mode: /id answers, /peers is 401 (discovery off, as the reference)', async () => {
  const id = await httpGet(OPEN, '/peerjs/peerjs/id');
  assert.equal(id.status, 200);
  assert.match(id.text, /^[0-9a-f-]{36}$/);
  const peers = await httpGet(OPEN, '/peerjs/peerjs/peers');
  assert.equal(peers.status, 401);
  assert.equal(peers.headers.get('www-authenticate'), 'Bearer');
  assert.match(peers.body.error, /discovery is off/i);
});

test('a flood of frames to random ids leaves nothing behind: every home it touched empties itself', async () => {
  const flooder = await join(OPEN, unique('flood'), token());
  const targets = Array.from({ length: 60 }, () => unique('rnd'));
  // Under PEER_MSGS_PER_SEC (100): the flood is of ids, not of frames.
  for (const dst of targets) flooder.send({ type: 'OFFER', dst, payload: {} });
  for (const dst of targets.slice(0, 20)) flooder.send({ type: 'LEAVE', dst }); // not queueable: nothing stored
  await eventually(() => flooder.of('EXPIRE').length, (n) => n === targets.length, 'one EXPIRE per random id', { timeout: 60_000 });
  const homes = await Promise.all(targets.map(home));
  const left = homes.filter((h) => !empty(h));
  assert.deepEqual(left, [], 'homes with storage or an alarm left');
  await flooder.close();
});

test('metrics in open mode: relays, queued, expired and leaves are counted as in rooms mode', async () => {
  // Prometheus text, one `series value` per line.
  const read = async () => {
    const { text } = await httpGet(OPEN, '/metrics');
    const series = {};
    for (const line of text.split('\n')) {
      const m = /^(peerjs_[^ ]+) ([0-9.e+]+)$/.exec(line);
      if (m) series[m[1]] = Number(m[2]);
    }
    return series;
  };
  const OFFERS = 'peerjs_messages_relayed_total{type="OFFER"}';
  const QUEUED = 'peerjs_messages_queued_total';
  const EXPIRED = 'peerjs_messages_expired_total';
  const LEAVES = 'peerjs_leaves_total{cause="closed"}';
  const before = await read();
  assert.ok([OFFERS, QUEUED, EXPIRED, LEAVES].every((k) => k in before), `series present: ${Object.keys(before).join(' ')}`);
  const [aId, bId] = [unique('a'), unique('b')];
  const a = await join(OPEN, aId, token());
  const b = await join(OPEN, bId, token());
  a.send({ type: 'OFFER', dst: bId, payload: {} });
  await b.next('OFFER');
  a.send({ type: 'OFFER', dst: unique('ghost'), payload: {} });
  await a.next('EXPIRE', 30_000);
  b.kill();
  await a.next('LEAVE', 20_000);
  await a.close();
  // Homes report on membership changes; the figures are cluster-wide, so
  // other tests add to them: each must have grown at least by ours.
  const after = await eventually(read, (m) => [OFFERS, QUEUED, EXPIRED, LEAVES].every((k) => m[k] > before[k]),
    'the relay, the queued message, its expiry and the leave in /metrics');
  assert.ok(after[OFFERS] >= before[OFFERS] + 1);
});
