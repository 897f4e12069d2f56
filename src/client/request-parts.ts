/**
 * Parts of the request client (request-client.ts) that hold no per-request state: the client object
 * handlers see, when the shared builder's array types need syncing, small helpers.
 */
import type { Sql } from 'postgres'
import type { ClientConfig } from '../preset'
import type { ClientObserver } from '../telemetry/observer'
import type { HookContext } from './query-hook'
import type { ProxyContext } from './sql-proxy'

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

/**
 * The graceful close and the abort of a request client.
 *
 * The per-request objects below are classes, not object literals: V8 tracks the survival of objects
 * built by a literal per source location and, once most survive a minor GC, allocates that literal's
 * objects straight in the old generation. Each holds closures over the whole request, which a dead
 * old-generation object keeps alive until the next full GC: every request would then be promoted.
 */
export class Lifecycle {
  constructor(
    readonly abort: () => Promise<void>,
    readonly close: (timeout: number) => Promise<void>,
    readonly closeIdle: () => boolean,
  ) {}
}

/** Identifies a request client (for `insideTransaction`). */
export class Owner {}

/** The query hook's view of its request client (see `Lifecycle` for why a class). */
export class Hooks implements HookContext {
  constructor(
    readonly refuse: HookContext['refuse'],
    readonly closedNow: HookContext['closedNow'],
    readonly beforeSend: HookContext['beforeSend'],
    readonly sent: HookContext['sent'],
    readonly mapError: HookContext['mapError'],
    readonly copying: HookContext['copying'],
    readonly quiet: HookContext['quiet'],
  ) {}
}

/** The wrapped `Sql`'s view of its request client (see `Lifecycle` for why a class). */
export class ClientContext implements ProxyContext {
  constructor(
    readonly transaction: boolean,
    readonly max: number,
    readonly prepare: boolean | undefined,
    readonly owner: object,
    readonly reservations: Set<() => Promise<void>>,
    readonly isClosed: ProxyContext['isClosed'],
    readonly ensure: ProxyContext['ensure'],
    readonly deadlocked: ProxyContext['deadlocked'],
    readonly patch: ProxyContext['patch'],
    readonly mapError: ProxyContext['mapError'],
    readonly connecting: NonNullable<ProxyContext['connecting']>,
    readonly optionsExposed: NonNullable<ProxyContext['optionsExposed']>,
    readonly lease: ProxyContext['lease'],
    readonly pooled: boolean | undefined,
  ) {}
}

/** A class, not an object literal: getters in a literal make V8 build a slow dictionary object per request. */
export class Client implements RequestClient {
  constructor(
    readonly sql: Sql<any>,
    private readonly isUsed: () => boolean,
    private readonly count: () => number,
    private readonly hasFailed: () => boolean,
    private readonly lifecycle: Lifecycle,
  ) {}
  get used(): boolean {
    return this.isUsed()
  }
  get queries(): number {
    return this.count()
  }
  get failed(): boolean {
    return this.hasFailed()
  }
  close(timeout: number): Promise<void> {
    return this.lifecycle.close(timeout)
  }
  abort(): Promise<void> {
    return this.lifecycle.abort()
  }
  closeIdle(): boolean {
    return this.lifecycle.closeIdle()
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
