// Helpers for the black-box tests: raw PeerJS-protocol clients over real
// sockets, HTTP helpers, and HS256 tickets minted the way a Node backend would.
import WebSocket from 'ws';
import jwt from 'jsonwebtoken';
import { createHmac } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SERVER_START_DEADLINE_MS, recordTiming } from '../deadlines.mjs';

export const BASE = process.env.E2E_URL ?? 'http://127.0.0.1:9000';
export const TICKETS = process.env.E2E_TICKETS_URL;
export const REF = process.env.REF_URL;
/** Our Workers with NAMESPACE=open (the reference's one id namespace). */
export const OPEN = process.env.E2E_OPEN_URL;
export const SECRET = process.env.TICKET_SECRET ?? '';
/** The `aud` every ticket-requiring test session names (TICKET_AUDIENCE). */
export const AUDIENCE = process.env.TICKET_AUDIENCE ?? 'peerjs-tests';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until `done(value)` holds and returns that value, so a test
 * waits for the state it expects instead of sleeping for a guess of how long
 * the server takes. On timeout it throws with the last value seen.
 */
export async function eventually(probe, done, what, { timeout = 60_000, every = 250 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(every);
  }
}

let counter = 0;
/** A unique room or peer id per test run, so tests never share state. */
export function unique(prefix) {
  counter += 1;
  return `${prefix}${process.pid}x${Date.now().toString(36)}x${counter}`;
}

export function wsUrl(base, params, path = '/peerjs') {
  const query = Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return `${base.replace(/^http/, 'ws')}${path}?${query}`;
}

/**
 * Opens a socket like the stock client and records everything it receives.
 * Resolves once the socket is open (not once OPEN arrived).
 */
export function connect(base, { id, token, key = 'peerjs', path = '/peerjs', headers = {}, raw } = {}) {
  const url = raw ?? wsUrl(base, { key, id, token, version: '1.5.5' }, path);
  const ws = new WebSocket(url, { headers });
  const client = new Client(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
    });
    ws.once('error', reject);
  });
}

