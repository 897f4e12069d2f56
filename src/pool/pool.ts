/**
 * A shared pool for long-running servers, with SQLAlchemy's QueuePool semantics: `size` connections kept
 * once opened, `overflow` more under a burst (closed as soon as they are idle again), a query waits at most
 * `timeout` seconds for a connection (`POOL_TIMEOUT`), and a connection lives at most `recycle` seconds.
 *
 * Each connection is a postgres.js client with `max: 1` (a "slot"), leased for one statement or one
 * transaction at a time: statements of different requests are never pipelined on one connection. All
 * slots share one parsed postgres.js options object with the pool's `builder`, the client request-scoped
 * `c.var.sql` builds its queries on (it never connects: each query is handed to a leased slot).
 */
import postgres, { type Options, type Sql } from 'postgres'
import { isWorkerd } from '../connect/workerd-socket'
import { poolClosed, poolTimeout } from '../errors'
import type { PoolerMode } from '../url'
import type { ResolvedPoolOptions } from './options'
import { type QueryFactory, queryFactory } from './query-class'

/** One pooled connection: a postgres.js client with `max: 1`. */
export interface Slot {
  readonly sql: Sql<any>
  /** postgres.js's query handler of this client: a query built on the builder runs here once given it. */
  readonly handler: (query: unknown) => void
  /** Terminated (request aborted, pool closed): never handed out again. */
  destroyed: boolean
  /**
   * While leased: cancels the holding request's statements (close() past its timeout). A field of the
   * slot, not an entry in a pool-wide Set: V8 keeps every key a long-lived hash table ever held until a
   * full GC (its obsolete tables still point at them), so each request would survive the minor GCs.
   */
  holder: Holder | undefined
}

/** A request holding a pooled connection: `abort()` cancels its statements (close() past its timeout). */
export interface Holder {
  abort(): Promise<void>
}

/** One row of `poolStats()`. */
export interface PoolStats {
  host: string
  mode: PoolerMode
  size: number
  overflow: number
  /** Connections the pool holds (each reconnects on its next use if the server closed it). */
  open: number
  idle: number
  inUse: number
  /** Queries (or transactions) waiting for a connection. */
  waiting: number
}

/** Whose waits a request's end cancels: the pool counts its waits in `queued`. */
export interface WaitOwner {
  queued: number
}

/**
 * Waits for a connection: a statement's lease (`pool/lease.ts`), a transaction's, the budget check. The
 * queue is first in, first out, and all waits of a pool have the same timeout, so they fall due in order:
 * one timer, for the oldest, instead of one per wait.
 */
export interface PoolWaiter {
  /** The request it waits for (its end cancels the wait); undefined: nobody's. */
  readonly owner: WaitOwner | undefined
  /** When the wait ends with POOL_TIMEOUT (`performance.now()` milliseconds: a monotonic clock). */
  due: number
  granted(slot: Slot): void
  failed(e: unknown): void
}

/**
 * A wait for `acquire()`. A class, not an object literal: V8 may allocate what a literal builds per request
 * straight in the old generation, where a dead one keeps its request alive until the next full GC.
 */
class Waiter implements PoolWaiter {
  due = 0
  constructor(
    readonly granted: (slot: Slot) => void,
    readonly failed: (e: unknown) => void,
    readonly owner: WaitOwner | undefined,
  ) {}
}

/**
 * @example
 * ```ts
 * import { parseOptions } from '../options'
 *
 * const url = 'postgres://app:pw@127.0.0.1:5432/app'
 * const pool = new ConnectionPool('127.0.0.1', 'direct', url, {}, parseOptions({ pool: { size: 4 } }).pool!)
 * const slot = await pool.acquire()
 * try {
 *   await slot.sql`select 1`
 * } finally {
 *   pool.release(slot)
 * }
 * await pool.close(5)
 * ```
 */
