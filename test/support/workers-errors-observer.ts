/**
 * Test-only Workers entry for connection failures: the notes app with `connectTimeout: 0.5`, the URL taken
 * from the binding named by the `x-target` header, and the same observer as support/workers-observer.ts
 * (uncaught errors and unhandled rejections become `[observer] …` log lines).
 */
import { createApp } from '../../examples/app.ts'

const describe = (x: unknown) => (x instanceof Error ? `${x.name}: ${x.message}` : String(x))
addEventListener('unhandledrejection', (e) =>
  console.error(`[observer] unhandledrejection ${describe(e.reason)}`),
)
addEventListener('error', (e) => console.error(`[observer] uncaught ${describe((e as ErrorEvent).error)}`))

export default createApp({
  connectTimeout: 0.5,
  url: (c) => (c.env as Record<string, string | undefined>)[c.req.header('x-target') ?? 'DATABASE_URL'],
  onEvent: (e) => console.log(`[event] ${JSON.stringify(e)}`),
})
