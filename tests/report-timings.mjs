// Prints the figures behind a run: the slowest test files and every server
// start (slowest first), from the JSON lines tests/deadlines.mjs and
// scripts/test.sh append to $TEST_TIMINGS. A slow machine shows up here, as
// numbers, instead of as a red run.
import { readFileSync } from 'node:fs';

const path = process.argv[2] ?? process.env.TEST_TIMINGS;
let records = [];
try {
  records = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
} catch (e) {
  console.log(`timings: none recorded (${e.message})`);
  process.exit(0);
}
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`.padStart(9);
const files = records.filter((r) => r.kind === 'file').sort((a, b) => b.ms - a.ms);
const starts = records.filter((r) => r.kind === 'start').sort((a, b) => b.ms - a.ms);

console.log(`slowest test files (of ${files.length}, wall time of each file's process):`);
for (const r of files.slice(0, 8)) console.log(`${secs(r.ms)}  ${r.file}`);
console.log(`server starts (${starts.length}, slowest first; each has its own deadline):`);
for (const r of starts) console.log(`${secs(r.ms)}  ${r.server}  (${r.file})${r.failed ? '  FAILED' : ''}`);
if (starts.length) console.log(`longest server start: ${secs(starts[0].ms).trim()}`);
