/**
 * The connect layer in real workerd (cloudflare:sockets): TLS verify-full against the stack's throwaway
 * CA (trusted by workerd through NODE_EXTRA_CA_CERTS, which miniflare reads when it loads), through
 * PgBouncer and to Postgres directly, pipelineConnect, the SCRAM key cache per isolate, a wrong password.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { showClients, sleep, stack, waitForNoClients } from '../support/stack'
import { startWorker, type Worker } from '../support/workerd'

const APP = 'hp-workers-tls'
let worker: Worker
let base: URL
const logs: string[] = []

const withApp = (url: string, password?: string) => {
  const u = new URL(url)
  u.searchParams.set('application_name', APP)
  if (password) u.password = password
  return u.toString()
}

beforeAll(async () => {
  process.env.NODE_EXTRA_CA_CERTS = stack.caFile
  ;({ worker, base } = await startWorker(
    'test/support/workers-tls-observer.ts',
    {
      TLS_URL: withApp(stack.tlsUrl),
      DIRECT_TLS_URL: withApp(stack.directTlsUrl),
      REQUIRE_URL: withApp(stack.tlsUrl).replace('sslmode=verify-full', 'sslmode=require'),
      PLAIN_URL: withApp(stack.databaseUrl),
      WRONG_URL: withApp(stack.tlsUrl, 'not-the-password'),
    },
    logs,
  ))
})

afterAll(async () => {
  await worker?.dispose()
  vi.restoreAllMocks()
})

const call = async (path: string, target: string, pipeline = false) => {
  const res = await fetch(new URL(path, base), {
    headers: { 'x-target': target, ...(pipeline ? { 'x-pipeline': '1' } : {}) },
  })
  return { status: res.status, body: (await res.json()) as any }
}

describe('workerd: TLS and fast connect', () => {
  for (const target of ['TLS_URL', 'DIRECT_TLS_URL', 'REQUIRE_URL', 'PLAIN_URL']) {
    for (const pipeline of [false, true]) {
      it(`${target}${pipeline ? ' with pipelineConnect' : ''}: one query`, async () => {
        expect(await call('/q', target, pipeline)).toEqual({ status: 200, body: { n: 42 } })
      })
    }
  }

  it('PgBouncer lists the verify-full client as TLS', async () => {
    const held = call('/hold', 'TLS_URL')
    let tls: string[] = []
    for (let i = 0; i < 40 && tls.length === 0; i++) {
      await sleep(25)
      tls = ((await showClients(APP)) as unknown as { tls: string }[]).map((r) => r.tls)
    }
    expect((await held).status).toBe(200)
    expect(tls).toHaveLength(1)
    expect(tls[0]).toMatch(/^TLSv1\.[23]/)
  })

  it('derives the SCRAM keys once per isolate', async () => {
    await call('/q', 'TLS_URL')
    const before = (await call('/derivations', 'TLS_URL')).body.n
    for (let i = 0; i < 3; i++) expect((await call('/q', 'TLS_URL')).status).toBe(200)
    for (let i = 0; i < 2; i++) expect((await call('/q', 'TLS_URL', true)).status).toBe(200)
    expect((await call('/derivations', 'TLS_URL')).body.n).toBe(before)
  })

  it('a wrong password is AUTH_FAILED, pipelined or not', async () => {
    for (const pipeline of [false, true]) {
      const r = await call('/q', 'WRONG_URL', pipeline)
      expect(r.status).toBe(503)
      expect(r.body.code).toBe('AUTH_FAILED')
    }
  })

  it('leaves no client in PgBouncer and no unhandled rejection', async () => {
    expect(await waitForNoClients(APP)).toEqual([])
    await sleep(200)
    const observed = logs.filter((l) => l.includes('[observer]'))
    expect(observed).toEqual([])
  })
})
