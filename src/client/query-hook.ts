/**
 * Every postgres.js query of a request's client passes through here before it reaches the
 * driver: closed check, guard, the outer-client deadlock check, the no-pipelining gate, parameter
 * inlining, and the mapping of connection errors. Patches the Query object in place: postgres.js starts a
 * query in `handle()` (called by `then`, `execute`, `cursor`, `forEach`), which waits one microtask (so
 * `.values()` / `.raw()` chained after creation apply) and calls `q.handler(q)`: the hook's handler, which
 * hands the query to the driver's own handler (or a pooled connection's) once it may run.
 */
import type { PoolerError } from '../errors'
import { INLINED, type InlinedText, SENT_SIMPLY, sentSimply } from '../inline/inliner'
import { fastSpeciesClasses } from './fast-class'
import { type Gate, type Release, releaseWhenIterated } from './gate'

const noop = () => {}

/** The hook's state, on the Query under this key (one object per query; the functions patched on are shared). */
const HOOK = Symbol('hono-pooler.hook')

/** The last query and result classes seen (each handed to fastSpeciesClasses once, see fast-class.ts). */
let queryClass: unknown
let resultClass: unknown

/** What settles a sent statement's tracking (`HookContext.sent`): its error, if it failed. */
export interface Settles {
  settled(error?: unknown): void
}

/** What the hook needs from its client. */
export interface HookContext {
  /** Why this query may not run now (closed client, guard, deadlock), checked just before it is sent. */
  refuse(q: any, gated: boolean): PoolerError | undefined
  /** The request ended while the query waited for the gate. */
  closedNow(): PoolerError | undefined
  /** Rewrites the query right before it is sent (parameter inlining). */
  beforeSend(q: any): void
  /** Called when the query is sent; the returned tracking is settled when the query is (with its error, if it failed). */
  sent(q: any): Settles
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
  if (q[HOOK]) return query // hooked once: a second hook would keep ours as the driver's own functions
  const cls = q.constructor
  if (cls !== queryClass) {
    queryClass = cls
    fastSpeciesClasses(cls) // postgres.js's Query, in V8's fast mode (fast-class.ts)
  }
  q[HOOK] = new Hooked(q, g, ctx, load, q.resolve, q.reject, q.handler)
  // Shared functions that find the hook on the Query: postgres.js calls them as its methods, and so do the
  // inliner and reserve() when they wrap them (`f.call(q, x)`).
  q.reject = hookedReject
  q.resolve = hookedResolve
  q.cursor = hookedCursor
  q.handler = hookedHandler
  return query
}

/**
 * `q.handler` of a hooked query until it is sent: postgres.js's `handle()` calls it once, a microtask after
 * the query was first awaited or executed. Statements reach it in the order they were started (microtasks
 * run in order), so a request's gate is taken in that order too.
 */
function hookedHandler(q: any): void {
  const h = q[HOOK] as Hooked
  if (h.load) void h.loadThenStart()
  else h.start()
}

/** `q.reject` of a hooked query. Called again once settled and detached, it is postgres.js's own. */
function hookedReject(this: any, e: unknown): void {
  const h = this[HOOK] as Hooked | undefined
  if (h) rejectWith(h.reject0, h, e)
  else if (this.reject !== hookedReject) this.reject(e)
}

/** `q.resolve` of a hooked query (see `hookedReject`). */
function hookedResolve(this: any, x: unknown): void {
  const h = this[HOOK] as Hooked | undefined
  if (h) resolveWith(h.resolve0, h, x)
  else if (this.resolve !== hookedResolve) this.resolve(x)
}

/**
 * One hooked query's state. `handler`, `cursor`, `resolve` and `reject` patched onto the Query are shared
 * functions that find it here.
 */
class Hooked {
  /** Only a slot this query acquired can be given back, once (a refused or failed query never took one). */
  release: Release = noop
  /**
   * The sent query's tracking, settled once. Hooked on its resolve/reject, never on its promise: a handler on
   * the promise would swallow the failure of a query nobody awaits (postgres.js reports it as unhandled).
   */
  tracking: Settles | undefined
  iterated = false
  constructor(
    readonly q: any,
    readonly g: Gate | undefined,
    readonly ctx: HookContext,
    readonly load: (() => Promise<string>) | undefined,
    readonly resolve0: (x: unknown) => void,
    readonly reject0: (e: unknown) => void,
    /** The driver's handler the query was built with (the request's client, or its transaction's). */
    readonly handler0: (q: unknown) => void,
  ) {}

  /** `sql.file`: its text first. */
  async loadThenStart(): Promise<void> {
    const q = this.q
    try {
      q.strings = [await this.load!()]
    } catch (e) {
      this.fail(e)
      return
    }
    this.start()
  }

  /** Refused, or the gate (and the pooled connection) taken — now when free, else once given — then sent. */
  start(): void {
    const { q, ctx, g } = this
    try {
      const refused = ctx.refuse(q, g !== undefined)
      if (refused) return void q.reject(refused)
      if (q.cancelled) return // cancelled before it was sent: already rejected, never takes a slot
      if (!g) {
        this.acquired()
        return
      }
      const now = g.acquireNow()
      if (typeof now === 'function') this.granted(now)
      else
        now.then(
          (release) => this.granted(release),
          (e) => this.fail(e),
        )
    } catch (e) {
      this.fail(e)
    }
  }

  /** The gate (and the pooled connection) is this query's until `release`. */
  private granted(release: Release): void {
    this.release = release
    this.acquired()
  }

