/**
 * `pooler()`: the Hono middleware. Opens a per-request, non-pooled postgres.js client (connected lazily),
 * exposes it as `c.var.sql`, and closes it when the request is really over: after the handler, after an
 * error, after a client abort, after a streamed body ends. On Workers and Vercel the close runs off the
 * response's critical path (`waitUntil`); it is always bounded (`sql.end({ timeout })`).
 */
import type { Context, MiddlewareHandler } from 'hono'
import { env } from 'hono/adapter'
import type { Sql } from 'postgres'
import { createRequestClient, type RequestClient } from '../client/request-client'
import { PoolerError } from '../errors'
import { hyperdriveUrl } from '../hyperdrive'
import { type CloseReason, type PoolerOptions, parseOptions, type ResolvedOptions } from '../options'
import { type ClientConfig, clientConfig } from '../preset'
import { openTelemetry } from '../telemetry/otel'
import { RequestTelemetry } from '../telemetry/request-telemetry'
import { appendServerTiming } from '../telemetry/server-timing'
import {
  type NodeBindings,
  type NodeWatcher,
  nodeBindings,
  staticNodeBody,
  unwatchNodeAbort,
  type WatchedSocket,
  watchNodeAbort,
} from './node'
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
    const run = new PoolerRequest(c, opts, config, createRequestClient(config, telemetry), telemetry)
    c.set('sql', run.client.sql)
    try {
      await next()
    } catch (e) {
      await run.finish(run.close('error'))
      throw e
    }
    return run.handled()
  }
}

/**
 * One request through the middleware: its client and when to close it. A class, not closures in the
 * middleware: its state is one object per request (see client/request-client.ts).
 */
class PoolerRequest implements NodeWatcher, EventListenerObject {
  private readonly started = Date.now()
  private closing: Promise<void> | undefined
  /** On @hono/node-server the Node request and response tell an abort (and a static body) more cheaply. */
  readonly node: NodeBindings | undefined
  /** The Node connection whose close tells this request's abort (until the request closes). */
  private readonly socket: WatchedSocket | undefined
  private readonly signal: AbortSignal | undefined
  /** Elsewhere, which responses the context built whole (node-server's own Response says it itself). */
  private readonly isLive: (() => boolean) | undefined

  constructor(
    private readonly c: Context,
    private readonly opts: ResolvedOptions,
    private readonly config: ClientConfig,
    readonly client: RequestClient,
    private readonly telemetry: RequestTelemetry | undefined,
  ) {
    const node = nodeBindings(c)
    this.node = node
    if (node) this.socket = watchNodeAbort(this, node)
    else {
      const signal = c.req.raw.signal as AbortSignal | undefined
      this.signal = signal
      // The request itself is the listener (`handleEvent`): no closure per request.
      if (signal?.aborted) this.clientGone()
      else signal?.addEventListener('abort', this, { once: true })
    }
    this.isLive = node ? undefined : watchResponses(c)
  }

  /** The client went away: cancel in-flight statements on the server, then destroy the socket. */
  clientGone(): void {
    void this.close('abort')
  }

  /** The Web path's abort listener: `c.req.raw.signal` aborted. */
  handleEvent(): void {
    this.clientGone()
  }

  /** Server-Timing on responses sent whole (a streamed body's queries are not over when its headers go). */
  private timing(): void {
    if (this.opts.serverTiming && this.telemetry) appendServerTiming(this.c, this.telemetry.serverTiming())
  }

  close(why: CloseReason): Promise<void> {
    if (this.closing) return this.closing
    const { client, opts, config } = this
    // A request whose connection failed ends with 'error', even when its (streamed) response ended normally.
    const reason = client.failed && (why === 'done' || why === 'stream-end') ? 'error' : why
    this.signal?.removeEventListener('abort', this)
    unwatchNodeAbort(this, this.socket)
    // Nothing held and nobody to tell (a shared pool's request, one that never queried): closed now.
    if (reason !== 'abort' && !opts.onEvent && client.closeIdle()) {
      this.closing = CLOSED
      return this.closing
    }
    let closing = (reason === 'abort' ? client.abort() : client.close(opts.closeTimeout)).catch(() => {}) // a failing close must never surface as an unhandled rejection
    if (opts.onEvent)
      closing = closing
        .then(() =>
          opts.onEvent?.({
            type: 'close',
            host: config.info.host,
            mode: config.mode,
            used: client.used,
            queries: client.queries,
            ms: Date.now() - this.started,
            reason,
          }),
        )
        .catch(() => {}) // nor may a throwing onEvent
    this.closing = closing
    return closing
  }

  /** Waits for the close (or hands it to waitUntil); nothing to wait for when it closed at once. */
  finish(p: Promise<void>): Promise<void> | undefined {
    return p === CLOSED ? undefined : settle(this.c, p, this.node)
  }

  /** The handler returned: close now, or when a streamed body ends. */
  handled(): Promise<void> | undefined {
    const { c } = this
    const res = c.res
    // Static first: reading res.body of a static response forces @hono/node-server off its fast path.
    // An error answered by onError (Hono's compose catches it): close now, whatever the response is.
    if (this.closing || c.error || (this.isLive ? !this.isLive() : staticNodeBody(res)) || !res.body) {
      this.timing()
      return this.finish(this.close(c.error ? 'error' : 'done'))
    }
    // A body already read or locked cannot be tracked (and will not query): close now.
    if (res.bodyUsed || res.body.locked) {
      this.timing()
      return this.finish(this.close('done'))
    }
    // HEAD: Hono drops the body without reading or cancelling it; stop the stream and close now.
    if (c.req.method === 'HEAD') {
      res.body.cancel().catch(() => {})
      return this.finish(this.close('stream-cancel'))
    }
    // The body may still query (stream(), streamSSE(), any ReadableStream): close when it ends.
    const done = new Promise<void>((resolve) => {
      c.res = new Response(
        track(res.body!, resolve, (why) => this.close(why)),
        res,
      )
    })
    const waitUntil = findWaitUntil(c, this.node)
    if (waitUntil) waitUntil(done)
    return undefined
  }
}
