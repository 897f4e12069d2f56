/**
 * Parts of the request client (request-client.ts) that hold no per-request state: the client's interface,
 * an observed statement's tracking, when the shared builder's array types need syncing, small helpers.
 */
import type { Sql } from 'postgres'
import type { ClientConfig } from '../preset'
import type { ClientObserver } from '../telemetry/observer'
import type { Settles } from './query-hook'

/** A request's client and its lifecycle. */
export interface RequestClient {
  /** What handlers see as `c.var.sql`. */
  readonly sql: Sql<any>
  /** True once a query was created (the driver client exists). */
  readonly used: boolean
  /** Statements sent to the server (fragments and statements refused before sending do not count). */
  readonly queries: number
  /** A connection error (a coded `PoolerError`) happened during the request. */
  readonly failed: boolean
  /** Graceful, bounded close: running queries get `timeout` seconds, then sockets are destroyed. */
  close(timeout: number): Promise<void>
  /** The client went away: cancel running statements on the server (bounded), then destroy the sockets. */
  abort(): Promise<void>
  /**
   * Closes now when there is nothing to wait for (no connection held or reserved, none of its own, no
   * observer to tell) and returns true; else false and `close()` does it.
   */
  closeIdle(): boolean
}

/** A statement's tracking that also ends its observer's span (`ClientObserver.statement`). */
export class Observed implements Settles {
  constructor(
    private readonly statement: Settles,
    private readonly end: ((error?: unknown) => void) | undefined,
  ) {}
  settled(error?: unknown): void {
    this.statement.settled()
    if (this.end) error === undefined ? this.end() : this.end(error)
  }
}

// A shared pool's builder (its options are every pooled connection's): synced once, then again before each
// request's first statement only once its options were handed out through c.var.sql (Drizzle sets parsers
// that way) — until then nothing can have changed them. A per-request client is synced every time.
const syncedBuilders = new WeakSet<object>()
const exposedBuilders = new WeakSet<object>()
/** The builder's options were handed out through c.var.sql: sync before every request's first statement. */
export const exposeOptions = (builder: Sql<any>): void => {
  exposedBuilders.add(builder)
}
export const mustSync = (builder: Sql<any>, shared: boolean): boolean => {
  if (!shared || exposedBuilders.has(builder)) return true
  if (syncedBuilders.has(builder)) return false
  syncedBuilders.add(builder)
  return true
}

/** Waits for `p` at most `ms`. */
export const within = (p: Promise<unknown>, ms: number) => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer))
}

/** The driver options with the connection-setup signal for an observer (the first ParameterStatus). */
export function observed(driver: ClientConfig['driver'], observer: ClientObserver): ClientConfig['driver'] {
  const user = driver.onparameter
  return {
    ...driver,
    onparameter: (key: string, value: unknown) => {
      observer.connected()
      user?.(key, value)
    },
  }
}
