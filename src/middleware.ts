/**
 * `pooler()`: the Hono middleware. Opens a per-request, non-pooled postgres.js client (connected lazily),
 * exposes it as `c.var.sql`, and closes it when the request is really over: after the handler, after an
 * error, after a client abort, after a streamed body ends. On Workers and Vercel the close runs off the
 * response's critical path (`waitUntil`); it is always bounded (`sql.end({ timeout })`).
 */
import type { Context, MiddlewareHandler } from 'hono'
import { env } from 'hono/adapter'
import type { Sql } from 'postgres'
import { createRequestClient } from './client'
import { type CloseReason, clientConfig, type PoolerOptions, parseOptions } from './config'
import { PoolerError } from './errors'

/** `new Hono<{ Variables: PoolerVariables }>()` types `c.var.sql`. */
export type PoolerVariables = { sql: Sql<any> }

/** Bindings the default configuration reads (`DATABASE_URL`). */
export type PoolerBindings = { DATABASE_URL?: string }

/** The Hono `Env` of an app using the middleware with its defaults. */
export type PoolerEnv = { Bindings: PoolerBindings; Variables: PoolerVariables }

type WaitUntil = (p: Promise<unknown>) => void
const VERCEL_CONTEXT = Symbol.for('@vercel/request-context')

/**
 * Where to hand a promise that must outlive the response: Workers' ctx, Vercel's request context.
 *
 * @example
 * findWaitUntil(c)?.(flushLogs()) // Workers / Vercel: after the response; elsewhere undefined
 */
export function findWaitUntil(c: Context): WaitUntil | undefined {
  try {
    const ctx = c.executionCtx
    if (typeof ctx?.waitUntil === 'function') return (p) => ctx.waitUntil(p)
  } catch {} // c.executionCtx throws when the runtime has none (Node)
  const vercel = (globalThis as any)[VERCEL_CONTEXT]?.get?.()?.waitUntil
  return typeof vercel === 'function' ? (p) => vercel(p) : undefined
}

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
 * import { Hono } from 'hono'
 * import { pooler, type PoolerVariables } from 'hono-pooler'
 *
 * const app = new Hono<{ Bindings: { DATABASE_URL: string }; Variables: PoolerVariables }>()
 * app.use(pooler())
 * app.get('/now', async (c) => c.json((await c.var.sql`select now() as now`)[0]))
 */
export function pooler(options: PoolerOptions = {}): MiddlewareHandler<{ Variables: PoolerVariables }> {
  const opts = parseOptions(options)
  return async function pooler(c, next) {
    const config = clientConfig(resolveUrl(c, opts.url, opts.binding), opts)
    const client = createRequestClient(config)
    const started = Date.now()
    let closing: Promise<void> | undefined
    const signal = c.req.raw.signal as AbortSignal | undefined
    const close = (reason: CloseReason): Promise<void> => {
      if (closing) return closing
      signal?.removeEventListener('abort', onAbort)
      closing = (reason === 'abort' ? client.abort() : client.close(opts.closeTimeout))
        .catch(() => {}) // a failing close must never surface as an unhandled rejection
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
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
    c.set('sql', client.sql)
    const isLive = watchResponses(c)

    try {
      await next()
    } catch (e) {
      await settle(c, close('error'))
      throw e
    }
    const res = c.res
    // isLive() first: reading res.body of a static response forces @hono/node-server off its fast path.
    if (closing || !isLive() || !res.body) return settle(c, close(c.error ? 'error' : 'done'))
    // A body already read or locked cannot be tracked (and will not query): close now.
    if (res.bodyUsed || res.body.locked) return settle(c, close('done'))
    // HEAD: Hono drops the body without reading or cancelling it; stop the stream and close now.
    if (c.req.method === 'HEAD') {
      res.body.cancel().catch(() => {})
      return settle(c, close('stream-cancel'))
    }
    // The body may still query (stream(), streamSSE(), any ReadableStream): close when it ends.
    const done = new Promise<void>((resolve) => {
      c.res = new Response(track(res.body!, resolve, close), res)
    })
    const waitUntil = findWaitUntil(c)
    if (waitUntil) waitUntil(done)
  }
}

const BUILDERS = ['body', 'newResponse', 'json', 'text', 'html'] as const

/**
 * Tells whether the final response may still use the client after the handler returned: its body came
 * from a ReadableStream (stream(), streamSSE(), c.body(readable)), or it is a Response Hono's context did
 * not build (a handler's own `new Response(…)`). Static bodies (c.json, c.text, …) close right away.
 */
function watchResponses(c: Context): () => boolean {
  const built = new WeakSet<Response>()
  let streamed = false
  const ctx = c as unknown as Record<
    (typeof BUILDERS)[number],
    (data: unknown, ...rest: unknown[]) => unknown
  >
  for (const name of BUILDERS) {
    const build = ctx[name]
    ctx[name] = (data, ...rest) => {
      const r = build(data, ...rest)
      if (data instanceof ReadableStream) streamed = true
      else if (r instanceof Response) built.add(r)
      else if (r instanceof Promise)
        r.then(
          (x) => x instanceof Response && built.add(x),
          () => {},
        )
      return r
    }
  }
  return () => streamed || !built.has(c.res)
}

/** Off the critical path where the runtime allows it (Workers, Vercel), else awaited. */
async function settle(c: Context, p: Promise<void>): Promise<void> {
  const waitUntil = findWaitUntil(c)
  if (waitUntil) waitUntil(p)
  else await p
}

function track(
  body: ReadableStream<Uint8Array>,
  resolve: () => void,
  close: (reason: CloseReason) => Promise<void>,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  const finish = (reason: CloseReason) => close(reason).then(resolve)
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) {
          controller.close()
          void finish('stream-end')
        } else controller.enqueue(value)
      } catch (e) {
        controller.error(e)
        void finish('error')
      }
    },
    async cancel(reason) {
      void finish('stream-cancel')
      await reader.cancel(reason)
    },
  })
}
