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

type Take = (g: Gate | undefined) => [Slot, Release] | Promise<[Slot, Release]>

/**
 * One top-level query's gate: the request's gate, then a pooled connection the query is handed to. A
 * class (one per query): a getter in an object literal makes V8 build a slow dictionary object each time.
 */
class QueryLease implements Gate {
  constructor(
    private readonly query: { handler: unknown },
    private readonly g: Gate,
    private readonly take: Take,
    private readonly held: Set<Slot>,
  ) {}
  async acquire(): Promise<Release> {
    const [slot, release] = await this.take(this.g)
    this.query.handler = slot.handler
    return release
  }
  tryAcquire(): undefined {
    return undefined
  }
  get inUse(): number {
    return this.held.size
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
  let stopped = false
  let doomed = false
  // The request's statements waiting for a connection (rejected with CLIENT_CLOSED when it ends).
  const waits = new Set<(e: unknown) => void>()
  const held = new Set<Slot>()
  const waiting = new Set<() => void>()

  const noop = () => {}
  const leased = (slot: Slot, gated: Release): Release => {
    held.add(slot)
    pool.holders.add(abort)
    let given = false
    return () => {
      if (given) return
      given = true
      held.delete(slot)
      if (doomed && !slot.destroyed) pool.destroy(slot)
      pool.release(slot)
      gated()
      if (held.size) return
      pool.holders.delete(abort)
      for (const done of waiting) done()
    }
  }
  // The request's gate first (taken in this tick when free, so the request's order is kept), then a slot.
  const slowTake = async (g: Gate | undefined, now: Release | undefined): Promise<[Slot, Release]> => {
    const gated = now ?? (g ? await g.acquire() : noop)
    try {
      if (stopped) throw clientClosed()
      const slot = await pool.acquire(waits)
      return [slot, leased(slot, gated)]
    } catch (e) {
      gated()
      throw e
    }
  }
  // Fast path (a free gate and an idle connection): no promise until the caller's own await.
  const take: Take = (g) => {
    const now = g ? g.tryAcquire() : noop
    const slot = now && !stopped ? pool.tryAcquire() : undefined
    return slot ? [slot, leased(slot, now!)] : slowTake(g, now)
  }

  // Waits until the request holds no connection (true), or `ms` passed (false).
  const settledWithin = async (ms: number): Promise<boolean> => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let done: () => void = () => {}
    const free = await new Promise<boolean>((resolve) => {
      done = () => resolve(true)
      waiting.add(done)
      timer = setTimeout(() => resolve(false), ms)
    })
    clearTimeout(timer)
    waiting.delete(done)
    return free
  }

  return {
    pool,
    gateFor: (query: any, g: Gate): Gate => new QueryLease(query, g, take, held),
    async lease(g) {
      const [slot, release] = await take(g)
      return { sql: slot.sql, release }
    },
    settled(ms) {
      // A fresh promise: awaiting a long-lived one makes V8 link the waiting request to it (async stack
      // traces), so every request awaiting it would survive minor GCs.
      return held.size ? settledWithin(ms) : Promise.resolve(true)
    },
    stop() {
      stopped = true
      if (!waits.size) return
      const e = clientClosed()
      for (const cancel of [...waits]) cancel(e)
    },
    doom() {
      doomed = true
    },
    destroyHeld() {
      for (const slot of held) pool.destroy(slot)
    },
  }
}
