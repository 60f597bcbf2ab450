// A short run of the soak test (the real one is `make soak`: 200 peers, 10
// minutes): peers churn, the rooms tier is killed and restarted mid-run,
// clients reconnect with the same id, and every message must end up
// delivered once or expired, apart from those in flight on the dropped sockets.
import { test, TEST_TIMEOUT_MS, SERVER_START_DEADLINE_MS } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

test('soak smoke: churn and a rooms-tier crash lose nothing the server had accepted', { starts: 2, skip: !process.env.SOAK && 'soak tool not built' }, () => {
  // Two server starts (both tiers, then the rooms tier again mid-run) beside a 30 s run.
  const run = spawnSync('scripts/soak.sh', [], {
    env: { ...process.env, SKIP_BUILD: '1', SOAK_BIN: process.env.SOAK, SOAK_SECS: '30', SOAK_ROOMS: '5', SOAK_RESTART_AT: '15', SOAK_CHURN_SECS: '8' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: TEST_TIMEOUT_MS + 2 * SERVER_START_DEADLINE_MS - 10_000,
  });
  const stderr = String(run.stderr);
  let r;
  try {
    r = JSON.parse(String(run.stdout));
  } catch {
    assert.fail(`soak printed no report (exit ${run.status}):\n${stderr}`);
  }
  const summary = JSON.stringify({ ...r, memory_kib: undefined });
  assert.ok(r.sent > 200, summary);
  assert.deepEqual([r.lost, r.duplicated, r.misrouted], [0, 0, 0], summary);
  assert.equal(r.expired_unconfirmed, 0, summary);
  // The restart happened, the tier came back and everyone it dropped reconnected.
  assert.ok(r.restart && r.restart.rooms_tier_down_ms > 0, summary);
  assert.ok(r.unexpected_drops > 0 && r.reconnects >= r.unexpected_drops, summary);
  // Messages queued for absent peers when the tier died were still there after it.
  assert.ok(r.restart.queued_at_kill > 0, summary);
  assert.equal(r.restart.queued_lost, 0, summary);
  assert.ok(r.restart.queued_delivered + r.restart.queued_expired_reported > 0, summary);
  assert.equal(run.status, 0, stderr);
});
