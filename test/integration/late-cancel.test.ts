/**
 * A CancelRequest opens a connection of its own and can land late: after its statement settled, when the
 * request's next statement already runs on the same PgBouncer client connection. The request client waits
 * for the cancels in flight (bounded) before it sends anything else, so the next statement never sees them.
 * The fault proxy holds each CancelRequest a while (a slow cancel path) to make "late" certain.
 */
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PoolerVariables, pooler } from '../../src'
import { type FaultProxy, faultProxy } from '../support/fault-proxy'
import { stack, waitForNoClients } from '../support/stack'

const APP = 'hp-late-cancel'
let proxy: FaultProxy
beforeAll(async () => {
  proxy = await faultProxy(Number(new URL(stack.databaseUrl).port))
})
afterAll(async () => {
  await proxy.close()
})

describe('late cancels (no shared pool)', () => {
  it('a statement finishing right at queryTimeout: the next statement on the connection still succeeds', async () => {
    proxy.delayCancels(150)
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: proxy.url(stack.databaseUrl), applicationName: APP, queryTimeout: 0.2 }))
    app.get('/race', async (c) => {
      // Finishes just after the deadline, before its (slow) cancel lands: it succeeds.
      const first = await c.var.sql`select pg_sleep(0.22) as x`.then(
        () => 'ok',
        (e) => String(e.code),
      )
      // The next statement runs when the first one's cancel lands: it must not be the one cancelled.
      const next = await c.var.sql`select pg_sleep(0.3), 1 as x`.then(
        () => 'ok',
        (e) => String(e.code),
      )
      return c.json({ first, next })
    })
    try {
      const seen: { first: string; next: string }[] = []
      for (let k = 0; k < 4; k++) {
        const r = await app.request('/race')
        expect(r.status).toBe(200)
        seen.push(await r.json())
      }
      // The first finished before its cancel landed (on a very loaded machine it may be cancelled: QUERY_TIMEOUT)…
      for (const s of seen) expect(['ok', 'QUERY_TIMEOUT']).toContain(s.first)
      expect(seen.some((s) => s.first === 'ok')).toBe(true)
      // …and the next statement is never the one the late cancel hits.
      expect(seen.map((s) => s.next)).toEqual(['ok', 'ok', 'ok', 'ok'])
      expect(await waitForNoClients(APP)).toEqual([])
    } finally {
      proxy.delayCancels(0)
    }
  })
})
