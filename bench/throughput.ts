/** Requests/s and p99 of a Hono Node server (@hono/node-server) per strategy, autocannon, no added delay. */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import autocannon from 'autocannon'
import { Hono } from 'hono'
import pg from 'pg'
import postgres from 'postgres'
import { runPg, runPostgres } from './workloads.ts'

const W = 'one param select'
const DURATION = Number(process.env.BENCH_DURATION ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '16,64').split(',').map(Number)

function apps(lib: any, url: string): { name: string; app: Hono<any>; close?: () => Promise<void> }[] {
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
    {
      name: 'hono-pooler, guard off, inlineParams: false',
      app: pooled({ guard: 'off', inlineParams: false }),
    },
    { name: 'postgres.js per request (prepare: false, fetch_types: false)', app: perRequest },
    { name: '`pg` Client per request', app: pgApp },
    { name: 'long-lived pool (postgres.js, max 10)', app: poolApp, close: () => pool.end({ timeout: 1 }) },
  ]
}

export async function throughput(lib: any, url: string, log: (...a: unknown[]) => void): Promise<string> {
  const rows: { name: string; c: number; rps: number; p99: number; errors: number }[] = []
  const strategies = apps(lib, url)
  const servers = await Promise.all(
    strategies.map(async (s) => {
      const server = serve({ fetch: s.app.fetch, port: 0, hostname: '127.0.0.1' })
      await new Promise((r) => (server.listening ? r(null) : server.once('listening', r)))
      return { ...s, server, port: (server.address() as AddressInfo).port }
    }),
  )
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0
  // This machine is noisy (2 cores shared by server, load generator, PgBouncer and Postgres): every
  // strategy runs ROUNDS times, interleaved in a rotating order, and the medians are reported.
  for (const c of CONNECTIONS) {
    const samples = new Map<string, { rps: number[]; p99: number[]; errors: number }>()
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < servers.length; k++) {
        const { name, port } = servers[(k + round) % servers.length]!
        const r = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: c, duration: DURATION })
        const s = samples.get(name) ?? { rps: [], p99: [], errors: 0 }
        s.rps.push(r.requests.average)
        s.p99.push(r.latency.p99)
        s.errors += r.errors + r.timeouts + r.non2xx
        samples.set(name, s)
        log('throughput', name, c, `round ${round + 1}`, r.requests.average, 'req/s p99', r.latency.p99)
      }
    }
    for (const { name } of servers) {
      const s = samples.get(name)!
      rows.push({ name, c, rps: median(s.rps), p99: median(s.p99), errors: s.errors })
    }
  }
  for (const { server, close } of servers) {
    await new Promise((r) => server.close(r))
    await close?.()
  }
  const base = (c: number) => rows.find((r) => r.c === c && r.name.startsWith('hono-pooler ('))!.rps
  return [
    '## Throughput',
    '',
    `Hono on @hono/node-server, one parameterized select per request, straight to PgBouncer (no added delay), autocannon ${DURATION} s per run; each strategy runs ${ROUNDS} times, interleaved in rotating order, medians shown (server, load generator, PgBouncer and Postgres share 2 cores: expect ±20 % between runs).`,
    '',
    '| strategy | connections | req/s | p99 ms | vs hono-pooler | errors |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.c} | ${r.rps.toFixed(0)} | ${r.p99} | ${(r.rps / base(r.c)).toFixed(2)}× | ${r.errors} |`,
    ),
  ].join('\n')
}
