/**
 * Per-request strategies: each `request(w)` opens what the strategy opens per request, runs the workload,
 * closes, and returns the milliseconds from the start of the request to the last result (closing not counted).
 */
import { Hono } from 'hono'
import pg from 'pg'
import postgres from 'postgres'
import { runPg, runPostgres, type Workload } from './workloads.ts'

export interface Strategy {
  name: string
  request(w: Workload): Promise<number>
  close(): Promise<void>
}

type Lib = { pooler: (o: any) => any }

export function honoPooler(
  lib: Lib,
  url: string,
  name = 'hono-pooler',
  extra: Record<string, unknown> = {},
): Strategy & {
  app: Hono<any>
} {
  const app = new Hono<any>()
  app.use(lib.pooler({ url, applicationName: 'bench', ...extra }))
  app.get('/:w', async (c) => {
    const t = performance.now()
    await runPostgres(c.var.sql, decodeURIComponent(c.req.param('w')) as Workload)
    return c.text(String(performance.now() - t))
  })
  return {
    name,
    app,
    request: async (w) => Number(await (await app.request(`/${encodeURIComponent(w)}`)).text()),
    close: async () => {},
  }
}

export function postgresPerRequest(url: string, name: string, options: Record<string, unknown>): Strategy {
  return {
    name,
    async request(w) {
      const sql = postgres(url, { max: 1, onnotice: () => {}, ...options })
      const t = performance.now()
      try {
        await runPostgres(sql, w)
        return performance.now() - t
      } finally {
        void sql.end({ timeout: 1 })
      }
    },
    close: async () => {},
  }
}

export function pgPerRequest(url: string): Strategy {
  return {
    name: '`pg` Client per request',
    async request(w) {
      const client = new pg.Client({ connectionString: url })
      const t = performance.now()
      try {
        await client.connect()
        await runPg(client, w)
        return performance.now() - t
      } finally {
        void client.end().catch(() => {})
      }
    },
    close: async () => {},
  }
}

/** The reference floor: a warm long-lived pool (what a long-running server would do). */
export async function longLivedPool(url: string, max = 4): Promise<Strategy> {
  const sql = postgres(url, { max, prepare: false, onnotice: () => {} })
  await Promise.all(Array.from({ length: max }, () => sql`select 1`))
  return {
    name: 'long-lived pool (warm, reference)',
    async request(w) {
      const t = performance.now()
      await runPostgres(sql, w)
      return performance.now() - t
    },
    close: () => sql.end({ timeout: 1 }),
  }
}
