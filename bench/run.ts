/**
 * `npm run bench`: starts the local Postgres + PgBouncer stack, measures, writes bench/RESULTS.md and
 * bench/chart.svg. Never part of `npm test`. Bounded: ≈ 9 minutes with the defaults.
 *
 * Env: BENCH_DELAY (ms each way, default 20), BENCH_REPS (default 20), BENCH_DURATION (s per throughput
 * run, default 3), BENCH_ROUNDS (interleaved throughput rounds, default 3), BENCH_CONNECTIONS (default
 * "16,64"), BENCH_POOL_SIZE (default 10), BENCH_SKIP ("rtt,throughput,pool,guard,bundle").
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import postgres from 'postgres'
import { bouncerAdmin, startStack } from '../scripts/stack.ts'
import { chartSvg } from './chart.ts'
import { guardCost } from './guard.ts'
import { loadLib } from './lib-build.ts'
import { poolThroughput } from './pool.ts'
import { startLatencyProxy } from './proxy.ts'
import { honoPooler, longLivedPool, pgPerRequest, postgresPerRequest, type Strategy } from './strategies.ts'
import { throughput } from './throughput.ts'
import { SCHEMA, WORKLOADS } from './workloads.ts'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const DELAY = Number(process.env.BENCH_DELAY ?? 20)
const REPS = Number(process.env.BENCH_REPS ?? 20)
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean))
const log = (...a: unknown[]) => console.error('[bench]', ...a)

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function rtt(
  lib: any,
  directToBouncer: { host: string; port: number },
  urlVia: (port: number, tls?: boolean) => string,
  ca: string,
) {
  const proxy = await startLatencyProxy(directToBouncer, DELAY)
  const url = urlVia(proxy.port)
  const tlsUrl = urlVia(proxy.port, true)
  const rtt = 2 * DELAY
  const parallel: Strategy[] = [
    honoPooler(lib, url),
    honoPooler(lib, url, 'hono-pooler, `pipelineConnect`', { pipelineConnect: true }),
    honoPooler(lib, tlsUrl, 'hono-pooler, TLS (verify-full)', { ssl: { ca } }),
    honoPooler(lib, tlsUrl, 'hono-pooler, `pipelineConnect` + TLS (verify-full)', {
      pipelineConnect: true,
      ssl: { ca },
    }),
    honoPooler(lib, url, "hono-pooler, `fastConnect: false` (postgres.js's connect)", { fastConnect: false }),
    postgresPerRequest(url, 'postgres.js `prepare: false`', { prepare: false }),
    pgPerRequest(url),
    await longLivedPool(url, 1),
  ]
  const alone: Strategy[] = [postgresPerRequest(url, 'postgres.js defaults', {})]
  const table = new Map<string, Map<string, number>>()
  const measure = async (s: Strategy) => {
    const row = new Map<string, number>()
    table.set(s.name, row)
    for (const w of WORKLOADS) {
      const xs: number[] = []
      await s.request(w) // warm the code path (not the connection: each request opens its own)
      for (let i = 0; i < REPS; i++) xs.push((await s.request(w)) / rtt)
      row.set(w, median(xs))
    }
    log('rtt', s.name, [...row.values()].map((x) => x.toFixed(1)).join(' '))
  }
  // Named prepared statements (postgres.js defaults) must not share PgBouncer with other streams: alone.
  await Promise.all(parallel.map(measure))
  for (const s of alone) await measure(s)
  for (const s of [...parallel, ...alone]) await s.close()
  await proxy.close()
  const order = [
    'hono-pooler',
    'hono-pooler, `pipelineConnect`',
    'hono-pooler, TLS (verify-full)',
    'hono-pooler, `pipelineConnect` + TLS (verify-full)',
    "hono-pooler, `fastConnect: false` (postgres.js's connect)",
    'postgres.js defaults',
    'postgres.js `prepare: false`',
    '`pg` Client per request',
    'long-lived pool (warm, reference)',
  ]
  return order
    .filter((n) => table.has(n))
    .map((n) => ({ name: n, values: WORKLOADS.map((w) => table.get(n)!.get(w)!) }))
}

/** Non-superuser backends on the server (the stack's max_connections is 40, 3 of them for superusers). */
async function appBackends(superUrl: string): Promise<number> {
  const su = postgres(superUrl, { max: 1, onnotice: () => {} })
  try {
    const [{ n }] = (await su`select count(*)::int as n from pg_stat_activity
      where backend_type = 'client backend' and not usesysid in (select oid from pg_roles where rolsuper)`) as any[]
    return n
  } finally {
    await su.end({ timeout: 1 })
  }
}

