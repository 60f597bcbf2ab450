// Cluster-wide /metrics and structured logs, on a private pair of Workers
// so that every counter can be checked against an exact expected value.
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, join, httpGet, sleep, startDev, eventually, logEvents } from './lib.mjs';

const TOKEN = 'metrics-token-for-tests';
let dev;

before(async () => {
  dev = await startDev({ vars: [`METRICS_TOKEN:${TOKEN}`] });
}, { starts: 1 });
after(() => dev?.stop());

const auth = { Authorization: `Bearer ${TOKEN}` };

async function scrape() {
  await sleep(2_100); // past the scrape cache
  const r = await httpGet(dev.base, '/metrics', auth);
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return r.text;
}

/** Parses with the reference Prometheus parser (prometheus_client) into {series: value}. */
function parse(text) {
  const py = `
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))`;
  return JSON.parse(execFileSync('python3', ['-c', py], { input: text }).toString());
}

const SDP_MARKER = 'SDP-SECRET-a=fingerprint:sha-256 AB:CD';
const ICE_MARKER = 'candidate:842163049 1 udp 1677729535 198.51.100.7 46154 typ srflx';

test('a scripted scenario gives exact counters; the text parses; JSON agrees; the token is required', async () => {
  const base = dev.base;
  assert.equal((await httpGet(base, '/metrics')).status, 401, 'no token');
  assert.equal((await httpGet(base, '/metrics', { Authorization: 'Bearer wrong' })).status, 401);

  const a = await join(base, 'a', 'm1');
  const b = await join(base, 'b', 'm1');
  const c = await join(base, 'c', 'm2');
  a.send({ type: 'OFFER', dst: 'b', payload: { sdp: { type: 'offer', sdp: SDP_MARKER } } });
  await b.next('OFFER');
  b.send({ type: 'ANSWER', dst: 'a', payload: { sdp: { type: 'answer', sdp: SDP_MARKER } } });
  await a.next('ANSWER');
  for (let i = 0; i < 2; i += 1) a.send({ type: 'CANDIDATE', dst: 'b', payload: { candidate: { candidate: ICE_MARKER } } });
  await b.next(() => b.of('CANDIDATE').length === 2);
  c.send({ type: 'OFFER', dst: 'ghost', payload: {} }); // queued, then expires
  a.send('not json'); // dropped: malformed
  a.send('{"type":"OFFER"}'); // dropped: missing_dst
  const x = await join(base, 'x', 'm1');
  const y = await join(base, 'y', 'm1');
  const z = await connect(base, { id: 'z', token: 'm1' }); // room full
  await z.next('ERROR');
  const dup = await connect(base, { id: 'a', token: 'm1' }); // id taken
  await dup.next('ID-TAKEN');
  for (const params of [{ key: 'bad', id: 'q', token: 'm3' }, { id: 'q', token: 'bad.room' }]) {
    const r = await connect(base, params); // bad key; bad room id (counted as bad_ticket)
    await r.next('ERROR');
  }
  const missing = await connect(base, { raw: `${base.replace('http', 'ws')}/peerjs?key=peerjs` });
  await missing.next('ERROR'); // bad_query

  const mid = parse(await scrape());
  assert.equal(mid.peerjs_rooms_active, 2);
  assert.equal(mid.peerjs_peers_active, 5);

  await c.next('EXPIRE');
  for (const p of [b, a, x, y, c]) p.kill();
  // Leave grace, then each room's alarm reports: wait for the last report.
  const text = await eventually(scrape, (t) => {
    const now = parse(t);
    return now.peerjs_rooms_active === 0 && now.peerjs_peers_active === 0
      && now['peerjs_leaves_total{cause="closed"}'] === 5;
  }, 'every peer gone and 5 closes counted');
  const m = parse(text);
  const expected = {
    peerjs_rooms_active: 0,
    peerjs_peers_active: 0,
    'peerjs_connections_total{reason="none",result="accepted"}': 5,
    'peerjs_connections_total{reason="room_full",result="refused"}': 1,
    'peerjs_connections_total{reason="id_taken",result="refused"}': 1,
    'peerjs_connections_total{reason="bad_key",result="refused"}': 1,
    'peerjs_connections_total{reason="bad_ticket",result="refused"}': 1,
    'peerjs_connections_total{reason="bad_query",result="refused"}': 1,
    'peerjs_messages_relayed_total{type="OFFER"}': 1,
    'peerjs_messages_relayed_total{type="ANSWER"}': 1,
    'peerjs_messages_relayed_total{type="CANDIDATE"}': 2,
    peerjs_messages_queued_total: 1,
    peerjs_messages_expired_total: 1,
    'peerjs_messages_dropped_total{reason="malformed"}': 1,
    'peerjs_messages_dropped_total{reason="missing_dst"}': 1,
    // Known label sets are listed at 0 before they first count.
    'peerjs_messages_dropped_total{reason="queue_full"}': 0,
    'peerjs_messages_dropped_total{reason="rate_limited"}': 0,
    'peerjs_connections_total{reason="origin",result="refused"}': 0,
    'peerjs_leaves_total{cause="closed"}': 5,
    peerjs_takeovers_total: 0,
    'peerjs_build_info{version="0.1.0"}': 1,
  };
  for (const [series, value] of Object.entries(expected)) assert.equal(m[series], value, series);
  assert.ok(m.peerjs_room_wakes_total >= 10, `wakes ${m.peerjs_room_wakes_total}`);
  assert.match(text, /# HELP peerjs_messages_relayed_total /);
  assert.match(text, /# TYPE peerjs_messages_relayed_total counter/);

  await sleep(2_100);
  const json = await httpGet(base, '/metrics', { ...auth, Accept: 'application/json' });
  assert.equal(json.body.status, 'ok');
  assert.equal(json.body.metrics.activeRooms, m.peerjs_rooms_active);
  assert.equal(json.body.metrics.activePeers, m.peerjs_peers_active);
  assert.equal(json.body.metrics.errorRate, 5 / 10);
  assert.equal(typeof json.body.metrics.messagesPerSecond, 'number');
});

test('gauges heal: a room that stops reporting drops out; a hibernating room with heartbeating peers stays', async () => {
  const base = dev.base;
  const p = await join(base, 'p', 'alive');
  const q = await join(base, 'q', 'alive');
  const beats = setInterval(() => [p, q].forEach((s) => s.send('{"type":"HEARTBEAT"}')), 1_000);
  assert.equal((await httpGet(base, '/debug/ghost/deadroom')).status, 200);
  const first = parse(await scrape());
  assert.equal(first.peerjs_rooms_active, 2, 'ghost and live room');
  assert.equal(first.peerjs_peers_active, 4);
  // TTL 30 s in the test config; the live room's first sweep (and report)
  // comes 15 + 10 s after its joins.
  await sleep(32_000);
  const later = parse(await scrape());
  clearInterval(beats);
  assert.equal(later.peerjs_rooms_active, 1, 'the ghost dropped out, the hibernating room stayed');
  assert.equal(later.peerjs_peers_active, 2);
  await Promise.all([p.close(), q.close()]);
});

test('logs: one JSON object per line for each event, never SDP, ICE or tokens', async () => {
  const base = dev.base;
  // Events not in the scenario above: a stale takeover and a flood.
  const old = await join(base, 'old', 'logs');
  await sleep(15_500);
  const fresh = await join(base, 'old', 'logs');
  const flooder = await join(base, 'flood', 'logs');
  for (let i = 0; i < 1_500; i += 1) flooder.send({ type: 'LEAVE', dst: 'nobody' });
  await flooder.next('ERROR');
  await old.closed;
  await fresh.close();
  await sleep(500);

  const events = logEvents(dev.log());
  for (const e of events) {
    assert.equal(typeof e.ts, 'number');
    assert.match(e.level, /^(debug|info|warn|error)$/);
    assert.equal(typeof e.event, 'string');
  }
  const seen = new Set(events.map((e) => e.event));
  for (const name of ['connect', 'open', 'takeover', 'refuse', 'leave', 'expire', 'drop', 'rate_limit']) {
    assert.ok(seen.has(name), `no ${name} event in the log`);
  }
  const leave = events.find((e) => e.event === 'leave');
  assert.ok(leave.room && leave.peer && leave.cause, JSON.stringify(leave));
  const refuse = events.find((e) => e.event === 'refuse' && e.reason === 'room_full');
  assert.ok(refuse, 'refusals carry the reason');
  const drop = events.find((e) => e.event === 'drop');
  assert.ok(drop.reason && typeof drop.bytes === 'number');
  const all = dev.log();
  assert.ok(!all.includes('SDP-SECRET'), 'SDP leaked into the log');
  assert.ok(!all.includes('198.51.100.7'), 'an ICE candidate leaked into the log');
});