export class ConnectionPool {
  /** Builds queries (types, transforms, helpers); never sends them. Its options are every slot's. */
  readonly builder: Sql<any>
  /**
   * Builds `c.var.sql`'s tagged and `unsafe` queries on the builder, as a fast-mode class (query-class.ts);
   * undefined when the builder is wrapped or builds them differently (then postgres.js builds them).
   */
  readonly queryFactory: QueryFactory | undefined
  /**
   * Its requests' deadlines share the process's timers: on a long-running server, not on Workers, where a
   * timer belongs to the request that set it (client/statements.ts).
   */
  readonly processTimers = !isWorkerd()
  private readonly slots = new Set<Slot>()
  private readonly idle: Slot[] = []
  private readonly waiters: PoolWaiter[] = []
  /** Set while waits are queued, for the oldest one's timeout. */
  private waitTimer: ReturnType<typeof setTimeout> | undefined
  /** Destroyed while leased, not given back yet: close() still reaches their holders. */
  private readonly destroyedHeld = new Set<Slot>()
  private inUse = 0
  private closing: Promise<void> | undefined
  private drained: (() => void) | undefined
  /** Called each time the last leased connection comes back (Vercel: close idle ones later). */
  onIdle: (() => void) | undefined

  constructor(
    readonly host: string,
    readonly mode: PoolerMode,
    url: string,
    driver: Options<any>,
    readonly options: ResolvedPoolOptions,
  ) {
    this.builder = postgres(url, {
      ...driver,
      max: 1,
      idle_timeout: 0, // never: kept open; overflow slots are closed by release()
      max_lifetime: options.recycle > 0 ? options.recycle : null,
    })
    this.queryFactory = queryFactory(this.builder)
  }

  private get limit(): number {
    return this.options.size + this.options.overflow
  }

  private open(): Slot {
    // An already parsed options object is used as is: the slots share types, parsers and server parameters.
    const sql = postgres(this.builder.options as unknown as Options<any>)
    const slot: Slot = { sql, handler: (sql.unsafe('') as any).handler, destroyed: false, holder: undefined }
    this.slots.add(slot)
    return slot
  }

  /**
   * A connection for one statement or transaction; waits up to `timeout` s. While it waits, `owner` counts
   * it, and `cancelWaits(owner)` ends it with an error (the request ended).
   */
  acquire(owner?: WaitOwner): Promise<Slot> {
    if (this.closing) return Promise.reject(poolClosed())
    const slot = this.tryAcquire()
    if (slot) return Promise.resolve(slot)
    return new Promise<Slot>((resolve, reject) => this.wait(new Waiter(resolve, reject, owner)))
  }

  /** A connection now (idle, or a new one within `size + overflow`), else undefined; never waits. */
  tryAcquire(): Slot | undefined {
    if (this.closing || this.waiters.length) return undefined
    const slot = this.idle.pop() ?? (this.slots.size < this.limit ? this.open() : undefined)
    if (slot) this.inUse++
    return slot
  }

  /** Queues `w` for the next connection given back (`tryAcquire` found none); POOL_TIMEOUT after `timeout` s. */
  wait(w: PoolWaiter): void {
    if (this.closing) {
      w.failed(poolClosed())
      return
    }
    const ms = this.options.timeout * 1000
    w.due = performance.now() + ms
    if (w.owner) w.owner.queued++
    this.waiters.push(w)
    this.waitTimer ??= setTimeout(this.expireWaits, ms)
  }

  /** The oldest waits fell due: POOL_TIMEOUT; the timer again for the next one. */
  private readonly expireWaits = (): void => {
    this.waitTimer = undefined
    const now = performance.now()
    try {
      while (this.waiters.length && this.waiters[0]!.due <= now) {
        const w = this.left(this.waiters.shift()!)
        w.failed(poolTimeout(this.options.timeout, this.host, this.limit))
      }
    } finally {
      // The others keep their timer, whatever one wait's end threw.
      if (this.waiters.length && !this.waitTimer)
        this.waitTimer = setTimeout(this.expireWaits, Math.max(1, this.waiters[0]!.due - performance.now()))
    }
  }

