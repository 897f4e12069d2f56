/**
 * A long-running server: hono-pooler's shared pool vs a raw postgres.js pool of the same size vs `pg.Pool`,
 * one parameterized select per request on @hono/node-server, autocannon, interleaved rounds, medians.
 * Straight to Postgres (the direct connection a stationary server uses) and through PgBouncer. Each
 * strategy is a server of its own, in a child process (bench/pool-server.ts): its CPU time and heap are its
 * own, and the load generator runs in this process, as it would on another machine.
 */
import autocannon from 'autocannon'
import { type PoolServer, type PoolStrategy, startPoolServer } from './pool-server.ts'

const DURATION = Number(process.env.BENCH_DURATION ?? 3)
// Five rounds: on a shared 2-core machine one 3 s run moves by 10–30 %, and the medians of three did too.
const ROUNDS = Number(process.env.BENCH_POOL_ROUNDS ?? process.env.BENCH_ROUNDS ?? 5)
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '16,64').split(',').map(Number)
const SIZE = Number(process.env.BENCH_POOL_SIZE ?? 10)

/** The rows, in table order: the strategy each runs (bench/pool-server.ts) and its name. */
const ROWS: [PoolStrategy, string][] = [
  ['shared', `hono-pooler shared pool (size ${SIZE})`],
  ['raw', `postgres.js pool (max ${SIZE})`],
  ['pg', `pg.Pool (max ${SIZE})`],
  ['behind', 'postgres.js pool behind an unused pooler()'],
  ['noop', 'postgres.js pool behind a middleware that only awaits next()'],
  ['single', 'postgres.js pool, one statement per connection (max_pipeline: 0)'],
]

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0

/**
 * One autocannon run. Its own p99 comes from a histogram of whole milliseconds (10 against 11 ms reads
 * 1.10×); this one is exact, from every response's time (µs resolution), as the 99th percentile.
 */
async function load(
  port: number,
  connections: number,
  duration: number,
): Promise<{ rps: number; p99: number; total: number; errors: number }> {
  const times: number[] = []
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    // The callback form returns the run's event emitter (the promise form does not).
    const run = autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration }, (e, result) =>
      e ? reject(e) : resolve(result),
    )
    run.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) times.push(ms)
    })
  })
  times.sort((x, y) => x - y)
  const p99 = times.length ? times[Math.min(times.length - 1, Math.ceil(times.length * 0.99) - 1)]! : 0
  return { rps: r.requests.average, p99, total: r.requests.total, errors: r.errors + r.timeouts + r.non2xx }
}

async function measure(
  url: string,
  mode: 'direct' | 'transaction',
  log: (...a: unknown[]) => void,
  label: string,
) {
  // One server per strategy, started one after the other (each opens its pool on first use).
  const servers: (PoolServer & { name: string })[] = []
  try {
    for (const [which, name] of ROWS) servers.push({ ...(await startPoolServer(which, url, mode)), name })
    const rows: { name: string; c: number; rps: number; p99: number; cpu: number; errors: number }[] = []
    for (const c of CONNECTIONS) {
      const samples = new Map<string, { rps: number[]; p99: number[]; cpu: number[]; errors: number }>()
      // Warm-up: every server's pool open and its code optimized before the first measured run.
      for (const { port } of servers)
        await autocannon({ url: `http://127.0.0.1:${port}/`, connections: c, duration: 1 })
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < servers.length; k++) {
          const server = servers[(k + round) % servers.length]!
          const before = await server.cpu()
          const r = await load(server.port, c, DURATION)
          const after = await server.cpu()
          const s = samples.get(server.name) ?? { rps: [], p99: [], cpu: [], errors: 0 }
          s.rps.push(r.rps)
          s.p99.push(r.p99)
          // The server's CPU (user + system) per request answered: steadier than req/s on a shared machine.
          const used = after.user + after.system - before.user - before.system
          s.cpu.push(used / Math.max(1, r.total))
          s.errors += r.errors
          samples.set(server.name, s)
          log('pool', label, server.name, c, `round ${round + 1}`, r.rps, 'req/s p99', r.p99.toFixed(2))
        }
      }
      for (const [, name] of ROWS) {
        const s = samples.get(name)!
        rows.push({ name, c, rps: median(s.rps), p99: median(s.p99), cpu: median(s.cpu), errors: s.errors })
      }
    }
    const raw = (c: number) => rows.find((r) => r.c === c && r.name === ROWS[1]![1])!
    return rows.map(
      (r) =>
        `| ${label} | ${r.name} | ${r.c} | ${r.rps.toFixed(0)} | ${r.p99.toFixed(1)} | ${(r.rps / raw(r.c).rps).toFixed(2)}× | ${(r.p99 / raw(r.c).p99).toFixed(2)}× | ${r.cpu.toFixed(0)} | ${(r.cpu / raw(r.c).cpu).toFixed(2)}× | ${r.errors} |`,
    )
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
}

export async function poolThroughput(
  urls: { direct: string; bouncer: string },
  log: (...a: unknown[]) => void,
): Promise<string> {
  const lines = [
    ...(await measure(urls.direct, 'direct', log, 'direct')),
    ...(await measure(urls.bouncer, 'transaction', log, 'PgBouncer')),
  ]
  return [
    '## Long-running server: a shared pool',
    '',
    `Hono on @hono/node-server, one parameterized select per request, pools of ${SIZE} connections kept warm, autocannon ${DURATION} s per run; each strategy runs ${ROUNDS} times (BENCH_POOL_ROUNDS), interleaved in rotating order, medians shown; p99 is exact (from every response's time, not autocannon's whole-millisecond histogram). Each strategy is a server of its own in a child process (bench/pool-server.ts); autocannon runs in the bench's process, so **server CPU µs/req** is the server's alone (user + system ÷ requests answered). "direct": straight to Postgres (the stationary setup; the raw pool prepares statements); "PgBouncer": through the transaction pooler (the raw pool with prepare: false — it still pipelines, which a transaction pooler can hang on; hono-pooler's never does). Three rows are calibrations, the raw pool under: an unused \`pooler()\` (the middleware's own cost per request, Hono's middleware chain included); a middleware that only awaits \`next()\` (what any middleware costs in this closed loop: the load generator waits for each answer, so a server that works more per request also batches less per event-loop turn, and the difference grows); one statement per connection at a time (\`max_pipeline: 0\`), the shared pool's rule: the raw pool otherwise sends queued statements down connections that are still busy, which the shared pool never does across requests (a CancelRequest names a backend, and through a transaction pooler it hangs).`,
    '',
    '| to | strategy | connections | req/s | p99 ms | req/s vs postgres.js pool | p99 vs postgres.js pool | server CPU µs/req | CPU vs postgres.js pool | errors |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...lines,
  ].join('\n')
}