/**
 * Waits (at most 30 s) until the previous phase's connections are gone: PgBouncer closes its idle server
 * connections (RECONNECT), per-request clients finish closing. Otherwise the pool phase (60 direct
 * connections + PgBouncer's 10) starts above max_connections and its rows collect errors.
 */
async function drained(stack: { superUrl: string; adminUrl: string }, baseline: number): Promise<void> {
  await bouncerAdmin(stack.adminUrl, 'reconnect').catch((e) => log('pgbouncer reconnect:', e.message))
  const until = Date.now() + 30_000
  let n = await appBackends(stack.superUrl)
  while (n > baseline && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250))
    n = await appBackends(stack.superUrl)
  }
  log('connections before the pool phase:', n, n > baseline ? `(still above ${baseline} after 30 s)` : '')
}

interface Bundle {
  raw: number
  gzip: number
  share: (re: RegExp) => number
  total: number
}

/** `wrangler deploy --dry-run` of one Worker config, with esbuild's metafile for each package's share. */
function measureBundle(config: string): Bundle {
  const out = mkdtempSync(join(tmpdir(), 'hp-bundle-'))
  try {
    execFileSync(
      'npx',
      [
        'wrangler',
        'deploy',
        '--dry-run',
        '-c',
        config,
        '--outdir',
        out,
        '--metafile',
        join(out, 'meta.json'),
      ],
      {
        cwd: root,
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 120_000,
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
      },
    )
    const code = readdirSync(out)
      .filter((f) => /\.(m?js)$/.test(f))
      .map((f) => readFileSync(join(out, f)))
      .reduce((a, b) => Buffer.concat([a, b]), Buffer.alloc(0))
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8'))
    const inputs = Object.values(
      meta.outputs as Record<string, { inputs: Record<string, { bytesInOutput: number }> }>,
    ).flatMap((o) => Object.entries(o.inputs))
    const share = (re: RegExp) =>
      inputs.filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v.bytesInOutput, 0)
    return { raw: code.length, gzip: gzipSync(code).length, share, total: share(/./) }
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}

