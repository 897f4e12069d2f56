/**
 * One postgres.js client per request, created on first use, and its lifecycle: lazy creation, the
 * counters `onEvent` reports, the graceful close and the abort. Every query passes through
 * `query-hook.ts`; `sql-proxy.ts` makes `sql` a real postgres.js `Sql`.
 */
import postgres, { type Sql } from 'postgres'
import { clientClosed, deadlockInTransaction, PoolerError, queryTimedOut, STATUS } from '../errors'
import { guardQuery } from '../guard/query-guard'
import { inlineQuery } from '../inline/inliner'
import { ABORT_CANCEL_EVERY_MS, ABORT_WAIT_MS, CANCEL_GRACE_MS, type PoolerEvent } from '../options'
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
  /** A connection error (a coded `PoolerError`) happened during the request. */
  readonly failed: boolean
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
  // Statements sent and not settled, with postgres.js's canceller (its q.cancel() works only once).
  const active = new Map<any, () => void>()
  // A connection died under this request: nothing to wait for at close (postgres.js's end() would wait
  // its whole timeout on a connection that lost its socket mid-statement).
  let lost = false
  let failed = false
  let lastCode: string | undefined
  // Resolves abort()'s wait once no statement is running (settled through resolve/reject: an iterated
  // cursor never settles its own promise).
  let drained: () => void = noop
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
  // Queries past their queryTimeout: whatever they fail with (57014 from our cancel, the destroyed
  // socket) is QUERY_TIMEOUT. A user's own statement_timeout stays 57014.
  const timedOut = new WeakSet<object>()
  const reported = new WeakSet<PoolerError>()
  const mapError = (e: unknown, q?: unknown) => {
    // The request is over and we destroyed its sockets: not a lost connection (a query left running).
    if (closed && (e as { code?: unknown } | null)?.code === 'CONNECTION_DESTROYED') return e
    const mapped =
      q && timedOut.has(q as object) && !(e instanceof PoolerError)
        ? queryTimedOut(options.queryTimeout, e)
        : mapConnectionError(e, config)
    // Reported once: mapped here, or already coded by the connect layer (TLS, SCRAM) — 503/504 codes only.
    if (mapped instanceof PoolerError && STATUS[mapped.code] && !reported.has(mapped)) {
      reported.add(mapped)
      failed = true
      if (mapped.code === 'CONNECTION_LOST' || mapped.code === 'TLS_FAILED') lost = true
      if (mapped.code === lastCode) return mapped // one event per failure (a query may be rejected twice)
      lastCode = mapped.code
      emit({ type: 'error', host: config.info.host, mode, code: mapped.code, message: mapped.message })
    }
    return mapped
  }
  /** Sends a CancelRequest for every statement still running (postgres.js's q.cancel() works only once). */
  const cancelRunning = () => {
    for (const cancel of active.values()) cancel()
  }
  // queryTimeout: cancel on the server at the deadline; if the cancel does not land within a second
  // (stalled network, dead pooler), destroy the sockets. The query rejects with QUERY_TIMEOUT either way.
  const deadline = (q: any): (() => void) => {
    const seconds = options.queryTimeout
    if (!seconds) return noop
    let timer: ReturnType<typeof setTimeout> | undefined
    let destroy: ReturnType<typeof setTimeout> | undefined
    const arm = () => {
      clearTimeout(timer)
      timer = setTimeout(() => {
        timedOut.add(q)
        active.get(q)?.()
        destroy = setTimeout(() => {
          lost = true
          // A shared pool is never ended: only this request's connections leave it.
          if (leases) leases.destroyHeld()
          else void real?.end({ timeout: 0 })
        }, CANCEL_GRACE_MS)
      }, seconds * 1000)
    }
    arm()
    // A cursor: each fetch has the deadline, not the whole iteration. A batch delivered stops the clock;
    // asking for the next one (its promise settles) starts it again.
    if (q.cursorFn) {
      const fetched =
        (f: (...a: unknown[]) => unknown) =>
        (...a: unknown[]) => {
          clearTimeout(timer)
          const r = f(...a)
          Promise.resolve(r).then(() => active.has(q) && arm(), noop)
          return r
        }
      let fn = fetched(q.cursorFn)
      Object.defineProperty(q, 'cursorFn', {
        get: () => fn,
        set: (f: (...a: unknown[]) => unknown) => {
          fn = fetched(f)
        },
        configurable: true,
      })
    }
    return () => {
      clearTimeout(timer)
      clearTimeout(destroy)
    }
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
      const canceller = q.canceller as ((q: unknown) => void) | null
      active.set(q, () => {
        if (canceller)
          Promise.resolve()
            .then(() => canceller(q))
            .catch(noop)
      })
      const clear = deadline(q)
      return () => {
        clear()
        active.delete(q)
        if (active.size === 0) drained()
      }
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

  // Cancel first, and again until our statements settled (at most `ms`): PgBouncer drops a CancelRequest
  // whose client has already disconnected, and a statement still queued in PgBouncer (no server free yet)
  // cannot be cancelled before it starts — the repeated cancel catches it as soon as it does.
  const cancelUntilSettled = async (ms: number) => {
    if (!active.size || lost) return
    cancelRunning()
    const repeat = setInterval(cancelRunning, ABORT_CANCEL_EVERY_MS)
    let give: ReturnType<typeof setTimeout> | undefined
    await new Promise<void>((r) => {
      drained = r
      give = setTimeout(r, ms)
    })
    clearInterval(repeat)
    clearTimeout(give)
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
    get failed() {
      return failed
    },
    async abort() {
      closed = true
      leases?.stop()
      if (!real) return
      await cancelUntilSettled(ABORT_WAIT_MS)
      // Shared pool: only this request's connections, and only those still busy after the cancel.
      if (leases) (await leases.settled(1000)) || leases.destroyHeld()
      else await real.end({ timeout: 0 })
    },
    async close(timeout: number) {
      closed = true
      // A dead connection: nothing to wait for (postgres.js would wait the whole timeout for its reply).
      if (!leases) return real?.end({ timeout: lost ? 0 : timeout })
      leases.stop()
      if (!lost && (await leases.settled(timeout * 1000))) return
      await cancelUntilSettled(1000)
      leases.destroyHeld()
    },
  }
  return client
}
