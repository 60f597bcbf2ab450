// Calls that only work through a TURN relay: coturn (Debian's, installed by
// `make setup`) on loopback with a shared secret, credentials from the
// router's `/ice-servers`, and two unmodified clients forced to
// `iceTransportPolicy: 'relay'`. A credential signed with another secret
// gets no relay, and neither does one whose expiry has passed, so the
// connection never opens.
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { launchBrowser, newPeer, start, until, decodeRemoteFrames } from './harness.mjs';
import { startDev, freePort, httpGet, eventually, backendTicket, AUDIENCE } from '../e2e/lib.mjs';

const TURN_SECRET = 'coturn-shared-secret-for-tests';
const TICKET_KEY = 'turn-test-ticket-secret-0123456789abcdef';
/** A game backend's ticket for `room`: both the join token and the credential for /ice-servers. */
const ticketFor = (room) => backendTicket({ room }, {}, TICKET_KEY);
let dev;
let devForeign;
let turn;
let turnPort;
let browser;

before(async () => {
  const turnserver = execFileSync('sh', ['-c', 'command -v turnserver || true']).toString().trim();
  assert.ok(turnserver, 'turnserver is not installed: run make setup (it installs Debian coturn)');
  const port = await freePort();
  turnPort = port;
  turn = spawn(turnserver, [
    '-n', '--no-cli', '--no-tls', '--no-dtls', '--log-file=stdout', '--simple-log',
    '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
    '--min-port=49160', '--max-port=49200', '--allow-loopback-peers', '--realm=peerjs.test',
    '--use-auth-secret', `--static-auth-secret=${TURN_SECRET}`, '--fingerprint',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const turnLog = [];
  turn.stdout.on('data', (d) => turnLog.push(d.toString()));
  turn.stderr.on('data', (d) => turnLog.push(d.toString()));
  const vars = (secret) => [
    'ICE_PROVIDER:turn-secret',
    `TURN_URLS:turn:127.0.0.1:${port}?transport=udp`,
    `TURN_SECRET:${secret}`,
    'ICE_TTL_SECS:600',
    // TURN credentials go to ticket holders only.
    `ROOM_TICKET_SECRET:${TICKET_KEY}`,
    `TICKET_AUDIENCE:${AUDIENCE}`,
  ];
  [dev, devForeign] = await Promise.all([startDev({ vars: vars(TURN_SECRET) }), startDev({ vars: vars('another-secret-entirely-0123') })]);
  await eventually(() => turnLog.join(''), (t) => /listener opened|Total General servers|relay/i.test(t), 'turnserver listening');
  browser = await launchBrowser();
}, { starts: 2 });

after(async () => {
  await browser?.close();
  turn?.kill();
  dev?.stop();
  devForeign?.stop();
});

/** The router's answer for `id` holding `ticket`, as a game would fetch it before `new Peer`. */
async function iceConfig(base, ticket, id) {
  const r = await httpGet(base, `/peerjs/ice-servers?id=${id}`, { Authorization: `Bearer ${ticket}` });
  assert.equal(r.status, 200, r.text);
  return { iceServers: r.body.iceServers, iceTransportPolicy: 'relay' };
}

/** The local candidate type of the selected pair of `window[where][other]`'s peer connection. */
const selectedCandidateType = (p, other, where = 'conns') =>
  p.eval(async ([o, w]) => {
    const stats = await window[w][o].peerConnection.getStats();
    let pair;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    return pair ? stats.get(pair.localCandidateId)?.candidateType : null;
  }, [other, where]);

test('relay only: two clients with credentials from /ice-servers open a DataConnection through coturn', async () => {
  const ticket = ticketFor(`turn${Date.now()}`);
  const [a, b] = await Promise.all([newPeer(browser, dev.base), newPeer(browser, dev.base)]);
  const [oa, ob] = await Promise.all([
    start(a, 'ta', ticket, { config: await iceConfig(dev.base, ticket, 'ta') }),
    start(b, 'tb', ticket, { config: await iceConfig(dev.base, ticket, 'tb') }),
  ]);
  assert.equal(oa.open, 'ta', JSON.stringify(oa));
  assert.equal(ob.open, 'tb', JSON.stringify(ob));
  const connected = await a.eval(() => h.connect('tb'));
  assert.ok(connected.ok !== undefined, `DataConnection through TURN: ${JSON.stringify(connected)}`);
  assert.equal(await selectedCandidateType(a, 'tb'), 'relay');
  await a.eval(() => h.send('tb', 'via-turn'));
  await eventually(() => b.eval(() => h.got('ta')), (got) => got.includes('via-turn'), 'the message through the relay');
  await Promise.all([a.context.close(), b.context.close()]);
});

test('relay only: a media call through coturn, the callee decodes video frames', async () => {
  const ticket = ticketFor(`turnav${Date.now()}`);
  const [a, b] = await Promise.all([newPeer(browser, dev.base), newPeer(browser, dev.base)]);
  await Promise.all([
    start(a, 'va', ticket, { config: await iceConfig(dev.base, ticket, 'va') }),
    start(b, 'vb', ticket, { config: await iceConfig(dev.base, ticket, 'vb') }),
  ]);
  const startedAt = Date.now();
  await a.eval(() => {
    window.calls = { vb: peer.call('vb', window.stream) };
  });
  assert.ok(await until(b, () => !!window.remote, null, 60000), 'the callee got no remote stream through the relay');
  const frames = await decodeRemoteFrames(b, 10);
  const firstFramesMs = Date.now() - startedAt;
  assert.ok(frames.count >= 10 && frames.w > 0, `decoded ${JSON.stringify(frames)}`);
  assert.equal(await selectedCandidateType(a, 'vb', 'calls'), 'relay');
  console.log(`relay media call: 10 frames of ${frames.w}x${frames.h} decoded ${firstFramesMs} ms after peer.call`);
  await Promise.all([a.context.close(), b.context.close()]);
});

/** Two clients of `base` in a new room with the configs `configOf(id, ticket)` gives; answers what `connect` saw. */
async function connectWith(base, tag, configOf) {
  const ticket = ticketFor(`turn${tag}${Date.now()}`);
  const [a, b] = await Promise.all([newPeer(browser, base), newPeer(browser, base)]);
  const [ia, ib] = [`${tag}a`, `${tag}b`];
  await Promise.all([start(a, ia, ticket, { config: await configOf(ia, ticket) }), start(b, ib, ticket, { config: await configOf(ib, ticket) })]);
  // The harness gives up after 60 s; what arrives instead is the answer.
  const connected = await a.eval((other) => h.connect(other), ib);
  await Promise.all([a.context.close(), b.context.close()]);
  return connected;
}

test('relay only with a credential coturn must refuse (signed by another secret, or expired): no connection opens', async () => {
  // The endpoint never issues an expired one (its TTL floor is 60 s), so the
  // test signs one by the same scheme with the right secret and an expiry
  // two minutes in the past.
  const expired = (id) => {
    const username = `${Math.floor(Date.now() / 1000) - 120}:${id}`;
    const credential = createHmac('sha1', TURN_SECRET).update(username).digest('base64');
    return { iceServers: [{ urls: `turn:127.0.0.1:${turnPort}?transport=udp`, username, credential }], iceTransportPolicy: 'relay' };
  };
  const [foreign, old] = await Promise.all([
    connectWith(devForeign.base, 'bad', (id, ticket) => iceConfig(devForeign.base, ticket, id)),
    connectWith(dev.base, 'old', expired),
  ]);
  assert.equal(foreign.ok, undefined, `opened with a credential signed by another secret: ${JSON.stringify(foreign)}`);
  assert.equal(old.ok, undefined, `opened with an expired credential: ${JSON.stringify(old)}`);
  console.log(`signed by another secret: ${JSON.stringify(foreign)}; expired: ${JSON.stringify(old)}`);
});

test('relay only through the client helper: joinRoom fetches the credentials itself; data and video cross coturn', async () => {
  const ticket = ticketFor(`turnhelper${Date.now()}`);
  const pages = [];
  for (const id of ['ha', 'hb']) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${dev.base}/demo/harness.html`);
    const opened = await page.evaluate(async ([i, r]) => {
      const { joinRoom } = await import('/demo/vendor/peerjs-rooms.js');
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      window.got = [];
      window.joinedAt = performance.now();
      window.room = await joinRoom({
        host: location.hostname, port: Number(location.port), path: '/', token: r, id: i, stream,
        config: { iceTransportPolicy: 'relay' },
        on: { data: (from, d) => got.push(d), stream: (from, s) => { window.remote = s; } },
      });
      return { id: room.id, turn: room.iceServers.some((s) => String(s.urls).startsWith('turn:') && s.username?.endsWith(`:${i}`)) };
    }, [id, ticket]);
    assert.deepEqual(opened, { id, turn: true }, 'the helper got this peer\'s own TURN credential');
    pages.push({ context, page, eval: (fn, arg) => page.evaluate(fn, arg) });
  }
  const [a, b] = pages;
  const startedAt = Date.now();
  assert.ok(await until(b, () => room.peers.get('ha')?.data?.open && !!window.remote, null, 60000), 'no connection or stream through the relay');
  const frames = await decodeRemoteFrames(b, 10);
  const firstFramesMs = Date.now() - startedAt;
  assert.ok(frames.count >= 10 && frames.w > 0, `decoded ${JSON.stringify(frames)}`);
  await b.eval(() => { window.conns = { ha: room.peers.get('ha').data }; window.calls = { ha: room.peers.get('ha').call }; });
  assert.equal(await selectedCandidateType(b, 'ha'), 'relay', 'data');
  assert.equal(await selectedCandidateType(b, 'ha', 'calls'), 'relay', 'media');
  await b.eval(() => room.send('ha', 'via-turn-helper'));
  await eventually(() => a.eval(() => got), (g) => g.includes('via-turn-helper'), 'the message through the relay');
  console.log(`helper relay call: 10 frames of ${frames.w}x${frames.h} decoded ${firstFramesMs} ms after the second player joined`);
  await Promise.all(pages.map((p) => p.context.close()));
});
