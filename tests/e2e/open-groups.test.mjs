// The open namespace with groups (OPEN_GROUP_SEPARATOR): ids that share the
// part before the first `-` live in one object, and nothing a client sees
// changes. A private pair of Workers with the separator and a small group cap.
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { connect, join, startDev, sleep } from './lib.mjs';

const token = () => Math.random().toString(36).slice(2);
const group = () => `g${Math.random().toString(36).slice(2, 8)}`;
let dev;

before(async () => {
  dev = await startDev({ env: { NAMESPACE: 'open', OPEN_GROUP_SEPARATOR: '-', MAX_PEERS_PER_GROUP: '3' } });
}, { starts: 1 });
after(() => dev?.stop());

test('ids of one group and of another reach each other by id; src is overwritten', async () => {
  const [g1, g2] = [group(), group()];
  const alice = await join(dev.base, `${g1}-alice`, token());
  const bob = await join(dev.base, `${g1}-bob`, token());
  const carol = await join(dev.base, `${g2}-carol`, token());
  const loneId = group();
  const lone = await join(dev.base, loneId, token());
  alice.send({ type: 'OFFER', src: 'mallory', dst: `${g1}-bob`, payload: { sdp: 'in-group' } });
  const { receivedAt, ...inGroup } = await bob.next('OFFER');
  assert.deepEqual(inGroup, { type: 'OFFER', src: `${g1}-alice`, dst: `${g1}-bob`, payload: { sdp: 'in-group' } });
  alice.send({ type: 'OFFER', dst: `${g2}-carol`, payload: { sdp: 'across' } });
  assert.equal((await carol.next('OFFER')).src, `${g1}-alice`);
  carol.send({ type: 'ANSWER', dst: loneId, payload: { sdp: 'to-lone' } });
  assert.equal((await lone.next('ANSWER')).src, `${g2}-carol`);
  lone.send({ type: 'ANSWER', dst: `${g1}-bob`, payload: { sdp: 'from-lone' } });
  const answer = await bob.next('ANSWER');
  assert.deepEqual([answer.src, answer.payload.sdp], [loneId, 'from-lone']);
  for (const c of [alice, bob, carol, lone]) await c.close();
});

test('a message waits for an id of the group that joins later; a LEAVE reaches a correspondent in the group', async () => {
  const g = group();
  const alice = await join(dev.base, `${g}-alice`, token());
  alice.send({ type: 'OFFER', dst: `${g}-late`, payload: { n: 1 } });
  alice.send({ type: 'CANDIDATE', dst: `${g}-late`, payload: { n: 2 } });
  await sleep(300);
  const late = await connect(dev.base, { id: `${g}-late`, token: token() });
  assert.equal((await late.next(() => true)).type, 'OPEN');
  assert.deepEqual([(await late.next('OFFER')).payload.n, (await late.next('CANDIDATE')).payload.n], [1, 2]);
  await late.close();
  const leave = await alice.next('LEAVE', 60_000);
  assert.equal(leave.src, `${g}-late`);
  await alice.close();
});

test('a group past MAX_PEERS_PER_GROUP refuses a join with the reason; another group still joins', async () => {
  const g = group();
  const members = [];
  for (const name of ['a', 'b', 'c']) members.push(await join(dev.base, `${g}-${name}`, token()));
  const fourth = await connect(dev.base, { id: `${g}-d`, token: token() });
  const refusal = await fourth.next(() => true);
  assert.equal(refusal.type, 'ERROR');
  assert.match(refusal.payload.msg, /Too many peers share the id prefix/);
  assert.equal((await fourth.closed).code, 1008);
  const other = await connect(dev.base, { id: `${group()}-a`, token: token() });
  assert.equal((await other.next(() => true)).type, 'OPEN');
  for (const c of [...members, other]) await c.close();
});