export class Client {
  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('message', (data) => {
      let msg;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        msg = { unparsed: data.toString() };
      }
      msg.receivedAt = Date.now();
      this.messages.push(msg);
      this.waiters = this.waiters.filter((w) => !w(msg));
    });
  }

  /**
   * Resolves with the first received message (past or future) matching `pred`.
   * The deadline is generous on purpose (a busy machine is slow, not wrong);
   * on a timeout the error lists what did arrive.
   */
  next(pred, timeoutMs = 30_000, what = 'message') {
    const test = typeof pred === 'string' ? (m) => m.type === pred : pred;
    const seen = this.messages.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${typeof pred === 'string' ? pred : what}; got ${JSON.stringify(this.messages.map((m) => m.type))}`)), timeoutMs);
      this.waiters.push((m) => {
        if (!test(m)) return false;
        clearTimeout(timer);
        resolve(m);
        return true;
      });
    });
  }

  /** Messages of `type` received so far. */
  of(type) {
    return this.messages.filter((m) => m.type === type);
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  close() {
    this.ws.close();
    return this.closed;
  }

  /** Drops the TCP connection without a close handshake. */
  kill() {
    this.ws.terminate();
  }
}

/** Connects and waits for OPEN. */
export async function join(base, id, token, opts = {}) {
  const c = await connect(base, { id, token, ...opts });
  await c.next('OPEN');
  return c;
}

export function httpGet(base, path, headers = {}) {
  return httpRequest(base, path, { headers });
}

/** Any HTTP call; answers the status, headers, text and the body parsed as JSON when it is. */
export async function httpRequest(base, path, { method = 'GET', headers = {} } = {}) {
  const res = await fetch(`${base}${path}`, { method, headers });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, text, body };
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/** An HS256 room ticket, exactly as the README tells a Node backend to mint it. */
/**
 * A ticket signed the way the README tells a game backend to: with the
 * `jsonwebtoken` package, HS256, ten minutes, this server's audience
 * (jsonwebtoken sets `iat`). `options` are jwt.sign's; one given as
 * `undefined` is left out (`{ audience: undefined }`: no `aud`).
 */
export function backendTicket(claims, options = {}, secret = SECRET) {
  const all = { algorithm: 'HS256', expiresIn: '10m', audience: AUDIENCE, ...options };
  for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k];
  return jwt.sign(claims, secret, all);
}

/** A hand-made token, for the malformed cases a backend never mints (alg none, no exp). */
export function mintTicket(claims, { secret = SECRET, alg = 'HS256' } = {}) {
  const header = b64url(JSON.stringify({ alg, typ: 'JWT' }));
  // As a game backend signs them: issued now, for this server's audience
  // (a claim given as `undefined` is left out).
  const payload = b64url(JSON.stringify({ iat: nowSecs(), aud: AUDIENCE, ...claims }));
  if (alg === 'none') return `${header}.${payload}.`;
  const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest();
  return `${header}.${payload}.${b64url(sig)}`;
}

export const nowSecs = () => Math.floor(Date.now() / 1000);

/** A wake-counter snapshot of one room (debug endpoint of the test config). */
export async function roomStats(base, room) {
  const r = await httpGet(base, `/debug/rooms/${room}`);
  if (r.status !== 200) throw new Error(`room stats: ${r.status} ${r.text}`);
  return r.body;
}

/**
 * The JSON log events in a dev session's output. wrangler dev shows
 * console.warn/error lines with a "▲ [WARNING]" prefix and colours; the
 * line itself is the JSON between them.
 */
export function logEvents(text) {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').split('\n')
    .map((l) => l.slice(l.indexOf('{"')))
    .filter((l) => l.startsWith('{"'))
    .map((l) => JSON.parse(l));
}

export const root = new URL('../..', import.meta.url).pathname;

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Every private dev session still running; stopped when this test file's
// process ends however it ends (a test that times out inside `startDev`
// never reaches its own `stop()`, and a detached session would outlive it).
const running = new Set();
const stopAll = () => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {}
  }
  running.clear();
};
process.on('exit', stopAll);
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    stopAll();
    process.exit(1);
  });
}

/**
 * Starts a private `wrangler dev` session (test env by default, prebuilt
 * Workers, fresh state, its own dev registry so it cannot see the suite's
 * other sessions) and returns its base URL, its captured output and a stop
 * function. `vars` go to wrangler as
 * `--var`; `env` is put in dev.sh's environment (as `NAME=value make dev`
 * does); `wranglerEnv: null` runs the default environment (`make dev`'s).
 * With both Workers it is ready once `/health?deep=1` satisfies `ready`
 * (given status and body text; by default a 200).
 *
 * The start has its own deadline (SERVER_START_DEADLINE_MS, minutes), not
 * the test's: the hook or test that calls this declares `{ starts: n }`. A
 * start that misses it says which server it was and shows its log's tail;
 * every start's duration goes to the timing summary.
 */
export async function startDev({
  configs = '-c wrangler.router.toml -c wrangler.rooms.toml', vars = [], env = {}, wranglerEnv = 'test',
  ready = (status) => status === 200,
  portTries = 3,
} = {}) {
  const port = await freePort();
  const envArgs = wranglerEnv ? ['--env', wranglerEnv] : [];
  // Names only: values may be secrets.
  const settings = [...new Set([...vars.map((v) => v.split(':')[0]), ...Object.keys(env)])];
  const name = `wrangler dev [${configs.match(/wrangler\.\w+/g)?.join(' + ') ?? configs}]`
    + `${wranglerEnv ? ` --env ${wranglerEnv}` : ''}${settings.length ? ` with ${settings.join(', ')}` : ''}`;
  const started = performance.now();
  const child = spawn('scripts/dev.sh', [...envArgs, ...vars.flatMap((v) => ['--var', v])], {
    cwd: root,
    env: {
      ...process.env,
      ...env,
      SKIP_BUILD: '1',
      PORT: String(port),
      INSPECTOR_PORT: String(await freePort()),
      PERSIST_TO: mkdtempSync(pathJoin(tmpdir(), 'dev-state-')),
      DEV_CONFIGS: configs,
      WRANGLER_REGISTRY_PATH: mkdtempSync(pathJoin(tmpdir(), 'registry-')),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const output = [];
  child.stdout.on('data', (d) => output.push(d.toString()));
  child.stderr.on('data', (d) => output.push(d.toString()));
  let exited = null;
  child.on('exit', (code, signal) => { exited = signal ?? `code ${code}`; });
  const base = `http://127.0.0.1:${port}`;
  running.add(child.pid);
  const stop = () => {
    running.delete(child.pid);
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
  };
  const deadline = started + SERVER_START_DEADLINE_MS;
  let last = 'no answer yet';
  while (performance.now() < deadline && exited === null) {
    try {
      const r = await fetch(`${base}/health`, { signal: AbortSignal.timeout(10_000) });
      await r.text();
      if (configs.includes('rooms')) {
        const deep = await fetch(`${base}/health?deep=1`, { signal: AbortSignal.timeout(10_000) });
        const text = await deep.text();
        if (!ready(deep.status, text)) throw new Error(`/health?deep=1 answered ${deep.status} ${text.slice(0, 200)}`);
      }
      const ms = Math.round(performance.now() - started);
      recordTiming({ kind: 'start', server: name, ms });
      return { base, stop, log: () => output.join('') };
    } catch (e) {
      last = e.message;
      await sleep(500);
    }
  }
  stop();
  // A free port is free only when it is picked: a session of another test
  // file (or wrangler's own internal sockets) may take it before this one
  // binds. That is not this server's failure: pick new ports and start again.
  if (exited !== null && portTries > 1 && output.join('').includes('Address already in use')) {
    return startDev({ configs, vars, env, wranglerEnv, ready, portTries: portTries - 1 });
  }
  const ms = Math.round(performance.now() - started);
  recordTiming({ kind: 'start', server: name, ms, failed: true });
  const why = exited === null ? `did not come up within ${SERVER_START_DEADLINE_MS / 1000} s` : `exited (${exited}) before it came up`;
  const tail = output.join('').split('\n').slice(-40).join('\n');
  throw new Error(`${name} ${why} (last: ${last}); its log ends:\n${tail}`);
}
