// Tickets required (HS256), an origin allow-list, and a low per-IP connect
// limit: the second local configuration. The per-IP test runs last, since it
// spends this isolate's budget.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TICKETS, SECRET, AUDIENCE, connect, join, httpGet, unique, sleep, mintTicket, backendTicket, nowSecs } from './lib.mjs';

// As the README's backend example: jwt.sign({ room, sub }, secret, { algorithm, expiresIn, audience }).
const ticket = (room, claims = {}, options = {}) => backendTicket({ room, ...claims }, options);

async function refusedWith(id, token) {
  const c = await connect(TICKETS, { id, token });
  const err = await c.next('ERROR');
  const closed = await c.closed;
  assert.equal(closed.code, 1008);
  return err.payload.msg;
}

test('a valid ticket joins its room; bad tickets are refused with the reason', async () => {
  const room = unique('t');
  const a = await join(TICKETS, 'a', ticket(room));
  const b = await join(TICKETS, 'b', ticket(room, { sub: 'b' }));
  a.send({ type: 'OFFER', dst: 'b', payload: {} });
  assert.equal((await b.next('OFFER')).src, 'a');

  assert.equal(await refusedWith('c', ticket(room, {}, { expiresIn: -60 })), 'Invalid room ticket: expired');
  assert.equal(await refusedWith('c', ticket(room, {}, { notBefore: 120 })), 'Invalid room ticket: not valid yet');
  assert.equal(await refusedWith('c', ticket(room, { sub: 'someone-else' })), 'Invalid room ticket: issued for another peer id');
  assert.equal(
    await refusedWith('c', backendTicket({ room }, {}, 'wrong-secret-wrong-secret-wrong-secret')),
    'Invalid room ticket: bad signature',
  );
  assert.match(await refusedWith('c', mintTicket({ room, exp: nowSecs() + 60 }, { alg: 'none' })), /^Invalid room ticket/);
  assert.equal(await refusedWith('c', backendTicket({})), 'Invalid room ticket: no room');
  assert.equal(await refusedWith('c', mintTicket({ room })), 'Invalid room ticket: no expiry');
  assert.equal(await refusedWith('c', room), 'Invalid room ticket: not a JWT');
  // A leaked ticket is worth hours, not a century; every ticket says when it
  // was issued and for which server.
  assert.equal(
    await refusedWith('c', ticket(room, {}, { expiresIn: '100y' })),
    'Invalid room ticket: expires more than 14400 s from now',
  );
  assert.equal(await refusedWith('c', ticket(room, {}, { noTimestamp: true })), 'Invalid room ticket: no iat (issued-at)');
  assert.equal(await refusedWith('c', ticket(room, {}, { audience: undefined })), 'Invalid room ticket: wrong audience');
  assert.equal(await refusedWith('c', ticket(room, {}, { audience: 'another-service' })), 'Invalid room ticket: wrong audience');
  await Promise.all([a.close(), b.close()]);
});

test('a ticket from the mint-ticket tool is accepted', { skip: !process.env.MINT_TICKET && 'MINT_TICKET not built' }, async () => {
  const room = unique('tool');
  const token = execFileSync(process.env.MINT_TICKET, ['--room', room, '--sub', 'tooled', '--ttl', '60', '--aud', AUDIENCE], {
    env: { ...process.env, ROOM_TICKET_SECRET: SECRET },
  }).toString().trim();
  const c = await join(TICKETS, 'tooled', token);
  await c.close();
});

test('a ticket for room A admits to room A only, whatever room the client hoped for', async () => {
  const roomA = unique('a');
  const roomB = unique('b');
  const inB = await join(TICKETS, 'target', ticket(roomB));
  const intruder = await join(TICKETS, 'intruder', ticket(roomA));
  intruder.send({ type: 'OFFER', dst: 'target', payload: {} });
  assert.equal((await intruder.next('EXPIRE')).src, 'target');
  assert.equal(inB.of('OFFER').length, 0);
  await Promise.all([inB.close(), intruder.close()]);
});

