import { Hono } from 'hono'
import postgres from 'postgres'
import { type PoolerEvent, type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import { sleep, stack } from './stack'

/** A Hono app on a shared pool, with routes the pool tests use; errors answered as `{ error: { code } }`. */
export function poolApp(applicationName: string, options: PoolerOptions = {}) {
  const events: PoolerEvent[] = []
  const errors: unknown[] = []
  const app = new Hono<{ Variables: PoolerVariables }>()
  app.use(
    pooler({
      url: stack.databaseUrl,
      applicationName,
      onEvent: (e) => events.push(e),
      ...options,
      pool: { checkBudget: false, ...options.pool },
    }),
  )
  app.onError((err, c) => {
    errors.push(err)
    const code = (err as { code?: string }).code ?? 'ERR'
    const status = (err as { status?: number }).status === 503 ? 503 : 500
    if (status === 503) c.header('retry-after', String((err as { retryAfter?: number }).retryAfter ?? ''))
    return c.json({ error: { code, message: err.message } }, status)
  })
  app.get('/one', async (c) => c.json((await c.var.sql`select ${1}::int as n`)[0]))
  app.get('/pid', async (c) => c.json((await c.var.sql`select pg_backend_pid() as pid`)[0]))
  app.get('/sleep/:s', async (c) =>
    c.json((await c.var.sql`select pg_sleep(${Number(c.req.param('s'))}), 1 as n`)[0]),
  )
  app.get('/hold/:s', async (c) =>
    c.json(
      await c.var.sql.begin(async (tx) => {
        await tx`select pg_sleep(${Number(c.req.param('s'))})`
        return (await tx`select 2 as n`)[0]
      }),
    ),
  )
  return { app, events, errors }
}

/** A superuser client on the app database (pg_stat_activity, pg_terminate_backend). */
export const superClient = () =>
  postgres(stack.superUrl.replace(/\/postgres$/, '/app'), { max: 1, onnotice: () => {} })

/** Backends of `applicationName` as Postgres sees them. */
export async function backends(applicationName: string): Promise<number[]> {
  const su = superClient()
  try {
    const rows = await su`select pid from pg_stat_activity where application_name = ${applicationName}`
    return rows.map((r) => r.pid as number)
  } finally {
    await su.end()
  }
}

/** Waits until `check` holds (polling), up to `ms`; returns its last value. */
export async function waitFor<T>(read: () => Promise<T>, check: (v: T) => boolean, ms = 6000): Promise<T> {
  const deadline = Date.now() + ms
  let v = await read()
  while (!check(v) && Date.now() < deadline) {
    await sleep(50)
    v = await read()
  }
  return v
}
