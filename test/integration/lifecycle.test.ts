import { Hono } from 'hono'
import { stream, streamSSE } from 'hono/streaming'
import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { PoolerError, type PoolerEvent, type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import { showClients, sleep, stack, waitForNoClients } from '../support/stack'

const APP = 'hp-lifecycle'

function makeApp(extra: PoolerOptions = {}) {
  const events: PoolerEvent[] = []
  const errors: unknown[] = []
  const app = new Hono<{ Variables: PoolerVariables }>()
  app.use(pooler({ url: stack.databaseUrl, applicationName: APP, onEvent: (e) => events.push(e), ...extra }))
  app.onError((err, c) => {
    errors.push(err)
    return c.json({ error: { message: err.message } }, 500)
  })
  app.get('/nodb', (c) => c.json({ ok: true }))
  app.get('/nodb-slow', async (c) => {
    const sql = c.var.sql // touching the client (not querying) must not connect either
    await sleep(20)
    return c.json({ ok: typeof sql.unsafe === 'function' })
  })
  app.get('/one', async (c) => c.json((await c.var.sql`select ${1}::int as n`)[0]))
  app.get('/throw', async (c) => {
    await c.var.sql`select 1`
    throw new Error('boom')
  })
  app.get('/sqlerror', async (c) => c.json(await c.var.sql`select 1/0 as x`))
  app.get('/slow', async (c) => c.json(await c.var.sql`select pg_sleep(5)`))
  app.get('/stream', (c) =>
    stream(c, async (s) => {
      await s.write('start;')
      await sleep(50)
      const [row] = await c.var.sql`select ${'in-stream'}::text as v`
      await s.write(`${row?.v};`)
      await sleep(20)
      const [row2] = await c.var.sql`select 2 as n`
      await s.write(`n=${row2?.n}`)
    }),
  )
  app.get('/sse', (c) =>
    streamSSE(c, async (s) => {
      for (let i = 0; i < 3; i++) {
        const [row] = await c.var.sql`select ${i}::int * 10 as v`
        await s.writeSSE({ data: String(row?.v), event: 'tick' })
      }
    }),
  )
  app.get('/readable', (c) => {
    const sql = c.var.sql
    let i = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        if (i++ >= 3) return ctrl.close()
        const [row] = await sql`select ${i}::int as i`
        ctrl.enqueue(new TextEncoder().encode(`${row?.i},`))
      },
    })
    return c.body(body)
  })
  app.get('/endless', (c) => {
    const sql = c.var.sql
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        await sql`select 1`
        ctrl.enqueue(new TextEncoder().encode('x'))
      },
    })
    return c.body(body)
  })
  return { app, events, errors }
}

afterEach(async () => {
  expect(await waitForNoClients(APP)).toEqual([])
})

describe('lazy connection', () => {
  it('100 requests to a route that never queries open no connection at any time', async () => {
    const { app, events } = makeApp()
    let polling = true
    const seen: number[] = []
    const poll = (async () => {
      while (polling) {
        seen.push((await showClients(APP)).length)
        await sleep(5)
      }
    })()
    for (let batch = 0; batch < 10; batch++)
      await Promise.all(
        Array.from({ length: 10 }, () => Promise.resolve(app.request('/nodb-slow')).then((r) => r.json())),
      )
    polling = false
    await poll
    expect(seen.length).toBeGreaterThan(3)
    expect(Math.max(...seen)).toBe(0)
    await sleep(50)
    const closes = events.filter((e) => e.type === 'close')
    expect(closes).toHaveLength(100)
    expect(closes.every((e) => e.type === 'close' && !e.used)).toBe(true)
  })
})

