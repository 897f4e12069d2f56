/**
 * One postgres.js client per request, created on first use, and its lifecycle: lazy creation, the
 * counters `onEvent` reports, the graceful close and the abort. Every query passes through
 * `query-hook.ts`; `sql-proxy.ts` makes `sql` a real postgres.js `Sql`.
 */
import postgres, { type Sql } from 'postgres'
import { clientClosed, deadlockInTransaction, PoolerError, queryTimedOut, STATUS } from '../errors'
import { hyperdriveGuard } from '../guard/hyperdrive-notify'
import { guardQuery } from '../guard/query-guard'
import { inlineQuery } from '../inline/inliner'
import { ABORT_WAIT_MS, type PoolerEvent } from '../options'
import { type RequestLeases, requestLeases } from '../pool/lease'
import { sharedPool } from '../pool/registry'
import type { ClientConfig } from '../preset'
import { queryText } from '../sql/query-text'
import type { ClientObserver } from '../telemetry/observer'
import { registerArrayTypes, syncArrayTypes } from './array-types'
import { connectionLost, mapConnectionError } from './driver-errors'
import { driverOptions } from './driver-options'
import { gate } from './gate'
import { downProbe } from './probe'
import { hookQuery } from './query-hook'
import {
  Client,
  ClientContext,
  exposeOptions,
  Hooks,
  Lifecycle,
  mustSync,
  Owner,
  observed,
  type RequestClient,
  within,
} from './request-parts'
import { insideTransaction, wrapSql } from './sql-proxy'
import { type Statements, statements } from './statements'
import { refuseTransactionControl } from './transaction-control'

export type { RequestClient } from './request-parts'

const DESTROYED = new Set(['CONNECTION_DESTROYED', 'CONNECTION_CLOSED', 'CONNECTION_ENDED'])

