// The suite's time limits, in one place, and the figures that show a slow
// machine as numbers instead of a red run.
//
// node's `--test-timeout` caps a whole test *file* when files run in their own
// processes (node 22: a file of three 600 ms tests fails under 1000), so the
// runner's flag is only a backstop against a hung file. The limits a test
// actually meets are set here:
// - every test gets TEST_TIMEOUT_MS (the runner sets it per suite);
// - starting a server is not a test: each start has its own deadline,
//   SERVER_START_DEADLINE_MS, added to the limit of the hook or test that
//   declares it with `{ starts: n }`.
// Each server start and each file's wall time is appended to $TEST_TIMINGS
// (one JSON object per line) for scripts/test.sh's closing summary.
import * as nodeTest from 'node:test';
import { appendFileSync } from 'node:fs';
import { relative } from 'node:path';
import { performance } from 'node:perf_hooks';

const fromEnv = (name, fallback) => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

/** What one test may take once its servers are up. */
export const TEST_TIMEOUT_MS = fromEnv('TEST_TIMEOUT_MS', 120_000);
/** What one server start may take, however busy the machine is. */
export const SERVER_START_DEADLINE_MS = fromEnv('SERVER_START_DEADLINE_MS', 600_000);

// As `e2e/open.test.mjs`: the e2e and browser suites share some file names.
const FILE = relative(new URL('.', import.meta.url).pathname, process.argv[1] ?? 'unknown');

/** The limit for a hook or test that starts `starts` servers (in sequence or together). */
function limitFor({ starts = 0, timeout, ...options } = {}) {
  return { ...options, timeout: timeout ?? TEST_TIMEOUT_MS + starts * SERVER_START_DEADLINE_MS };
}

function withLimit(register) {
  return (name, options, fn) => {
    if (typeof options === 'function') return register(name, limitFor(), options);
    return register(name, limitFor(options), fn);
  };
}

/** node:test's `test`, limited to TEST_TIMEOUT_MS (plus a deadline per declared server start). */
export const test = withLimit(nodeTest.test);

/** node:test's `before`; `{ starts: n }` gives the hook n server-start deadlines. */
export const before = (fn, options) => nodeTest.before(fn, limitFor(options));
export const { after } = nodeTest;

/** Appends one timing record (ignored when the runner collects none). */
export function recordTiming(record) {
  const path = process.env.TEST_TIMINGS;
  if (!path) return;
  try {
    appendFileSync(path, `${JSON.stringify({ file: FILE, ...record })}\n`);
  } catch {
    // A figure that cannot be written must not fail a test.
  }
}

process.on('exit', () => recordTiming({ kind: 'file', ms: Math.round(performance.now()) }));
