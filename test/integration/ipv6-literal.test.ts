/**
 * An IPv6-literal URL (`postgres://app:…@[::1]:port/app`): postgres.js alone keeps the brackets and splits
 * the host at ':', so it cannot connect; pooler() hands it the host as an array and it does.
 */
import { Hono } from 'hono'
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { type PoolerVariables, pooler } from '../../src'
import { showClients, stack, waitForNoClients } from '../support/stack'

describe('IPv6-literal host', () => {
  it('pooler() queries through PgBouncer on [::1] and closes', async () => {
    expect(new URL(stack.databaseUrl6).hostname).toBe('[::1]')
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl6, applicationName: 'hp-ipv6-literal' }))
    app.get('/', async (c) => {
      const [row] = await c.var.sql`select ${1}::int as one`
      // While the client is open, PgBouncer lists it with the address it connected from.
      const clients = (await showClients('hp-ipv6-literal')) as unknown as { addr: string }[]
      return c.json({ ...row, addr: clients.map((x) => x.addr) })
    })
    const res = await app.request('/')
    expect(await res.json()).toEqual({ one: 1, addr: ['::1'] })
    expect(res.status).toBe(200)
    expect(await waitForNoClients('hp-ipv6-literal')).toEqual([])
  })

  it('(why) plain postgres.js with the same URL does not reach the server', async () => {
    const sql = postgres(stack.databaseUrl6, {
      max: 1,
      connect_timeout: 5,
      fetch_types: false,
      prepare: false,
    })
    try {
      await expect(sql`select 1`).rejects.toMatchObject({
        code: expect.stringMatching(/ENOTFOUND|EAI_AGAIN/),
      })
    } finally {
      await sql.end({ timeout: 0 })
    }
  })
})
