/**
 * Test-only Workers entry for the connect layer in workerd: `/q` runs one query on the URL of the binding
 * named by `x-target` (`x-pipeline: 1` with `pipelineConnect`), `/hold` keeps its connection open for
 * 600 ms (SHOW CLIENTS can see it), `/derivations` reports how often PBKDF2 ran in this isolate. Errors
 * are `{ code }` JSON; uncaught errors and unhandled rejections become `[observer] …` log lines.
 */
import { type ExecutionContext, Hono } from 'hono'
import { type PoolerVariables, pooler } from '../../src/index.ts'
import { scramDerivations } from '../../src/internal.ts'

const describe = (x: unknown) => (x instanceof Error ? `${x.name}: ${x.message}` : String(x))
addEventListener('unhandledrejection', (e) =>
  console.error(`[observer] unhandledrejection ${describe(e.reason)}`),
)
addEventListener('error', (e) => console.error(`[observer] uncaught ${describe((e as ErrorEvent).error)}`))

function app(pipelineConnect: boolean) {
  const a = new Hono<{ Variables: PoolerVariables }>()
  a.use(
    pooler({
      pipelineConnect,
      url: (c) => (c.env as Record<string, string | undefined>)[c.req.header('x-target') ?? 'TLS_URL'],
    }),
  )
  a.onError((err, c) => c.json({ code: (err as { code?: string }).code, message: err.message }, 503))
  a.get('/q', async (c) => c.json((await c.var.sql`select ${41}::int + 1 as n`)[0]))
  a.get('/hold', async (c) => {
    await c.var.sql`select 1`
    await new Promise((r) => setTimeout(r, 600))
    return c.json({ ok: true })
  })
  a.get('/derivations', (c) => c.json({ n: scramDerivations() }))
  return a
}

const plain = app(false)
const pipelined = app(true)

export default {
  fetch: (req: Request, env: unknown, ctx: ExecutionContext) =>
    (req.headers.get('x-pipeline') === '1' ? pipelined : plain).fetch(req, env, ctx),
}
