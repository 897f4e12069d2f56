/**
 * Requests/s, p99 and CPU per request of a Hono Node server (@hono/node-server) per strategy, autocannon,
 * no added delay. The servers run in a child process (bench/tp-server.ts): CPU ms per request is that
 * process's CPU time (user + system) during a run ÷ the requests it answered, the load generator excluded.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { Hono } from 'hono'
import pg from 'pg'
import postgres from 'postgres'
import { LIB_OUT } from './lib-build.ts'
import { runPg, runPostgres } from './workloads.ts'

const here = dirname(fileURLToPath(import.meta.url))
const W = 'one param select'
const DURATION = Number(process.env.BENCH_DURATION ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '16,64').split(',').map(Number)

export function apps(lib: any, url: string): { name: string; app: Hono<any>; close?: () => Promise<void> }[] {
  const pooled = (extra: object) => {
    const app = new Hono<any>()
    app.use(lib.pooler({ url, applicationName: 'bench-tp', ...extra }))
    app.get('/', async (c) => {
      await runPostgres(c.var.sql, W)
      return c.text('ok')
    })
    // autocannon drops its sockets at the end of a run: the aborted requests' cancelled queries land here.
    app.onError((_e, c) => c.text('aborted', 500))
    return app
  }
  const perRequest = new Hono()
  perRequest.get('/', async (c) => {
    const sql = postgres(url, { max: 1, prepare: false, fetch_types: false, onnotice: () => {} })
    try {
      await runPostgres(sql, W)
    } finally {
      await sql.end({ timeout: 5 })
    }
    return c.text('ok')
  })
  const pgApp = new Hono()
  pgApp.get('/', async (c) => {
    const client = new pg.Client({ connectionString: url })
    try {
      await client.connect()
      await runPg(client, W)
    } finally {
      await client.end()
    }
    return c.text('ok')
  })
  const pool = postgres(url, { max: 10, prepare: false, onnotice: () => {} })
  const poolApp = new Hono()
  poolApp.get('/', async (c) => {
    await runPostgres(pool, W)
    return c.text('ok')
  })
  return [
    { name: 'hono-pooler (guard + inline on)', app: pooled({}) },
    { name: 'hono-pooler, pipelineConnect', app: pooled({ pipelineConnect: true }) },
    {
      name: "hono-pooler, fastConnect: false (postgres.js's own connect)",
      app: pooled({ fastConnect: false }),
    },
    {
      name: 'hono-pooler, guard off, inlineParams: false',
      app: pooled({ guard: 'off', inlineParams: false }),
    },
    { name: 'postgres.js per request (prepare: false, fetch_types: false)', app: perRequest },
    { name: '`pg` Client per request', app: pgApp },
    { name: 'long-lived pool (postgres.js, max 10)', app: poolApp, close: () => pool.end({ timeout: 1 }) },
  ]
}

/** Starts bench/tp-server.ts and waits for its ports. */
async function startServers(url: string): Promise<{
  child: ChildProcess
  ports: Record<string, number>
  control: number
}> {
  const child = spawn(process.execPath, [join(here, 'tp-server.ts'), url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const line = await new Promise<string>((resolve, reject) => {
    let buf = ''
    child.stdout?.on('data', (d) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl >= 0) resolve(buf.slice(0, nl))
    })
    child.once('exit', (code) => reject(new Error(`tp-server exited with ${code}`)))
  })
  return { child, ...JSON.parse(line) }
}

const cpuMs = async (control: number): Promise<number> => {
  const u = (await (await fetch(`http://127.0.0.1:${control}/`)).json()) as { user: number; system: number }
  return (u.user + u.system) / 1000
}

export async function throughput(_lib: any, url: string, log: (...a: unknown[]) => void): Promise<string> {
  readFileSync(LIB_OUT) // built by run.ts
  const rows: { name: string; c: number; rps: number; p99: number; cpu: number; errors: number }[] = []
  const { child, ports, control } = await startServers(url)
  const names = Object.keys(ports)
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0
  try {
    // This machine is noisy (2 cores shared by server, load generator, PgBouncer and Postgres): every
    // strategy runs ROUNDS times, interleaved in a rotating order, and the medians are reported.
    for (const c of CONNECTIONS) {
      const samples = new Map<string, { rps: number[]; p99: number[]; cpu: number[]; errors: number }>()
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < names.length; k++) {
          const name = names[(k + round) % names.length]!
          const before = await cpuMs(control)
          const r = await autocannon({
            url: `http://127.0.0.1:${ports[name]}/`,
            connections: c,
            duration: DURATION,
          })
          const cpu = (await cpuMs(control)) - before
          const s = samples.get(name) ?? { rps: [], p99: [], cpu: [], errors: 0 }
          s.rps.push(r.requests.average)
          s.p99.push(r.latency.p99)
          s.cpu.push(cpu / Math.max(1, r.requests.total))
          s.errors += r.errors + r.timeouts + r.non2xx
          samples.set(name, s)
          log(
            'throughput',
            name,
            c,
            `round ${round + 1}`,
            r.requests.average,
            'req/s p99',
            r.latency.p99,
            'cpu ms/req',
            (cpu / Math.max(1, r.requests.total)).toFixed(3),
          )
        }
      }
      for (const name of names) {
        const s = samples.get(name)!
        rows.push({ name, c, rps: median(s.rps), p99: median(s.p99), cpu: median(s.cpu), errors: s.errors })
      }
    }
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)))
  }
  const of = (c: number, prefix: string) => rows.find((r) => r.c === c && r.name.startsWith(prefix))!
  const base = (c: number) => of(c, 'hono-pooler (').rps
  const ratios = CONNECTIONS.map((c) => {
    const hp = of(c, 'hono-pooler (')
    const pipe = of(c, 'hono-pooler, pipelineConnect')
    const pgc = of(c, '`pg`')
    const pjs = of(c, 'postgres.js per request')
    return `| ${c} | ${(hp.rps / pgc.rps).toFixed(2)}× | ${(pipe.rps / pgc.rps).toFixed(2)}× | ${(hp.cpu / pjs.cpu).toFixed(2)}× | ${(hp.cpu / pgc.cpu).toFixed(2)}× |`
  })
  return [
    '## Throughput',
    '',
    `Hono on @hono/node-server, one parameterized select per request, straight to PgBouncer (no added delay), autocannon ${DURATION} s per run; each strategy runs ${ROUNDS} times, interleaved in rotating order, medians shown (server, load generator, PgBouncer and Postgres share 2 cores: expect ±20 % between runs). The servers run in a child process (bench/tp-server.ts): **CPU ms/req** is its CPU time (user + system) during a run ÷ the requests answered, the load generator not included.`,
    '',
    '| strategy | connections | req/s | p99 ms | CPU ms/req | vs hono-pooler | errors |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.c} | ${r.rps.toFixed(0)} | ${r.p99} | ${r.cpu.toFixed(3)} | ${(r.rps / base(r.c)).toFixed(2)}× | ${r.errors} |`,
    ),
    '',
    'Ratios (same run): requests/s of hono-pooler (default, and with `pipelineConnect`) ÷ `pg` Client per request; CPU per request of hono-pooler ÷ postgres.js per request and ÷ `pg`.',
    '',
    '| connections | hono-pooler ÷ pg (req/s) | pipelineConnect ÷ pg (req/s) | CPU ÷ postgres.js | CPU ÷ pg |',
    '|---|---|---|---|---|',
    ...ratios,
  ].join('\n')
}
