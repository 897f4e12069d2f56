/**
 * A long-running server: hono-pooler's shared pool vs a raw postgres.js pool of the same size vs `pg.Pool`,
 * one parameterized select per request on @hono/node-server, autocannon, interleaved rounds, medians.
 * Straight to Postgres (the direct connection a stationary server uses) and through PgBouncer.
 */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import autocannon from 'autocannon'
import { Hono, type MiddlewareHandler } from 'hono'
import pg from 'pg'
import { rawPool, runPg, runPostgres } from './workloads.ts'

const W = 'one param select'
const DURATION = Number(process.env.BENCH_DURATION ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '16,64').split(',').map(Number)
const SIZE = Number(process.env.BENCH_POOL_SIZE ?? 10)

interface Target {
  name: string
  app: Hono<any>
  close(): Promise<void>
}

/** One route running the workload once per request, behind `use` when given. */
function benchApp(run: (c: any) => Promise<void>, use?: MiddlewareHandler<any>): Hono<any> {
  const app = new Hono<any>()
  if (use) app.use(use)
  app.get('/', async (c) => {
    await run(c)
    return c.text('ok')
  })
  app.onError((_e, c) => c.text('aborted', 500))
  return app
}

function targets(lib: any, url: string, mode: 'direct' | 'transaction'): Target[] {
  const shared = benchApp(
    (c) => runPostgres(c.var.sql, W),
    lib.pooler({ url, mode, applicationName: 'bench-pool', pool: { size: SIZE, overflow: 0 } }),
  )
  const raw = rawPool(url, mode, SIZE)
  const rawApp = benchApp(() => runPostgres(raw, W))
  // The same raw pool behind an unused pooler(): what the middleware itself costs per request.
  const behind = benchApp(
    () => runPostgres(raw, W),
    lib.pooler({ url, mode, applicationName: 'bench-pool-mw', pool: { size: 1, checkBudget: false } }),
  )
  // The raw pool under the shared pool's rule, one statement per connection at a time (max_pipeline: 0):
  // what pipelining queued statements onto busy connections buys the raw pool.
  const single = rawPool(url, mode, SIZE, true)
  const singleApp = benchApp(() => runPostgres(single, W))
  const pgPool = new pg.Pool({ connectionString: url, max: SIZE })
  const pgApp = benchApp(() => runPg(pgPool, W))
  return [
    {
      name: `hono-pooler shared pool (size ${SIZE})`,
      app: shared,
      close: () => lib.closePools({ timeout: 1 }),
    },
    { name: `postgres.js pool (max ${SIZE})`, app: rawApp, close: () => raw.end({ timeout: 1 }) },
    { name: `pg.Pool (max ${SIZE})`, app: pgApp, close: () => pgPool.end() },
    { name: `postgres.js pool behind an unused pooler()`, app: behind, close: async () => {} },
    {
      name: `postgres.js pool, one statement per connection (max_pipeline: 0)`,
      app: singleApp,
      close: () => single.end({ timeout: 1 }),
    },
  ]
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0

async function measure(list: Target[], log: (...a: unknown[]) => void, label: string) {
  const servers = await Promise.all(
    list.map(async (s) => {
      const server = serve({ fetch: s.app.fetch, port: 0, hostname: '127.0.0.1' })
      await new Promise((r) => (server.listening ? r(null) : server.once('listening', r)))
      return { ...s, server, port: (server.address() as AddressInfo).port }
    }),
  )
  const rows: { name: string; c: number; rps: number; p99: number; cpu: number; errors: number }[] = []
  for (const c of CONNECTIONS) {
    const samples = new Map<string, { rps: number[]; p99: number[]; cpu: number[]; errors: number }>()
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < servers.length; k++) {
        const { name, port } = servers[(k + round) % servers.length]!
        const cpu = process.cpuUsage()
        const r = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: c, duration: DURATION })
        const used = process.cpuUsage(cpu)
        const s = samples.get(name) ?? { rps: [], p99: [], cpu: [], errors: 0 }
        s.rps.push(r.requests.average)
        s.p99.push(r.latency.p99)
        // CPU of this process (server and load generator) per request: steadier than req/s on a shared machine.
        s.cpu.push((used.user + used.system) / Math.max(1, r.requests.total))
        s.errors += r.errors + r.timeouts + r.non2xx
        samples.set(name, s)
        log('pool', label, name, c, `round ${round + 1}`, r.requests.average, 'req/s p99', r.latency.p99)
      }
    }
    for (const { name } of servers) {
      const s = samples.get(name)!
      rows.push({ name, c, rps: median(s.rps), p99: median(s.p99), cpu: median(s.cpu), errors: s.errors })
    }
  }
  // Every server first (autocannon leaves requests in flight when a run ends; close() waits for them), then
  // the pools: the raw pool serves two of the servers.
  await Promise.all(servers.map(({ server }) => new Promise((r) => server.close(r))))
  for (const { close } of servers) await close()
  const raw = (c: number) => rows.find((r) => r.c === c && r.name === `postgres.js pool (max ${SIZE})`)!
  return rows.map(
    (r) =>
      `| ${label} | ${r.name} | ${r.c} | ${r.rps.toFixed(0)} | ${r.p99} | ${(r.rps / raw(r.c).rps).toFixed(2)}× | ${(r.p99 / raw(r.c).p99).toFixed(2)}× | ${r.cpu.toFixed(0)} | ${r.errors} |`,
  )
}

export async function poolThroughput(
  lib: any,
  urls: { direct: string; bouncer: string },
  log: (...a: unknown[]) => void,
): Promise<string> {
  const lines = [
    ...(await measure(targets(lib, urls.direct, 'direct'), log, 'direct')),
    ...(await measure(targets(lib, urls.bouncer, 'transaction'), log, 'PgBouncer')),
  ]
  return [
    '## Long-running server: a shared pool',
    '',
    `Hono on @hono/node-server, one parameterized select per request, pools of ${SIZE} connections kept warm, autocannon ${DURATION} s per run; each strategy runs ${ROUNDS} times, interleaved in rotating order, medians shown. "direct": straight to Postgres (the stationary setup; the raw pool prepares statements); "PgBouncer": through the transaction pooler (the raw pool with prepare: false — it still pipelines, which a transaction pooler can hang on; hono-pooler's never does). The row "behind an unused \`pooler()\`" runs the raw pool behind a middleware it never uses: the middleware's own cost per request (Hono's middleware chain included). The last row is the raw pool under the shared pool's rule, one statement per connection at a time (\`max_pipeline: 0\`): the raw pool otherwise sends queued statements down connections that are still busy, which the shared pool never does across requests (a CancelRequest names a backend, and through a transaction pooler it hangs).`,
    '',
    '| to | strategy | connections | req/s | p99 ms | req/s vs postgres.js pool | p99 vs postgres.js pool | CPU µs/req (server + autocannon) | errors |',
    '|---|---|---|---|---|---|---|---|---|',
    ...lines,
  ].join('\n')
}