test('a ticket whose sub is the id proves it: the new socket takes over, the old one is closed, no LEAVE', async () => {
  const room = unique('take');
  const other = await join(TICKETS, 'other', ticket(room));
  const old = await join(TICKETS, 'me', ticket(room, { sub: 'me' }));
  const fresh = await join(TICKETS, 'me', ticket(room, { sub: 'me' }));
  const beats = setInterval(() => [other, fresh].forEach((p) => p.send('{"type":"HEARTBEAT"}')), 1_000);
  other.send({ type: 'OFFER', dst: 'me', payload: {} });
  assert.equal((await fresh.next('OFFER')).src, 'other');
  // The close frame goes out at once; workerd completes the TCP close of a
  // hibernatable socket only when the object next hibernates (about 10 s).
  const closed = await old.closed;
  assert.equal(closed.code, 4001);
  // Told why first: the same player joined from another tab or device.
  assert.match(old.of('ERROR')[0]?.payload.msg ?? '', /another tab or device/, JSON.stringify(old.of('ERROR')));
  await sleep(2_500);
  assert.equal(other.of('LEAVE').length, 0);
  // Without sub, the same claim is refused.
  const unproven = await connect(TICKETS, { id: 'me', token: ticket(room) });
  assert.equal((await unproven.next((m) => m.type === 'ID-TAKEN' || m.type === 'OPEN')).type, 'ID-TAKEN');
  clearInterval(beats);
  await Promise.all([other.close(), fresh.close()]);
});

test('roster with tickets: a valid ticket lists its room; expired or missing credentials do not', async () => {
  const room = unique('ros');
  const a = await join(TICKETS, 'a', ticket(room));
  const b = await join(TICKETS, 'b', ticket(room));
  const ok = await httpGet(TICKETS, '/peerjs/peers', { Authorization: `Bearer ${ticket(room)}` });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, ['a', 'b']);
  const expired = await httpGet(TICKETS, '/peerjs/peers', { Authorization: `Bearer ${ticket(room, {}, { expiresIn: -60 })}` });
  assert.equal(expired.status, 403);
  assert.equal(expired.body.error, 'Invalid room ticket: expired');
  const other = await httpGet(TICKETS, `/peerjs/peers?token=${ticket(unique('elsewhere'))}`);
  assert.deepEqual(other.body, [], "another room's ticket shows that room only");
  const plainRoomId = await httpGet(TICKETS, `/peerjs/peers?token=${room}`);
  assert.equal(plainRoomId.status, 403, 'a bare room id is no credential when tickets are required');
  assert.equal((await httpGet(TICKETS, '/peerjs/peers')).status, 401);
  await Promise.all([a.close(), b.close()]);
});

test('origin allow-list: a foreign page is refused with 403 before the upgrade; CORS reflects only listed origins', async () => {
  const room = unique('o');
  await assert.rejects(
    connect(TICKETS, { id: 'a', token: ticket(room), headers: { Origin: 'https://evil.example' } }),
    (err) => err.status === 403,
  );
  const ok = await join(TICKETS, 'a', ticket(room), { headers: { Origin: 'https://game.example' } });
  await ok.close();
  const allowed = await httpGet(TICKETS, '/peerjs/id', { Origin: 'http://localhost:8080' });
  assert.equal(allowed.headers.get('access-control-allow-origin'), 'http://localhost:8080');
  const denied = await httpGet(TICKETS, '/peerjs/id', { Origin: 'https://evil.example' });
  assert.equal(denied.headers.get('access-control-allow-origin'), null);
});

test('per-IP connect limit: /id gets 429 with Retry-After, an upgrade gets an ERROR frame', async () => {
  // This configuration allows a burst of 40 then 1 a second; earlier tests spent part of it.
  const results = [];
  for (let i = 0; i < 60; i += 1) results.push(await httpGet(TICKETS, '/peerjs/id'));
  const limited = results.filter((r) => r.status === 429);
  assert.ok(limited.length >= 15, `${limited.length} of 60 limited`);
  assert.ok(Number(limited[0].headers.get('retry-after')) >= 1);
  assert.match(limited[0].body.error, /too many/i);
  // The budget refills one a second, so an upgrade right after a 429 can
  // still find a fresh token: spend again until the upgrade meets an empty
  // budget (a few tries at most) and check what the client is told then.
  const seen = [];
  for (let attempt = 0; attempt < 5; attempt += 1) {
    while ((await httpGet(TICKETS, '/peerjs/id')).status !== 429);
    const c = await connect(TICKETS, { id: 'late', token: ticket(unique('x')) });
    const first = await c.next(() => true);
    seen.push(first.type);
    if (first.type === 'ERROR') {
      assert.equal(first.payload.msg, 'Too many connections, retry later');
      assert.equal((await c.closed).code, 1008);
      return;
    }
    await c.close();
  }
  assert.fail(`an upgrade over the limit was never refused: ${seen}`);
});
