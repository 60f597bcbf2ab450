// HTTP details checked on bare workerd, the production runtime, rather than
// through `wrangler dev`'s proxy. The config comes from the wrangler files
// (scripts/workerd-config.py, as `make bench` uses it) and the bundles this
// run built.
import { test, before, after, SERVER_START_DEADLINE_MS, recordTiming } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { eventually, freePort, root } from './lib.mjs';

let server;
let base;

before(async () => {
  const require = createRequire(pathJoin(root, 'package.json'));
  const arch = process.arch === 'x64' ? '64' : process.arch;
  const workerd = require.resolve(`@cloudflare/workerd-${process.platform}-${arch}/bin/workerd`);
  const dir = mkdtempSync(pathJoin(tmpdir(), 'workerd-'));
  const port = await freePort();
  execFileSync('python3', [pathJoin(root, 'scripts/workerd-config.py'), dir, String(port), '--env', 'test', '--var', 'DEMO=false']);
  server = spawn(workerd, ['serve', pathJoin(dir, 'config.capnp')], { stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr.on('data', () => {});
  base = `http://127.0.0.1:${port}`;
  const started = performance.now();
  await eventually(() => fetch(`${base}/health?deep=1`).then((r) => r.status, () => 0), (s) => s === 200, 'bare workerd up', { timeout: SERVER_START_DEADLINE_MS });
  recordTiming({ kind: 'start', server: 'bare workerd (both Workers)', ms: Math.round(performance.now() - started) });
}, { starts: 1 });
after(() => server?.kill());

test('a plain GET on the socket path is 426 with a reason; the runtime drops its Upgrade header', async () => {
  const r = await fetch(`${base}/peerjs/peerjs`);
  assert.equal(r.status, 426);
  assert.match((await r.json()).error, /Upgrade Required: connect with a WebSocket/);
  // RFC 9110 wants `Upgrade: websocket` on a 426. The router sets it, but
  // workerd removes `Upgrade` (a hop-by-hop header) from any non-101
  // response. This pins that finding: when it fails, the runtime passes the
  // header on and the deviation note in docs/reference.md can go.
  assert.equal(r.headers.get('upgrade'), null, 'workerd now passes Upgrade on: update docs/reference.md');
});

test('a 401 from the roster names its scheme in WWW-Authenticate', async () => {
  const r = await fetch(`${base}/peerjs/peers`);
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
});
