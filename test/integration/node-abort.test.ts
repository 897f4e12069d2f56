/**
 * A client that disconnects from a real @hono/node-server while its statement runs: the middleware reads
 * the abort from node-server's own request/response (src/middleware/node.ts), not from a Web signal —
 * the statement is cancelled on the server and the client closed with reason 'abort'.
 */
import { Agent, request } from 'node:http'
import { connect as connectHttp2, createServer as createHttp2Server } from 'node:http2'
import { type AddressInfo, connect } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { stream } from 'hono/streaming'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PoolerEvent, type PoolerVariables, pooler } from '../../src'
import { serverActivity, until } from '../support/fault-stack'
import { waitFor } from '../support/pool-app'
import { stack, waitForNoClients } from '../support/stack'

const APP = 'hp-node-abort'
const events: PoolerEvent[] = []
let server: ReturnType<typeof serve>
let base = ''

/** The statements running on the server with these markers, once all of them run (or after 2.5 s). */
const runningWith = (...markers: string[]) =>
  waitFor(
    async () => (await Promise.all(markers.map((m) => serverActivity(stack, m)))).flat(),
    (rows) => rows.length >= markers.length,
    2500,
  )

/** A plain TCP connection to the server, for requests written by hand (pipelined, or dropped mid-body). */
async function rawConnection() {
  const { port } = server.address() as AddressInfo
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await new Promise((r) => socket.once('connect', r))
  return socket
}

/** The reasons of the requests closed so far, once there are `n` (or after 3 s). */
const closeReasons = async (n: number) =>
  (
    await waitFor(
      async () => events.filter((e) => e.type === 'close'),
      (closes) => closes.length >= n,
      3000,
    )
  ).map((e) => e.type === 'close' && e.reason)

beforeAll(async () => {
  const app = new Hono<{ Variables: PoolerVariables }>()
  app.use(pooler({ url: stack.databaseUrl, applicationName: APP, onEvent: (e) => events.push(e) }))
  app.get('/slow/:marker', async (c) =>
    c.json(
      await c.var.sql.unsafe(`select pg_sleep(5) as x /* ${c.req.param('marker').replace(/\W/g, '')} */`),
    ),
  )
  app.get('/one', async (c) => c.json(await c.var.sql`select 1 as x`))
  app.get('/stream/:marker', (c) =>
    stream(
      c,
      async (s) => {
        await s.write('first\n')
        const marker = c.req.param('marker').replace(/\W/g, '')
        await c.var.sql.unsafe(`select pg_sleep(5) as x /* ${marker} */`)
        await s.write('done\n')
      },
      async () => {}, // the cancelled statement's error: expected here, not logged
    ),
  )
  app.onError((_, c) => c.text('failed', 500)) // the cancelled statement's error: answered, not logged
  server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((r) => server.once('listening', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((r) => server?.close(r))
})

describe('@hono/node-server: the HTTP client goes away', () => {
  it('while its statement runs: cancelled on the server, closed with reason abort, nothing left', async () => {
    const ac = new AbortController()
    const answered = fetch(`${base}/slow/hpnodeabort1`, { signal: ac.signal }).catch((e: Error) => e.name)
    expect(await runningWith('hpnodeabort1')).toHaveLength(1)
    ac.abort()
    expect(await answered).toBe('AbortError')
    expect(await until(() => serverActivity(stack, 'hpnodeabort1'), 1500)).toEqual([])
    expect(await closeReasons(1)).toEqual(['abort'])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('keep-alive: a finished request on the same connection is not taken for an abort', async () => {
    events.length = 0
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${base}/one`)).json()).toEqual([{ x: 1 }])
    expect(await closeReasons(3)).toEqual(['done', 'done', 'done'])
  })

  it('keep-alive: after finished requests, an abort on the same connection is still told', async () => {
    events.length = 0
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const get = (path: string) =>
      new Promise<{ reused: boolean; body: string }>((resolve, reject) => {
        const req = request(`${base}${path}`, { agent }, (res) => {
          let body = ''
          res.on('data', (d) => (body += d))
          res.on('end', () => resolve({ reused: req.reusedSocket, body }))
        })
        req.on('error', reject)
        req.end()
      })
    try {
      expect(await get('/one')).toMatchObject({ reused: false })
      expect(await get('/one')).toMatchObject({ reused: true })
      // The third request rides the same connection: its abort is the connection's close.
      let reused: boolean | undefined
      const slow = request(`${base}/slow/hpnodeabort2`, { agent })
      slow.on('socket', () => (reused = slow.reusedSocket))
      slow.on('error', () => {})
      slow.end()
      expect(await runningWith('hpnodeabort2')).toHaveLength(1)
      expect(reused).toBe(true)
      slow.destroy()
      expect(await until(() => serverActivity(stack, 'hpnodeabort2'), 1500)).toEqual([])
      expect(await closeReasons(3)).toEqual(['done', 'done', 'abort'])
    } finally {
      agent.destroy()
    }
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('pipelined requests on one connection: closing it aborts both, the one still queued too', async () => {
    events.length = 0
    const socket = await rawConnection()
    const get = (marker: string) => `GET /slow/${marker} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
    socket.write(get('hpnodepipe1') + get('hpnodepipe2'))
    expect(await runningWith('hpnodepipe1', 'hpnodepipe2')).toHaveLength(2)
    socket.destroy()
    expect(await until(() => serverActivity(stack, 'hpnodepipe1'), 1500)).toEqual([])
    expect(await until(() => serverActivity(stack, 'hpnodepipe2'), 1500)).toEqual([])
    expect(await closeReasons(2)).toEqual(['abort', 'abort'])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('a streamed body on a fresh connection: the statement it runs is cancelled as an abort, not a stream-cancel', async () => {
    events.length = 0
    const socket = await rawConnection()
    const first = new Promise((r) => socket.once('data', r))
    socket.write('GET /stream/hpnodestream1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await first
    expect(await runningWith('hpnodestream1')).toHaveLength(1)
    socket.destroy()
    expect(await until(() => serverActivity(stack, 'hpnodestream1'), 1500)).toEqual([])
    expect(await closeReasons(1)).toEqual(['abort'])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('HTTP/2: a cancelled stream cancels its statement (its response, not the connection, tells it)', async () => {
    events.length = 0
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP, onEvent: (e) => events.push(e) }))
    app.get('/slow/:marker', async (c) =>
      c.json(
        await c.var.sql.unsafe(`select pg_sleep(5) as x /* ${c.req.param('marker').replace(/\W/g, '')} */`),
      ),
    )
    app.onError((_, c) => c.text('failed', 500))
    const h2 = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1', createServer: createHttp2Server })
    await new Promise((r) => h2.once('listening', r))
    const session = connectHttp2(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`)
    session.on('error', () => {})
    try {
      const stream = session.request({ ':path': '/slow/hpnodeh2' })
      stream.on('error', () => {})
      expect(await runningWith('hpnodeh2')).toHaveLength(1)
      stream.close() // RST_STREAM: the session (the TCP connection) stays open
      expect(await until(() => serverActivity(stack, 'hpnodeh2'), 1500)).toEqual([])
      expect(await closeReasons(1)).toEqual(['abort'])
      expect(session.closed).toBe(false)
    } finally {
      session.close()
      await new Promise((r) => h2.close(r))
    }
    expect(await waitForNoClients(APP)).toEqual([])
  })
})
