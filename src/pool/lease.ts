/**
 * A request's side of the shared pool: every top-level statement and every `sql.begin` leases a pooled
 * connection (after the request's own `max` gate) and gives it back when it settles. The query, built on
 * the pool's builder, is handed to the leased connection's handler. Closing or aborting the request stops
 * its waits, and only its own connections are cancelled or terminated.
 */
import type { Sql } from 'postgres'
import type { Gate, Release } from '../client/gate'
import { clientClosed } from '../errors'
import type { ConnectionPool, Slot } from './pool'

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

/** A pooled connection taken for one statement or transaction, and how to give it back. */
class Taken {
  constructor(
    readonly slot: Slot,
    readonly release: Release,
  ) {}
}

/** A transaction's pooled connection. */
class Leased {
  constructor(
    readonly sql: Sql<any>,
    readonly release: Release,
  ) {}
}

/**
 * One top-level query's gate: the request's gate, then a pooled connection the query is handed to. A
 * class (one per query): a getter in an object literal makes V8 build a slow dictionary object each time.
 */
class QueryLease implements Gate {
  constructor(
    private readonly query: { handler: unknown },
    private readonly g: Gate,
    private readonly leases: Leases,
  ) {}
  acquire(): Promise<Release> {
    const taken = this.leases.take(this.g)
    // Fast path (a free gate and an idle connection): no async frame, one settled promise.
    if (taken instanceof Taken) return Promise.resolve(this.hand(taken))
    return taken.then((t) => this.hand(t))
  }
  private hand(taken: Taken): Release {
    this.query.handler = taken.slot.handler
    return taken.release
  }
  tryAcquire(): undefined {
    return undefined
  }
  get inUse(): number {
    return this.leases.held.size
  }
}

const noop = () => {}

/**
 * A request's leases. Classes, not object literals of closures (here and for each query): V8 may allocate
 * what a literal builds once per request straight in the old generation, and a dead one there keeps the
 * whole request alive until the next full GC.
 */
class Leases implements RequestLeases {
  private stopped = false
  private doomed = false
  // The request's statements waiting for a connection (rejected with CLIENT_CLOSED when it ends).
  private readonly waits = new Set<(e: unknown) => void>()
  readonly held = new Set<Slot>()
  private readonly waiting = new Set<() => void>()

  constructor(
    readonly pool: ConnectionPool,
    private readonly abort: () => Promise<void>,
  ) {}

  private leased(slot: Slot, gated: Release): Release {
    this.held.add(slot)
    slot.holder = this.abort
    let given = false
    return () => {
      if (given) return
      given = true
      this.held.delete(slot)
      slot.holder = undefined
      if (this.doomed && !slot.destroyed) this.pool.destroy(slot)
      this.pool.release(slot)
      gated()
      if (this.held.size) return
      for (const done of this.waiting) done()
    }
  }

  // The request's gate first (taken in this tick when free, so the request's order is kept), then a slot.
  private async slowTake(g: Gate | undefined, now: Release | undefined): Promise<Taken> {
    const gated = now ?? (g ? await g.acquire() : noop)
    try {
      if (this.stopped) throw clientClosed()
      const slot = await this.pool.acquire(this.waits)
      return new Taken(slot, this.leased(slot, gated))
    } catch (e) {
      gated()
      throw e
    }
  }

  /** Fast path (a free gate and an idle connection): no promise until the caller's own await. */
  take(g: Gate | undefined): Taken | Promise<Taken> {
    const now = g ? g.tryAcquire() : noop
    const slot = now && !this.stopped ? this.pool.tryAcquire() : undefined
    return slot ? new Taken(slot, this.leased(slot, now!)) : this.slowTake(g, now)
  }

  // Waits until the request holds no connection (true), or `ms` passed (false).
  private async settledWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined
    let done: () => void = noop
    const free = await new Promise<boolean>((resolve) => {
      done = () => resolve(true)
      this.waiting.add(done)
      timer = setTimeout(() => resolve(false), ms)
    })
    clearTimeout(timer)
    this.waiting.delete(done)
    return free
  }

  gateFor(query: any, g: Gate): Gate {
    return new QueryLease(query, g, this)
  }
  async lease(g: Gate | undefined): Promise<Leased> {
    const taken = await this.take(g)
    return new Leased(taken.slot.sql, taken.release)
  }
  settled(ms: number): Promise<boolean> {
    // A fresh promise: awaiting a long-lived one makes V8 link the waiting request to it (async stack
    // traces), so every request awaiting it would survive minor GCs.
    return this.held.size ? this.settledWithin(ms) : Promise.resolve(true)
  }
  idle(): boolean {
    return this.held.size === 0
  }
  stop(): void {
    this.stopped = true
    if (!this.waits.size) return
    const e = clientClosed()
    for (const cancel of [...this.waits]) cancel(e)
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
 * const leases = requestLeases(pool, async () => {})
 * const tx = await leases.lease(gate(1)) // a pooled connection for one transaction
 * try {
 *   await tx.sql.begin((t) => t`select 1`)
 * } finally {
 *   tx.release()
 * }
 * ```
 */
export function requestLeases(pool: ConnectionPool, abort: () => Promise<void>): RequestLeases {
  return new Leases(pool, abort)
}
