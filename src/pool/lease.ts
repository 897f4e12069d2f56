/**
 * A request's side of the shared pool: every top-level statement and every `sql.begin` leases a pooled
 * connection (after the request's own `max` gate) and gives it back when it settles. The query, built on
 * the pool's builder, is handed to the leased connection's handler. Closing or aborting the request stops
 * its waits, and only its own connections are cancelled or terminated.
 */
import type { Sql } from 'postgres'
import type { Gate } from '../client/gate'
import { clientClosed } from '../errors'
import type { ConnectionPool, Slot } from './pool'

/** What a request holds of the shared pool. */
export interface RequestLeases {
  readonly pool: ConnectionPool
  /** The gate for one top-level query: the request's gate, then a pooled connection the query is handed to. */
  gateFor(query: unknown, g: Gate): Gate
  /** A pooled connection for a transaction (after the request's gate). */
  lease(g: Gate | undefined): Promise<{ sql: Sql<any>; release(): void }>
  /** Waits up to `ms` until the request holds no connection; true when it holds none. */
  settled(ms: number): Promise<boolean>
  /** The request is over: its waits end with `CLIENT_CLOSED`. */
  stop(): void
  /** Terminates the connections the request still holds (they leave the pool). */
  destroyHeld(): void
}

/**
 * @example
 * const leases = requestLeases(pool, () => client.abort())
 * hookQuery(query, leases.gateFor(query, requestGate), hooks)
 */
export function requestLeases(pool: ConnectionPool, abort: () => Promise<void>): RequestLeases {
  const stopped = new AbortController()
  const held = new Set<Slot>()
  const waiting = new Set<() => void>()

  const take = async (g: Gate | undefined): Promise<Slot> => {
    await g?.acquire()
    try {
      const slot = await pool.acquire(stopped.signal)
      held.add(slot)
      pool.holders.add(abort)
      return slot
    } catch (e) {
      g?.release()
      throw e
    }
  }
  const give = (slot: Slot, g: Gate | undefined) => {
    held.delete(slot)
    pool.release(slot)
    g?.release()
    if (held.size) return
    pool.holders.delete(abort)
    for (const done of waiting) done()
  }

  return {
    pool,
    gateFor(query: any, g: Gate): Gate {
      let slot: Slot | undefined
      return {
        async acquire() {
          slot = await take(g)
          // A query cancelled while it waited must not reach postgres.js's handler (which would park
          // the connection): hookQuery's catch releases the lease.
          if (query.cancelled) throw new Error('canceling statement due to user request')
          query.handler = slot.handler
        },
        release() {
          if (!slot) return
          const s = slot
          slot = undefined
          give(s, g)
        },
      }
    },
    async lease(g) {
      const slot = await take(g)
      let given = false
      return {
        sql: slot.sql,
        release: () => {
          if (given) return
          given = true
          give(slot, g)
        },
      }
    },
    async settled(ms) {
      if (!held.size) return true
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
    },
    stop() {
      if (!stopped.signal.aborted) stopped.abort(clientClosed())
    },
    destroyHeld() {
      for (const slot of held) pool.destroy(slot)
    },
  }
}
