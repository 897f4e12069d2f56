/**
 * Fast connect (src/connect/): SCRAM keys derived once per process, pipelineConnect, TLS modes, the
 * auth methods that fall through to postgres.js, against the real PgBouncer and Postgres.
 */
import { readFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { dirname, join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { Hono } from 'hono'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import {
  clearScramCache,
  clientConfig,
  parseOptions,
  scramDerivations,
  tlsResumptions,
} from '../../src/internal'
import { type AuthServer, startAuthServer } from '../support/auth-server'
import { type FlightProxy, startFlightProxy } from '../support/flight-proxy'
import { showClients, stack, waitForNoClients } from '../support/stack'

const APP = 'hp-fast-connect'
const ca = () => readFileSync(stack.caFile, 'utf8')
const withPassword = (url: string, pw: string) => {
  const u = new URL(url)
  u.password = pw
  return u.toString()
}
const viaProxy = (url: string, proxy: FlightProxy) => {
  const u = new URL(url)
  u.port = String(proxy.port)
  return u.toString()
}
const portOf = (url: string) => Number(new URL(url).port)

/** An app answering `/q` with one query (`/insert?m=` inserts a canary row first thing). */
function makeApp(url: string, extra: PoolerOptions = {}) {
  const app = new Hono<{ Variables: PoolerVariables }>()
  app.use(pooler({ url, applicationName: APP, ...extra }))
  app.onError((err, c) =>
    c.json({ code: (err as { code?: string }).code ?? 'UNKNOWN', message: err.message }, 503),
  )
  app.get('/q', async (c) => c.json((await c.var.sql`select ${41}::int + 1 as n`)[0]))
  app.get('/insert', async (c) => {
    await c.var.sql`insert into fc_canary (marker) values (${c.req.query('m') ?? ''})`
    return c.json({ ok: true })
  })
  app.get('/begin', async (c) =>
    c.json(await c.var.sql.begin(async (tx) => (await tx`select ${41}::int + 1 as n`)[0])),
  )
  app.get('/tls', async (c) => {
    await c.var.sql`select 1`
    const mine = (await showClients(APP)) as unknown as { tls: string }[]
    return c.json({ tls: mine.map((r) => r.tls) })
  })
  return app
}

async function get(app: Hono<any>, path = '/q'): Promise<{ status: number; body: any }> {
  const res = await app.request(path)
  return { status: res.status, body: await res.json() }
}

const su = () => postgres(stack.superUrl.replace(/\/postgres$/, '/app'), { max: 1, onnotice: () => {} })

beforeAll(async () => {
  const sql = su()
  await sql`create table if not exists fc_canary (marker text)`
  await sql`grant insert, select on fc_canary to app`
  await sql.end({ timeout: 1 })
})

afterAll(async () => {
  expect(await waitForNoClients(APP)).toEqual([])
})

describe('SCRAM key cache', () => {
  for (const [name, url] of [
    ['PgBouncer', () => stack.databaseUrl],
    ['direct Postgres', () => stack.directUrl],
  ] as const) {
    it(`${name}: PBKDF2 runs for the first connection only`, async () => {
      clearScramCache()
      const app = makeApp(url())
      const before = scramDerivations()
      for (let i = 0; i < 4; i++) expect(await get(app)).toEqual({ status: 200, body: { n: 42 } })
      expect(scramDerivations() - before).toBe(1)
    })
  }

  it('fastConnect: false leaves SCRAM to postgres.js (no derivation of ours)', async () => {
    clearScramCache()
    const before = scramDerivations()
    expect(await get(makeApp(stack.databaseUrl, { fastConnect: false }))).toEqual({
      status: 200,
      body: { n: 42 },
    })
    expect(scramDerivations() - before).toBe(0)
  })

  it('a changed password misses the cache and still connects; the old one fails', async () => {
    const sql = su()
    const role = `fc_pw_${process.pid}`
    await sql.unsafe(`drop role if exists ${role}`)
    await sql.unsafe(`create role ${role} login password 'first-pw-1'`)
    try {
      clearScramCache()
      const base = new URL(stack.directUrl)
      base.username = role
      const first = withPassword(base.toString(), 'first-pw-1')
      const second = withPassword(base.toString(), 'second-pw-2')
      const before = scramDerivations()
      expect((await get(makeApp(first))).status).toBe(200)
      expect((await get(makeApp(first))).status).toBe(200)
      expect(scramDerivations() - before).toBe(1)
      await sql.unsafe(`alter role ${role} password 'second-pw-2'`)
      expect(await get(makeApp(second))).toEqual({ status: 200, body: { n: 42 } })
      expect(scramDerivations() - before).toBe(2)
      const old = await get(makeApp(first))
      expect(old.body.code).toBe('AUTH_FAILED')
      expect(JSON.stringify(old.body)).not.toContain('first-pw-1')
    } finally {
      await sql.unsafe(`drop role if exists ${role}`)
      await sql.end({ timeout: 1 })
    }
  })
})

describe('pipelineConnect', () => {
  let proxyBouncer: FlightProxy
  let proxyDirect: FlightProxy
  beforeAll(async () => {
    proxyBouncer = await startFlightProxy({ host: '127.0.0.1', port: portOf(stack.databaseUrl) })
    proxyDirect = await startFlightProxy({ host: '127.0.0.1', port: portOf(stack.directUrl) })
  })
  afterAll(async () => {
    await proxyBouncer.close()
    await proxyDirect.close()
  })

  for (const [name, url, proxy] of [
    ['PgBouncer', () => stack.databaseUrl, () => proxyBouncer],
    ['direct Postgres', () => stack.directUrl, () => proxyDirect],
  ] as const) {
    it(`${name}: login + first statement in 2 client flights instead of 4`, async () => {
      const p = proxy()
      p.reset()
      expect(await get(makeApp(viaProxy(url(), p)))).toEqual({ status: 200, body: { n: 42 } })
      expect(await get(makeApp(viaProxy(url(), p), { pipelineConnect: true }))).toEqual({
        status: 200,
        body: { n: 42 },
      })
      // + 1 flight each for Terminate
      expect(p.flights).toEqual([5, 3])
    })

    it(`${name}: wrong password → AUTH_FAILED, and the pipelined canary insert is never executed`, async () => {
      const p = proxy()
      p.reset()
      const marker = `canary-${name}-${Date.now()}`
      const bad = makeApp(viaProxy(withPassword(url(), 'not-the-password'), p), { pipelineConnect: true })
      const res = await get(bad, `/insert?m=${encodeURIComponent(marker)}`)
      expect(res.body.code).toBe('AUTH_FAILED')
      expect(res.status).toBe(503)
      // The statement did reach the server, in the same write as the SASLResponse…
      expect(p.texts[0]?.[1]).toContain(marker)
      expect(p.texts[0]?.[1]?.startsWith('p')).toBe(true) // the SASLResponse, then the statement
      // …and did not run. Control: with the right password the same request inserts the row.
      const sql = su()
      try {
        expect(await sql`select count(*)::int as n from fc_canary where marker = ${marker}`).toEqual([
          { n: 0 },
        ])
        const good = makeApp(viaProxy(url(), p), { pipelineConnect: true })
        expect((await get(good, `/insert?m=${encodeURIComponent(marker)}`)).status).toBe(200)
        expect(await sql`select count(*)::int as n from fc_canary where marker = ${marker}`).toEqual([
          { n: 1 },
        ])
      } finally {
        await sql.end({ timeout: 1 })
      }
    })
  }

  it('the first statement may be extended protocol (inlineParams: false) or a transaction', async () => {
    const p = proxyBouncer
    p.reset()
    const url = viaProxy(stack.databaseUrl, p)
    expect(await get(makeApp(url, { pipelineConnect: true, inlineParams: false }))).toEqual({
      status: 200,
      body: { n: 42 },
    })
    expect(await get(makeApp(url, { pipelineConnect: true }), '/begin')).toEqual({
      status: 200,
      body: { n: 42 },
    })
    expect(p.texts.map((t) => t.length > 1 && t[1]?.startsWith('p'))).toEqual([true, true])
  })

  it("direct mode (fetch_types on): postgres.js's type lookup is the pipelined statement, then the query", async () => {
    const p = proxyDirect
    p.reset()
    const app = makeApp(viaProxy(stack.directUrl, p), { pipelineConnect: true, mode: 'direct' })
    expect(await get(app)).toEqual({ status: 200, body: { n: 42 } })
    expect(p.texts[0]?.[1]).toMatch(/pg_catalog\.pg_type/)
    // login + SASLInitialResponse, SASLResponse + types, Parse/Describe, Bind/Execute (prepared), Terminate
    expect(p.flights).toEqual([5])
  })

  it('an unknown database fails at once with the server error (no hang)', async () => {
    const u = new URL(stack.databaseUrl)
    u.pathname = '/no_such_db'
    const r = await get(makeApp(u.toString(), { pipelineConnect: true }))
    expect(r.status).toBe(503)
    expect(r.body.message).toMatch(/no such database|does not exist/)
  })

  it('with TLS verify-full through PgBouncer', async () => {
    clearScramCache()
    const app = makeApp(stack.tlsUrl, { pipelineConnect: true, ssl: { ca: ca() } })
    const r = await get(app, '/tls')
    expect(r.status).toBe(200)
    expect(r.body.tls.length).toBe(1)
    expect(r.body.tls[0]).toMatch(/^TLSv1\.[23]/)
  })

  it('refused without TLS verification off loopback; allowed with verify-full or "insecure"', () => {
    const url = 'postgres://app:pw@db.example.com:6432/app'
    expect(() => clientConfig(url, parseOptions({ pipelineConnect: true }))).toThrow(
      expect.objectContaining({ code: 'PIPELINE_CONNECT_UNSAFE' }),
    )
    expect(() => clientConfig(`${url}?sslmode=require`, parseOptions({ pipelineConnect: true }))).toThrow(
      expect.objectContaining({ code: 'PIPELINE_CONNECT_UNSAFE' }),
    )
    expect(
      clientConfig(`${url}?sslmode=verify-full`, parseOptions({ pipelineConnect: true })).driver.ssl,
    ).toBe(false)
    expect(clientConfig(url, parseOptions({ pipelineConnect: 'insecure' })).driver.ssl).toBe(false)
  })
})

describe('TLS modes through the connect layer', () => {
  for (const [name, url] of [
    ['PgBouncer', () => stack.tlsUrl],
    ['direct Postgres', () => stack.directTlsUrl],
  ] as const) {
    it(`${name}: verify-full with the CA, require without it; verify-full without the CA fails`, async () => {
      expect(await get(makeApp(url(), { ssl: { ca: ca() } }))).toEqual({ status: 200, body: { n: 42 } })
      expect(await get(makeApp(url(), { ssl: 'require' }))).toEqual({ status: 200, body: { n: 42 } })
      const untrusted = await get(makeApp(url()))
      expect(untrusted.status).toBe(503)
      expect(untrusted.body.message).toMatch(/self[- ]signed|unable to verify/)
    })
  }

  it('sslnegotiation=direct: TLS from the first byte with ALPN postgresql (a TLS front before PgBouncer)', async () => {
    const dir = dirname(stack.caFile) // the stack's server certificate and key sit beside its CA
    const alpn: (string | false | null)[] = []
    const front = createTlsServer(
      {
        key: readFileSync(join(dir, 'server.key')),
        cert: readFileSync(join(dir, 'server.crt')),
        ALPNProtocols: ['postgresql'],
      },
      (secure) => {
        alpn.push(secure.alpnProtocol)
        const upstream = netConnect(portOf(stack.databaseUrl), '127.0.0.1')
        upstream.on('error', () => secure.destroy())
        secure.on('error', () => upstream.destroy())
        secure.pipe(upstream).pipe(secure)
      },
    )
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
    try {
      const u = new URL(stack.tlsUrl)
      u.port = String((front.address() as { port: number }).port)
      u.searchParams.set('sslnegotiation', 'direct')
      expect(await get(makeApp(u.toString(), { ssl: { ca: ca() } }))).toEqual({
        status: 200,
        body: { n: 42 },
      })
      expect(await get(makeApp(u.toString(), { ssl: { ca: ca() }, pipelineConnect: true }))).toEqual({
        status: 200,
        body: { n: 42 },
      })
      expect(alpn).toEqual(['postgresql', 'postgresql'])
    } finally {
      await new Promise((r) => front.close(r))
    }
  })

  it('TLS sessions resume per settings object, never across different settings or verification', async () => {
    const ok = { status: 200, body: { n: 42 } }
    const verified = makeApp(stack.tlsUrl, { ssl: { ca: ca() } })
    const start = tlsResumptions()
    expect(await get(verified)).toEqual(ok) // full handshake: the server's ticket is kept
    expect(tlsResumptions()).toBe(start)
    expect(await get(verified)).toEqual(ok)
    expect(await get(verified, '/begin')).toEqual(ok)
    expect(tlsResumptions()).toBe(start + 2)
    // Other settings (a new app: new options, even with the same CA; `require`): their own first handshake.
    expect(await get(makeApp(stack.tlsUrl, { ssl: { ca: ca() } }))).toEqual(ok)
    expect(await get(makeApp(stack.tlsUrl, { ssl: 'require' }))).toEqual(ok)
    expect(tlsResumptions()).toBe(start + 2)
    // Without the CA, verification still fails: no ticket of the verified settings is offered.
    const untrusted = await get(makeApp(stack.tlsUrl))
    expect(untrusted.status).toBe(503)
    expect(untrusted.body.message).toMatch(/self[- ]signed|unable to verify/)
    expect(tlsResumptions()).toBe(start + 2)
    // With pipelineConnect (the ticket arrives with the server's SASL message, before the statement's result).
    const pipelined = makeApp(stack.tlsUrl, { ssl: { ca: ca() }, pipelineConnect: true })
    for (let i = 0; i < 3; i++) expect(await get(pipelined)).toEqual(ok)
    expect(tlsResumptions()).toBe(start + 4)
    // A checkServerIdentity of the user's own (pinning) runs on every connection: never resumed.
    const pinned: string[] = []
    const pinning = makeApp(stack.tlsUrl, {
      ssl: { ca: ca(), checkServerIdentity: (host: string) => void pinned.push(host) },
    })
    for (let i = 0; i < 3; i++) expect(await get(pinning)).toEqual(ok)
    expect(pinned).toHaveLength(3)
    expect(tlsResumptions()).toBe(start + 4)
  })

  it('PgBouncer sees TLS for require and plain TCP for sslmode=disable', async () => {
    const tls = await get(makeApp(stack.tlsUrl, { ssl: 'require' }), '/tls')
    expect(tls.body.tls[0]).toMatch(/^TLSv1\.[23]/)
    const plain = await get(makeApp(stack.databaseUrl.concat('?sslmode=disable')), '/tls')
    expect(plain.body.tls).toEqual([''])
  })
})

describe('other auth methods fall through to postgres.js', () => {
  let server: AuthServer
  let proxy: FlightProxy
  beforeAll(async () => {
    server = await startAuthServer()
    proxy = await startFlightProxy({ host: '127.0.0.1', port: server.port })
  })
  afterAll(async () => {
    await proxy?.close()
    await server?.stop()
  })

  for (const method of ['md5', 'password', 'trust'] as const) {
    it(`${method}: connects, also with pipelineConnect (fails over to a normal connect, remembered)`, async () => {
      clearScramCache()
      const before = scramDerivations()
      expect(await get(makeApp(server.urls[method]))).toEqual({ status: 200, body: { n: 42 } })
      // Each method on its own proxy port would be cleaner; the remembered host is per host:port, so
      // only the first pipelined attempt against this proxy shows the failover.
      const url = viaProxy(server.urls[method], proxy)
      expect(await get(makeApp(url, { pipelineConnect: true }))).toEqual({ status: 200, body: { n: 42 } })
      expect(await get(makeApp(url, { pipelineConnect: true }))).toEqual({ status: 200, body: { n: 42 } })
      expect(scramDerivations() - before).toBe(0)
    })
  }

  it('scram on the same server still pipelines until a non-SCRAM answer was seen', async () => {
    const p = await startFlightProxy({ host: '127.0.0.1', port: server.port })
    try {
      expect(await get(makeApp(viaProxy(server.urls.scram, p), { pipelineConnect: true }))).toEqual({
        status: 200,
        body: { n: 42 },
      })
      expect(p.flights).toEqual([3])
      // A trust user on the same host:port: the pipelined attempt is replaced by a normal connection…
      p.reset()
      expect(await get(makeApp(viaProxy(server.urls.trust, p), { pipelineConnect: true }))).toEqual({
        status: 200,
        body: { n: 42 },
      })
      expect(p.flights.length).toBe(2)
      // …and the host is remembered: the next connection does not pipeline.
      p.reset()
      expect((await get(makeApp(viaProxy(server.urls.scram, p), { pipelineConnect: true }))).status).toBe(200)
      expect(p.flights).toEqual([5])
    } finally {
      await p.close()
    }
  })

  it('a wrong md5 password is AUTH_FAILED', async () => {
    const r = await get(makeApp(withPassword(server.urls.md5, 'wrong')))
    expect(r.body.code).toBe('AUTH_FAILED')
  })
})

describe('IPv6 literal host', () => {
  it('postgres://…@[::1]:port/… connects (postgres.js alone splits the literal at its first colon)', async () => {
    expect(stack.databaseUrl6).toMatch(/@\[::1\]:/)
    expect(await get(makeApp(stack.databaseUrl6))).toEqual({ status: 200, body: { n: 42 } })
    expect(await get(makeApp(stack.databaseUrl6, { pipelineConnect: true }))).toEqual({
      status: 200,
      body: { n: 42 },
    })
  })
})

describe('nothing left behind', () => {
  it('SHOW CLIENTS lists none of these clients', async () => {
    expect(await waitForNoClients(APP)).toEqual([])
  })
})