  /** It never reached the driver: the slot back (if taken), the query rejected — never a throw from here. */
  private fail(e: unknown): void {
    try {
      this.drop()
      this.q.reject(e)
    } catch {}
  }

  /** A cancel still on its way would land on whatever this connection runs next: not this statement. */
  private acquired(): void {
    let cancelling: Promise<void> | undefined
    try {
      cancelling = this.ctx.quiet()
    } catch (e) {
      this.fail(e)
      return
    }
    if (!cancelling) {
      this.send()
      return
    }
    cancelling.then(
      () => this.send(),
      (e) => this.fail(e),
    )
  }

  private send(): void {
    const { q, ctx } = this
    try {
      // Cancelled while it waited: postgres.js already rejected it (57014) and its connection would skip it
      // while marking itself busy, wedging every later query. It never reaches the connection.
      if (q.cancelled) {
        this.drop()
        return
      }
      const closed = ctx.closedNow()
      if (closed) {
        this.drop()
        return void q.reject(closed)
      }
      ctx.beforeSend(q)
      this.tracking = ctx.sent(q)
      // A pooled connection's handler (the lease set it), else the driver's own.
      const handler = q.handler === hookedHandler ? this.handler0 : q.handler
      q.handler = handler
      handler(q)
    } catch (e) {
      this.fail(e)
    }
  }

  /** Runs once when the sent query settles. */
  settle(e?: unknown): void {
    const t = this.tracking
    if (!t) return
    this.tracking = undefined
    t.settled(e)
    // The slot (the connection) is given back once this request's cancels in flight closed.
    const release = this.release
    this.release = noop
    const cancelling = this.ctx.quiet()
    if (cancelling) void cancelling.then(release)
    else release()
    if (!this.iterated) this.detach()
  }

  /**
   * Settled for good: postgres.js's own functions again. postgres.js keeps its Query objects reachable
   * through V8's minor GCs (a raw pool's too), and ours would otherwise drag the whole request (client,
   * leases, statements) along into the old generation until a full GC: most of the shared pool's GC time.
   * Nothing calls them again once the query settled (its promise is settled anyway).
   */
  detach(): void {
    const q = this.q
    const proto = Object.getPrototypeOf(q)
    q.resolve = this.resolve0
    q.reject = this.reject0
    q.cursor = proto.cursor
    q[HOOK] = undefined
  }

  /** Gives the slot back if one was taken (a query that never reached the driver). */
  drop(): void {
    const release = this.release
    this.release = noop
    release()
  }
}

/** A driver error for a hooked query: mapped, its tracking settled with it, then handed to `reject`. */
function rejectWith(reject: (e: unknown) => void, h: Hooked, e: unknown): void {
  // An inlined query whose class keeps its InlinedText (inline/inliner.ts): the position on the template.
  const inlined = h.q[INLINED] as InlinedText | undefined
  const m = h.ctx.mapError(inlined ? inlined.position(e) : e, h.q)
  h.settle(m ?? new Error(String(m)))
  reject(m)
}

/** A hooked query's result for `resolve`: the query settled, or a COPY's stream (the COPY started). */
function resolveWith(resolve: (x: unknown) => void, h: Hooked, x: unknown): void {
  const { q, ctx } = h
  // A COPY resolves with its stream when it starts; it settles at its ReadyForQuery (resolved again then).
  if (q.streaming && x && typeof (x as { pipe?: unknown }).pipe === 'function') {
    const stream = x as { destroy: (e?: unknown, ...a: unknown[]) => unknown }
    const destroy = stream.destroy
    // The driver destroys the stream with the statement's error: mapped like the query's own.
    stream.destroy = function (this: unknown, e?: unknown, ...a: unknown[]) {
      return destroy.call(this, e ? ctx.mapError(e, q) : e, ...a)
    }
    ctx.copying(q, x)
    resolve(x)
    return
  }
  h.settle()
  if (q.options?.[SENT_SIMPLY]) sentSimply(x)
  resolve(x)
  const cls = (x as { constructor?: unknown } | null | undefined)?.constructor
  if (cls !== resultClass) {
    resultClass = cls
    fastSpeciesClasses(cls) // postgres.js's Result (fast-class.ts)
  }
}

// A cursor assigns new resolve/reject functions per fetch (postgres.js's cursor() iterator; nothing else
// reassigns them): from cursor() on, accessors keep every one mapped and tracked. Only then: accessors on
// every query would turn each Query into a slow dictionary object.
function hookedCursor(this: any, ...args: unknown[]): unknown {
  const h = this[HOOK] as Hooked
  h.iterated = true
  let reject = this.reject
  let resolve = this.resolve
  Object.defineProperty(this, 'reject', {
    get: () => reject,
    set: (f: (e: unknown) => void) => {
      reject = (e: unknown) => rejectWith(f, h, e)
    },
    configurable: true,
  })
  Object.defineProperty(this, 'resolve', {
    get: () => resolve,
    set: (f: (x: unknown) => void) => {
      resolve = (x: unknown) => resolveWith(f, h, x)
    },
    configurable: true,
  })
  const r = Object.getPrototypeOf(this).cursor.apply(this, args)
  // Broken off: postgres.js sends Close + Sync; the connection is given back at that ReadyForQuery (the
  // query's final resolve settles it), never while the portal is still open.
  return !h.g || r === this ? r : releaseWhenIterated(r, () => h.drop(), noop)
}
