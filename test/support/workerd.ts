/**
 * Starts the notes example (or a wrapper entry) in real workerd through wrangler's unstable_startWorker,
 * with the root wrangler.toml, and records every console line workerd forwards (the observer entries log
 * pooler events and unhandled rejections with an `[observer]` prefix).
 */
import { vi } from 'vitest'

process.env.WRANGLER_SEND_METRICS = 'false'
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false' // no Request.cf download (no network here)

export type Worker = Awaited<ReturnType<typeof import('wrangler').unstable_startWorker>>

/**
 * @param entrypoint the Worker entry (wraps examples/workers/index.ts)
 * @param secrets bindings, passed as secret_text as in production (`wrangler secret put`): never printed
 * @param logs receives every console line; errors and warnings that are not the observer's are echoed
 * @param config the wrangler.toml (the root one unless given: e.g. one with a `[[hyperdrive]]` binding)
 */
export async function startWorker(
  entrypoint: string,
  secrets: Record<string, string>,
  logs: string[],
  config = 'wrangler.toml',
): Promise<{ worker: Worker; base: URL }> {
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    const original = console[level].bind(console)
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      const line = args.map(String).join(' ')
      logs.push(line)
      if ((level === 'error' || level === 'warn') && !line.includes('[observer]')) original(...args)
    })
  }
  const { unstable_startWorker } = await import('wrangler')
  const worker = await unstable_startWorker({
    config,
    entrypoint,
    bindings: Object.fromEntries(
      Object.entries(secrets).map(([name, value]) => [name, { type: 'secret_text', value }]),
    ),
    dev: { server: { hostname: '127.0.0.1', port: 0 }, inspector: false, watch: false, logLevel: 'log' },
  } as any)
  await worker.ready
  return { worker, base: await worker.url }
}
