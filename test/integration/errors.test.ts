import { createServer, type Server, type Socket } from 'node:net'
import { inspect } from 'node:util'
import { Hono } from 'hono'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { PoolerError, type PoolerEvent, type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import { stack, waitForNoClients } from '../support/stack'

const APP = 'hp-errors'
// Distinctive passwords: none of them may ever appear in a message, a stack, an inspected error or a log.
const WRONG = 'Wr0ng-Canary-Pass-7f3a'
const SECRETS = [stack.password, WRONG, encodeURIComponent(stack.password)]

const withPassword = (url: string, pass: string) => url.replace(`:${stack.password}@`, `:${pass}@`)

let silent: Server
let silentPort = 0
let closedPort = 0
const sockets: Socket[] = []
beforeAll(async () => {
  // A TCP server that accepts and never answers: the connect timeout.
  silent = createServer((s) => sockets.push(s))
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  silentPort = (silent.address() as { port: number }).port
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  closedPort = (probe.address() as { port: number }).port
  await new Promise((r) => probe.close(r))
})
afterAll(async () => {
  for (const s of sockets) s.destroy()
  await new Promise((r) => silent.close(r))
})

interface Outcome {
  status: number
  body: any
  headers: Headers
  error: unknown
  events: PoolerEvent[]
  logs: string
}

/** Runs one request with the default error handler (the 503 path) and one with a custom onError. */
async function run(options: PoolerOptions, env: Record<string, string> = {}): Promise<Outcome> {
  const events: PoolerEvent[] = []
  const logs: string[] = []
  const spies = (['log', 'warn', 'error', 'info', 'debug'] as const).map((m) =>
    vi
      .spyOn(console, m)
      .mockImplementation((...a: unknown[]) => void logs.push(a.map((x) => inspect(x)).join(' '))),
  )
  try {
    const make = () => {
      const app = new Hono<{ Variables: PoolerVariables }>()
      app.use(pooler({ applicationName: APP, onEvent: (e) => events.push(e), ...options }))
      app.get('/', async (c) => c.json(await c.var.sql`select ${1}::int as n`))
      return app
    }
    const res = await make().request('/', {}, env)
    const body = await res.text()
    let error: unknown
    const custom = make()
    custom.onError((err, c) => {
      error = err
      return c.text('custom', 500)
    })
    await (await custom.request('/', {}, env)).text()
    let parsed: unknown = body
    try {
      parsed = JSON.parse(body)
    } catch {}
    return { status: res.status, body: parsed, headers: res.headers, error, events, logs: logs.join('\n') }
  } finally {
    for (const s of spies) s.mockRestore()
  }
}

function expectNoSecret(o: Outcome) {
  const err = o.error as Error
  const texts = [
    err.message,
    String(err),
    err.stack ?? '',
    inspect(err, { depth: 10, showHidden: true }),
    JSON.stringify(o.body),
    JSON.stringify(o.events),
    o.logs,
  ]
  for (const t of texts) for (const s of SECRETS) expect(t).not.toContain(s)
}

describe('connection failures answer 503 JSON with a stable code', () => {
  it('CONNECT_FAILED: nothing listens on the port', async () => {
    const o = await run({ url: `postgres://app:${stack.password}@127.0.0.1:${closedPort}/app` })
    expect(o.status).toBe(503)
    expect(o.body).toMatchObject({ error: { code: 'CONNECT_FAILED' } })
    // The HTTP client gets the public message; the error (onError, logs) names host and port.
    expect(o.body.error.message).toBe('The database is unreachable. Try again later.')
    expect((o.error as Error).message).toContain(`127.0.0.1:${closedPort}`)
    expect(o.logs).toContain(
      `[hono-pooler] CONNECT_FAILED: Cannot reach the database at 127.0.0.1:${closedPort}`,
    )
    expect(o.error).toBeInstanceOf(PoolerError)
    expect(o.events.some((e) => e.type === 'error' && e.code === 'CONNECT_FAILED')).toBe(true)
    expectNoSecret(o)
  })

  it('CONNECT_TIMEOUT: the server never answers', async () => {
    const o = await run({
      url: `postgres://app:${stack.password}@127.0.0.1:${silentPort}/app`,
      connectTimeout: 0.3,
    })
    expect(o.status).toBe(503)
    expect(o.body).toMatchObject({ error: { code: 'CONNECT_TIMEOUT' } })
    expectNoSecret(o)
  })

  it('AUTH_FAILED: wrong password through PgBouncer (SCRAM)', async () => {
    const o = await run({ url: withPassword(stack.databaseUrl, WRONG) })
    expect(o.status).toBe(503)
    expect(o.body).toMatchObject({ error: { code: 'AUTH_FAILED' } })
    expect(o.body.error.message).toBe('The server could not log in to its database.')
    expect((o.error as Error).message).toContain('"app"')
    expectNoSecret(o)
  })

  it('POOLER_SATURATED: PgBouncer max_client_conn reached, with Retry-After', async () => {
    // Fill the tiny PgBouncer (max_client_conn = 2) with two idle clients.
    const holders = [0, 1].map(() => postgres(stack.tinyUrl, { max: 1, fetch_types: false, prepare: false }))
    try {
      await Promise.all(holders.map((h) => h`select 1`))
      const o = await run({ url: stack.tinyUrl })
      expect(o.status).toBe(503)
      expect(o.headers.get('retry-after')).toBe('1')
      expect(o.body).toMatchObject({ error: { code: 'POOLER_SATURATED' } })
      expect(o.body.error.message).toBe('The database is busy. Retry shortly.')
      expect((o.error as Error).message).toMatch(/no more connections allowed/)
      expectNoSecret(o)
    } finally {
      await Promise.all(holders.map((h) => h.end({ timeout: 0 })))
    }
  })

  it('POOLER_SATURATED: Postgres refuses with 53300 (a role at its connection limit)', async () => {
    // A role with CONNECTION LIMIT 1: isolated from the other tests, unlike filling max_connections.
    const su = postgres(stack.superUrl, { max: 1, onnotice: () => {} })
    const rolePw = `${stack.password}-limited`
    await su.unsafe(
      `drop role if exists hp_limited; create role hp_limited login connection limit 1 password '${rolePw}'`,
    )
    await su.end()
    const url = stack.directUrl.replace(`app:${stack.password}@`, `hp_limited:${rolePw}@`)
    const holder = postgres(url, { max: 1, fetch_types: false })
    try {
      await holder`select 1`
      const o = await run({ url, mode: 'direct' })
      expect(o.status).toBe(503)
      expect(o.body).toMatchObject({ error: { code: 'POOLER_SATURATED' } })
      expect((o.error as Error).message).toMatch(/too many connections/)
      expectNoSecret(o)
    } finally {
      await holder.end({ timeout: 0 })
    }
  })
})

describe('configuration errors', () => {
  it('MISSING_DATABASE_URL names the binding', async () => {
    const o = await run({}, {})
    expect(o.error).toMatchObject({ code: 'MISSING_DATABASE_URL' })
    expect((o.error as Error).message).toContain('DATABASE_URL')
    const p = await run({ binding: 'POOLER_URL' }, { DATABASE_URL: stack.databaseUrl })
    expect((p.error as Error).message).toContain('POOLER_URL')
  })

  it('reads DATABASE_URL from the bindings by default', async () => {
    const o = await run({}, { DATABASE_URL: stack.databaseUrl })
    expect(o.status).toBe(200)
    expect(o.body).toEqual([{ n: 1 }])
  })

  it.each([
    ['INVALID_URL', 'not a url'],
    ['INVALID_URL', `postgres://app:${stack.password}@127.0.0.1:99999/app`],
    ['INVALID_URL', `mysql://app:${stack.password}@127.0.0.1:3306/app`],
    ['INVALID_URL', `postgres://app:${stack.password}@/app`],
    ['UNSUPPORTED_URL_PARAM', `${stack.databaseUrl}?pgbouncer=true`],
    ['UNSUPPORTED_URL_PARAM', `${stack.databaseUrl}?connection_limit=1`],
    ['UNSUPPORTED_URL_PARAM', `${stack.databaseUrl}?pool_timeout=10`],
    ['UNSUPPORTED_URL_PARAM', `${stack.databaseUrl}?options=-c%20search_path%3Dx`],
  ])('%s (bad URL #%#)', async (code: string, url: string) => {
    const o = await run({ url })
    expect(o.error).toMatchObject({ code })
    expectNoSecret(o)
  })

  it('Prisma parameters are named with what to do instead', async () => {
    for (const [param, hint] of [
      ['pgbouncer=true', 'Prisma'],
      ['connection_limit=1', 'max'],
      ['pool_timeout=10', 'connectTimeout'],
    ] as const) {
      const o = await run({ url: `${stack.databaseUrl}?${param}` })
      expect((o.error as Error).message).toContain(param.split('=')[0])
      expect((o.error as Error).message).toContain(hint)
    }
  })

  it('the URL parameter rule is real: PgBouncer rejects unknown startup parameters', async () => {
    const raw = postgres(`${stack.databaseUrl}?foo=bar`, { max: 1, fetch_types: false, prepare: false })
    await expect(raw`select 1`).rejects.toThrow(/unsupported startup parameter: foo/)
    await raw.end({ timeout: 0 })
    const ok = await run({ url: `${stack.databaseUrl}?sslmode=disable&application_name=x` })
    expect(o(ok)).toBe(200)
  })

  it('WRONG_PORT_FOR_MODE: explicit mode against a Supabase port', async () => {
    const base = `postgres://postgres.abc:${stack.password}@aws-0-eu-central-1.pooler.supabase.com`
    const a = await run({ url: `${base}:5432/postgres`, mode: 'transaction' })
    expect(a.error).toMatchObject({ code: 'WRONG_PORT_FOR_MODE' })
    expect((a.error as Error).message).toContain('6543')
    const b = await run({ url: `${base}:6543/postgres`, mode: 'session' })
    expect(b.error).toMatchObject({ code: 'WRONG_PORT_FOR_MODE' })
    expectNoSecret(a)
    expectNoSecret(b)
  })

  it('INVALID_OPTIONS at factory time, naming the option', () => {
    const bad: [PoolerOptions, string][] = [
      [{ max: 6 }, 'max: must be <= 5'],
      [{ max: 0 }, 'max: must be >= 1'],
      [{ max: 1.5 }, 'max: expected int'],
      [{ mode: 'pooled' as never }, 'mode: expected one of "auto", "transaction", "session", "direct"'],
      [{ closeTimeout: -1 }, 'closeTimeout: must be >= 0'],
      [{ guard: 'loud' as never }, 'guard: expected one of'],
      [{ url: 42 as never }, 'url: has an unsupported type'],
      [{ nope: true } as never, 'unknown option nope'],
    ]
    for (const [opts, name] of bad) {
      const err = (() => {
        try {
          pooler(opts)
        } catch (e) {
          return e
        }
      })()
      expect(err).toMatchObject({ code: 'INVALID_OPTIONS' })
      expect((err as Error).message).toContain(name)
    }
  })

  it('leaves no client behind after any of the failures', async () => {
    expect(await waitForNoClients(APP)).toEqual([])
  })
})

function o(x: Outcome) {
  return x.status
}