/** A query's text with `$n` for its values (empty when it cannot be built). */
function statementText(q: any): string {
  try {
    return queryText(q).text
  } catch {
    return ''
  }
}

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
export function createRequestClient(config: ClientConfig, observer?: ClientObserver): RequestClient {
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
  // Statement texts for an observer (created with the observer: most requests have none).
  const texts = observer ? new WeakMap<object, string>() : undefined
  // postgres.js's end() waits for a reserved connection until its timeout: the request is over, release them.
  const reservations = new Set<() => Promise<void>>()
  const releaseAll = () => Promise.all([...reservations].map((release) => release()))
  /** Releases the reserved connections within `ms` (no timer when there are none). */
  const releaseWithin = (ms: number) => (reservations.size ? within(releaseAll(), ms) : undefined)
  // A connection died under this request: nothing to wait for at close (postgres.js's end() would wait
  // its whole timeout on a connection that lost its socket mid-statement).
  let lost = false
  let failed = false
  // A statement past queryTimeout whose cancel did not land: destroy the sockets (a shared pool is never
  // ended: only this request's connections leave it).
  // A cancelled statement's pooled connection never goes back to the pool (the cancel names a backend).
  // Created with the first statement sent: a request that never queries does not pay for it.
  let tracked: Statements | undefined
  const running = (): Statements =>
    (tracked ??= statements(
      options.queryTimeout,
      () => {
        lost = true
        if (leases) leases.destroyHeld()
        else void real?.end({ timeout: 0 })
      },
      () => leases?.doom(),
      downProbe(config),
    ))
  const owner = new Owner()
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
      if (leases) {
        real = leases.pool.builder
        if (config.driver.fetch_types === false) registerArrayTypes(real)
      } else {
        // Parsed once per configuration, fresh per-client state (driver-options.ts); array types included.
        const options = driverOptions(config)
        real = postgres(observer ? observed(options, observer) : options)
      }
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
  // One event per failure: per error object (the driver's, or ours), and per query (one may be rejected twice).
  let reported: WeakSet<object> | undefined
  const mapError = (e: unknown, q?: unknown) => {
    // The request is over and we destroyed its sockets: not a lost connection (a query left running).
    if (closed && (e as { code?: unknown } | null)?.code === 'CONNECTION_DESTROYED') return e
    // The probe found the pooler's database down and the sockets were destroyed: what they fail with.
    const down = DESTROYED.has((e as { code?: unknown } | null)?.code as string)
      ? tracked?.lostText(q)
      : undefined
    const mapped =
      down !== undefined
        ? connectionLost(config, down, e)
        : tracked?.timedOut(q) && !(e instanceof PoolerError)
          ? queryTimedOut(options.queryTimeout, e, config.info.host)
          : mapConnectionError(e, config)
    // Reported once: mapped here, or already coded by the connect layer (TLS, SCRAM) — 503/504 codes only.
    if (mapped instanceof PoolerError && STATUS[mapped.code]) {
      failed = true
      if (mapped.code === 'CONNECTION_LOST' || mapped.code === 'TLS_FAILED') lost = true
      const seen = [mapped, e, q].filter((x): x is object => !!x && typeof x === 'object')
      reported ??= new WeakSet<object>()
      if (seen.some((x) => reported!.has(x))) return mapped
      for (const x of seen) reported.add(x)
      emit({ type: 'error', host: config.info.host, mode, code: mapped.code, message: mapped.message })
    }
    return mapped
  }
  const refuse = (q: any, gated: boolean) =>
    closed
      ? clientClosed()
      : (guardQuery(q, config.guard) ??
        (config.hyperdrive ? hyperdriveGuard(q, config.guard) : undefined) ??
        (gated ? deadlocked() : undefined))
  const closedNow = () => (closed ? clientClosed() : undefined)
  const beforeSend = (q: any) => {
    if (texts) texts.set(q, statementText(q)) // before inlining: the template, never values
    if (!arraysSynced && config.driver.fetch_types === false && mustSync(real!, leases !== undefined))
      syncArrayTypes(real!)
    arraysSynced = true
    // Values as escaped literals: one round trip per query instead of two (see inline/inliner.ts).
    if (config.inline) inlineQuery(q, real!.options as any)
  }
  const quiet = () => tracked?.quiet()
  const copying = (q: any, stream: unknown) => tracked?.copying(q, stream)
  // The hooks a query gets, created on first use (a request uses one or two of the three kinds):
  // inside a transaction; top level (it may wait in the pooler's queue and ask the down probe,
  // client/probe.ts); top level on a shared pool (which also refuses transaction control).
  let hooks: Hooks | undefined
  let topHooks: Hooks | undefined
  let pooledHooks: Hooks | undefined
  const sentTop = (q: any) => track(q, true)
  const hooksFor = (top: boolean | undefined): Hooks => {
    if (top && leases) {
      pooledHooks ??= new Hooks(pooledRefuse, closedNow, beforeSend, sentTop, mapError, copying, quiet)
      return pooledHooks
    }
    if (top) {
      topHooks ??= new Hooks(refuse, closedNow, beforeSend, sentTop, mapError, copying, quiet)
      return topHooks
    }
    hooks ??= new Hooks(refuse, closedNow, beforeSend, (q) => track(q, false), mapError, copying, quiet)
    return hooks
  }
  function track(q: any, probing: boolean) {
    queries++
    const settled = running().track(q, probing)
    const end = observer?.statement(texts?.get(q) ?? '')
    // Ends with the query (resolve/reject), never through a handler on its promise (see query-hook.ts).
    return (error?: unknown) => {
      settled()
      if (end) error === undefined ? end() : end(error)
    }
  }
  const pooledRefuse = (q: any, gated: boolean) => refuse(q, gated) ?? refuseTransactionControl(q)
  const proxyContext = new ClientContext(
    transaction,
    options.max,
    config.driver.prepare,
    owner,
    reservations,
    () => closed,
    ensure,
    deadlocked,
    // Shared pool: a top-level statement leases a pooled connection after the gate, and may not control a
    // transaction (the connection goes back when the statement settles).
    (query, g, load, top) =>
      hookQuery(query, top && leases && g ? leases.gateFor(query, g) : g, hooksFor(top), load),
    mapError,
    () => observer?.connecting(),
    () => {
      if (leases) exposeOptions(leases.pool.builder)
    },
    pooled ? (g) => leases!.lease(g) : undefined,
    pooled || undefined,
  )

  const sql = wrapSql(proxyContext, ensure, inFlight, true)
  const client = new Client(
    sql,
    () => real !== undefined,
    () => queries,
    () => failed,
    new Lifecycle(
      async () => {
        closed = true
        leases?.stop()
        if (!real) return
        // A cancelled statement's pooled connection never goes back to the pool (the cancel names a backend).
        if (tracked?.size) leases?.doom()
        if (!lost) await tracked?.cancelUntilSettled(ABORT_WAIT_MS)
        await releaseWithin(1000)
        // Shared pool: only this request's connections, and only those still busy after the cancel.
        if (leases) (await leases.settled(1000)) || leases.destroyHeld()
        else await real.end({ timeout: 0 })
        observer?.closed()
      },
      async (timeout: number) => {
        closed = true
        // Reserved connections go back once their statements settled (bounded by the timeout).
        let left = timeout
        if (reservations.size) {
          const started = Date.now()
          await releaseWithin(lost ? 0 : timeout * 1000)
          left = Math.max(0, timeout - (Date.now() - started) / 1000)
        }
        // A dead connection: nothing to wait for (postgres.js would wait the whole timeout for its reply).
        if (!leases) {
          await real?.end({ timeout: lost ? 0 : left })
          if (real) observer?.closed()
          return
        }
        leases.stop()
        if (!lost && (await leases.settled(left * 1000))) return observer?.closed()
        leases.doom()
        if (!lost) await tracked?.cancelUntilSettled(1000)
        leases.destroyHeld()
        observer?.closed()
      },
      () => {
        // Nothing to wait for: no connection held or reserved (a shared pool's request between statements),
        // no client of its own (a request that never queried), no observer to tell.
        if (observer || lost || reservations.size || (leases ? !leases.idle() : real !== undefined))
          return false
        closed = true
        leases?.stop()
        return true
      },
    ),
  )
  return client
}