describe('one client per request, closed when the request is over', () => {
  it('after the handler returns', async () => {
    const { app, events } = makeApp()
    const res = await app.request('/one')
    expect(await res.json()).toEqual({ n: 1 })
    expect(await waitForNoClients(APP)).toEqual([])
    expect(events).toMatchObject([{ type: 'close', used: true, queries: 1 }])
  })

  it('never shares a client between requests', async () => {
    const seen = new Set<unknown>()
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP }))
    app.get('/', async (c) => {
      seen.add(c.var.sql)
      await sleep(10)
      return c.json((await c.var.sql`select 1 as n`)[0])
    })
    await Promise.all(
      Array.from({ length: 5 }, () => Promise.resolve(app.request('/')).then((r) => r.json())),
    )
    expect(seen.size).toBe(5)
  })

  it('after the handler throws: the error still reaches onError', async () => {
    const { app, errors, events } = makeApp()
    const res = await app.request('/throw')
    expect(res.status).toBe(500)
    expect((errors[0] as Error).message).toBe('boom')
    expect(await waitForNoClients(APP)).toEqual([])
    expect(events[0]).toMatchObject({ type: 'close', used: true })
  })

  it('SQL errors from the user propagate unchanged', async () => {
    const { app, errors } = makeApp()
    await app.request('/sqlerror')
    expect(errors[0]).toMatchObject({ name: 'PostgresError', code: '22012' })
    expect(errors[0]).not.toBeInstanceOf(PoolerError)
  })

  it('after the client aborts: the in-flight query is cancelled and the socket destroyed', async () => {
    const { app, errors, events } = makeApp()
    const ac = new AbortController()
    const started = Date.now()
    const pending = app.request(new Request('http://localhost/slow', { signal: ac.signal }))
    await sleep(300)
    expect((await showClients(APP)).length).toBe(1)
    ac.abort()
    const res = await pending
    expect(Date.now() - started).toBeLessThan(4000)
    expect(res.status).toBe(500)
    // Cancelled on the server (57014), not just abandoned: the backend is free again.
    expect(errors[0]).toMatchObject({ code: '57014' })
    expect(await waitForNoClients(APP, 2000)).toEqual([])
    const su = postgres(stack.superUrl, { max: 1 })
    const running =
      await su`select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep(5)%' and state = 'active'`
    await su.end()
    expect(running[0]?.n).toBe(0)
    expect(events.find((e) => e.type === 'close')).toMatchObject({ reason: 'abort' })
  })

  it('using c.var.sql after the request ended throws CLIENT_CLOSED; reading its properties still works', async () => {
    let kept: PoolerVariables['sql'] | undefined
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP }))
    app.get('/', async (c) => {
      kept = c.var.sql
      return c.json((await c.var.sql`select 1 as n`)[0])
    })
    await (await app.request('/')).json()
    await waitForNoClients(APP)
    expect(() => kept!`select 1`).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }))
    expect(() => kept!.unsafe('select 1')).toThrow(PoolerError)
    expect(() => kept!.begin(async () => 1)).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }))
    expect(typeof kept!.PostgresError).toBe('function')
    expect(kept!.options.max).toBe(1)
  })

  it('a query created during the request but run after it ends is rejected with CLIENT_CLOSED', async () => {
    let late: Promise<unknown> | undefined
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP }))
    app.get('/', (c) => {
      const q = c.var.sql`select 1`
      late = new Promise((r) => setTimeout(r, 100)).then(() => q)
      return c.json({ ok: true })
    })
    await (await app.request('/')).json()
    await expect(late).rejects.toMatchObject({ code: 'CLIENT_CLOSED' })
  })
})

