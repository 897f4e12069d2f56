import { Hono } from 'hono'
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import {
  adviseConnection,
  type ConnectionStats,
  closePools,
  connectionStats,
  type PoolerVariables,
  poolBudget,
  pooler,
} from '../../src'
import { stack } from '../support/stack'

const PW = 'Guide-Canary-Pw'
const direct = `postgres://postgres:${PW}@db.abcdefghij.supabase.co:5432/postgres`
const txPooler = `postgres://postgres.abcdefghij:${PW}@aws-0-eu-central-1.pooler.supabase.com:6543/postgres`
const sessionPooler = txPooler.replace(':6543', ':5432')

describe('adviseConnection', () => {
  it.each(['vercel', 'github-actions', 'render', 'retool'] as const)(
    'IPv6-only direct host on %s is an error',
    (platform) => {
      const { advice } = adviseConnection(direct, { platform })
      expect(advice[0]).toMatchObject({ level: 'error', code: 'IPV6_ONLY_HOST' })
      expect(advice[0]?.message).toMatch(/6543/)
      expect(JSON.stringify(advice)).not.toContain(PW)
    },
  )

  it('an unknown platform is told how to check IPv6', () => {
    expect(adviseConnection(direct, { platform: 'other' }).advice.map((a) => a.code)).toEqual([
      'CHECK_IPV6',
      'USE_TRANSACTION_POOLER',
    ])
  })

  it('serverless platforms are pointed at the transaction pooler; stationary servers at the direct connection', () => {
    expect(
      adviseConnection(sessionPooler, { platform: 'cloudflare-workers' }).advice.map((a) => a.code),
    ).toEqual(['USE_TRANSACTION_POOLER'])
    expect(adviseConnection(txPooler, { platform: 'vercel' }).advice).toEqual([])
    expect(adviseConnection(txPooler, { platform: 'node-server' }).advice.map((a) => a.code)).toEqual([
      'STATIONARY_USE_DIRECT',
    ])
    expect(adviseConnection(direct, { platform: 'node-server' }).advice).toEqual([])
  })
})

describe('poolBudget: the 40 % / 80 % rule', () => {
  it.each([
    [60, true, 1, 24, 24],
    [60, false, 1, 48, 48],
    [60, false, 4, 48, 12],
    [200, true, 3, 80, 26],
    [1, true, 1, 1, 1],
  ])(
    'max_connections %i, data API %s, %i instance(s) → pool %i, %i each',
    (maxConnections, usesDataApi, instances, pool, each) => {
      expect(poolBudget({ maxConnections, usesDataApi, instances })).toMatchObject({
        poolSize: pool,
        perInstance: each,
      })
    },
  )

  it.each([
    [60, true, 1, 12, 12],
    [60, false, 4, 6, 6],
    [200, true, 3, 13, 13],
    [60, false, 5, 5, 4],
    [1, true, 1, 1, 0],
  ])(
    'max_connections %i, data API %s, %i instance(s) → pool: { size: %i, overflow: %i } per instance',
    (maxConnections, usesDataApi, instances, size, overflow) => {
      const b = poolBudget({ maxConnections, usesDataApi, instances })
      expect(b).toMatchObject({ size, overflow })
      expect(b.size + b.overflow).toBe(b.perInstance)
    },
  )

  it('rejects nonsense', () => {
    expect(() => poolBudget({ maxConnections: 0, usesDataApi: true })).toThrow(RangeError)
    expect(() => poolBudget({ maxConnections: 10, usesDataApi: true, instances: 0 })).toThrow(RangeError)
  })
})

describe('connectionStats: live monitoring through the pooler', () => {
  it('sees the connections an application holds, and compares them with the budget', async () => {
    const holders = [0, 1, 2].map(() =>
      postgres(stack.directUrl, {
        max: 1,
        connection: { application_name: 'hp-monitor' },
        fetch_types: false,
      }),
    )
    let stats: ConnectionStats | undefined
    try {
      await Promise.all(holders.map((h) => h`select 1`))
      const app = new Hono<{ Variables: PoolerVariables }>()
      app.use(pooler({ url: stack.databaseUrl }))
      app.get('/', async (c) => {
        stats = await connectionStats(c.var.sql, { usesDataApi: true })
        return c.json(stats)
      })
      expect((await app.request('/')).status).toBe(200)
    } finally {
      await Promise.all(holders.map((h) => h.end()))
    }
    expect(stats?.maxConnections).toBe(40)
    expect(stats?.budget).toEqual({ fraction: 0.4, poolSize: 16 })
    const mine = stats?.groups.filter((g) => g.application_name === 'hp-monitor')
    expect(mine?.reduce((n, g) => n + g.connections, 0)).toBe(3)
    expect(stats?.used).toBeGreaterThanOrEqual(4)
    expect(stats?.overBudget).toBe((stats?.used ?? 0) > 16)
    expect(stats?.pools).toEqual([])
  })

  it("lists this process's shared pools next to max_connections", async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(
      pooler({
        url: stack.databaseUrl,
        applicationName: 'hp-guide-pool',
        pool: { size: 2, checkBudget: false },
      }),
    )
    app.get('/', async (c) => c.json(await connectionStats(c.var.sql)))
    try {
      const stats = (await (await app.request('/')).json()) as ConnectionStats
      expect(stats.maxConnections).toBe(40)
      expect(stats.pools).toEqual([
        {
          host: '127.0.0.1',
          mode: 'transaction',
          size: 2,
          overflow: 10,
          open: 1,
          idle: 1,
          inUse: 0,
          waiting: 0,
        },
      ])
    } finally {
      await closePools()
    }
  })
})
