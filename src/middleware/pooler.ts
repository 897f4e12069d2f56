/**
 * `pooler()`: the Hono middleware. Opens a per-request, non-pooled postgres.js client (connected lazily),
 * exposes it as `c.var.sql`, and closes it when the request is really over: after the handler, after an
 * error, after a client abort, after a streamed body ends. On Workers and Vercel the close runs off the
 * response's critical path (`waitUntil`); it is always bounded (`sql.end({ timeout })`).
 */
import type { Context, MiddlewareHandler } from 'hono'
import { env } from 'hono/adapter'
import type { Sql } from 'postgres'
import { createRequestClient } from '../client/request-client'
import { PoolerError } from '../errors'
import { hyperdriveUrl } from '../hyperdrive'
import { type CloseReason, type PoolerOptions, parseOptions } from '../options'
import { clientConfig } from '../preset'
import { openTelemetry } from '../telemetry/otel'
import { RequestTelemetry } from '../telemetry/request-telemetry'
import { appendServerTiming } from '../telemetry/server-timing'
import { nodeBindings, onNodeAbort, staticNodeBody } from './node'
import { track, watchResponses } from './response'
import { findWaitUntil, settle } from './wait-until'

/** A close with nothing to wait for (shared by every such request; never awaited nor handed to waitUntil). */
const CLOSED = Promise.resolve()

/** `new Hono<{ Variables: PoolerVariables }>()` types `c.var.sql`. */
export type PoolerVariables = { sql: Sql<any> }

/** Bindings the default configuration reads (`DATABASE_URL`). */
export type PoolerBindings = { DATABASE_URL?: string }

/** The Hono `Env` of an app using the middleware with its defaults. */
export type PoolerEnv = { Bindings: PoolerBindings; Variables: PoolerVariables }

function resolveUrl(c: Context, url: PoolerOptions['url'], binding: string): string {
  // c.env first (Workers bindings, app.request's env), then the runtime's environment (process.env on Node).
  const value =
    typeof url === 'function'
      ? url(c)
      : (url ??
        (c.env as Record<string, unknown> | undefined)?.[binding] ??
        (env(c) as Record<string, unknown>)[binding])
  if (typeof value !== 'string' || value === '')
    throw new PoolerError(
      'MISSING_DATABASE_URL',
      `${binding} is not set — add it as a Worker secret (wrangler secret put ${binding}), in .dev.vars, or in the environment; or pass pooler({ url })`,
    )
  return value
}

/**
 * Mounts a per-request Postgres client at `c.var.sql`, tuned for transaction-mode poolers.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { pooler, type PoolerVariables } from 'hono-pooler'
 *
 * const app = new Hono<{ Bindings: { DATABASE_URL: string }; Variables: PoolerVariables }>()
 * app.use(pooler())
 * app.get('/now', async (c) => c.json((await c.var.sql`select now() as now`)[0]))
 * ```
 */
export function pooler(options: PoolerOptions = {}): MiddlewareHandler<{ Variables: PoolerVariables }> {
  const opts = parseOptions(options)
  return async function pooler(c, next) {
    const url = opts.hyperdrive ? hyperdriveUrl(c, opts.hyperdrive) : resolveUrl(c, opts.url, opts.binding)
    const config = clientConfig(url, opts)
    const otel = opts.openTelemetry ? await openTelemetry(opts.openTelemetry) : undefined
    const telemetry = opts.serverTiming || otel ? new RequestTelemetry(config.info, otel) : undefined
    const client = createRequestClient(config, telemetry)
    // Server-Timing on responses sent whole (a streamed body's queries are not over when its headers go).
    const timing = () => {
      if (opts.serverTiming && telemetry) appendServerTiming(c, telemetry.serverTiming())
    }
    const started = Date.now()
    let closing: Promise<void> | undefined
    // On @hono/node-server the Node request and response tell an abort (and a static body) more cheaply.
    const node = nodeBindings(c)
    const signal = node ? undefined : (c.req.raw.signal as AbortSignal | undefined)
    const close = (why: CloseReason): Promise<void> => {
      if (closing) return closing
      // A request whose connection failed ends with 'error', even when its (streamed) response ended normally.
      const reason = client.failed && (why === 'done' || why === 'stream-end') ? 'error' : why
      signal?.removeEventListener('abort', onAbort)
      // Nothing held and nobody to tell (a shared pool's request, one that never queried): closed now.
      if (reason !== 'abort' && !opts.onEvent && client.closeIdle()) {
        closing = CLOSED
        return closing
      }
      closing = (reason === 'abort' ? client.abort() : client.close(opts.closeTimeout)).catch(() => {}) // a failing close must never surface as an unhandled rejection
      if (opts.onEvent)
        closing = closing
          .then(() =>
            opts.onEvent?.({
              type: 'close',
              host: config.info.host,
              mode: config.mode,
              used: client.used,
              queries: client.queries,
              ms: Date.now() - started,
              reason,
            }),
          )
          .catch(() => {}) // nor may a throwing onEvent
      return closing
    }
    // The client went away: cancel in-flight statements on the server, then destroy the socket.
    const onAbort = () => void close('abort')
    if (node) onNodeAbort(node, onAbort)
    else if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
    c.set('sql', client.sql)
    // Waits for the close (or hands it to waitUntil); nothing to wait for when it closed at once.
    const finish = (p: Promise<void>) => (p === CLOSED ? undefined : settle(c, p, node))
    // Elsewhere, which responses the context built whole (node-server's own Response says it itself).
    const isLive = node ? undefined : watchResponses(c)

    try {
      await next()
    } catch (e) {
      await finish(close('error'))
      throw e
    }
    const res = c.res
    // Static first: reading res.body of a static response forces @hono/node-server off its fast path.
    // An error answered by onError (Hono's compose catches it): close now, whatever the response is.
    if (closing || c.error || (isLive ? !isLive() : staticNodeBody(res)) || !res.body) {
      timing()
      return finish(close(c.error ? 'error' : 'done'))
    }
    // A body already read or locked cannot be tracked (and will not query): close now.
    if (res.bodyUsed || res.body.locked) {
      timing()
      return finish(close('done'))
    }
    // HEAD: Hono drops the body without reading or cancelling it; stop the stream and close now.
    if (c.req.method === 'HEAD') {
      res.body.cancel().catch(() => {})
      return finish(close('stream-cancel'))
    }
    // The body may still query (stream(), streamSSE(), any ReadableStream): close when it ends.
    const done = new Promise<void>((resolve) => {
      c.res = new Response(track(res.body!, resolve, close), res)
    })
    const waitUntil = findWaitUntil(c, node)
    if (waitUntil) waitUntil(done)
  }
}
