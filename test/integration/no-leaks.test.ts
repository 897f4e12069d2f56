import { Hono } from 'hono'
import { stream } from 'hono/streaming'
import { describe, expect, it } from 'vitest'
import { type PoolerEvent, type PoolerVariables, pooler } from '../../src'
import { showClients, sleep, stack, waitForNoClients } from '../support/stack'

const APP = 'hp-noleak'
const CLOSE_TIMEOUT = 2

describe('no leaks under mixed load', () => {
  it('300 requests at concurrency 30: all answered, then no client left within closeTimeout', async () => {
    const events: PoolerEvent[] = []
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(
      pooler({
        url: stack.databaseUrl,
        applicationName: APP,
        closeTimeout: CLOSE_TIMEOUT,
        onEvent: (e) => events.push(e),
      }),
    )
    app.onError((err, c) => c.json({ error: { message: err.message } }, 500))
    app.get('/ok', async (c) => c.json((await c.var.sql`select ${1}::int as n`)[0]))
    app.get('/throw', async (c) => {
      await c.var.sql`select 1`
      throw new Error('boom')
    })
    app.get('/slow', async (c) => c.json(await c.var.sql`select pg_sleep(2)`))
    app.get('/stream', (c) =>
      stream(c, async (s) => {
        for (let i = 0; i < 3; i++) {
          const [r] = await c.var.sql`select ${i}::int as i`
          await s.write(`${r?.i}`)
        }
      }),
    )
    app.get('/all', async (c) => {
      const rows = await Promise.all(Array.from({ length: 10 }, (_, i) => c.var.sql`select ${i}::int as i`))
      return c.json(rows.map((r) => r[0]?.i))
    })
    app.get('/tx', async (c) =>
      c.json(
        await c.var.sql.begin(async (tx) => {
          await tx`select ${1}::int`
          return (await tx`select ${2}::int as n`)[0]
        }),
      ),
    )
    const kinds = ['ok', 'throw', 'abort', 'stream', 'all', 'tx'] as const
    const expectations: Record<(typeof kinds)[number], (r: Response | 'aborted') => Promise<void>> = {
      ok: async (r) => expect(await (r as Response).json()).toEqual({ n: 1 }),
      throw: async (r) => expect((r as Response).status).toBe(500),
      abort: async (r) => expect(r === 'aborted' || (r as Response).status === 500).toBe(true),
      stream: async (r) => expect(await (r as Response).text()).toBe('012'),
      all: async (r) => expect(await (r as Response).json()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
      tx: async (r) => expect(await (r as Response).json()).toEqual({ n: 2 }),
    }
    const one = async (i: number) => {
      const kind = kinds[i % kinds.length]!
      if (kind === 'abort') {
        const ac = new AbortController()
        setTimeout(() => ac.abort(), 30 + (i % 7) * 10)
        const r = await Promise.resolve(
          app.request(new Request('http://x/slow', { signal: ac.signal })),
        ).then(
          (res) => res,
          () => 'aborted' as const,
        )
        if (r !== 'aborted') await r.text()
        return expectations.abort(r)
      }
      return expectations[kind](await app.request(`/${kind}`))
    }
    let next = 0
    let answered = 0
    let peak = 0
    const worker = async () => {
      while (next < 300) {
        await one(next++)
        answered++
      }
    }
    const watch = (async () => {
      while (answered < 300) {
        peak = Math.max(peak, (await showClients(APP)).length)
        await sleep(25)
      }
    })()
    await Promise.all(Array.from({ length: 30 }, worker))
    await watch
    expect(answered).toBe(300)
    expect(peak).toBeGreaterThan(1) // the load really ran concurrently
    const t = Date.now()
    expect(await waitForNoClients(APP, CLOSE_TIMEOUT * 1000 + 500)).toEqual([])
    expect(Date.now() - t).toBeLessThanOrEqual(CLOSE_TIMEOUT * 1000 + 1000)
    await sleep(50)
    expect(events.filter((e) => e.type === 'close')).toHaveLength(300)
  })
})
