/**
 * Fault tests kill and restart PgBouncer and Postgres: they start a stack of their own (never the shared
 * one other test files use concurrently) and read its SHOW CLIENTS and pg_stat_activity.
 */
import { Hono } from 'hono'
import postgres from 'postgres'
import { bouncerAdmin, type Stack, startStack } from '../../scripts/stack.ts'
import { type PoolerOptions, type PoolerVariables, pooler } from '../../src'

/** A stack of the test's own: its PgBouncer retries a failed server login after 1 s (default 15 s). */
export async function ownStack(): Promise<Stack & { control: NonNullable<Stack['control']> }> {
  const stack = await startStack({}, { bouncerSettings: ['server_login_retry = 1'] })
  if (!stack.control) throw new Error('own stack without control')
  return stack as Stack & { control: NonNullable<Stack['control']> }
}

/** Clients of `applicationName` in PgBouncer's SHOW CLIENTS ([] when PgBouncer is down). */
export async function bouncerClients(stack: Stack, applicationName: string): Promise<unknown[]> {
  const rows = await bouncerAdmin<{ application_name: string }>(stack.adminUrl, 'show clients', 2)
  return rows.filter((r) => r.application_name === applicationName)
}

/** Changes one PgBouncer setting at run time through its admin console (`SET key = value`). */
export async function bouncerSet(stack: Stack, key: string, value: string): Promise<void> {
  await bouncerAdmin(stack.adminUrl, `set ${key} = ${value}`, 2)
}

/** Server backends running statements of this app (through PgBouncer the app name is PgBouncer's: match the text). */
export async function serverActivity(
  stack: Pick<Stack, 'superUrl'>,
  marker: string,
): Promise<{ pid: number; query: string }[]> {
  const su = postgres(stack.superUrl, { max: 1, onnotice: () => {}, connect_timeout: 2 })
  try {
    return await su<{ pid: number; query: string }[]>`
      select pid, query from pg_stat_activity
      where state <> 'idle' and pid <> pg_backend_pid() and query like ${`%${marker}%`}`
  } finally {
    await su.end({ timeout: 0 })
  }
}

/** Polls `probe` until it returns an empty list or `ms` pass; returns what it saw last. */
export async function until<T>(probe: () => Promise<T[]>, ms = 5000): Promise<T[]> {
  const deadline = Date.now() + ms
  let rows = await probe()
  while (rows.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    rows = await probe()
  }
  return rows
}

export interface Answer {
  status: number
  body: any
  retryAfter: string | null
  ms: number
}

/** The fault app: `/one`, `/sleep/:s/:marker` (a statement that can be found in pg_stat_activity). */
export function faultApp(options: PoolerOptions): Hono<{ Variables: PoolerVariables }> {
  const app = new Hono<{ Variables: PoolerVariables }>()
  app.use(pooler(options))
  app.get('/one', async (c) => c.json(await c.var.sql`select 1 as x`))
  app.get('/sleep/:s/:marker', async (c) =>
    c.json(
      await c.var.sql.unsafe(
        `select pg_sleep(${Number(c.req.param('s'))}) as x /* ${c.req.param('marker').replace(/\W/g, '')} */`,
      ),
    ),
  )
  return app
}

/** One request through `app.request`, timed, its body read. */
export async function ask(app: Hono<any>, path: string, init: RequestInit = {}): Promise<Answer> {
  const started = Date.now()
  const res = await app.request(path, init)
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: res.status, body, retryAfter: res.headers.get('retry-after'), ms: Date.now() - started }
}
