/**
 * Test-only Workers entry for connection failures: the notes app with `connectTimeout: 0.5`, the URL taken
 * from the binding named by the `x-target` header, and the same observer as support/workers-observer.ts
 * (uncaught errors and unhandled rejections become `[observer] …` log lines). Under `/pooled`, the app with a
 * shared pool.
 */
import type { Context, ExecutionContext } from 'hono'
import { createApp } from '../../examples/app.ts'

const describe = (x: unknown) => (x instanceof Error ? `${x.name}: ${x.message}` : String(x))
addEventListener('unhandledrejection', (e) =>
  console.error(`[observer] unhandledrejection ${describe(e.reason)}`),
)
addEventListener('error', (e) => console.error(`[observer] uncaught ${describe((e as ErrorEvent).error)}`))

const options = {
  connectTimeout: 0.5,
  url: (c: Context) =>
    (c.env as Record<string, string | undefined>)[c.req.header('x-target') ?? 'DATABASE_URL'],
  onEvent: (e: unknown) => console.log(`[event] ${JSON.stringify(e)}`),
}
const plain = createApp(options)
// Under /pooled: the same app asking for a shared pool, which a Worker refuses (INVALID_OPTIONS).
const pooled = createApp({ ...options, pool: { size: 1, checkBudget: false } }, { basePath: '/pooled' })

export default {
  fetch: (req: Request, env: unknown, ctx: ExecutionContext) =>
    (new URL(req.url).pathname.startsWith('/pooled') ? pooled : plain).fetch(req, env as never, ctx),
}
