/**
 * One postgres.js client per request, created on first use, and its lifecycle: lazy creation, the
 * counters `onEvent` reports, the graceful close and the abort. Every query passes through
 * `query-hook.ts`; `sql-proxy.ts` makes `sql` a real postgres.js `Sql`.
 */
import postgres, { type Sql } from 'postgres'
import { clientClosed, deadlockInTransaction, PoolerError } from '../errors'
import { guardQuery } from '../guard/query-guard'
import { inlineQuery } from '../inline/inliner'
import type { PoolerEvent } from '../options'
import { type RequestLeases, requestLeases } from '../pool/lease'
import { sharedPool } from '../pool/registry'
import type { ClientConfig } from '../preset'
import { registerArrayTypes, syncArrayTypes } from './array-types'
import { mapConnectionError } from './driver-errors'
import { gate } from './gate'
import { type HookContext, hookQuery } from './query-hook'
import { insideTransaction, type ProxyContext, wrapSql } from './sql-proxy'

/** A request's client and its lifecycle. */
export interface RequestClient {
  /** What handlers see as `c.var.sql`. */
  readonly sql: Sql<any>
  /** True once a query was created (the driver client exists). */
  readonly used: boolean
  /** Statements sent to the server (fragments and statements refused before sending do not count). */
  readonly queries: number
  /** Graceful, bounded close: running queries get `timeout` seconds, then sockets are destroyed. */
  close(timeout: number): Promise<void>
  /** The client went away: cancel running statements on the server (bounded), then destroy the sockets. */
  abort(): Promise<void>
}

const noop = () => {}

/**
 * Creates the per-request client. Nothing connects until the first query runs.
 *
 * @example
 * ```ts
 * import { clientConfig, createRequestClient, parseOptions } from 'hono-pooler/internal'
 *
 * const client = createRequestClient(clientConfig('postgres://app:pw@127.0.0.1:6432/app', parseOptions()))
 * await client.sql`select 1`
 * await client.close(5)
 * ```
 */
export function createRequestClient(config: ClientConfig): RequestClient {
  const { mode, options } = config
  const transaction = mode === 'transaction'
  // Outside sql.begin, at most one statement in flight per connection: PgBouncer/Supavisor drop replies
  // to queries pipelined behind a ReadyForQuery (the pipelining hang).
  // With a shared pool (pool/) every top-level statement leases a pooled connection after this gate.
  const pooled = options.pool !== undefined
  const inFlight = transaction || pooled ? gate(options.max) : undefined
  let leases: RequestLeases | undefined
  let real: Sql<any> | undefined
  let closed = false
  let queries = 0
  let arraysSynced = false
  const active = new Set<{ cancel(): unknown }>()
  const owner = {}
  // With max: 1 the transaction holds the only connection: c.var.sql inside its own sql.begin() callback
  // would wait for it forever. Fail fast instead.
  const deadlocked = () =>
    inFlight && options.max === 1 && insideTransaction.getStore() === owner
      ? deadlockInTransaction()
      : undefined

  // Creating the driver client connects nothing; reading its properties stays allowed after the request.
  const ensure = (): Sql<any> => {
    if (!real) {
      if (pooled) leases = requestLeases(sharedPool(config), () => client.abort())
      real = leases ? leases.pool.builder : postgres(config.url, config.driver)
      if (config.driver.fetch_types === false) registerArrayTypes(real)
    }
    return real
  }
  const emit = (event: PoolerEvent) => {
    try {
      options.onEvent?.(event)
    } catch {} // an observer must never break a request
  }
  const mapError = (e: unknown) => {
    const mapped = mapConnectionError(e, config)
    if (mapped !== e && mapped instanceof PoolerError)
      emit({ type: 'error', host: config.info.host, mode, code: mapped.code, message: mapped.message })
    return mapped
  }

  const hooks: HookContext = {
    refuse: (q, gated) =>
      closed ? clientClosed() : (guardQuery(q, config.guard) ?? (gated ? deadlocked() : undefined)),
    closedNow: () => (closed ? clientClosed() : undefined),
    beforeSend: (q) => {
      if (!arraysSynced && config.driver.fetch_types === false) syncArrayTypes(real!)
      arraysSynced = true
      // Values as escaped literals: one round trip per query instead of two (see inline/inliner.ts).
      if (config.inline) inlineQuery(q, real!.options as any)
    },
    sent: (q) => {
      queries++
      active.add(q)
      return () => active.delete(q)
    },
    mapError,
  }
  const proxyContext: ProxyContext = {
    transaction,
    guardRefuses: config.guard === 'error',
    prepare: config.driver.prepare,
    isClosed: () => closed,
    ensure,
    deadlocked,
    patch: (query, g, load) => hookQuery(query, leases && g ? leases.gateFor(query, g) : g, hooks, load),
    ...(pooled && { lease: (g) => leases!.lease(g) }),
    mapError,
    owner,
  }

  // Cancel first: PgBouncer drops a CancelRequest whose client has already disconnected.
  const cancelRunning = async () => {
    const running = [...active]
    if (!running.length) return
    const ended = running.map((q) => {
      Promise.resolve(q.cancel()).catch(() => {})
      return Promise.prototype.then.call(q, noop, noop)
    })
    await Promise.race([Promise.all(ended), new Promise((r) => setTimeout(r, 1000))])
  }

  const sql = wrapSql(proxyContext, ensure, inFlight, true)
  const client: RequestClient = {
    sql,
    get used() {
      return real !== undefined
    },
    get queries() {
      return queries
    },
    async abort() {
      closed = true
      leases?.stop()
      if (!real) return
      await cancelRunning()
      // Shared pool: only this request's connections, and only those still busy after the cancel.
      if (leases) (await leases.settled(1000)) || leases.destroyHeld()
      else await real.end({ timeout: 0 })
    },
    async close(timeout: number) {
      closed = true
      if (!leases) return real?.end({ timeout })
      leases.stop()
      if (await leases.settled(timeout * 1000)) return
      await cancelRunning()
      leases.destroyHeld()
    },
  }
  return client
}
