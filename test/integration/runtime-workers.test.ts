/**
 * The notes example in real workerd (wrangler's unstable_startWorker with the root wrangler.toml), against
 * the local PgBouncer stack: every route, a streamed route, a client abort, and no client left behind.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { PoolerEvent } from '../../src'
import { appUrl, checkRoutes, prepareSchema, readExport, seedNotes } from '../support/app-schema'
import { showClients, sleep, waitForNoClients } from '../support/stack'
import { startWorker, type Worker } from '../support/workerd'

const APP = 'hp-rt-workers'

let worker: Worker
let base: URL
const logs: string[] = []

beforeAll(async () => {
  await prepareSchema()
  // The example's entry, wrapped to report unhandled rejections (see support/workers-observer.ts).
  ;({ worker, base } = await startWorker(
    'test/support/workers-observer.ts',
    { DATABASE_URL: appUrl(APP) },
    logs,
  ))
})

afterAll(async () => {
  if (process.env.SHOW_LOGS) process.stderr.write(`${logs.join('\n')}\n`)
  await worker?.dispose()
  vi.restoreAllMocks()
})

const call = (path: string, init?: RequestInit) => fetch(new URL(path, base), init)

/** workerd's reports of uncaught errors / unhandled rejections (support/workers-observer.ts). */
const observed = () =>
  logs
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''))
    .filter((l) => l.includes('[observer]'))
    .map((l) => l.slice(l.indexOf('[observer]')).trim())

/** The pooler events the Worker logged (support/workers-observer.ts), in order. */
const events = (): PoolerEvent[] =>
  logs.filter((l) => l.startsWith('[event] ')).map((l) => JSON.parse(l.slice(8)) as PoolerEvent)
const closes = () => events().filter((e): e is Extract<PoolerEvent, { type: 'close' }> => e.type === 'close')

/** Waits until at least `n` close events have been logged since `from`. */
async function waitForCloses(from: number, n: number, ms = 6000) {
  const deadline = Date.now() + ms
  while (closes().length - from < n && Date.now() < deadline) await sleep(20)
  return closes().slice(from)
}

describe('Cloudflare Workers (workerd)', () => {
  it('answers GET / without opening a connection', async () => {
    const from = closes().length
    const res = await call('/')
    expect(await res.json()).toEqual({ name: 'hono-pooler notes example', mode: 'transaction' })
    expect(await showClients(APP)).toEqual([])
    // The close still runs (through c.executionCtx.waitUntil) and settles: nothing was opened.
    const [close] = await waitForCloses(from, 1)
    expect(close).toMatchObject({ type: 'close', mode: 'transaction', used: false, queries: 0 })
  })

  it('serves every route, then leaves no client in PgBouncer', async () => {
    const from = closes().length
    const requests = await checkRoutes(call, `workers-${Date.now()}`)
    expect(await waitForNoClients(APP)).toEqual([])
    // Every request's close settled in workerd, after its response body was sent.
    const settled = await waitForCloses(from, requests)
    expect(settled).toHaveLength(requests)
    expect(settled.filter((e) => e.used)).toHaveLength(10) // the requests that query (the rest never connect)
    // One request throws (the malformed JSON body: Hono's HTTPException reaches onError): 'error'.
    expect(settled.filter((e) => e.reason === 'error')).toHaveLength(1)
    for (const e of settled) expect(['done', 'stream-end', 'error']).toContain(e.reason)
  })

  it('streams /export from a cursor while the response is sent, then closes', async () => {
    const count = await seedNotes(450, 'workers-export ')
    const notes = await readExport(call)
    expect(notes.length).toBeGreaterThanOrEqual(count)
    const ids = notes.map((n) => n.id)
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('closes the client when the client aborts mid-stream', async () => {
    await seedNotes(2000, 'workers-abort ')
    const ac = new AbortController()
    const res = await call('/export', { signal: ac.signal })
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(first.done).toBe(false)
    const from = closes().length
    ac.abort()
    await reader.cancel().catch(() => {})
    expect(await waitForNoClients(APP, 10_000)).toEqual([])
    const [close] = await waitForCloses(from, 1)
    expect(close).toMatchObject({ used: true })
    expect(['abort', 'stream-cancel', 'stream-end']).toContain(close!.reason)
    process.stderr.write(
      `workerd: aborted /export closed with reason ${close!.reason} after ${close!.ms} ms\n`,
    )
  })

  it('runs concurrent requests, each with its own client, and closes them all', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => call('/now').then((r) => r.status)))
    expect(results).toEqual(Array(8).fill(200))
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('reports no uncaught error and no unhandled rejection from workerd', async () => {
    await sleep(300)
    const seen = observed()
    if (seen.length) {
      const counts = new Map<string, number>()
      for (const l of seen) counts.set(l, (counts.get(l) ?? 0) + 1)
      process.stderr.write(`workerd reported: ${[...counts].map(([l, n]) => `${n}× ${l}`).join('; ')}\n`)
    }
    // src/connect/workerd-socket.ts handles every promise of the socket: not even the close() rejection remains.
    expect(seen).toEqual([])
  })
})
