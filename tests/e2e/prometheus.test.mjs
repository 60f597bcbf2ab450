// A real Prometheus (Debian's, installed by `make setup`) scrapes a private
// router with the bearer token, and its own query API must show the series
// and values a scripted scenario produced, rates included. A scrape that
// fails (a bad token, a type conflict, a duplicate series) leaves `up` at 0
// and a lastError on the target, and fails here. The shipped alert rules
// and scrape config pass promtool, and every metric the Grafana dashboard
// queries exists on the live /metrics.
import { test, before, after } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { join, httpGet, startDev, eventually, freePort, root, unique } from './lib.mjs';

const TOKEN = 'prometheus-token-for-tests';
const which = (bin) => {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`]).toString().trim();
  } catch {
    throw new Error(`${bin} is not installed: run make setup (it installs Debian's prometheus package)`);
  }
};
let dev;
let prom;
let promBase;

before(async () => {
  const prometheus = which('prometheus');
  dev = await startDev({ vars: [`METRICS_TOKEN:${TOKEN}`] });
  const dir = mkdtempSync(pathJoin(tmpdir(), 'prometheus-'));
  writeFileSync(pathJoin(dir, 'token'), TOKEN);
  writeFileSync(
    pathJoin(dir, 'prometheus.yml'),
    `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: peerjs
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: ${dir}/token
    static_configs:
      - targets: ['${new URL(dev.base).host}']
`,
  );
  const port = await freePort();
  promBase = `http://127.0.0.1:${port}`;
  prom = spawn(
    prometheus,
    [`--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/data`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prom.stderr.on('data', () => {});
  await eventually(
    () => fetch(`${promBase}/-/ready`).then((r) => r.status, () => 0),
    (s) => s === 200,
    'Prometheus ready',
  );
}, { starts: 1 });
after(() => {
  prom?.kill();
  dev?.stop();
});

/** One instant query through Prometheus's HTTP API: [{metric, value}]. */
async function query(expr) {
  const r = await fetch(`${promBase}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await r.json();
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}
const scalar = async (expr) => (await query(expr))[0]?.value;

test('Prometheus scrapes /metrics with the token and sees what a scripted scenario did', async () => {
  const target = await eventually(
    async () => (await (await fetch(`${promBase}/api/v1/targets`)).json()).data.activeTargets[0],
    (t) => t?.health === 'up',
    'the router target up',
  );
  assert.equal(target.lastError, '', 'the scrape succeeded');
  const room = unique('prom');
  const a = await join(dev.base, 'a', room);
  const b = await join(dev.base, 'b', room);
  for (let i = 0; i < 5; i++) a.send({ type: 'OFFER', dst: 'b', payload: { i } });
  for (let i = 0; i < 5; i++) await b.next((m) => m.type === 'OFFER' && m.payload.i === i);
  a.send('not json');
  await eventually(
    () => scalar('sum(peerjs_messages_relayed_total{type="OFFER"})'),
    (v) => v >= 5,
    'the 5 OFFERs in Prometheus',
  );
  await eventually(() => scalar('sum(peerjs_peers_active)'), (v) => v === 2, 'two peers active');
  assert.ok((await scalar('sum(peerjs_connections_total{result="accepted"})')) >= 2);
  await eventually(() => scalar('sum(peerjs_messages_dropped_total{reason="malformed"})'), (v) => v === 1, 'the malformed frame');
  const rate = await eventually(
    () => scalar('sum(rate(peerjs_messages_relayed_total[30s]))'),
    (v) => v > 0,
    'a relay rate over the scrapes',
  );
  assert.ok(rate > 0);
  // Every scrape so far was whole: no failed scrape, no sample rejected.
  assert.equal(await scalar('min_over_time(up{job="peerjs"}[1m])'), 1);
  assert.ok((await scalar('min_over_time(scrape_samples_scraped{job="peerjs"}[1m])')) > 30, 'every scrape carried the series');
  const families = await query('count by (__name__) ({job="peerjs", __name__=~"peerjs_.*"})');
  assert.ok(families.length >= 11, `families: ${families.map((f) => f.metric.__name__)}`);
  await Promise.all([a.close(), b.close()]);
});

test('a scrape with a wrong token fails, and Prometheus says so', async () => {
  const r = await httpGet(dev.base, '/metrics', { Authorization: 'Bearer wrong' });
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
});

test('the shipped alert rules, their unit tests and the example scrape config pass promtool', () => {
  const promtool = which('promtool');
  const ops = pathJoin(root, 'ops/prometheus');
  execFileSync(promtool, ['check', 'rules', 'alerts.yml'], { cwd: ops });
  const out = execFileSync(promtool, ['test', 'rules', 'alerts.test.yml'], { cwd: ops }).toString();
  assert.match(out, /SUCCESS/);
  execFileSync(promtool, ['check', 'config', '--syntax-only', 'scrape.example.yml'], { cwd: ops });
});

test('every metric the Grafana dashboard and the alert rules query is on the live /metrics', async () => {
  const live = (await httpGet(dev.base, '/metrics', { Authorization: `Bearer ${TOKEN}` })).text;
  const exported = new Set([...live.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  const dashboard = JSON.parse(readFileSync(pathJoin(root, 'ops/grafana/peerjs.json'), 'utf8'));
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  exprs.push(readFileSync(pathJoin(root, 'ops/prometheus/alerts.yml'), 'utf8'));
  const named = new Set(exprs.flatMap((e) => [...e.matchAll(/\bpeerjs_[a-z_]+/g)].map((m) => m[0])));
  assert.ok(named.size >= 10, [...named].join(' '));
  const missing = [...named].filter((n) => !exported.has(n));
  assert.deepEqual(missing, [], `queried but not exported: ${missing}`);
});
