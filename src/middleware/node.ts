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

/** What the client going away looks like when the response closes (node-server's own test for its signal). */
function gone({ incoming, outgoing }: NodeBindings): boolean {
  return (
    !!incoming.errored || !outgoing.writableFinished || (incoming.stream !== undefined && !!incoming.aborted)
  )
}

/** A request watching its Node connection: told once when the client goes away before the response was sent. */
export interface NodeWatcher {
  /** Its Node request and response (set whenever it watches). */
  readonly node: NodeBindings | undefined
  clientGone(): void
}

/** The requests an HTTP/1 connection serves (one, or several pipelined), on the socket under this key. */
const SERVING = Symbol('hono-pooler.serving')

/** A Node socket serving requests: what `watchNodeAbort` returns, for `unwatchNodeAbort`. */
export interface WatchedSocket {
  readonly destroyed?: boolean
  prependListener(event: 'close', f: (this: WatchedSocket) => void): unknown
  [SERVING]?: NodeWatcher[]
}

/** The one close listener of a socket, for every request it serves: shared, never a closure per request. */
function socketClosed(this: WatchedSocket): void {
  const serving = this[SERVING]
  if (!serving?.length) return
  for (const w of serving.splice(0)) if (w.node && gone(w.node)) w.clientGone()
}

/**
 * Calls `w.clientGone()` once when the client goes away before the response was fully sent: what
 * node-server's own close handler turns into `c.req.raw.signal`'s abort (the request errored, or the
 * response closed unfinished; on HTTP/2 also an aborted stream).
 *
 * On HTTP/1 the socket's close tells it: one listener per connection for all the requests it serves, instead
 * of a closure on each response. A pipelined request's response has no socket until its turn, so its own
 * close would never come. The listener goes first: Node closes the response (and node-server cancels a
 * streamed body, a `stream-cancel`) from listeners of its own, and the statement must be cancelled as an
 * abort before that. Returns the socket to hand to `unwatchNodeAbort` once the request no longer cares.
 *
 * @example
 * ```ts
 * import type { NodeBindings, NodeWatcher } from './node'
 *
 * declare const w: NodeWatcher & { node: NodeBindings }
 * const socket = watchNodeAbort(w, w.node)
 * // … the request ends:
 * unwatchNodeAbort(w, socket)
 * ```
 */
export function watchNodeAbort(w: NodeWatcher, node: NodeBindings): WatchedSocket | undefined {
  const { incoming, outgoing } = node
  const socket = (incoming as { socket?: WatchedSocket | null }).socket
  // Gone already: the response destroyed, the request errored, or its connection closed before we got here
  // (a pipelined request whose body was read: neither its request nor its queued response says so).
  if ((outgoing.destroyed || incoming.errored || socket?.destroyed) && gone(node)) {
    w.clientGone()
    return undefined
  }
  if (incoming.stream === undefined && socket && !socket.destroyed) {
    let serving = socket[SERVING]
    if (!serving) {
      serving = []
      socket[SERVING] = serving
      socket.prependListener('close', socketClosed)
    }
    // Requests whose response was sent cannot be aborted any more: one that never closed (a streamed body
    // nobody read) is not kept for the life of the connection.
    for (let i = serving.length - 1; i >= 0; i--)
      if (serving[i]!.node?.outgoing.writableFinished) dropAt(serving, i)
    serving.push(w)
    return socket
  }
  // HTTP/2: the stream's response closes. `on`, not `once` (a response closes once): Node's `once` builds an
  // object literal per call, which V8 may allocate straight in the old generation, where a dead one keeps
  // the request alive until a full GC.
  outgoing.on('close', () => gone(node) && w.clientGone())
  return undefined
}

/** The request ended: its connection's close no longer concerns it. */
export function unwatchNodeAbort(w: NodeWatcher, socket: WatchedSocket | undefined): void {
  const serving = socket?.[SERVING]
  if (!serving) return
  const i = serving.indexOf(w)
  if (i >= 0) dropAt(serving, i)
}

/** Removes entry `i` (order does not matter: the last one takes its place). */
function dropAt(serving: NodeWatcher[], i: number): void {
  serving[i] = serving[serving.length - 1]!
  serving.pop()
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
