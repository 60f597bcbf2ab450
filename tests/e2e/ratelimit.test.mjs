// The Cloudflare rate-limiting binding: when the router has a
// `CONNECT_LIMITER` binding, it is consulted (per client key, across
// isolates) after the isolate's own limiter. `wrangler dev` simulates the
// binding, so a router whose binding allows 5 a minute refuses the sixth
// call although its own limiter (the test env's 600 a minute) would not.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, httpGet, startDev, root } from './lib.mjs';

test('with a CONNECT_LIMITER binding, the router refuses what the binding refuses', { starts: 1 }, async () => {
  // Beside the original, so its relative paths (bundle, assets) still hold.
  const config = `wrangler.router.ratelimit-${process.pid}.toml`;
  writeFileSync(
    `${root}/${config}`,
    `${readFileSync(`${root}/wrangler.router.toml`, 'utf8')}
[[env.test.ratelimits]]
name = "CONNECT_LIMITER"
namespace_id = "1001"
simple = { limit = 5, period = 60 }
`,
  );
  const dev = await startDev({ configs: `-c ${config} -c wrangler.rooms.toml` }).finally(() =>
    rmSync(`${root}/${config}`, { force: true }),
  );
  try {
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await httpGet(dev.base, '/peerjs/id')).status);
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200], `statuses: ${statuses}`);
    assert.ok(statuses.slice(5).every((s) => s === 429), `after the binding's 5: ${statuses}`);
    const c = await connect(dev.base, { id: 'a', token: 'room1' });
    assert.equal((await c.next('ERROR')).payload.msg, 'Too many connections, retry later');
  } finally {
    dev.stop();
  }
});
