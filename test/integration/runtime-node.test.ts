/**
 * The notes app on a stationary Node server (examples/node/server.ts, @hono/node-server) on 127.0.0.1 and a
 * free port: real HTTP requests with fetch, each request's client closed (awaited, no waitUntil on Node).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../examples/app.ts'
import { type Server, start } from '../../examples/node/server.ts'
import type { PoolerEvent } from '../../src'
import { appUrl, checkRoutes, prepareSchema, readExport } from '../support/app-schema'
import { sleep, waitForNoClients } from '../support/stack'

const APP = 'hp-rt-node'
const saved = process.env.DATABASE_URL
const events: PoolerEvent[] = []
let server: Server

beforeAll(async () => {
  await prepareSchema()
  process.env.DATABASE_URL = appUrl(APP) // read per request through hono/adapter's env() (process.env)
  server = await start({ port: 0, hostname: '127.0.0.1', app: createApp({ onEvent: (e) => events.push(e) }) })
})

afterAll(async () => {
  await server?.close()
  if (saved === undefined) delete process.env.DATABASE_URL
  else process.env.DATABASE_URL = saved
})

const call = (path: string, init?: RequestInit) => fetch(new URL(path, server.url), init)
const closes = () => events.filter((e) => e.type === 'close')

async function waitForCloses(n: number, ms = 6000) {
  const deadline = Date.now() + ms
  while (closes().length < n && Date.now() < deadline) await sleep(10)
  return closes()
}

describe('Node server (@hono/node-server)', () => {
  it('listens on 127.0.0.1 and a free port', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(server.url).not.toMatch(/:3000$/)
  })

  it('serves every route over HTTP, closes every client, leaves none in PgBouncer', async () => {
    const before = closes().length
    const requests = await checkRoutes(call, `node-${Date.now()}`)
    const all = await waitForCloses(before + requests)
    expect(all.length - before).toBe(requests)
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('GET / does not connect', async () => {
    const before = closes().length
    await (await call('/')).json()
    const [close] = (await waitForCloses(before + 1)).slice(before)
    expect(close).toMatchObject({ type: 'close', used: false, queries: 0 })
  })

  it('streams /export and closes at the end of the stream', async () => {
    const before = closes().length
    expect((await readExport(call)).length).toBeGreaterThan(0)
    const [close] = (await waitForCloses(before + 1)).slice(before)
    expect(close).toMatchObject({ used: true, reason: 'stream-end' })
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('closes the client when the HTTP client disconnects mid-stream', async () => {
    const before = closes().length
    const ac = new AbortController()
    const res = await call('/export', { signal: ac.signal })
    await res.body!.getReader().read()
    ac.abort()
    const [close] = (await waitForCloses(before + 1)).slice(before)
    expect(close?.used).toBe(true)
    expect(await waitForNoClients(APP)).toEqual([])
  })
})
