/**
 * Failure semantics on the shared stack (nothing here kills a process: cuts go through a fault proxy of
 * this file's own): IPv6 literals, TLS failures, JSON 500s for configuration errors, deadlines vs
 * statement_timeout, and the correctness fixes (begin, un-awaited queries, cursors, largeObject).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { Hono } from 'hono'
import { stream } from 'hono/streaming'
import postgres from 'postgres'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  PoolerError,
  type PoolerEvent,
  type PoolerOptions,
  type PoolerVariables,
  pooler,
  withSettings,
} from '../../src'
import { bundleSrc } from '../support/bundle-src'
import { type FaultProxy, faultProxy } from '../support/fault-proxy'
import { stack, waitForNoClients } from '../support/stack'

const APP = 'hp-failures'
const root = resolve(import.meta.dirname, '../..')
let proxy: FaultProxy
beforeAll(async () => {
  proxy = await faultProxy(Number(new URL(stack.databaseUrl).port))
})
afterAll(async () => {
  await proxy.close()
})
// Nothing of the app left: no client in PgBouncer, no statement of it running on the server.
afterEach(async () => {
  expect(await waitForNoClients(APP)).toEqual([])
  const su = postgres(stack.superUrl, { max: 1, onnotice: () => {} })
  try {
    const running = async () =>
      su`select pid from pg_stat_activity where application_name = ${APP} and state <> 'idle'`
    const deadline = Date.now() + 5000
    let rows = await running()
    while (rows.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
      rows = await running()
    }
    expect(rows).toEqual([])
  } finally {
    await su.end({ timeout: 1 })
  }
})

function app(options: PoolerOptions = {}) {
  const events: PoolerEvent[] = []
  const a = new Hono<{ Variables: PoolerVariables }>()
  a.use(pooler({ url: stack.databaseUrl, applicationName: APP, onEvent: (e) => events.push(e), ...options }))
  a.get('/one', async (c) => c.json(await c.var.sql`select 1 as x`))
  return { app: a, events }
}

async function json(res: Response) {
  return { status: res.status, body: (await res.json()) as any, headers: res.headers }
}

describe('connecting', () => {
  it('an IPv6-literal host connects ([::1])', async () => {
    const { app: a } = app({ url: stack.databaseUrl6 })
    const r = await json(await a.request('/one'))
    expect(r).toMatchObject({ status: 200, body: [{ x: 1 }] })
  })

  it('sslmode=verify-full against a server without TLS: 503 TLS_FAILED, no OpenSSL text', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    // Answers the SSLRequest with 'N' (no TLS), then, like Postgres reading a ClientHello as a startup
    // packet, with a plain-text error: the TLS handshake reads garbage.
    const plain = createServer((s) => {
      let first = true
      s.on('data', () => {
        if (first) s.write('N')
        else s.end(Buffer.from('E\0\0\0\x0fSFATAL\0\0', 'binary'))
        first = false
      })
      s.on('error', () => {})
    })
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
    try {
      const port = (plain.address() as { port: number }).port
      const { app: a, events } = app({
        url: `postgres://app:${stack.password}@127.0.0.1:${port}/app?sslmode=verify-full`,
      })
      const r = await json(await a.request('/one'))
      expect(r.status).toBe(503)
      expect(r.body.error.code).toBe('TLS_FAILED')
      expect(JSON.stringify(r.body)).not.toMatch(/SSL routines|OpenSSL|0A00010B/)
      expect(events.some((e) => e.type === 'error' && e.code === 'TLS_FAILED')).toBe(true)
    } finally {
      await new Promise((r) => plain.close(r))
      vi.restoreAllMocks()
    }
  })

  it('sslmode=verify-full with a certificate the client does not trust: 503 TLS_FAILED', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const { app: a } = app({ url: `${stack.databaseUrl}?sslmode=verify-full` })
    const r = await json(await a.request('/one'))
    expect(r.status).toBe(503)
    expect(r.body.error.code).toBe('TLS_FAILED')
    vi.restoreAllMocks()
  })
})

describe('configuration errors answer JSON 500 with the code', () => {
  it.each([
    ['MISSING_DATABASE_URL', { url: () => undefined }],
    ['UNSUPPORTED_URL_PARAM', { url: `${stack.databaseUrl}?pgbouncer=true` }],
    ['PREPARE_UNSUPPORTED', { prepare: true }],
  ] as [string, PoolerOptions][])('%s', async (code, options) => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const { app: a } = app(options)
    const r = await json(await a.request('/one'))
    expect(r.status).toBe(500)
    expect(r.headers.get('content-type')).toMatch(/application\/json/)
    expect(r.body.error.code).toBe(code)
    expect(r.body.error.message).not.toContain(stack.password)
    vi.restoreAllMocks()
  })

  it('a guard refusal reaching the default handler is JSON 500 too', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const { app: a } = app()
    a.get('/set', async (c) => c.json(await c.var.sql`set search_path = public`))
    const r = await json(await a.request('/set'))
    expect(r).toMatchObject({ status: 500, body: { error: { code: 'UNSAFE_IN_TRANSACTION_MODE' } } })
    vi.restoreAllMocks()
  })
})

describe('deadlines', () => {
  it("a user's own statement_timeout stays 57014; queryTimeout 0 disables the deadline", async () => {
    const { app: a } = app({ queryTimeout: 0 })
    let caught: any
    a.get('/st', async (c) => {
      caught = await withSettings(
        c.var.sql,
        { statement_timeout: '100ms' },
        (tx) => tx`select pg_sleep(2)`,
      ).catch((e) => e)
      return c.json(await c.var.sql`select pg_sleep(0.2) as x`)
    })
    expect((await a.request('/st')).status).toBe(200)
    expect(caught).not.toBeInstanceOf(PoolerError)
    expect(caught.code).toBe('57014')
  })

  it('a cursor: each fetch has the deadline, not the whole iteration', async () => {
    const { app: a } = app({ queryTimeout: 1 })
    let slow: any
    a.get('/cursor', async (c) => {
      let batches = 0
      // Five fetches of ~0.3 s each: 1.5 s in all, every fetch well within 1 s.
      for await (const _ of c.var.sql`select pg_sleep(0.3) from generate_series(1, 5)`.cursor(1)) batches++
      try {
        for await (const _ of c.var
          .sql`select pg_sleep(case when g = 2 then 5 else 0 end) from generate_series(1, 3) g`.cursor(1))
          batches++
      } catch (e) {
        slow = e
      }
      return c.json({ batches })
    })
    const started = Date.now()
    const r = await json(await a.request('/cursor'))
    expect(r).toMatchObject({ status: 200, body: { batches: 6 } })
    expect(slow).toMatchObject({ code: 'QUERY_TIMEOUT' })
    expect(Date.now() - started).toBeLessThan(6000)
  })

  it('QUERY_TIMEOUT inside sql.begin too (each statement has the deadline)', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const { app: a, events } = app({ queryTimeout: 0.5 })
    a.get('/tx', async (c) => c.json(await c.var.sql.begin((tx) => tx`select pg_sleep(5)`)))
    const started = Date.now()
    const r = await json(await a.request('/tx'))
    expect(r).toMatchObject({ status: 504, body: { error: { code: 'QUERY_TIMEOUT' } } })
    expect(Date.now() - started).toBeLessThan(4000)
    expect(events.some((e) => e.type === 'error' && e.code === 'QUERY_TIMEOUT')).toBe(true)
    vi.restoreAllMocks()
  })
})

describe('error events', () => {
  it('one onEvent error per failure: two statements timing out in one request are two events', async () => {
    const { app: a, events } = app({ queryTimeout: 0.2 })
    const codes: string[] = []
    a.get('/two', async (c) => {
      for (let i = 0; i < 2; i++)
        codes.push(
          await c.var.sql`select pg_sleep(2)`.then(
            () => 'ok',
            (e) => String(e.code),
          ),
        )
      return c.json({ codes })
    })
    expect((await a.request('/two')).status).toBe(200)
    expect(codes).toEqual(['QUERY_TIMEOUT', 'QUERY_TIMEOUT'])
    expect(events.filter((e) => e.type === 'error').map((e) => e.type === 'error' && e.code)).toEqual([
      'QUERY_TIMEOUT',
      'QUERY_TIMEOUT',
    ])
  })
})

describe('correctness', () => {
  it("sql.begin passes the callback's own errors unchanged (a fetch failing with ECONNREFUSED)", async () => {
    const { app: a, events } = app()
    const mine = Object.assign(new Error('fetch failed'), { code: 'ECONNREFUSED' })
    let caught: unknown
    a.get('/tx', async (c) => {
      caught = await c.var.sql
        .begin(async (tx) => {
          await tx`select 1`
          throw mine
        })
        .catch((e) => e)
      return c.json({ ok: true })
    })
    expect((await a.request('/tx')).status).toBe(200)
    expect(caught).toBe(mine)
    expect(events.filter((e) => e.type === 'error')).toEqual([])
  })

  it('a failing query nobody awaits is reported as an unhandled rejection, as with postgres.js', async () => {
    const dir = mkdtempSync(join(root, '.tmp', 'unawaited-'))
    try {
      // src/ is bundled (extensionless imports, TypeScript syntax Node's type stripping refuses).
      const lib = join(dir, 'lib.mjs')
      await bundleSrc(['createRequestClient', 'clientConfig', 'parseOptions'], 'internal', lib)
      const script = join(dir, 'run.mjs')
      writeFileSync(
        script,
        `import postgres from 'postgres'
import { createRequestClient, clientConfig, parseOptions } from './lib.mjs'
const url = process.env.URL
const seen = []
process.on('unhandledRejection', (e) => seen.push(e.code ?? String(e)))
const plain = postgres(url, { max: 1, prepare: false, fetch_types: false })
plain\`select 1/0\`.execute()
const client = createRequestClient(clientConfig(url, parseOptions({ applicationName: '${APP}' })))
client.sql\`select 1/0\`.execute()
await new Promise((r) => setTimeout(r, 1500))
await plain.end({ timeout: 0 })
await client.close(0)
console.log(JSON.stringify(seen))
`,
      )
      const out = execFileSync(process.execPath, [script], {
        cwd: root,
        env: { ...process.env, URL: stack.databaseUrl },
        encoding: 'utf8',
        timeout: 20_000,
      })
      // Both: plain postgres.js and the request client report the division by zero (22012).
      expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual(['22012', '22012'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a cursor whose connection is cut fails with CONNECTION_LOST (cursor errors are mapped)', async () => {
    const { app: a } = app({ url: proxy.url(stack.databaseUrl) })
    let caught: any
    let batches = 0
    a.get('/cursor', async (c) => {
      try {
        for await (const _rows of c.var.sql`select g, pg_sleep(0.05) from generate_series(1, 200) g`.cursor(
          1,
        )) {
          if (++batches === 3) proxy.cut()
        }
      } catch (e) {
        caught = e
      }
      return c.json({ batches })
    })
    const started = Date.now()
    expect((await a.request('/cursor')).status).toBe(200)
    expect(caught).toBeInstanceOf(PoolerError)
    expect(caught.code).toBe('CONNECTION_LOST')
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('a stream whose connection is lost closes with reason error (not stream-end)', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const { app: a, events } = app({ url: proxy.url(stack.databaseUrl) })
    a.get('/stream', (c) =>
      stream(
        c,
        async (s) => {
          await s.write('start\n')
          const q = c.var.sql`select pg_sleep(3)`
          setTimeout(() => proxy.cut(), 200)
          await q
          await s.write('never\n')
        },
        async (e, s) => {
          await s.write(`failed ${(e as PoolerError).code}\n`)
        },
      ),
    )
    const res = await a.request('/stream')
    expect(await res.text()).toBe('start\nfailed CONNECTION_LOST\n')
    await vi.waitFor(() => expect(events.some((e) => e.type === 'close')).toBe(true))
    expect(events.find((e) => e.type === 'close')).toMatchObject({ reason: 'error' })
    vi.restoreAllMocks()
  })

  it('sql.largeObject goes through the gate and the hook, and is refused after the request', async () => {
    const { app: a } = app()
    let kept: any
    a.get('/lo', async (c) => {
      kept = c.var.sql
      const lo = await c.var.sql.largeObject()
      await lo.write(Buffer.from('hello'))
      await lo.seek(0)
      const [{ data }] = (await lo.read(5)) as unknown as [{ data: Uint8Array }]
      await lo.close()
      return c.json({ text: Buffer.from(data).toString() })
    })
    const r = await json(await a.request('/lo'))
    expect(r).toMatchObject({ status: 200, body: { text: 'hello' } })
    expect(() => kept.largeObject()).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }))
  })
})
