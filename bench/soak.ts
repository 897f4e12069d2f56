/**
 * `npm run soak`: a reliability soak, never part of `npm test`. Starts its own Postgres + PgBouncer stack,
 * serves a Hono app with hono-pooler on @hono/node-server (loopback), sends SOAK_REQUESTS (default 10 000)
 * mixed requests at concurrency SOAK_CONCURRENCY (default 32) — query, parameters, a throwing handler,
 * sql.begin, a streamed body that queries, Promise.all, a client abort — samples heap and RSS every 1 000
 * (after a GC), then checks that nothing leaked (SHOW CLIENTS, pg_stat_activity) and writes
 * bench/RELIABILITY.md, with how fast each fault is answered (bench/fault-times.ts).
 */

import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { stream } from 'hono/streaming'
import postgres from 'postgres'
import { startStack } from '../scripts/stack.ts'
import { faultTimes } from './fault-times.ts'
import { loadLib } from './lib-build.ts'

const here = dirname(fileURLToPath(import.meta.url))
const TOTAL = Number(process.env.SOAK_REQUESTS ?? 10_000)
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 32)
const HANG_MS = 10_000
const APP = 'hp-soak'
const log = (...a: unknown[]) => console.error('[soak]', ...a)

const KINDS = ['query', 'params', 'throw', 'begin', 'stream', 'all', 'abort'] as const
type Kind = (typeof KINDS)[number]

function app(lib: any, url: string): Hono<any> {
  const a = new Hono<any>()
  a.use(lib.pooler({ url, applicationName: APP }))
  a.get('/query', async (c) => c.json(await c.var.sql`select 1 as x`))
  a.get('/params', async (c) =>
    c.json(await c.var.sql`select ${Number(c.req.query('n'))}::int + ${'1'}::int as x`),
  )
  a.get('/throw', async (c) => {
    await c.var.sql`select 1`
    throw new Error('handler failed on purpose')
  })
  a.get('/begin', async (c) =>
    c.json(await c.var.sql.begin(async (tx: any) => [await tx`select 1 as a`, await tx`select 2 as b`])),
  )
  a.get('/stream', (c) =>
    stream(c, async (s) => {
      for (let i = 0; i < 3; i++) {
        const [r] = await c.var.sql`select ${i}::int as i`
        await s.write(`${r!.i}\n`)
      }
    }),
  )
  a.get('/all', async (c) =>
    c.json(await Promise.all([c.var.sql`select 1 as x`, c.var.sql`select 2 as x`, c.var.sql`select 3 as x`])),
  )
  a.get('/abort', async (c) => c.json(await c.var.sql`select pg_sleep(0.2)`))
  a.onError((e, c) => c.text(e.message, 500))
  return a
}

interface Sample {
  done: number
  heapMB: number
  rssMB: number
}

async function main(): Promise<void> {
  const lib = await loadLib()
  const stack = await startStack({})
  // The stack stops whatever happens (a failing leak check included): nothing is left running.
  let failed = true
  try {
    failed = await soak(lib, stack)
  } finally {
    await stack.stop()
  }
  process.exit(failed ? 1 : 0)
}

