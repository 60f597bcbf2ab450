// `{mount}{key}/ice-servers`: STUN/TURN servers with short-lived TURN
// credentials. The shared-secret scheme is checked against the credential
// the TURN REST API defines (what coturn's use-auth-secret recomputes), and
// Cloudflare Realtime TURN against a local stand-in speaking its documented
// request and answer (the real API is not reachable from here).
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { BASE, AUDIENCE, backendTicket, httpGet, startDev, freePort, nowSecs } from './lib.mjs';

const TURN_SECRET = 'turn-shared-secret-for-tests';
// TURN credentials go to ticket holders only (a TURN provider without a
// ticket key is a configuration error), so these servers verify tickets.
const TICKET_KEY = 'ice-test-ticket-secret-0123456789abcdef';
const TICKET_VARS = [`ROOM_TICKET_SECRET:${TICKET_KEY}`, `TICKET_AUDIENCE:${AUDIENCE}`];
const bearer = (claims) => ({ Authorization: `Bearer ${backendTicket(claims, {}, TICKET_KEY)}` });

test('local dev answers its static list (empty by default), never cached', async () => {
  const r = await httpGet(BASE, '/peerjs/ice-servers?token=room1&id=alice');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, { iceServers: [] });
  assert.equal(r.headers.get('cache-control'), 'no-store');
});

test('turn-secret: a fresh TURN REST credential for the id, bound to the token, never logged', { starts: 1 }, async () => {
  const dev = await startDev({
    vars: [
      'ICE_PROVIDER:turn-secret',
      'TURN_URLS:turn:127.0.0.1:3478?transport=udp,turn:127.0.0.1:3478?transport=tcp',
      'STUN_URLS:stun:127.0.0.1:3478',
      `TURN_SECRET:${TURN_SECRET}`,
      'ICE_TTL_SECS:600',
      ...TICKET_VARS,
    ],
  });
  try {
    const before = nowSecs();
    const r = await httpGet(dev.base, '/peerjs/ice-servers?id=alice', bearer({ room: 'room1' }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const [stun, turn] = r.body.iceServers;
    assert.deepEqual(stun, { urls: ['stun:127.0.0.1:3478'] });
    assert.deepEqual(turn.urls, ['turn:127.0.0.1:3478?transport=udp', 'turn:127.0.0.1:3478?transport=tcp']);
    const [expiry, peer] = turn.username.split(':');
    assert.equal(peer, 'alice');
    assert.ok(+expiry >= before + 600 && +expiry <= nowSecs() + 600, `expiry ${expiry}`);
    assert.equal(turn.credential, createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64'));

    const none = await httpGet(dev.base, '/peerjs/ice-servers');
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await httpGet(dev.base, '/peerjs/ice-servers?token=room1&id=a%2Fb')).status, 400);
    assert.equal((await httpGet(dev.base, '/peerjs/ice-servers?token=bad%20room')).status, 403);
    // A room id is no ticket: it proves nothing, so it gets no relay.
    const plain = await httpGet(dev.base, '/peerjs/ice-servers?id=alice', { Authorization: 'Bearer room1' });
    assert.equal(plain.status, 403, plain.text);
    assert.match(plain.body.error, /not a JWT/);
    const otherSub = await httpGet(dev.base, '/peerjs/ice-servers?id=alice', bearer({ room: 'room1', sub: 'mallory' }));
    assert.equal(otherSub.status, 403, otherSub.text);
    assert.ok(!dev.log().includes(turn.credential), 'a TURN credential reached the log');
  } finally {
    dev.stop();
  }
});

test('cloudflare: each request asks generate-ice-servers with the key and TTL, and passes the answer on', { starts: 1 }, async () => {
  const calls = [];
  let failing = false;
  const standIn = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      calls.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
      if (failing) {
        res.writeHead(500).end('{"error":"down"}');
        return;
      }
      res.writeHead(201, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({
          iceServers: [
            { urls: ['stun:stun.cloudflare.com:3478'] },
            { urls: ['turn:turn.cloudflare.com:3478?transport=udp'], username: `cf-user-${calls.length}`, credential: 'cf-pass' },
          ],
        }),
      );
    });
  });
  const port = await freePort();
  await new Promise((resolve) => standIn.listen(port, '127.0.0.1', resolve));
  const dev = await startDev({
    vars: [
      'ICE_PROVIDER:cloudflare',
      `CLOUDFLARE_TURN_BASE_URL:http://127.0.0.1:${port}`,
      'CLOUDFLARE_TURN_KEY_ID:key123',
      'CLOUDFLARE_TURN_API_TOKEN:cf-api-token',
      'ICE_TTL_SECS:900',
      ...TICKET_VARS,
    ],
  });
  try {
    const first = await httpGet(dev.base, '/peerjs/ice-servers?id=bob', bearer({ room: 'room1' }));
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.iceServers[1].username, 'cf-user-1');
    const second = await httpGet(dev.base, '/peerjs/ice-servers?id=bob', bearer({ room: 'room1' }));
    assert.equal(second.body.iceServers[1].username, 'cf-user-2', 'nothing cached across requests');
    assert.deepEqual(calls[0], {
      method: 'POST',
      url: '/v1/turn/keys/key123/credentials/generate-ice-servers',
      auth: 'Bearer cf-api-token',
      body: '{"ttl":900}',
    });
    failing = true;
    const down = await httpGet(dev.base, '/peerjs/ice-servers?id=bob', bearer({ room: 'room1' }));
    assert.equal(down.status, 502);
    assert.match(down.body.error, /TURN provider unavailable/);
    assert.ok(!dev.log().includes('cf-api-token'), 'the API token reached the log');
  } finally {
    dev.stop();
    standIn.close();
  }
});

test('a TURN provider without a ticket key is a configuration error: /health names ICE_PROVIDER and says why', { starts: 1 }, async () => {
  // Tickets off, a room id or any token would get relay credentials.
  const dev = await startDev({
    configs: '-c wrangler.router.toml',
    vars: ['ICE_PROVIDER:turn-secret', 'TURN_URLS:turn:127.0.0.1:3478', `TURN_SECRET:${TURN_SECRET}`],
  });
  try {
    const health = await httpGet(dev.base, '/health');
    assert.equal(health.status, 500, health.text);
    assert.equal(health.body.setting, 'ICE_PROVIDER');
    assert.match(health.text, /ticket holders only/);
    assert.notEqual((await httpGet(dev.base, '/peerjs/ice-servers?id=alice', { Authorization: 'Bearer room1' })).status, 200);
  } finally {
    dev.stop();
  }
});
