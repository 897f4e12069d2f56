/**
 * Test-only Workers entry: the notes app exactly as examples/workers/index.ts builds it, plus
 * - a log line per pooler event (`[event] {...}`), so the test sees each request's close settle in workerd;
 * - listeners that make uncaught errors and unhandled rejections visible (local workerd does not print
 *   them; production shows them in the Worker's logs).
 */
import { createApp } from '../../examples/app.ts'

const describe = (x: unknown) => (x instanceof Error ? `${x.name}: ${x.message}` : String(x))
addEventListener('unhandledrejection', (e) =>
  console.error(`[observer] unhandledrejection ${describe(e.reason)}`),
)
addEventListener('error', (e) => console.error(`[observer] uncaught ${describe((e as ErrorEvent).error)}`))

export default createApp({ onEvent: (e) => console.log(`[event] ${JSON.stringify(e)}`) })
