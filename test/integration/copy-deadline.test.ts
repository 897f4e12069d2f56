/**
 * queryTimeout and COPY streams (`.readable()` / `.writable()`): the deadline runs only while the COPY
 * waits on the network or the server, so a long COPY that keeps moving — or whose reader/writer is slow —
 * is never killed, while one whose network stalls fails with QUERY_TIMEOUT. The statement holds its gate
 * slot until the COPY really ended.
 */
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Hono } from 'hono'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import { type FaultProxy, faultProxy } from '../support/fault-proxy'
import { stack, waitForNoClients } from '../support/stack'

const APP = 'hp-copy-deadline'
const TABLE = `hp_copy_deadline_${process.pid}`
let proxy: FaultProxy
let admin: postgres.Sql
beforeAll(async () => {
  proxy = await faultProxy(Number(new URL(stack.databaseUrl).port))
  admin = postgres(stack.databaseUrl, { max: 1, prepare: false, fetch_types: false, onnotice: () => {} })
  await admin.unsafe(`create table ${TABLE} (x text)`)
})
afterAll(async () => {
  await admin.unsafe(`drop table if exists ${TABLE}`)
  await admin.end({ timeout: 1 })
  await proxy.close()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function app(options: PoolerOptions) {
  const a = new Hono<{ Variables: PoolerVariables }>()
  a.use(pooler({ url: stack.databaseUrl, applicationName: APP, ...options }))
  return a
}

describe('queryTimeout and COPY', () => {
  it('COPY … TO STDOUT longer than queryTimeout, delivering all along: not killed', async () => {
    const a = app({ queryTimeout: 0.5 })
    a.get('/out', async (c) => {
      // 30 rows of 10 kB, one every 50 ms: 1.5 s in all (each row fills Postgres's send buffer: it is flushed).
      const stream = await c.var.sql
        .unsafe(`copy (select pg_sleep(0.05), repeat('x', 10000) from generate_series(1, 30)) to stdout`)
        .readable()
      let bytes = 0
      for await (const chunk of stream) bytes += (chunk as Buffer).length
      return c.json({ bytes })
    })
    const started = Date.now()
    const r = await a.request('/out')
    expect(r.status).toBe(200)
    expect(((await r.json()) as { bytes: number }).bytes).toBeGreaterThan(300_000)
    expect(Date.now() - started).toBeGreaterThan(1000) // longer than the deadline indeed
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('COPY … FROM STDIN whose writer pauses longer than queryTimeout between chunks: not killed', async () => {
    const a = app({ queryTimeout: 0.3 })
    a.get('/in', async (c) => {
      const sink = await c.var.sql.unsafe(`copy ${TABLE} (x) from stdin`).writable()
      async function* slow() {
        for (let i = 0; i < 3; i++) {
          yield Buffer.from(`row${i}\n`)
          await sleep(500)
        }
      }
      await pipeline(slow(), sink)
      const rows = await c.var.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${TABLE}`)
      return c.json({ n: rows[0]?.n })
    })
    const r = await a.request('/in')
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({ n: 3 })
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('COPY … TO STDOUT whose network stalls: the stream fails with QUERY_TIMEOUT at the deadline', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const a = new Hono<{ Variables: PoolerVariables }>()
    a.use(pooler({ url: proxy.url(stack.databaseUrl), applicationName: APP, queryTimeout: 0.5 }))
    let caught: unknown
    a.get('/stall', async (c) => {
      const stream = await c.var.sql
        .unsafe(`copy (select pg_sleep(0.05), repeat('x', 10000) from generate_series(1, 200)) to stdout`)
        .readable()
      let chunks = 0
      try {
        await pipeline(
          stream,
          new Writable({
            write(_chunk, _enc, cb) {
              if (++chunks === 3) proxy.stall()
              cb()
            },
          }),
        )
      } catch (e) {
        caught = e
      }
      return c.json({ chunks })
    })
    const started = Date.now()
    try {
      const r = await a.request('/stall')
      expect(r.status).toBe(200)
    } finally {
      proxy.resume()
    }
    expect(caught).toMatchObject({ code: 'QUERY_TIMEOUT' })
    expect(Date.now() - started).toBeLessThan(6000)
    expect(await waitForNoClients(APP)).toEqual([])
    vi.restoreAllMocks()
  })
})
