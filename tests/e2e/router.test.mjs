// The router's HTTP API, refusal paths and trust boundary (tickets off).
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { BASE, connect, join, httpGet, unique, sleep, wsUrl } from './lib.mjs';

const SERVER_INFO = {
  name: 'PeerJS Server',
  description: 'A server side element to broker connections between PeerJS clients.',
  website: 'https://peerjs.com/',
};

test('server info at every mount path', async () => {
  for (const path of ['/', '/peerjs/']) {
    const r = await httpGet(BASE, path);
    assert.equal(r.status, 200, path);
    assert.deepEqual(r.body, SERVER_INFO);
  }
});

test('GET {mount}{key}/id returns a fresh UUID v4 as plain text, whatever the query', async () => {
  const ids = new Set();
  for (const path of ['/peerjs/id', '/peerjs/peerjs/id?ts=17953223172250.33&version=1.5.5', '/otherkey/id']) {
    const r = await httpGet(BASE, path);
    assert.equal(r.status, 200, path);
    assert.match(r.text, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(r.headers.get('content-type'), /^text\/plain/);
    ids.add(r.text);
  }
  assert.equal(ids.size, 3, 'every id is new');
});

test('unknown paths get 404 and a plain GET on the socket path 426, both with JSON bodies', async () => {
  const missing = await httpGet(BASE, '/nope');
  assert.equal(missing.status, 404);
  assert.equal(typeof missing.body.error, 'string');
  for (const path of ['/peerjs', '/peerjs/peerjs']) {
    const plain = await httpGet(BASE, path);
    assert.equal(plain.status, 426, path);
    assert.match(plain.body.error, /websocket/i);
  }
});

test('the WebSocket works at both mount paths', async () => {
  const room = unique('mount');
  const a = await join(BASE, 'a', room, { path: '/peerjs' });
  const b = await join(BASE, 'b', room, { path: '/peerjs/peerjs' });
  a.send({ type: 'OFFER', dst: 'b', payload: {} });
  assert.equal((await b.next('OFFER')).src, 'a');
  await Promise.all([a.close(), b.close()]);
});

async function refusal(params, raw) {
  const c = await connect(BASE, raw ? { raw } : params);
  const err = await c.next('ERROR');
  const closed = await c.closed;
  return { msg: err.payload.msg, code: closed.code, reason: closed.reason };
}

test('bad queries are refused after the upgrade with the reference texts', async () => {
  const ws = BASE.replace(/^http/, 'ws');
  for (const raw of [`${ws}/peerjs`, `${ws}/peerjs?key=peerjs`, `${ws}/peerjs?key=peerjs&id=a`, `${ws}/peerjs?key=peerjs&id=&token=r`]) {
    const r = await refusal(null, raw);
    assert.equal(r.msg, 'No id, token, or key supplied to websocket server', raw);
    assert.equal(r.code, 1008);
  }
  const badKey = await refusal({ key: 'nope', id: 'a', token: 'r1' });
  assert.equal(badKey.msg, 'Invalid key provided');
});

test('ids and tokens with percent-encoding, unicode and control characters are refused with a reason', async () => {
  for (const id of ['a%2Fb', '%E2%9C%93', 'a%00b', 'a%0Ab', '%20a', 'x'.repeat(65)]) {
    const r = await refusal({ id, token: 'room1' });
    assert.match(r.msg, /^Invalid id/, id);
  }
  // Percent-encoded but valid once decoded: accepted.
  const room = unique('enc');
  const spaced = await join(BASE, 'Player%201', room);
  const other = await join(BASE, 'other', room);
  other.send({ type: 'OFFER', dst: 'Player 1', payload: {} });
  assert.equal((await spaced.next('OFFER')).src, 'other');
  await Promise.all([spaced.close(), other.close()]);
  for (const token of ['a.b', 'room%2F1', '%E2%9C%93', 'r%00']) {
    const r = await refusal({ id: 'a', token });
    assert.match(r.msg, /^Invalid room id/, token);
  }
  const long = await refusal({ id: 'a', token: 't'.repeat(4097) });
  assert.match(long.msg, /token too long/i);
});

test('CORS: origins are reflected with Vary, and preflights answer 204 with methods, headers and max-age', async () => {
  const r = await httpGet(BASE, '/peerjs/id', { Origin: 'https://any.example' });
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://any.example');
  assert.match(r.headers.get('vary'), /Origin/);
  const pre = await fetch(`${BASE}/peerjs/peers`, {
    method: 'OPTIONS',
    headers: { Origin: 'https://any.example', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://any.example');
  assert.match(pre.headers.get('access-control-allow-methods'), /GET/);
  assert.equal(pre.headers.get('access-control-allow-headers'), 'authorization');
  assert.ok(Number(pre.headers.get('access-control-max-age')) > 0);
});

test('internal headers sent by a client have no effect', async () => {
  const room = unique('strip');
  const decoy = unique('decoy');
  const spoof = {
    'X-PeerJS-Room': decoy,
    'X-PeerJS-Peer': 'admin',
    'X-PeerJS-Proven': '1',
    'X-PeerJS-Internal-Version': '1',
  };
  const a = await join(BASE, 'a', room, { headers: spoof });
  const b = await join(BASE, 'b', room);
  b.send({ type: 'OFFER', dst: 'a', payload: {} });
  const got = await a.next('OFFER');
  assert.equal(got.dst, 'a', 'joined as its query id, in its token room');
  // "Proven" was not believed: a second claim of "a" is refused, not a takeover.
  const dup = await connect(BASE, { id: 'a', token: room, headers: spoof });
  assert.equal((await dup.next((m) => m.type === 'ID-TAKEN' || m.type === 'OPEN')).type, 'ID-TAKEN');
  // And nobody joined the decoy room.
  const roster = await httpGet(BASE, `/peerjs/peers?token=${decoy}`);
  assert.deepEqual(roster.body, []);
  await Promise.all([a.close(), b.close()]);
});

test('a dst naming a peer of another room is never delivered there', async () => {
  const roomA = unique('iso');
  const roomB = unique('iso');
  const a = await join(BASE, 'a', roomA);
  const b = await join(BASE, 'b', roomB);
  a.send({ type: 'OFFER', dst: 'b', payload: {} });
  const expire = await a.next('EXPIRE');
  assert.equal(expire.src, 'b');
  assert.equal(b.of('OFFER').length, 0);
  await Promise.all([a.close(), b.close()]);
});

test('/health?deep=1 checks the rooms tier', async () => {
  const r = await httpGet(BASE, '/health?deep=1');
  assert.equal(r.status, 200);
  assert.equal(r.body.rooms, 'ok');
});

test('local-dev settings (LOCAL_DEV) answer loopback hosts only: a public host gets 403, its WebSocket an ERROR', async () => {
  // What `wrangler deploy` without --env would put on a public host.
  // (fetch() may not set Host, a forbidden header: node:http may.)
  const getWithHost = (host) =>
    new Promise((resolve, reject) => {
      const req = httpRequest(`${BASE}/peerjs/id`, { headers: { Host: host } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      });
      req.on('error', reject);
      req.end();
    });
  const refused = await getWithHost('peerjs.game.example');
  assert.equal(refused.status, 403, refused.text);
  assert.match(JSON.parse(refused.text).error, /serves only localhost/);
  const c = await connect(BASE, { id: 'a', token: unique('host'), headers: { Host: 'peerjs.game.example' } });
  assert.match((await c.next('ERROR')).payload.msg, /LOCAL_DEV=true/);
  assert.equal((await c.closed).code, 1008);
  assert.equal((await getWithHost(`localhost:${new URL(BASE).port}`)).status, 200);
});
