import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { type PoolerVariables, pooler } from '../../src'
import { showClients, stack, waitForNoClients } from '../support/stack'

describe('smoke', () => {
  it('queries through PgBouncer and closes', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: 'hp-smoke' }))
    app.get('/', async (c) => c.json((await c.var.sql`select ${41}::int + 1 as n, current_user as u`)[0]))
    const res = await app.request('/')
    expect(await res.json()).toEqual({ n: 42, u: 'app' })
    expect(await waitForNoClients('hp-smoke')).toEqual([])
    expect(Array.isArray(await showClients())).toBe(true)
  })
})
