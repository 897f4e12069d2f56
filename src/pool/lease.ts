/**
 * A request's side of the shared pool: every top-level statement and every `sql.begin` leases a pooled
 * connection (after the request's own `max` gate) and gives it back when it settles. The query, built on
 * the pool's builder, is handed to the leased connection's handler. Closing or aborting the request stops
 * its waits, and only its own connections are cancelled or terminated.
 */
import type { Sql } from 'postgres'
import type { Gate, Release } from '../client/gate'
import { clientClosed } from '../errors'
import type { ConnectionPool, Holder, PoolWaiter, Slot, WaitOwner } from './pool'

/** What a request holds of the shared pool. */
export interface RequestLeases {
  readonly pool: ConnectionPool
  /** The gate for one top-level query: the request's gate, then a pooled connection the query is handed to. */
  gateFor(query: unknown, g: Gate): Gate
  /** A pooled connection for a transaction (after the request's gate, taken now when it is free). */
  lease(g: Gate | undefined): Promise<{ sql: Sql<any>; release: Release }>
  /** Waits up to `ms` until the request holds no connection; true when it holds none. */
  settled(ms: number): Promise<boolean>
  /** The request holds no connection now. */
  idle(): boolean
  /** The request is over: its waits end with `CLIENT_CLOSED`. */
  stop(): void
  /** Terminates the connections the request still holds (they leave the pool). */
  destroyHeld(): void
  /**
   * The request cancels its statements: from now on every connection it gives back is terminated instead
   * (a CancelRequest names a backend, and it could land on another request's statement once the
   * connection was handed over).
   */
  doom(): void
}

/** A transaction's pooled connection. */
class Leased {
  constructor(
    readonly sql: Sql<any>,
    readonly release: Release,
  ) {}
}

/**
 * One lease: the request's gate, then a pooled connection, for one top-level query (it is the query's gate,
 * and hands the query to the connection) or one transaction. A class (one per statement): a getter in an
 * object literal makes V8 build a slow dictionary object each time. It holds the connection itself, and
 * waits in the pool's queue itself: one object and one release function, no async frames.
 */
class Lease implements Gate, PoolWaiter {
  due = 0
  slot: Slot | undefined
  private gated: Release = noop
  private resolve: ((release: Release) => void) | undefined
  private reject: ((e: unknown) => void) | undefined
  constructor(
    /** The query handed to the connection once leased (none for a transaction). */
    private readonly query: { handler: unknown } | undefined,
    private readonly g: Gate | undefined,
    readonly owner: Leases,
  ) {}
  acquire(): Promise<Release> {
    const now = this.acquireNow()
    return typeof now === 'function' ? Promise.resolve(now) : now
  }
  acquireNow(): Release | Promise<Release> {
    const { g } = this
    if (!g) return this.gatePassed(noop)
    // The request's gate first (taken now when free: the caller takes its turn, see gateTurn), then a slot.
    const now = g.tryAcquire()
    return now ? this.gatePassed(now) : g.acquire().then((gated) => this.gatePassed(gated))
  }
  private gatePassed(gated: Release): Release | Promise<Release> {
    const leases = this.owner
    if (leases.stopped) {
      gated()
      return Promise.reject(clientClosed())
    }
    this.gated = gated
    const slot = leases.pool.tryAcquire()
    // Fast path: an idle connection, no promise.
    if (slot) return this.take(slot)
    return new Promise<Release>((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
      leases.pool.wait(this)
    })
  }
  private take(slot: Slot): Release {
    this.slot = slot
    this.owner.hold(slot)
    if (this.query) this.query.handler = slot.handler
    return () => this.giveBack()
  }
  granted(slot: Slot): void {
    this.resolve!(this.take(slot))
  }
  failed(e: unknown): void {
    const gated = this.gated
    this.gated = noop
    gated()
    this.reject!(e)
  }
  private giveBack(): void {
    const slot = this.slot
    if (!slot) return
    this.slot = undefined
    this.owner.giveBack(slot, this.gated)
  }
  tryAcquire(): undefined {
    return undefined
  }
  get inUse(): number {
    return this.owner.held.length
  }
}

const noop = () => {}

/**
 * A request's leases. Classes, not object literals of closures (here and for each lease): V8 may allocate
 * what a literal builds once per request straight in the old generation, and a dead one there keeps the
 * whole request alive until the next full GC.
 */
class Leases implements RequestLeases, WaitOwner {
  stopped = false
  private doomed = false
  /** The request's waits in the pool's queue (they end with CLIENT_CLOSED when it ends). */
  queued = 0
  /** The connections the request holds (an array: a Set's add and delete per statement cost allocations). */
  readonly held: Slot[] = []
  /** Who waits for the request to hold nothing (`settled`; created on first use). */
  private waiting: Set<() => void> | undefined

  constructor(
    readonly pool: ConnectionPool,
    /** The request (its abort() cancels its statements when the pool closes under it). */
    private readonly request: Holder,
  ) {}

  hold(slot: Slot): void {
    this.held.push(slot)
    slot.holder = this.request
  }

  /** Gives a held connection back, then the request's gate. */
  giveBack(slot: Slot, gated: Release): void {
    const held = this.held
    const i = held.indexOf(slot)
    if (i >= 0) {
      held[i] = held[held.length - 1]!
      held.pop()
    }
    slot.holder = undefined
    if (this.doomed && !slot.destroyed) this.pool.destroy(slot)
    this.pool.release(slot)
    gated()
    if (held.length) return
    if (this.waiting) for (const done of this.waiting) done()
  }

  // Waits until the request holds no connection (true), or `ms` passed (false).
  private async settledWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined
    let done: () => void = noop
    const free = await new Promise<boolean>((resolve) => {
      done = () => resolve(true)
      this.waiting ??= new Set()
      this.waiting.add(done)
      timer = setTimeout(() => resolve(false), ms)
    })
    clearTimeout(timer)
    this.waiting?.delete(done)
    return free
  }

  gateFor(query: any, g: Gate): Gate {
    return new Lease(query, g, this)
  }
  async lease(g: Gate | undefined): Promise<Leased> {
    const lease = new Lease(undefined, g, this)
    const release = await lease.acquire()
    return new Leased(lease.slot!.sql, release)
  }
  settled(ms: number): Promise<boolean> {
    // A fresh promise: awaiting a long-lived one makes V8 link the waiting request to it (async stack
    // traces), so every request awaiting it would survive minor GCs.
    return this.held.length ? this.settledWithin(ms) : Promise.resolve(true)
  }
  idle(): boolean {
    return this.held.length === 0
  }
  stop(): void {
    this.stopped = true
    if (this.queued) this.pool.cancelWaits(this, clientClosed())
  }
  doom(): void {
    this.doomed = true
  }
  destroyHeld(): void {
    for (const slot of this.held) this.pool.destroy(slot)
  }
}

/**
 * @example
 * ```ts
 * import { gate } from '../client/gate'
 * import type { ConnectionPool } from './pool'
 *
 * declare const pool: ConnectionPool
 * const leases = requestLeases(pool, { abort: async () => {} })
 * const tx = await leases.lease(gate(1)) // a pooled connection for one transaction
 * try {
 *   await tx.sql.begin((t) => t`select 1`)
 * } finally {
 *   tx.release()
 * }
 * ```
 */
export function requestLeases(pool: ConnectionPool, request: Holder): RequestLeases {
  return new Leases(pool, request)
}
