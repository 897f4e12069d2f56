/**
 * The Vercel function (examples/vercel/api/[[...route]].ts) called as Vercel's Node.js runtime calls it: the
 * exported method handlers with web `Request`s, inside a simulated Vercel request context whose waitUntil
 * must receive each request's close — which must settle, leaving no client in PgBouncer.
 */
import { waitUntil as vercelWaitUntil } from '@vercel/functions'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appUrl, type Call, checkRoutes, prepareSchema, readExport } from '../support/app-schema'
import { sleep, waitForNoClients } from '../support/stack'

const APP = 'hp-rt-vercel'
const CONTEXT = Symbol.for('@vercel/request-context')

type Handler = (req: Request) => Response | Promise<Response>
let handlers: Record<'GET' | 'POST' | 'OPTIONS', Handler>
const saved = process.env.DATABASE_URL

beforeAll(async () => {
  await prepareSchema()
  // Vercel: DATABASE_URL in the function's environment (process.env), read through hono/adapter's env().
  process.env.DATABASE_URL = appUrl(APP)
  handlers = (await import('../../examples/vercel/api/[[...route]].ts')) as any
})

afterAll(() => {
  if (saved === undefined) delete process.env.DATABASE_URL
  else process.env.DATABASE_URL = saved
  delete (globalThis as any)[CONTEXT]
})

/** One invocation: a fresh request context (like Vercel's), its waitUntil collecting promises. */
async function invoke(path: string, init: RequestInit = {}) {
  const pending: Promise<unknown>[] = []
  ;(globalThis as any)[CONTEXT] = {
    get: () => ({ waitUntil: (p: Promise<unknown>) => void pending.push(p) }),
  }
  try {
    const req = new Request(new URL(path, 'https://notes.example.vercel.app'), init)
    const handler = handlers[(req.method as keyof typeof handlers) ?? 'GET']
    if (!handler) throw new Error(`no handler exported for ${req.method}`)
    const res = await handler(req)
    return { res, pending }
  } finally {
    delete (globalThis as any)[CONTEXT]
  }
}

const state = (p: Promise<unknown>) =>
  Promise.race([p.then(() => 'settled' as const), sleep(0).then(() => 'pending' as const)])
const settleAll = (ps: Promise<unknown>[], ms = 6000) =>
  Promise.race([Promise.all(ps).then(() => 'settled' as const), sleep(ms).then(() => 'timeout' as const)])

describe('Vercel functions (Node.js runtime, hono/vercel)', () => {
  it('exports GET/POST handlers', () => {
    expect(typeof handlers.GET).toBe('function')
    expect(typeof handlers.POST).toBe('function')
  })

  it('hands the close to the request context waitUntil, off the response path; it settles', async () => {
    const { res, pending } = await invoke('/api/now')
    expect(res.status).toBe(200)
    expect(pending).toHaveLength(1) // handed over by the time the handler returned the response
    expect(await res.json()).toEqual({ now: expect.any(String) })
    expect(await settleAll(pending)).toBe('settled')
    expect(await waitForNoClients(APP, 1000)).toEqual([])
  })

  it('@vercel/functions waitUntil reaches the same simulated context', async () => {
    const seen: Promise<unknown>[] = []
    ;(globalThis as any)[CONTEXT] = { get: () => ({ waitUntil: (p: Promise<unknown>) => void seen.push(p) }) }
    const p = Promise.resolve()
    vercelWaitUntil(p)
    delete (globalThis as any)[CONTEXT]
    expect(seen).toEqual([p])
  })

  it('routes /api and /api/ (basePath trap) without opening a connection', async () => {
    for (const path of ['/api', '/api/']) {
      const { res, pending } = await invoke(path)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ name: 'hono-pooler notes example', mode: 'transaction' })
      expect(await settleAll(pending)).toBe('settled')
    }
    const { res } = await invoke('/elsewhere')
    expect(res.status).toBe(404)
  })

  it('serves every route; every close goes to waitUntil and settles; no client is left', async () => {
    const all: Promise<unknown>[] = []
    const call: Call = async (path, init) => {
      const { res, pending } = await invoke(`/api${path === '/' ? '' : path}`, init)
      expect(pending.length).toBeGreaterThanOrEqual(1)
      all.push(...pending)
      return res
    }
    const requests = await checkRoutes(call, `vercel-${Date.now()}`)
    expect(all.length).toBeGreaterThanOrEqual(requests)
    expect(await settleAll(all)).toBe('settled')
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('streams /api/export; the close handed to waitUntil settles only when the stream ends', async () => {
    const { res, pending } = await invoke('/api/export')
    expect(pending).toHaveLength(1)
    await sleep(50)
    expect(await state(pending[0]!)).toBe('pending') // the body still queries while it streams
    const notes = await readExport(async () => res)
    expect(notes.length).toBeGreaterThan(0)
    expect(await settleAll(pending)).toBe('settled')
    expect(await waitForNoClients(APP)).toEqual([])
  })
})
