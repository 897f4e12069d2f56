/**
 * @hono/node-server specifics, for speed only: its `c.env` holds the Node request and response
 * (`HttpBindings`), which tell a client abort without building `c.req.raw.signal` (an AbortController and
 * an EventTarget listener per request), and its lightweight `Response` tells a static body from a stream
 * without materializing the response (reading `res.body` forces node-server off its fast path). Everything
 * else (Workers, Vercel's Web handler, `app.request`, Bun, Deno) uses the Web APIs as before.
 */
import type { Context } from 'hono'

interface Incoming {
  errored?: unknown
  aborted?: boolean
  /** Only HTTP/2 requests have one. */
  stream?: unknown
}
interface Outgoing {
  destroyed?: boolean
  writableFinished?: boolean
  on(event: 'close', f: () => void): unknown
}

/** The Node request and response of a @hono/node-server request, else undefined. */
export interface NodeBindings {
  incoming: Incoming
  outgoing: Outgoing
}

/**
 * @example
 * ```ts
 * const node = nodeBindings(c) // { incoming, outgoing } on @hono/node-server, else undefined
 * ```
 */
export function nodeBindings(c: Context): NodeBindings | undefined {
  const env = c.env as Partial<NodeBindings> | undefined
  const out = env?.outgoing
  return out && typeof out.on === 'function' && env.incoming ? (env as NodeBindings) : undefined
}

/**
 * Calls `abort` once when the client goes away before the response was fully sent: what node-server's
 * own close handler turns into `c.req.raw.signal`'s abort (the request errored, or the response closed
 * unfinished; on HTTP/2 also an aborted stream).
 *
 * @example
 * ```ts
 * onNodeAbort(nodeBindings(c)!, () => console.log('client gone'))
 * ```
 */
export function onNodeAbort({ incoming, outgoing }: NodeBindings, abort: () => void): void {
  const gone = () =>
    !!incoming.errored || !outgoing.writableFinished || (incoming.stream !== undefined && !!incoming.aborted)
  if ((outgoing.destroyed || incoming.errored) && gone()) abort()
  // `on`, not `once` (a response closes once): Node's `once` builds an object literal per call, which V8
  // may allocate straight in the old generation, where a dead one keeps the request alive until a full GC.
  else outgoing.on('close', () => gone() && abort())
}

let cacheKey: symbol | undefined

/**
 * `true` when `res` is node-server's lightweight Response with a body that cannot query any more (none,
 * a string, bytes, a Blob): it was built whole. `false` when that cannot be told without materializing it
 * (a stream body, a native Response, one already materialized): the caller looks at `res.body` then.
 *
 * @example
 * ```ts
 * staticNodeBody(c.res) // true after c.json(…) / c.text(…) on @hono/node-server
 * ```
 */
export function staticNodeBody(res: Response): boolean {
  cacheKey ??= Object.getOwnPropertySymbols(res).find((s) => s.description === 'cache')
  const cache = cacheKey && (res as unknown as Record<symbol, unknown>)[cacheKey]
  if (!Array.isArray(cache)) return false
  const body = cache[1]
  return body === null || typeof body === 'string' || body instanceof Uint8Array || body instanceof Blob
}
