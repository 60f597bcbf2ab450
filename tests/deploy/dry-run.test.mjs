// Offline validation of every deployable: `wrangler deploy --dry-run` for each
// tier x environment (proves the config parses and bundles), the bindings and
// settings each environment must have, and a size budget per Worker.
// The Workers must already be built with wasm-opt (scripts/test.sh does it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

// Budgets: Cloudflare refuses Workers over 3 MiB gzipped (free) / 10 MiB (paid),
// and start-up time grows with the wasm to compile. Each gzipped budget is
// the Worker's target: the router 192 KiB (it parses no URL with the `url`
// crate, see shared/src/target.rs; about 183 KiB), the rooms Worker 160 KiB
// (about 158.5 KiB; docs/operations.md, Bundle sizes, says where it went).
// Both ship without the wasm names section (scripts/strip-names.py).
export const BUDGETS = {
  router: { raw: 1_200 * 1024, gzip: 192 * 1024 },
  rooms: { raw: 1_200 * 1024, gzip: 160 * 1024 },
};
const ENVS = ['dev', 'staging', 'production'];

function tomlAsJson(file) {
  const py = 'import tomllib,json,sys; print(json.dumps(tomllib.load(open(sys.argv[1],"rb"))))';
  return JSON.parse(execFileSync('python3', ['-c', py, join(root, file)]).toString());
}

function section(config, env) {
  return env === 'dev' ? config : config.env?.[env] ?? null;
}

function dryRun(tier, env) {
  const outdir = mkdtempSync(join(tmpdir(), `dry-${tier}-${env}-`));
  const args = ['node_modules/wrangler/bin/wrangler.js', 'deploy', '--dry-run', '--outdir', outdir, '-c', `wrangler.${tier}.toml`];
  if (env !== 'dev') args.push('--env', env);
  const output = execFileSync('node', args, {
    cwd: root,
    env: {
      ...process.env,
      SKIP_BUILD: '1',
      WRANGLER_SEND_METRICS: 'false',
      WRANGLER_SEND_ERROR_REPORTS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      PATH: `${root}node_modules/.bin:${process.env.PATH}`,
    },
  }).toString();
  const files = readdirSync(outdir).filter((f) => f.endsWith('.wasm') || f.endsWith('.js'));
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const bytes = readFileSync(join(outdir, f));
    raw += statSync(join(outdir, f)).size;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  return { output, raw, gzip };
}

const sizes = [];

// The pinned wrangler's workerd supports compatibility dates up to its own
// release date (its version is 1.YYYYMMDD.N); a date newer than that fails
// to start, and one far older means the Workers run on stale behaviour.
const MAX_COMPAT_AGE_DAYS = 120;
test('compatibility_date is one the pinned workerd supports, and recent', () => {
  const workerd = JSON.parse(readFileSync(join(root, 'node_modules/workerd/package.json'), 'utf8')).version;
  const [, y, m, d] = workerd.match(/^1\.(\d{4})(\d{2})(\d{2})\./) ?? [];
  assert.ok(y, `workerd version ${workerd}`);
  const release = Date.UTC(+y, +m - 1, +d);
  for (const tier of ['rooms', 'router']) {
    const date = tomlAsJson(`wrangler.${tier}.toml`).compatibility_date;
    const compat = Date.parse(`${date}T00:00:00Z`);
    assert.ok(compat <= release, `${tier}: ${date} is newer than workerd ${workerd}`);
    const age = (release - compat) / 86_400_000;
    assert.ok(age <= MAX_COMPAT_AGE_DAYS, `${tier}: ${date} is ${age} days older than workerd ${workerd} (at most ${MAX_COMPAT_AGE_DAYS})`);
  }
});

