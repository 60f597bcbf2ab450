// A tiny run of the load generator (the benchmark itself is `make bench`):
// a few rooms through the full handshake, with zero loss, duplication or misrouting.
import { test } from '../deadlines.mjs';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startDev } from './lib.mjs';

test('loadgen smoke: 5 rooms x 4 peers, every message delivered exactly once to the right peer', { starts: 1, skip: !process.env.LOADGEN && 'LOADGEN not built' }, async () => {
  const dev = await startDev({ vars: ['CONNECTS_PER_MINUTE_PER_IP:0'] });
  try {
    const out = execFileSync(process.env.LOADGEN, ['--url', dev.base, '--rooms', '5', '--peers', '4', '--max-secs', '60']).toString();
    const r = JSON.parse(out);
    assert.equal(r.opened, 20);
    assert.equal(r.refused, 0);
    assert.equal(r.messages_sent, 5 * 6 * 22);
    assert.equal(r.messages_received, r.messages_sent);
    assert.deepEqual([r.lost, r.duplicated, r.misrouted, r.out_of_order], [0, 0, 0, 0]);
  } finally {
    dev.stop();
  }
});
