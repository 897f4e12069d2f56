/**
 * `pooler({ hyperdrive: 'HYPERDRIVE' })` in real workerd (wrangler's unstable_startWorker) with a
 * `[[hyperdrive]]` binding whose localConnectionString points at the stack's Postgres: wrangler hands the
 * Worker a `*.hyperdrive.local` connection string and proxies it to the database, as Hyperdrive does in
 * production. Queries, sql.begin, prepared statements really used, the guard, nothing left open.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { PoolerEvent } from '../../src'
import { sleep, stack } from '../support/stack'
import { startWorker, type Worker } from '../support/workerd'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const dir = join(root, '.tmp', `hyperdrive-${process.pid}`)
const APP = 'hp-hyperdrive'

let worker: Worker
let base: URL
const logs: string[] = []

beforeAll(async () => {
  mkdirSync(dir, { recursive: true })
  const config = join(dir, 'wrangler.toml')
  writeFileSync(
    config,
    [
      'name = "hp-hyperdrive-test"',
      `main = ${JSON.stringify(join(root, 'test/support/hyperdrive-worker.ts'))}`,
      'compatibility_date = "2026-11-01"',
      'compatibility_flags = ["nodejs_compat"]',
      '[[hyperdrive]]',
      'binding = "HYPERDRIVE"',
      'id = "0123456789abcdef0123456789abcdef"',
      `localConnectionString = ${JSON.stringify(stack.directUrl)}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  )
  ;({ worker, base } = await startWorker(join(root, 'test/support/hyperdrive-worker.ts'), {}, logs, config))
})

afterAll(async () => {
  if (process.env.SHOW_LOGS) process.stderr.write(`${logs.join('\n')}\n`)
  await worker?.dispose()
  vi.restoreAllMocks()
  rmSync(dir, { recursive: true, force: true })
})

const call = (path: string) => fetch(new URL(path, base))
const closes = () =>
  logs
    .filter((l) => l.startsWith('[event] '))
    .map((l) => JSON.parse(l.slice(8)) as PoolerEvent)
    .filter((e): e is Extract<PoolerEvent, { type: 'close' }> => e.type === 'close')

/** Backends of this app on the real Postgres (Hyperdrive connects directly; there is no PgBouncer here). */
async function backends(): Promise<number> {
  const su = postgres(stack.superUrl, { max: 1, onnotice: () => {} })
  try {
    const [row] = await su<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where application_name = ${APP}`
    return row!.n
  } finally {
    await su.end({ timeout: 1 })
  }
}
async function waitForNoBackends(ms = 8000): Promise<number> {
  const deadline = Date.now() + ms
  let n = await backends()
  while (n && Date.now() < deadline) {
    await sleep(100)
    n = await backends()
  }
  return n
}

describe('Cloudflare Hyperdrive in workerd', () => {
  it('the binding hands the Worker a *.hyperdrive.local string, classified as Hyperdrive', async () => {
    const res = await call('/info')
    expect(await res.json()).toEqual({
      provider: 'hyperdrive',
      mode: 'transaction',
      host: expect.stringMatching(/\.hyperdrive\.local$/),
    })
  })

  it('queries through the binding, then closes the client through waitUntil', async () => {
    const from = closes().length
    const res = await call('/query')
    expect(await res.json()).toEqual({ n: 42, t: 'hé' })
    const deadline = Date.now() + 8000
    while (closes().length === from && Date.now() < deadline) await sleep(20)
    expect(closes().slice(from)).toEqual([
      expect.objectContaining({ mode: 'transaction', used: true, queries: 1, reason: 'done' }),
    ])
    expect(closes()[from]!.host).toMatch(/\.hyperdrive\.local$/)
    expect(await waitForNoBackends()).toBe(0)
  })

  it('sql.begin keeps its statements in one transaction', async () => {
    const [a, b] = (await (await call('/begin')).json()) as string[]
    expect(a).toMatch(/^\d+$/)
    expect(b).toBe(a)
  })

  it('really uses a named prepared statement (one, reused), visible in pg_prepared_statements', async () => {
    const statements = (await (await call('/prepared')).json()) as string[]
    expect(statements).toEqual(['select $1::int as hp_prepared_probe'])
  })

  it('the guard refuses what Hyperdrive does not support (session advisory locks, NOTIFY)', async () => {
    expect(await (await call('/guard')).json()).toEqual([
      'UNSAFE_IN_TRANSACTION_MODE:session-advisory-lock',
      'UNSAFE_IN_TRANSACTION_MODE:hyperdrive-notify',
      'UNSAFE_IN_TRANSACTION_MODE:hyperdrive-notify',
    ])
  })

  it('OpenTelemetry (the API module handed over) and Server-Timing work in workerd', async () => {
    const res = await call('/otel/run')
    expect(await res.json()).toEqual({ ok: true })
    expect(res.headers.get('server-timing')).toMatch(/db-connect;dur=[\d.]+, db;dur=[\d.]+;desc="1 query"/)
    const spans = (await (await call('/otel/spans')).json()) as { name: string; attributes: any }[]
    expect(spans.map((s) => s.name).sort()).toEqual(['SELECT', 'postgresql connect'])
    expect(spans.find((s) => s.name === 'SELECT')!.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.query.text': 'select $1::int as seven',
      'server.address': expect.stringMatching(/\.hyperdrive\.local$/),
    })
  })

  it('leaves no connection open', async () => {
    // The check below looks for this application_name: the database does see it through the binding.
    expect(await (await call('/whoami')).json()).toEqual({ name: APP })
    expect(await waitForNoBackends()).toBe(0)
  })
})