for (const tier of ['rooms', 'router']) {
  const config = tomlAsJson(`wrangler.${tier}.toml`);
  for (const env of ENVS) {
    test(`${tier} / ${env}: config is complete, bundles, and fits the budget`, () => {
      const s = section(config, env);
      assert.ok(s, `[env.${env}] is missing in wrangler.${tier}.toml`);
      const suffix = env === 'dev' ? '' : `-${env}`;
      if (tier === 'rooms') {
        assert.equal(s.workers_dev, false, 'the rooms tier must have workers_dev = false');
        assert.equal(s.routes, undefined, 'the rooms tier must have no routes');
        assert.deepEqual(
          (s.durable_objects?.bindings ?? []).map((b) => [b.name, b.class_name]),
          [['GAME_ROOM', 'GameRoom'], ['STATS', 'StatsShard'], ['PEER_HOME', 'PeerHome']],
        );
        for (const cls of ['GameRoom', 'StatsShard', 'PeerHome']) {
          assert.ok(config.migrations?.some((m) => m.new_sqlite_classes?.includes(cls)), `${cls} migration`);
        }
        // A deployed migration is never edited: new classes get a new tag.
        assert.deepEqual(config.migrations.map((m) => m.tag), ['v1', 'v2'], 'migration tags in order');
      } else {
        assert.deepEqual(
          (s.services ?? []).map((b) => [b.binding, b.service]),
          [['ROOMS', `peerjs-rooms${suffix}`]],
          'the router binds the same environment of the rooms tier',
        );
        if (env === 'dev') {
          // `wrangler deploy` without --env deploys these: they must serve nobody.
          assert.equal(s.workers_dev, false, 'the top level is not on workers.dev');
          assert.equal(s.routes, undefined, 'the top level has no routes');
          assert.equal(s.vars?.LOCAL_DEV, 'true', 'the top level answers loopback hosts only');
          assert.equal(config.env?.test?.vars?.LOCAL_DEV, 'true', 'the test env too');
        } else {
          assert.notEqual(s.vars?.LOCAL_DEV, 'true', 'staging and production are not local dev');
          assert.equal(s.vars?.REQUIRE_TICKETS, 'true', 'tickets are required outside local dev');
          assert.ok(s.vars?.TICKET_AUDIENCE, 'tickets name their audience outside local dev');
          assert.equal(s.vars?.DEMO, 'false', 'no demo outside local dev');
          assert.notEqual(s.vars?.ALLOWED_ORIGINS ?? '*', '*', 'an origin allow-list outside local dev');
          assert.ok(!('ROOM_TICKET_SECRET' in (s.vars ?? {})), 'secrets never go in the toml');
        }
        if (env === 'production') {
          assert.ok(s.routes?.some((r) => r.custom_domain), 'production is on a custom domain');
        }
      }
      assert.match(config.compatibility_date, /^\d{4}-\d{2}-\d{2}$/, 'compatibility date pinned');
      if (env !== 'dev') {
        // Workers Logs on, with a head sampling rate, in every deployed environment.
        assert.equal(s.observability?.enabled, true, `[env.${env}.observability] enabled`);
        const rate = s.observability?.head_sampling_rate;
        assert.ok(typeof rate === 'number' && rate > 0 && rate <= 1, `head_sampling_rate in (0, 1]: ${rate}`);
      }
      const { output, raw, gzip } = dryRun(tier, env);
      assert.match(output, /--dry-run: exiting now/);
      if (tier === 'router') assert.match(output, new RegExp(`env\\.ROOMS \\(peerjs-rooms${suffix}\\)`));
      else assert.match(output, /env\.GAME_ROOM \(GameRoom\)/);
      sizes.push({ tier, env, raw, gzip });
      console.log(`${tier}/${env}: ${(raw / 1024).toFixed(1)} KiB raw, ${(gzip / 1024).toFixed(1)} KiB gzipped (budget ${BUDGETS[tier].raw / 1024} / ${BUDGETS[tier].gzip / 1024} KiB)`);
      assert.ok(raw <= BUDGETS[tier].raw, `${tier} is ${raw} bytes raw, over its budget`);
      assert.ok(gzip <= BUDGETS[tier].gzip, `${tier} is ${gzip} bytes gzipped, over its budget`);
    });
  }
}

test('deploy.sh requires the secrets the settings table marks, per tier', () => {
  // The table is generated from shared/src/settings.rs (a host test keeps them
  // equal); a secret dropped from it would let a tier deploy without it.
  const required = (tier) => execFileSync('bash', ['-c', `. scripts/lib.sh; required_secrets ${tier}`], { cwd: root })
    .toString().trim().split('\n');
  assert.deepEqual(required('router'), ['INTERNAL_SECRET', 'METRICS_TOKEN', 'ROOM_TICKET_PUBLIC_KEY|ROOM_TICKET_SECRET']);
  assert.deepEqual(required('rooms'), ['INTERNAL_SECRET']);
});
