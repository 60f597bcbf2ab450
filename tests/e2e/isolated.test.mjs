// Configurations that need their own router: the rooms tier missing
// (deep health 503) and a bad setting (health 500 naming it, upgrades refused),
// and a bad rooms-tier setting (deep health 503 naming it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, httpGet, startDev } from './lib.mjs';

/** The router alone under wrangler dev. */
const startRouterAlone = (vars = []) => startDev({ configs: '-c wrangler.router.toml', vars });

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

test('outside local dev (LOCAL_DEV=false), /metrics without a METRICS_TOKEN is off (503), never open', async () => {
  const { base, stop } = await startRouterAlone(['LOCAL_DEV:false']);
  try {
    const metrics = await httpGet(base, '/metrics');
    assert.equal(metrics.status, 503);
    assert.match(metrics.body.error, /set the METRICS_TOKEN secret/);
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

for (const [name, value] of [['STATS_SHARDS', '0'], ['STATS_TTL_MS', 'soon'], ['STATS_REPORTS', 'False-ish']]) {
  test(`a bad rooms-tier setting (${name}=${value}) is named by /health?deep=1, and joins are refused with a reason`, async () => {
    // Ready once the rooms tier answers at all (its answer is the test).
    const answered = (status, text) => status === 200 || /rooms tier answered/.test(text);
    const { base, stop } = await startDev({ env: { [name]: value }, ready: answered });
    try {
      const deep = await httpGet(base, '/health?deep=1');
      assert.equal(deep.status, 503, deep.text);
      assert.match(deep.body.rooms, new RegExp(name), deep.text);
      const c = await connect(base, { id: 'a', token: 'room1' });
      assert.equal((await c.next('ERROR')).payload.msg, 'Server configuration error');
    } finally {
      stop();
    }
  });
}