  /** `w` left the queue. */
  private left(w: PoolWaiter): PoolWaiter {
    if (w.owner) w.owner.queued--
    // Nothing waits any more: no timer keeps the process alive.
    if (!this.waiters.length && this.waitTimer) {
      clearTimeout(this.waitTimer)
      this.waitTimer = undefined
    }
    return w
  }

  /** Ends `owner`'s waits with `e` (its request is over). */
  cancelWaits(owner: WaitOwner, e: unknown): void {
    if (!owner.queued) return
    const mine = this.waiters.filter((w) => w.owner === owner)
    for (const w of mine) {
      this.waiters.splice(this.waiters.indexOf(w), 1)
      this.left(w).failed(e)
    }
  }

  /** Gives a leased connection back: to the next waiter, to the idle list, or closed (overflow). */
  release(slot: Slot): void {
    this.inUse--
    if (slot.destroyed) this.destroyedHeld.delete(slot)
    if (this.closing) {
      // close() ends it with the others
    } else if (slot.destroyed) {
      if (this.waiters.length) this.handOver(this.open())
    } else if (this.waiters.length) this.handOver(slot)
    else if (this.slots.size > this.options.size) {
      // Overflow: closed as soon as it is idle (SQLAlchemy closes it when returned).
      this.slots.delete(slot)
      void slot.sql.end({ timeout: 1 }).catch(() => {})
    } else this.idle.push(slot)
    if (this.inUse === 0) {
      this.drained?.()
      if (!this.closing) this.onIdle?.()
    }
  }

  private handOver(slot: Slot): void {
    const w = this.left(this.waiters.shift()!)
    this.inUse++
    w.granted(slot)
  }

  /** Terminates a leased connection (its request was aborted mid-statement); release() still follows. */
  destroy(slot: Slot): void {
    slot.destroyed = true
    this.slots.delete(slot)
    if (slot.holder) this.destroyedHeld.add(slot) // rare (an aborted request): a Set is fine here
    void slot.sql.end({ timeout: 0 }).catch(() => {})
  }

  /** Closes the idle connections (they reopen on demand). */
  async closeIdle(): Promise<void> {
    const idle = this.idle.splice(0)
    for (const slot of idle) this.slots.delete(slot)
    await Promise.all(idle.map((s) => s.sql.end({ timeout: 1 }).catch(() => {})))
  }

  stats(): PoolStats {
    return {
      host: this.host,
      mode: this.mode,
      size: this.options.size,
      overflow: this.options.overflow,
      open: this.slots.size,
      idle: this.idle.length,
      inUse: this.inUse,
      waiting: this.waiters.length,
    }
  }

  /** Stops handing out connections, waits up to `timeout` s for leased ones, then closes everything. */
  close(timeout: number): Promise<void> {
    if (this.closing) return this.closing
    const pending = this.waiters.splice(0)
    this.closing = (async () => {
      for (const w of pending) this.left(w).failed(poolClosed())
      if (this.inUse > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined
        await new Promise<void>((resolve) => {
          this.drained = resolve
          timer = setTimeout(resolve, timeout * 1000)
        })
        clearTimeout(timer)
      }
      // Still busy: each request cancels its own running statements (a backend does not read the
      // Terminate message while a statement runs), then its connections are destroyed.
      if (this.inUse > 0) {
        const holders = new Set<Holder>()
        for (const s of [...this.slots, ...this.destroyedHeld]) if (s.holder) holders.add(s.holder)
        await Promise.all([...holders].map((h) => h.abort().catch(() => {})))
      }
      const all = [...this.slots]
      this.slots.clear()
      this.idle.length = 0
      await Promise.all([
        ...all.map((s) => s.sql.end({ timeout: 0 }).catch(() => {})),
        this.builder.end({ timeout: 0 }).catch(() => {}),
      ])
    })()
    return this.closing
  }
}
