// Configurations that need their own router: the rooms tier missing
// (deep health 503) and a bad setting (health 500 naming it, upgrades refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { connect, httpGet, sleep } from './lib.mjs';

const root = new URL('../..', import.meta.url).pathname;

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts the router alone under wrangler dev; returns its base URL and a stop function. */
async function startRouterAlone(vars = []) {
  const port = await freePort();
  const child = spawn('scripts/dev.sh', ['--env', 'test', ...vars.flatMap((v) => ['--var', v])], {
    cwd: root,
    env: {
      ...process.env,
      SKIP_BUILD: '1',
      PORT: String(port),
      INSPECTOR_PORT: String(await freePort()),
      PERSIST_TO: mkdtempSync(pathJoin(tmpdir(), 'router-alone-')),
      DEV_CONFIGS: '-c wrangler.router.toml',
      // Its own dev registry, so it cannot find the suite's rooms Worker.
      WRANGLER_REGISTRY_PATH: mkdtempSync(pathJoin(tmpdir(), 'registry-')),
    },
    stdio: 'ignore',
    detached: true,
  });
  const base = `http://127.0.0.1:${port}`;
  const stop = () => {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
  };
  for (let i = 0; i < 120; i += 1) {
    try {
      await fetch(`${base}/health`);
      return { base, stop };
    } catch {
      await sleep(500);
    }
  }
  stop();
  throw new Error('router did not start');
}

test('without the rooms tier, /health stays 200 but /health?deep=1 is 503 with the reason', async () => {
  const { base, stop } = await startRouterAlone();
  try {
    assert.equal((await httpGet(base, '/health')).status, 200);
    const deep = await httpGet(base, '/health?deep=1');
    assert.equal(deep.status, 503);
    assert.match(deep.body.rooms, /rooms tier/);
  } finally {
    stop();
  }
});

test('a bad setting makes /health 500 naming it, and upgrades are refused with a reason', async () => {
  const { base, stop } = await startRouterAlone(['REQUIRE_TICKETS:true']);
  try {
    const health = await httpGet(base, '/health');
    assert.equal(health.status, 500);
    assert.equal(health.body.setting, 'REQUIRE_TICKETS');
    const c = await connect(base, { id: 'a', token: 'room1' });
    assert.equal((await c.next('ERROR')).payload.msg, 'Server configuration error');
    assert.equal((await c.closed).code, 1011);
  } finally {
    stop();
  }
});