function bundleSize(): string {
  if (!statSync(join(root, 'wrangler.toml'), { throwIfNoEntry: false })) return '_skipped: no wrangler.toml_'
  try {
    const example = measureBundle('wrangler.toml')
    const minimal = measureBundle('bench/min-worker/wrangler.toml')
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`
    const row = (label: string, f: (b: Bundle) => string) => `| ${label} | ${f(example)} | ${f(minimal)} |`
    const pkg = (re: RegExp) => (b: Bundle) => kb(b.share(re))
    return [
      '| | notes example (`wrangler.toml`) | minimal Worker (`bench/min-worker`) |',
      '|---|---|---|',
      row('bundle (as wrangler writes it)', (b) => kb(b.raw)),
      row('gzip', (b) => kb(b.gzip)),
      row("hono-pooler's share (its src/, before gzip)", (b) => {
        const ours = b.share(/^(\.\.\/)*src\//)
        return `${kb(ours)} (${((100 * ours) / b.total).toFixed(1)} %)`
      }),
      row('postgres.js', pkg(/node_modules\/postgres\//)),
      row('hono', pkg(/node_modules\/hono\//)),
      row('zod (the example also uses classic zod for its request validation)', pkg(/node_modules\/zod\//)),
    ].join('\n')
  } catch (e) {
    return `_bundle step failed: ${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 300)}_`
  }
}

async function main() {
  const t0 = Date.now()
  const lib = await loadLib()
  // The pool phase keeps six servers' pools of 10 open straight to Postgres at once (the tests' stack allows 40).
  const stack = await startStack({ ...process.env, DATABASE_URL: '' }, { maxConnections: 80 })
  const out: string[] = []
  try {
    const superApp = new URL(stack.superUrl)
    superApp.pathname = new URL(stack.directUrl).pathname
    const setup = postgres(superApp.toString(), { max: 1, onnotice: () => {} })
    await setup
      .unsafe(
        `${SCHEMA}; grant all on all tables in schema public to app; grant all on all sequences in schema public to app;`,
      )
      .simple()
    const [{ version }] = (await setup`select current_setting('server_version') as version`) as any[]
    await setup.end()
    const bouncer =
      (await bouncerAdmin<{ version: string }>(stack.adminUrl, 'show version'))[0]?.version ?? '?'
    const baseline = await appBackends(stack.superUrl)
    const u = new URL(stack.databaseUrl)
    out.push(
      '# hono-pooler benchmarks',
      '',
      `Generated by \`npm run bench\` on ${new Date().toISOString()}.`,
      `Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, PostgreSQL ${version}, ${bouncer} (transaction mode, SCRAM), loopback only.`,
      '',
    )
    if (!SKIP.has('rtt')) {
      log('rtt: proxy delay', DELAY, 'ms each way, reps', REPS)
      const rows = await rtt(
        lib,
        { host: u.hostname, port: Number(u.port) },
        (port, tls) => {
          const p = new URL(tls ? stack.tlsUrl : stack.databaseUrl)
          p.port = String(port)
          return p.toString()
        },
        readFileSync(stack.caFile, 'utf8'),
      )
      out.push(
        `## Round trips per request`,
        '',
        `Through a loopback proxy adding ${DELAY} ms each way (1 RTT = ${2 * DELAY} ms) in front of PgBouncer. Wall time from the start of the request (before the connection is opened, TCP handshake not delayed) to the last result, ÷ RTT; median of ${REPS}. Closing is not counted. TLS rows: the SSLRequest and the TLS handshake are delayed like any data (counted), the TCP handshake is not. Calibration: the warm pool needs exactly 1 round trip for \`select 1\` and 2 per parameterized select (Parse/Describe, then Bind/Execute), so its row shows what the proxy's timers and the client's own work add on top of whole round trips.`,
        '',
        `| client | ${WORKLOADS.join(' | ')} |`,
        `|---|${WORKLOADS.map(() => '---').join('|')}|`,
        ...rows.map((r) => `| ${r.name} | ${r.values.map((v) => v.toFixed(1)).join(' | ')} |`),
        '',
        '![RTT per request](chart.svg)',
        '',
      )
      writeFileSync(
        join(here, 'chart.svg'),
        chartSvg(rows, [...WORKLOADS], `RTTs per request (${2 * DELAY} ms RTT)`),
      )
    }
    if (!SKIP.has('throughput')) out.push(await throughput(lib, stack.databaseUrl, log), '')
    if (!SKIP.has('pool')) await drained(stack, baseline)
    if (!SKIP.has('pool'))
      out.push(await poolThroughput({ direct: stack.directUrl, bouncer: stack.databaseUrl }, log), '')
    if (!SKIP.has('guard')) out.push('## Guard and inliner cost per query', '', guardCost(lib), '')
    if (!SKIP.has('bundle')) {
      log('bundle: wrangler deploy --dry-run')
      out.push('## Worker bundle (`wrangler deploy --dry-run`)', '', bundleSize(), '')
    }
    out.push(
      `_Total bench time: ${((Date.now() - t0) / 1000).toFixed(0)} s. Reproduce: \`npm run bench\` (env: BENCH_DELAY, BENCH_REPS, BENCH_DURATION, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_POOL_SIZE, BENCH_SKIP)._`,
      '',
    )
    writeFileSync(join(here, 'RESULTS.md'), out.join('\n'))
    console.log(out.join('\n'))
  } finally {
    // Per-request clients closed without waiting (pg's end(), postgres.js's end) may still be reconnecting.
    process.on('uncaughtException', (e) => log('after the run:', e.message))
    await stack.stop()
  }
}

await main()
process.exit(0)
