/**
 * Connection edge cases in real workerd (wrangler's unstable_startWorker), through src/connect/workerd-socket.ts:
 * a server that accepts and never answers (CONNECT_TIMEOUT), a refused port (CONNECT_FAILED),
 * `sslmode=require` through a self-signed TLS front (test/support/tls-front.ts) for PgBouncer,
 * and no unhandled rejection from the socket in any case.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { PoolerEvent } from '../../src'
import { appUrl } from '../support/app-schema'
import { showClients, sleep, stack, waitForNoClients } from '../support/stack'
import { startTlsFront, type TlsFront } from '../support/tls-front'
import { startWorker, type Worker } from '../support/workerd'

const APP = 'hp-rt-workers-errors'
const TLS_APP = 'hp-rt-workers-tls'

let worker: Worker
let base: URL
let silent: Server
let tlsFront: TlsFront
const held: Socket[] = []
const logs: string[] = []

const listen = (server: Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as any).port)),
  )

/** A loopback port nothing listens on (bound, then released). */
async function refusedPort(): Promise<number> {
  const s = createServer()
  const port = await listen(s)
  await new Promise((r) => s.close(r))
  return port
}

beforeAll(async () => {
  // PgBouncer's TLS here is CA-signed; the front terminates TLS with a self-signed certificate for
  // 127.0.0.1 (trusted by workerd through NODE_EXTRA_CA_CERTS, which miniflare reads when it loads).
  tlsFront = await startTlsFront(new URL(stack.databaseUrl))
  process.env.NODE_EXTRA_CA_CERTS = tlsFront.certFile
  const tlsUrl = new URL(appUrl(TLS_APP))
  tlsUrl.port = String(tlsFront.port)
  tlsUrl.searchParams.set('sslmode', 'require')
  // Accepts every connection and never answers: the startup message gets no reply.
  silent = createServer((socket) => {
    held.push(socket)
    socket.on('error', () => {})
  })
  const silentPort = await listen(silent)
  const closedPort = await refusedPort()
  ;({ worker, base } = await startWorker(
    'test/support/workers-errors-observer.ts',
    {
      DATABASE_URL: appUrl(APP),
      SILENT_URL: `postgres://u:secret@127.0.0.1:${silentPort}/db`,
      REFUSED_URL: `postgres://u:secret@127.0.0.1:${closedPort}/db`,
      TLS_URL: tlsUrl.toString(),
    },
    logs,
  ))
  await (await fetch(base)).text() // warm-up (no query): the timing below is then the timeout's alone
})

afterAll(async () => {
  if (process.env.SHOW_LOGS) process.stderr.write(`${logs.join('\n')}\n`)
  await worker?.dispose()
  for (const s of held) s.destroy()
  await new Promise((r) => silent?.close(r))
  await tlsFront?.stop()
  vi.restoreAllMocks()
})

const now = (target: string) => fetch(new URL('/now', base), { headers: { 'x-target': target } })

const observed = () =>
  logs
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''))
    .filter((l) => l.includes('[observer]'))
    .map((l) => l.slice(l.indexOf('[observer]')).trim())
const errorEvents = () =>
  logs
    .filter((l) => l.startsWith('[event] '))
    .map((l) => JSON.parse(l.slice(8)) as PoolerEvent)
    .filter((e): e is Extract<PoolerEvent, { type: 'error' }> => e.type === 'error')

describe('Cloudflare Workers (workerd): connection failures and TLS', () => {
  it('answers 503 CONNECT_TIMEOUT when the server accepts and never answers (connectTimeout 0.5)', async () => {
    const started = Date.now()
    const res = await now('SILENT_URL')
    const ms = Date.now() - started
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect(res.status).toBe(503)
    expect(body.error.code).toBe('CONNECT_TIMEOUT')
    expect(body.error.message).not.toContain('secret')
    expect(ms).toBeGreaterThanOrEqual(450)
    expect(ms).toBeLessThan(4000) // the 0.5 s timeout, not the 5 s default
    process.stderr.write(
      `workerd: silent server → ${body.error.code} after ${ms} ms: ${body.error.message}\n`,
    )
  })

  it('answers 503 CONNECT_FAILED for a refused port', async () => {
    const res = await now('REFUSED_URL')
    const body = (await res.json()) as { error: { code: string; message: string } }
    process.stderr.write(`workerd: refused port → ${res.status} ${body.error.code}: ${body.error.message}\n`)
    expect(res.status).toBe(503)
    expect(body.error.code).toBe('CONNECT_FAILED')
    expect(body.error.message).not.toContain('secret')
    expect(errorEvents().map((e) => e.code)).toContain('CONNECT_FAILED')
  })

  it('refuses a shared pool inside a Worker: 500 INVALID_OPTIONS (without allowServerless)', async () => {
    const res = await fetch(new URL('/pooled/now', base))
    const body = (await res.json()) as { error: { code: string; message: string } }
    // The public message is generic; the thrown error names Cloudflare Workers and allowServerless
    // (test/unit/pool-options.test.ts).
    expect([res.status, body.error.code]).toEqual([500, 'INVALID_OPTIONS'])
  })

  it('still serves the working URL afterwards and leaves no client in PgBouncer', async () => {
    const results = await Promise.all(
      Array.from({ length: 3 }, () => now('DATABASE_URL').then((r) => r.status)),
    )
    expect(results).toEqual([200, 200, 200])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('connects with sslmode=require: SSLRequest, startTls on the same socket, queries, then closes', async () => {
    const before = tlsFront.handshakes()
    const results = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const res = await now('TLS_URL')
        return [res.status, await res.json()] as const
      }),
    )
    for (const [status, body] of results) {
      expect(status).toBe(200)
      expect(body).toEqual({ now: expect.any(String) })
    }
    expect(tlsFront.handshakes() - before).toBe(3)
    expect(await waitForNoClients(TLS_APP)).toEqual([])
    expect(await showClients(TLS_APP)).toEqual([])
  })

  it('reports no uncaught error and no unhandled rejection from workerd', async () => {
    await sleep(300)
    expect(observed()).toEqual([])
  })
})