async function soak(lib: any, stack: Awaited<ReturnType<typeof startStack>>): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) log('run with --expose-gc for heap samples after a GC (npm run soak does)')
  const server = serve({ fetch: app(lib, stack.databaseUrl).fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((r) => server.once('listening', r))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const counts = Object.fromEntries(
    KINDS.map((k) => [k, { sent: 0, ok: 0, expectedFail: 0, other: 0 }]),
  ) as Record<Kind, { sent: number; ok: number; expectedFail: number; other: number }>
  let hangs = 0
  let next = 0
  let done = 0
  const samples: Sample[] = []
  const sample = () => {
    gc?.()
    const m = process.memoryUsage()
    samples.push({ done, heapMB: m.heapUsed / 2 ** 20, rssMB: m.rss / 2 ** 20 })
  }
  sample()
  const started = Date.now()
  const one = async (i: number) => {
    const kind = KINDS[i % KINDS.length]!
    counts[kind].sent++
    const ctl = new AbortController()
    const hang = setTimeout(() => {
      hangs++
      ctl.abort()
    }, HANG_MS)
    try {
      if (kind === 'abort') {
        setTimeout(() => ctl.abort(), 20)
        await fetch(`${base}/abort`, { signal: ctl.signal }).then((r) => r.text())
        counts[kind].other++ // never answered before the abort
      } else {
        const res = await fetch(`${base}/${kind}?n=${i}`, { signal: ctl.signal })
        await res.text()
        if (res.status === 200) counts[kind].ok++
        else if (kind === 'throw' && res.status === 500) counts[kind].expectedFail++
        else counts[kind].other++
      }
    } catch (e) {
      if (kind === 'abort' && (e as Error).name === 'AbortError') counts[kind].expectedFail++
      else counts[kind].other++
    } finally {
      clearTimeout(hang)
      done++
      if (done % 1000 === 0) {
        sample()
        log(`${done}/${TOTAL}`)
      }
    }
  }
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < TOTAL) await one(next++)
    }),
  )
  const seconds = (Date.now() - started) / 1000

  // Leaks: every client closed in PgBouncer and nothing of the app running on the server, within 6 s.
  const admin = postgres(stack.adminUrl, { max: 1, fetch_types: false, onnotice: () => {} })
  const su = postgres(stack.superUrl, { max: 1, onnotice: () => {} })
  let clients = -1
  let running = -1
  const deadline = Date.now() + 6000
  while (Date.now() < deadline) {
    const rows = (await admin.unsafe('show clients').simple()) as unknown as { application_name: string }[]
    clients = rows.filter((r) => r.application_name === APP).length
    const [row] = await su`select count(*)::int as n from pg_stat_activity
      where state <> 'idle' and pid <> pg_backend_pid() and backend_type = 'client backend'`
    running = row!.n
    if (!clients && !running) break
    await new Promise((r) => setTimeout(r, 100))
  }
  await admin.end({ timeout: 1 })
  await su.end({ timeout: 1 })
  await new Promise((r) => server.close(r))
  // Then how fast each fault is answered (FAULT_REPS=0 skips it).
  let faults: string[] = []
  if (Number(process.env.FAULT_REPS ?? 5) > 0) faults = await faultTimes(lib, stack)

  const first = samples[1] ?? samples[0]!
  const last = samples[samples.length - 1]!
  const unexpected = KINDS.reduce((n, k) => n + (k === 'abort' ? 0 : counts[k].other), 0)
  const md = [
    '# Reliability soak',
    '',
    `\`npm run soak\` on ${new Date().toISOString().slice(0, 10)}: ${TOTAL} requests at concurrency ${CONCURRENCY}`,
    `through @hono/node-server → hono-pooler → PgBouncer 1.18 (transaction mode) → Postgres, ${cpus().length} CPUs`,
    `shared with other work; ${seconds.toFixed(1)} s (${Math.round(TOTAL / seconds)} requests/s). Not part of \`npm test\`.`,
    '',
    '| result | value |',
    '|---|---|',
    `| hangs (no answer within ${HANG_MS / 1000} s) | ${hangs} |`,
    `| unexpected answers (not 200; not 500 from /throw) | ${unexpected} |`,
    `| clients left in PgBouncer's SHOW CLIENTS | ${clients} |`,
    `| statements left running in pg_stat_activity | ${running} |`,
    `| heap after ${first.done} → after ${last.done} (after GC) | ${first.heapMB.toFixed(1)} MB → ${last.heapMB.toFixed(1)} MB |`,
    '',
    '| request | sent | 200 | expected failure | other |',
    '|---|---|---|---|---|',
    ...KINDS.map(
      (k) =>
        `| ${k} | ${counts[k].sent} | ${counts[k].ok} | ${counts[k].expectedFail} | ${counts[k].other} |`,
    ),
    '',
    'Expected failures: `/throw` answers 500 by design; `/abort` is aborted by the client 20 ms into a',
    '`pg_sleep(0.2)` (its statement is cancelled on the server).',
    '',
    '| requests done | heap used (MB) | RSS (MB) |',
    '|---|---|---|',
    ...samples.map((s) => `| ${s.done} | ${s.heapMB.toFixed(1)} | ${s.rssMB.toFixed(1)} |`),
    '',
    ...faults,
  ].join('\n')
  writeFileSync(join(here, 'RELIABILITY.md'), md)
  log(md)
  return !!(hangs || unexpected || clients || running)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