describe('streamed responses close only after the body ends', () => {
  it('stream(): queries inside the callback work', async () => {
    const { app, events } = makeApp()
    const res = await app.request('/stream')
    expect(await res.text()).toBe('start;in-stream;n=2')
    expect(await waitForNoClients(APP)).toEqual([])
    expect(events[0]).toMatchObject({ type: 'close', reason: 'stream-end', queries: 2 })
  })

  it('streamSSE(): every event queried the database', async () => {
    const { app } = makeApp()
    const text = await (await app.request('/sse')).text()
    expect(text.match(/data: (\d+)/g)).toEqual(['data: 0', 'data: 10', 'data: 20'])
  })

  it('any ReadableStream body', async () => {
    const { app } = makeApp()
    expect(await (await app.request('/readable')).text()).toBe('1,2,3,')
  })

  it('HEAD on a streamed route: the body is never sent, the client is closed anyway', async () => {
    const { app, events } = makeApp()
    const res = await app.request('/stream', { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.body).toBeNull()
    expect(await waitForNoClients(APP, 3000)).toEqual([])
    await sleep(100)
    expect(events.filter((e) => e.type === 'close')).toHaveLength(1)
  })

  it('a body cancelled by the client closes the client', async () => {
    const { app, events } = makeApp()
    const res = await app.request('/endless')
    const reader = res.body!.getReader()
    await reader.read()
    await reader.read()
    expect((await showClients(APP)).length).toBe(1)
    await reader.cancel()
    expect(await waitForNoClients(APP)).toEqual([])
    expect(events[0]).toMatchObject({ reason: 'stream-cancel' })
  })
})

describe('off the critical path', () => {
  it('Workers: the close is handed to executionCtx.waitUntil and settles', async () => {
    const { app } = makeApp()
    const handed: Promise<unknown>[] = []
    const ctx = { waitUntil: (p: Promise<unknown>) => handed.push(p), passThroughOnException() {}, props: {} }
    const res = await app.request('/one', {}, {}, ctx as any)
    expect(await res.json()).toEqual({ n: 1 })
    expect(handed).toHaveLength(1)
    await handed[0]
    expect(await showClients(APP)).toEqual([])
  })

  it('Workers: also when nothing was queried or the handler threw', async () => {
    const { app } = makeApp()
    const handed: Promise<unknown>[] = []
    const ctx = { waitUntil: (p: Promise<unknown>) => handed.push(p), passThroughOnException() {}, props: {} }
    await (await app.request('/nodb', {}, {}, ctx as any)).text()
    await (await app.request('/throw', {}, {}, ctx as any)).text()
    expect(handed).toHaveLength(2)
    await Promise.all(handed)
    expect(await showClients(APP)).toEqual([])
  })

  it("Vercel: the close goes to the request context's waitUntil", async () => {
    const { app } = makeApp()
    const handed: Promise<unknown>[] = []
    const key = Symbol.for('@vercel/request-context')
    ;(globalThis as any)[key] = { get: () => ({ waitUntil: (p: Promise<unknown>) => handed.push(p) }) }
    try {
      const res = await app.request('/one')
      expect(await res.json()).toEqual({ n: 1 })
    } finally {
      delete (globalThis as any)[key]
    }
    expect(handed).toHaveLength(1)
    await handed[0]
    expect(await showClients(APP)).toEqual([])
  })
})

describe('hostile edges', () => {
  it('a throwing onEvent never breaks a response (static or streamed)', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(
      pooler({
        url: stack.databaseUrl,
        applicationName: APP,
        onEvent: () => {
          throw new Error('logger broke')
        },
      }),
    )
    app.get('/one', async (c) => c.json((await c.var.sql`select 1 as n`)[0]))
    app.get('/stream', (c) =>
      stream(c, async (s) => void (await s.write(String((await c.var.sql`select 2 as n`)[0]?.n)))),
    )
    const res = await app.request('/one')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ n: 1 })
    expect(await (await app.request('/stream')).text()).toBe('2')
  })

  it('a handler returning a Response whose body was already read: closed at once, no unhandled rejection', async () => {
    const { app, events } = makeApp()
    app.get('/used', async (c) => {
      await c.var.sql`select 1`
      const r = new Response('hello')
      await r.text()
      return r
    })
    const res = await app.request('/used')
    expect(res.status).toBe(200)
    expect(await waitForNoClients(APP, 2000)).toEqual([])
    await sleep(50)
    expect(events).toMatchObject([{ type: 'close', reason: 'done' }])
  })

  it("a SQL error whose text mentions the pooler's limits is still the user's own error", async () => {
    const { app, errors } = makeApp()
    app.get('/col', async (c) => c.json(await c.var.sql`select max_client_conn from (select 1) t`))
    app.get('/raise', async (c) =>
      c.json(await c.var.sql`do $$ begin raise exception 'too many connections in my own table'; end $$`),
    )
    await app.request('/col')
    await app.request('/raise')
    expect(errors.map((e: any) => [e.name, e.code])).toEqual([
      ['PostgresError', '42703'],
      ['PostgresError', 'P0001'],
    ])
  })
})

describe('idleTimeout', () => {
  it('a connection idle inside a request is closed, and the next query reconnects', async () => {
    const { app } = makeApp({ idleTimeout: 0.3 })
    let during = -1
    app.get('/idle', async (c) => {
      const [a] = await c.var.sql`select 1 as n`
      await sleep(800)
      during = (await showClients(APP)).length
      const [b] = await c.var.sql`select 2 as n`
      return c.json([a?.n, b?.n])
    })
    expect(await (await app.request('/idle')).json()).toEqual([1, 2])
    expect(during).toBe(0)
  })
})

describe('bounded close', () => {
  it('a query still running at the end gets closeTimeout seconds, then the socket is destroyed', async () => {
    const { app, events } = makeApp({ closeTimeout: 0.3 })
    app.get('/fire-and-forget', (c) => {
      c.var.sql`select pg_sleep(3)`.catch(() => {})
      return c.json({ ok: true })
    })
    const t = Date.now()
    await (await app.request('/fire-and-forget')).json()
    await waitForNoClients(APP, 2500)
    expect(Date.now() - t).toBeLessThan(2500)
    expect(events[0]).toMatchObject({ type: 'close', used: true })
  })
})
