// Calls that only work through a TURN relay: coturn (Debian's, installed by
// `make setup`) on loopback with a shared secret, credentials from the
// router's `/ice-servers`, and two unmodified clients forced to
// `iceTransportPolicy: 'relay'`. A credential signed with another secret
// gets no relay, so the connection never opens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { launchBrowser, newPeer, start } from './harness.mjs';
import { startDev, freePort, httpGet, eventually } from '../e2e/lib.mjs';

const TURN_SECRET = 'coturn-shared-secret-for-tests';
let dev;
let devForeign;
let turn;
let browser;

before(async () => {
  const turnserver = execFileSync('sh', ['-c', 'command -v turnserver || true']).toString().trim();
  assert.ok(turnserver, 'turnserver is not installed: run make setup (it installs Debian coturn)');
  const port = await freePort();
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
  ];
  [dev, devForeign] = await Promise.all([startDev({ vars: vars(TURN_SECRET) }), startDev({ vars: vars('another-secret-entirely-0123') })]);
  await eventually(() => turnLog.join(''), (t) => /listener opened|Total General servers|relay/i.test(t), 'turnserver listening');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  turn?.kill();
  dev?.stop();
  devForeign?.stop();
});

/** The router's answer for `id`, as a game would fetch it before `new Peer`. */
async function iceConfig(base, room, id) {
  const r = await httpGet(base, `/peerjs/ice-servers?id=${id}`, { Authorization: `Bearer ${room}` });
  assert.equal(r.status, 200, r.text);
  return { iceServers: r.body.iceServers, iceTransportPolicy: 'relay' };
}

/** The local candidate type of the DataConnection's selected pair. */
const selectedCandidateType = (p, other) =>
  p.eval(async (o) => {
    const stats = await conns[o].peerConnection.getStats();
    let pair;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    return pair ? stats.get(pair.localCandidateId)?.candidateType : null;
  }, other);

test('relay only: two clients with credentials from /ice-servers open a DataConnection through coturn', async () => {
  const room = `turn${Date.now()}`;
  const [a, b] = await Promise.all([newPeer(browser, dev.base), newPeer(browser, dev.base)]);
  const [oa, ob] = await Promise.all([
    start(a, 'ta', room, { config: await iceConfig(dev.base, room, 'ta') }),
    start(b, 'tb', room, { config: await iceConfig(dev.base, room, 'tb') }),
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

test('relay only with a credential signed by another secret: coturn refuses it and no connection opens', async () => {
  const room = `turnbad${Date.now()}`;
  const [a, b] = await Promise.all([newPeer(browser, devForeign.base), newPeer(browser, devForeign.base)]);
  await Promise.all([
    start(a, 'fa', room, { config: await iceConfig(devForeign.base, room, 'fa') }),
    start(b, 'fb', room, { config: await iceConfig(devForeign.base, room, 'fb') }),
  ]);
  // The harness gives up after 60 s; what arrives instead is the answer.
  const connected = await a.eval(() => h.connect('fb'));
  assert.equal(connected.ok, undefined, `opened without a valid TURN credential: ${JSON.stringify(connected)}`);
  console.log(`without a valid credential: ${JSON.stringify(connected)}`);
  await Promise.all([a.context.close(), b.context.close()]);
});
