import { Hono } from 'hono'
import { type PoolerOptions, type PoolerVariables, pooler } from '../../src'

/**
 * Runs `fn` with `c.var.sql` inside one real request through the middleware (`options`: at least `url` and
 * `applicationName`); returns its result or the error it threw.
 */
export async function inRequest<T>(
  options: PoolerOptions,
  fn: (sql: PoolerVariables['sql']) => Promise<T>,
): Promise<{ value?: T; error?: unknown }> {
  const app = new Hono<{ Variables: PoolerVariables }>()
  let out: { value?: T; error?: unknown } = {}
  app.use(pooler(options))
  app.get('/', async (c) => {
    try {
      out = { value: await fn(c.var.sql) }
    } catch (error) {
      out = { error }
    }
    return c.text('done')
  })
  await (await app.request('/')).text()
  return out
}
