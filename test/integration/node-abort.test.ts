/**
 * A client that disconnects from a real @hono/node-server while its statement runs: the middleware reads
 * the abort from node-server's own request/response (src/middleware/node.ts), not from a Web signal —
 * the statement is cancelled on the server and the client closed with reason 'abort'.
 */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PoolerEvent, type PoolerVariables, pooler } from '../../src'
import { serverActivity, until } from '../support/fault-stack'
import { sleep, stack, waitForNoClients } from '../support/stack'

const APP = 'hp-node-abort'
const events: PoolerEvent[] = []
let server: ReturnType<typeof serve>
let base = ''

beforeAll(async () => {
  const app = new Hono<{ Variables: PoolerVariables }>()
  app.use(pooler({ url: stack.databaseUrl, applicationName: APP, onEvent: (e) => events.push(e) }))
  app.get('/slow/:marker', async (c) =>
    c.json(
      await c.var.sql.unsafe(`select pg_sleep(5) as x /* ${c.req.param('marker').replace(/\W/g, '')} */`),
    ),
  )
  app.get('/one', async (c) => c.json(await c.var.sql`select 1 as x`))
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
    let running: unknown[] = []
    for (let i = 0; i < 50 && !running.length; i++) {
      await sleep(50)
      running = await serverActivity(stack, 'hpnodeabort1')
    }
    expect(running).toHaveLength(1)
    ac.abort()
    expect(await answered).toBe('AbortError')
    expect(await until(() => serverActivity(stack, 'hpnodeabort1'), 1500)).toEqual([])
    const deadline = Date.now() + 3000
    while (!events.some((e) => e.type === 'close') && Date.now() < deadline) await sleep(10)
    expect(events.filter((e) => e.type === 'close').map((e) => e.type === 'close' && e.reason)).toEqual([
      'abort',
    ])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('keep-alive: a finished request on the same connection is not taken for an abort', async () => {
    events.length = 0
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${base}/one`)).json()).toEqual([{ x: 1 }])
    const deadline = Date.now() + 3000
    while (events.filter((e) => e.type === 'close').length < 3 && Date.now() < deadline) await sleep(10)
    expect(events.filter((e) => e.type === 'close').map((e) => e.type === 'close' && e.reason)).toEqual([
      'done',
      'done',
      'done',
    ])
  })
})
