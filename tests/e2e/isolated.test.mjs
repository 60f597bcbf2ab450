// Configurations that need their own router: the rooms tier missing
// (deep health 503) and a bad setting (health 500 naming it, upgrades refused),
// and a bad rooms-tier setting (deep health 503 naming it).
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { connect, httpGet, startDev } from './lib.mjs';

/** The router alone under wrangler dev. */
const startRouterAlone = (vars = []) => startDev({ configs: '-c wrangler.router.toml', vars });

test('without the rooms tier, /health stays 200 but /health?deep=1 is 503 with the reason', { starts: 1 }, async () => {
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

test('outside local dev (LOCAL_DEV=false), /metrics without a METRICS_TOKEN is off (503), never open', { starts: 1 }, async () => {
  const { base, stop } = await startRouterAlone(['LOCAL_DEV:false']);
  try {
    const metrics = await httpGet(base, '/metrics');
    assert.equal(metrics.status, 503);
    assert.match(metrics.body.error, /set the METRICS_TOKEN secret/);
  } finally {
    stop();
  }
});

test('a bad setting makes /health 500 naming it, and upgrades are refused with a reason', { starts: 1 }, async () => {
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
  test(`a bad rooms-tier setting (${name}=${value}) is named by /health?deep=1, and joins are refused with a reason`, { starts: 1 }, async () => {
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

test('with INTERNAL_SECRET the tiers sign and verify internal requests; the previous secret is accepted during a rotation', { starts: 1 }, async () => {
  const fresh = 'fresh-internal-secret-0123456789abcdef';
  const old = 'old-internal-secret-0123456789abcdef01';
  // The rooms tier already has the new secret and still accepts the old
  // one; the router still signs with the old one (mid-rotation).
  const dev = await startDev({ env: { INTERNAL_SECRET: fresh, INTERNAL_SECRET_PREVIOUS: old }, vars: [`INTERNAL_SECRET:${old}`] });
  try {
    assert.equal((await httpGet(dev.base, '/health?deep=1')).status, 200);
    const c = await connect(dev.base, { id: 'a', token: 'rotation' });
    assert.equal((await c.next(() => true)).type, 'OPEN');
    await c.close();
  } finally {
    dev.stop();
  }
});

test('open namespace with INTERNAL_SECRET: homes sign their deliveries and the destination verifies them', { starts: 1 }, async () => {
  const dev = await startDev({ env: { NAMESPACE: 'open', INTERNAL_SECRET: 'open-internal-secret-0123456789abcdef' } });
  try {
    const alice = await connect(dev.base, { id: 'alice', token: 'tok-a' });
    const bob = await connect(dev.base, { id: 'bob', token: 'tok-b' });
    assert.equal((await alice.next(() => true)).type, 'OPEN');
    assert.equal((await bob.next(() => true)).type, 'OPEN');
    alice.send({ type: 'OFFER', dst: 'bob', payload: { sdp: 'signed' } });
    assert.equal((await bob.next('OFFER')).payload.sdp, 'signed');
    bob.send({ type: 'ANSWER', dst: 'alice', payload: {} });
    assert.equal((await alice.next('ANSWER')).src, 'bob');
    await Promise.all([alice.close(), bob.close()]);
  } finally {
    dev.stop();
  }
});

test('a router whose INTERNAL_SECRET the rooms tier does not share is refused: deep health names it, joins get a server error', { starts: 1 }, async () => {
  const dev = await startDev({
    env: { INTERNAL_SECRET: 'rooms-internal-secret-0123456789abcdef' },
    vars: ['INTERNAL_SECRET:forged-internal-secret-0123456789abcdef'],
    ready: (status, text) => status === 503 && /INTERNAL_SECRET/.test(text),
  });
  try {
    const deep = await httpGet(dev.base, '/health?deep=1');
    assert.equal(deep.status, 503);
    assert.match(deep.body.rooms, /do not share INTERNAL_SECRET/);
    const c = await connect(dev.base, { id: 'a', token: 'forged' });
    assert.equal((await c.next('ERROR')).payload.msg, 'Server configuration error');
    assert.equal((await c.closed).code, 1011);
  } finally {
    dev.stop();
  }
});
