/**
 * Every postgres.js query of a request's client passes through here before it reaches the
 * driver: closed check, guard, the outer-client deadlock check, the no-pipelining gate, parameter
 * inlining, and the mapping of connection errors. Patches the Query object in place (postgres.js starts a
 * query in `handle()`, called by `then`, `execute`, `cursor`, `forEach`).
 */
import type { PoolerError } from '../errors'
import { type Gate, type Release, releaseWhenIterated } from './gate'

const noop = () => {}

function mapped(
  f: (e: unknown) => void,
  q: unknown,
  ctx: HookContext,
  settle: (e?: unknown) => void,
): (e: unknown) => void {
  return (e) => {
    const m = ctx.mapError(e, q)
    settle(m ?? new Error(String(m)))
    f(m)
  }
}

function settled(
  f: (x: unknown) => void,
  settle: () => void,
  q: any,
  ctx: HookContext,
): (x: unknown) => void {
  return (x) => {
    // A COPY resolves with its stream when it starts; it settles at its ReadyForQuery (resolved again then).
    if (q.streaming && x && typeof (x as { pipe?: unknown }).pipe === 'function') {
      const stream = x as { destroy: (e?: unknown, ...a: unknown[]) => unknown }
      const destroy = stream.destroy
      // The driver destroys the stream with the statement's error: mapped like the query's own.
      stream.destroy = function (this: unknown, e?: unknown, ...a: unknown[]) {
        return destroy.call(this, e ? ctx.mapError(e, q) : e, ...a)
      }
      ctx.copying(q, x)
      return f(x)
    }
    settle()
    f(x)
  }
}

/** What the hook needs from its client. */
export interface HookContext {
  /** Why this query may not run now (closed client, guard, deadlock), checked just before it is sent. */
  refuse(q: any, gated: boolean): PoolerError | undefined
  /** The request ended while the query waited for the gate. */
  closedNow(): PoolerError | undefined
  /** Rewrites the query right before it is sent (parameter inlining). */
  beforeSend(q: any): void
  /** Called when the query is sent; the returned function when it settled (with its error, if it failed). */
  sent(q: any): (error?: unknown) => void
  /** Maps a driver error (connection failures, our own deadline) for query `q`. */
  mapError(e: unknown, q: unknown): unknown
  /** A COPY started streaming (its deadline then runs only while it waits on the network or server). */
  copying(q: any, stream: unknown): void
  /** Pending while CancelRequests of this request are in flight (one landing late would hit the next statement). */
  quiet(): Promise<void> | undefined
}

/**
 * Hooks one postgres.js Query. `g` is the gate for top-level queries (none inside `sql.begin`, where the
 * server connection is pinned); `load` supplies the text first (`sql.file`).
 *
 * @example
 * ```ts
 * import postgres from 'postgres'
 * import { gate } from './gate'
 *
 * declare const context: HookContext
 * const real = postgres('postgres://app:pw@127.0.0.1:6432/app')
 * const query = hookQuery(real`select 1`, gate(1), context)
 * ```
 */
export function hookQuery<Q>(
  query: Q,
  g: Gate | undefined,
  ctx: HookContext,
  load?: () => Promise<string>,
): Q {
  const q = query as any
  // Only a slot this query acquired can be given back, once (a refused or failed query never took one).
  let release: Release = noop
  // Runs once when the sent query settles. Hooked on its resolve/reject, never on its promise: a handler on
  // the promise would swallow the failure of a query nobody awaits (postgres.js reports it as unhandled).
  let onSettled: (e?: unknown) => void = noop
  let iterated = false
  const settle = (e?: unknown) => {
    const f = onSettled
    onSettled = noop
    f(e)
    if (f !== noop && !iterated) detach()
  }
  const { resolve: resolve0, reject: reject0 } = q
  // Settled for good: postgres.js's own functions again. postgres.js keeps its Query objects reachable
  // through V8's minor GCs (a raw pool's too), and ours would otherwise drag the whole request (client,
  // leases, statements) along into the old generation until a full GC: most of the shared pool's GC time.
  // Nothing calls them again once the query settled (its promise is settled anyway).
  const detach = () => {
    const proto = Object.getPrototypeOf(q)
    q.resolve = resolve0
    q.reject = reject0
    q.handle = proto.handle
    q.cursor = proto.cursor
  }
  q.reject = mapped(reject0, q, ctx, settle)
  q.resolve = settled(resolve0, settle, q, ctx)
  // A cursor assigns new resolve/reject functions per fetch (postgres.js's cursor() iterator; nothing else
  // reassigns them): from cursor() on, accessors keep every one mapped and tracked. Only then: accessors on
  // every query would turn each Query into a slow dictionary object.
  const cursor = q.cursor
  q.cursor = function (this: any, ...args: unknown[]) {
    iterated = true
    let reject = this.reject
    let resolve = this.resolve
    Object.defineProperty(this, 'reject', {
      get: () => reject,
      set: (f: (e: unknown) => void) => {
        reject = mapped(f, q, ctx, settle)
      },
      configurable: true,
    })
    Object.defineProperty(this, 'resolve', {
      get: () => resolve,
      set: (f: (x: unknown) => void) => {
        resolve = settled(f, settle, q, ctx)
      },
      configurable: true,
    })
    const r = cursor.apply(this, args)
    // Broken off: postgres.js sends Close + Sync; the connection is given back at that ReadyForQuery (the
    // query's final resolve settles it), never while the portal is still open.
    return !g || r === this ? r : releaseWhenIterated(r, () => release(), noop)
  }
  q.handle = async function handle(this: any) {
    if (this.executed) return
    this.executed = true
    try {
      if (load) this.strings = [await load()]
      const refused = ctx.refuse(this, g !== undefined)
      if (refused) return this.reject(refused)
      if (this.cancelled) return // cancelled before it was sent: already rejected, never takes a slot
      // (the await also lets .values()/.raw() chained after creation apply)
      if (g) release = await g.acquire()
      else await 1
      // A cancel still on its way would land on whatever this connection runs next: not this statement.
      const cancelling = ctx.quiet()
      if (cancelling) await cancelling
      // Cancelled while it waited: postgres.js already rejected it (57014) and its connection would skip it
      // while marking itself busy, wedging every later query. It never reaches the connection.
      if (this.cancelled) return release()
      const closed = ctx.closedNow()
      if (closed) {
        release()
        return this.reject(closed)
      }
      ctx.beforeSend(this)
      const done = ctx.sent(this)
      onSettled = (e) => {
        done(e)
        // The slot (the connection) is given back once this request's cancels in flight closed.
        const cancelling = ctx.quiet()
        if (cancelling) void cancelling.then(release)
        else release()
      }
      this.handler(this)
    } catch (e) {
      release()
      this.reject(e)
    }
  }
  return query
}
