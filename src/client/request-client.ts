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
import type { QueryFactory } from '../pool/query-class'
import { sharedPool } from '../pool/registry'
import type { ClientConfig } from '../preset'
import { queryText } from '../sql/query-text'
import type { ClientObserver } from '../telemetry/observer'
import { registerArrayTypes, syncArrayTypes } from './array-types'
import { connectionLost, mapConnectionError } from './driver-errors'
import { driverOptions } from './driver-options'
import { type Gate, gate, type Release } from './gate'
import { downProbe } from './probe'
import { type HookContext, hookQuery, type Settles } from './query-hook'
import { exposeOptions, mustSync, Observed, observed, type RequestClient, within } from './request-parts'
import { insideTransaction, type ProxyContext, wrapSql } from './sql-proxy'
import { requestStatements, type Statements } from './statements'
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
  return new RequestScopedClient(config, observer)
}

/**
 * A request's client: its state and what its parts call (the wrapped `Sql` through `RequestContext`, each
 * query's hook through `RequestHooks`). A class with methods, not a function of closures: a request that
 * runs one statement would otherwise build some forty functions, and their weight in the young generation
 * was a good part of the shared pool's cost per request.
 */
class RequestScopedClient implements RequestClient {
  readonly sql: Sql<any>
  private readonly options: ClientConfig['options']
  /**
   * Outside sql.begin, at most one statement in flight per connection: PgBouncer/Supavisor drop replies to
   * queries pipelined behind a ReadyForQuery (the pipelining hang). With a shared pool (pool/) every
   * top-level statement leases a pooled connection after this gate.
   */
  private readonly inFlight: Gate | undefined
  leases: RequestLeases | undefined
  real: Sql<any> | undefined
  closed = false
  private count = 0
  private arraysSynced = false
  /** Statement texts for an observer (created with the observer: most requests have none). */
  private readonly texts: WeakMap<object, string> | undefined
  /**
   * postgres.js's end() waits for a reserved connection until its timeout: the request is over, release
   * them (created by the first `sql.reserve()`).
   */
  reservations: Set<() => Promise<void>> | undefined
  /**
   * A connection died under this request: nothing to wait for at close (postgres.js's end() would wait its
   * whole timeout on a connection that lost its socket mid-statement).
   */
  private lost = false
  private hasFailed = false
  /**
   * The statements sent and not settled: a statement past queryTimeout whose cancel did not land destroys
   * the sockets (a shared pool is never ended: only this request's connections leave it); a cancelled
   * statement's pooled connection never goes back to the pool (the cancel names a backend). Created with
   * the first statement sent: a request that never queries does not pay for it.
   */
  private tracked: Statements | undefined
  /** One onEvent per failure: per error object (the driver's, or ours), and per query. */
  private reported: WeakSet<object> | undefined
  // The hooks a query gets, created on first use (a request uses one or two of the three kinds).
  private hooks: RequestHooks | undefined
  private topHooks: RequestHooks | undefined
  private pooledHooks: RequestHooks | undefined

  constructor(
    readonly config: ClientConfig,
    readonly observer: ClientObserver | undefined,
  ) {
    const { options } = config
    this.options = options
    const pooled = options.pool !== undefined
    this.inFlight = config.mode === 'transaction' || pooled ? gate(options.max) : undefined
    this.texts = observer ? new WeakMap<object, string>() : undefined
    this.sql = wrapSql(new RequestContext(this), undefined, this.inFlight, true)
  }

  get used(): boolean {
    return this.real !== undefined
  }
  get queries(): number {
    return this.count
  }
  get failed(): boolean {
    return this.hasFailed
  }

  /** Creating the driver client connects nothing; reading its properties stays allowed after the request. */
  ensure(): Sql<any> {
    if (this.real) return this.real
    const { config } = this
    if (this.options.pool !== undefined) {
      this.leases = requestLeases(sharedPool(config), this)
      this.real = this.leases.pool.builder
      if (config.driver.fetch_types === false) registerArrayTypes(this.real)
    } else {
      // Parsed once per configuration, fresh per-client state (driver-options.ts); array types included.
      const options = driverOptions(config)
      this.real = postgres(this.observer ? observed(options, this.observer) : options)
    }
    return this.real
  }

  /** The statements sent so far (undefined before the first). */
  tracking(): Statements | undefined {
    return this.tracked
  }

  running(): Statements {
    this.tracked ??= requestStatements(
      this.options.queryTimeout,
      this,
      downProbe(this.config),
      this.leases?.pool.processTimers === true,
    )
    return this.tracked
  }

  /** A cancel did not land (or the database is down): destroy the sockets (`StatementsOwner`). */
  stuck(): void {
    this.lost = true
    if (this.leases) this.leases.destroyHeld()
    else void this.real?.end({ timeout: 0 })
  }

  /** A timed-out statement is about to be cancelled: its pooled connection never goes back (`StatementsOwner`). */
  cancelling(): void {
    this.leases?.doom()
  }

  /**
   * With max: 1 the transaction holds the only connection: c.var.sql inside its own sql.begin() callback
   * would wait for it forever. Fail fast instead.
   */
  deadlocked(): PoolerError | undefined {
    return this.inFlight && this.options.max === 1 && insideTransaction.getStore() === this
      ? deadlockInTransaction()
      : undefined
  }

  private emit(event: PoolerEvent): void {
    try {
      this.options.onEvent?.(event)
    } catch {} // an observer must never break a request
  }

  /**
   * Queries past their queryTimeout: whatever they fail with (57014 from our cancel, the destroyed
   * socket) is QUERY_TIMEOUT. A user's own statement_timeout stays 57014.
   */
  mapError(e: unknown, q?: unknown): unknown {
    const { config, tracked } = this
    // The request is over and we destroyed its sockets: not a lost connection (a query left running).
    if (this.closed && (e as { code?: unknown } | null)?.code === 'CONNECTION_DESTROYED') return e
    // The probe found the pooler's database down and the sockets were destroyed: what they fail with.
    const down = DESTROYED.has((e as { code?: unknown } | null)?.code as string)
      ? tracked?.lostText(q)
      : undefined
    const mapped =
      down !== undefined
        ? connectionLost(config, down, e)
        : tracked?.timedOut(q) && !(e instanceof PoolerError)
          ? queryTimedOut(this.options.queryTimeout, e, config.info.host)
          : mapConnectionError(e, config)
    // Reported once: mapped here, or already coded by the connect layer (TLS, SCRAM) — 503/504 codes only.
    if (mapped instanceof PoolerError && STATUS[mapped.code]) {
      this.hasFailed = true
      if (mapped.code === 'CONNECTION_LOST' || mapped.code === 'TLS_FAILED') this.lost = true
      const seen = [mapped, e, q].filter((x): x is object => !!x && typeof x === 'object')
      this.reported ??= new WeakSet<object>()
      const reported = this.reported
      if (seen.some((x) => reported.has(x))) return mapped
      for (const x of seen) reported.add(x)
      this.emit({
        type: 'error',
        host: config.info.host,
        mode: config.mode,
        code: mapped.code,
        message: mapped.message,
      })
    }
    return mapped
  }

  refuse(q: any, gated: boolean): PoolerError | undefined {
    const { config } = this
    return this.closed
      ? clientClosed()
      : (guardQuery(q, config.guard) ??
          (config.hyperdrive ? hyperdriveGuard(q, config.guard) : undefined) ??
          (gated ? this.deadlocked() : undefined))
  }

  beforeSend(q: any): void {
    const { config } = this
    if (this.texts) this.texts.set(q, statementText(q)) // before inlining: the template, never values
    if (
      !this.arraysSynced &&
      config.driver.fetch_types === false &&
      mustSync(this.real!, this.leases !== undefined)
    )
      syncArrayTypes(this.real!)
    this.arraysSynced = true
    // Values as escaped literals: one round trip per query instead of two (see inline/inliner.ts).
    if (config.inline) inlineQuery(q, this.real!.options as any)
  }

  /**
   * The hooks a query gets: inside a transaction; top level (it may wait in the pooler's queue and ask the
   * down probe, client/probe.ts); top level on a shared pool (which also refuses transaction control).
   */
  hooksFor(top: boolean | undefined): RequestHooks {
    if (top && this.leases) {
      this.pooledHooks ??= new RequestHooks(this, true, true)
      return this.pooledHooks
    }
    if (top) {
      this.topHooks ??= new RequestHooks(this, true, false)
      return this.topHooks
    }
    this.hooks ??= new RequestHooks(this, false, false)
    return this.hooks
  }

  track(q: any, probing: boolean): Settles {
    this.count++
    const statement = this.running().track(q, probing)
    // Ends with the query (resolve/reject), never through a handler on its promise (see query-hook.ts).
    const { observer } = this
    return observer ? new Observed(statement, observer.statement(this.texts?.get(q) ?? '')) : statement
  }

  /** Releases the reserved connections within `ms` (no timer when there are none). */
  private releaseWithin(ms: number): Promise<unknown> | undefined {
    const reservations = this.reservations
    if (!reservations?.size) return undefined
    return within(Promise.all([...reservations].map((release) => release())), ms)
  }

  async abort(): Promise<void> {
    const { leases, tracked } = this
    this.closed = true
    leases?.stop()
    if (!this.real) return
    // A cancelled statement's pooled connection never goes back to the pool (the cancel names a backend).
    if (tracked?.size) leases?.doom()
    if (!this.lost) await tracked?.cancelUntilSettled(ABORT_WAIT_MS)
    await this.releaseWithin(1000)
    // Shared pool: only this request's connections, and only those still busy after the cancel.
    if (leases) (await leases.settled(1000)) || leases.destroyHeld()
    else await this.real.end({ timeout: 0 })
    this.observer?.closed()
  }

  async close(timeout: number): Promise<void> {
    this.closed = true
    // Reserved connections go back once their statements settled (bounded by the timeout).
    let left = timeout
    if (this.reservations?.size) {
      const started = Date.now()
      await this.releaseWithin(this.lost ? 0 : timeout * 1000)
      left = Math.max(0, timeout - (Date.now() - started) / 1000)
    }
    const { leases, real, observer } = this
    // A dead connection: nothing to wait for (postgres.js would wait the whole timeout for its reply).
    if (!leases) {
      await real?.end({ timeout: this.lost ? 0 : left })
      if (real) observer?.closed()
      return
    }
    leases.stop()
    if (!this.lost && (await leases.settled(left * 1000))) return observer?.closed()
    leases.doom()
    if (!this.lost) await this.tracked?.cancelUntilSettled(1000)
    leases.destroyHeld()
    observer?.closed()
  }

  closeIdle(): boolean {
    // Nothing to wait for: no connection held or reserved (a shared pool's request between statements), no
    // client of its own (a request that never queried), no observer to tell.
    const { leases } = this
    if (
      this.observer ||
      this.lost ||
      this.reservations?.size ||
      (leases ? !leases.idle() : this.real !== undefined)
    )
      return false
    this.closed = true
    leases?.stop()
    return true
  }
}

/** The query hook's view of its request (one of three kinds, see `RequestScopedClient.hooksFor`). */
class RequestHooks implements HookContext {
  constructor(
    private readonly r: RequestScopedClient,
    /** Top level (the probe may be asked), not inside a transaction. */
    private readonly top: boolean,
    /** Top level on a shared pool: transaction control is refused too. */
    private readonly pooled: boolean,
  ) {}
  refuse(q: any, gated: boolean): PoolerError | undefined {
    const refused = this.r.refuse(q, gated)
    return this.pooled ? (refused ?? refuseTransactionControl(q)) : refused
  }
  closedNow(): PoolerError | undefined {
    return this.r.closed ? clientClosed() : undefined
  }
  beforeSend(q: any): void {
    this.r.beforeSend(q)
  }
  sent(q: any): Settles {
    return this.r.track(q, this.top)
  }
  mapError(e: unknown, q: unknown): unknown {
    return this.r.mapError(e, q)
  }
  copying(q: any, stream: unknown): void {
    this.r.tracking()?.copying(q, stream)
  }
  quiet(): Promise<void> | undefined {
    return this.r.tracking()?.quiet()
  }
}

/**
 * The wrapped `Sql`'s view of its request. Methods only read `r` (reserve() derives a context from this one
 * with `Object.create`, so nothing here may write to `this`).
 */
class RequestContext implements ProxyContext {
  /** Shared pool: a pooled connection for `sql.begin`, taken after the request's gate. */
  readonly lease: ProxyContext['lease']
  // The rest is read from the request's config (getters: one field less per request each).
  constructor(readonly r: RequestScopedClient) {
    this.lease = r.config.options.pool !== undefined ? leaseFor : undefined
  }
  get transaction(): boolean {
    return this.r.config.mode === 'transaction'
  }
  get max(): number {
    return this.r.config.options.max
  }
  get prepare(): boolean | undefined {
    return this.r.config.driver.prepare
  }
  /** Identifies the request client for insideTransaction. */
  get owner(): object {
    return this.r
  }
  get pooled(): boolean | undefined {
    return this.lease !== undefined || undefined
  }
  get reservations(): Set<() => Promise<void>> {
    this.r.reservations ??= new Set()
    return this.r.reservations
  }
  isClosed(): boolean {
    return this.r.closed
  }
  ensure(): Sql<any> {
    return this.r.ensure()
  }
  deadlocked(): PoolerError | undefined {
    return this.r.deadlocked()
  }
  /**
   * Shared pool: a top-level statement leases a pooled connection after the gate, and may not control a
   * transaction (the connection goes back when the statement settles).
   */
  patch<Q>(query: Q, g: Gate | undefined, load?: () => Promise<string>, top?: boolean): Q {
    const { leases } = this.r
    return hookQuery(query, top && leases && g ? leases.gateFor(query, g) : g, this.r.hooksFor(top), load)
  }
  mapError(e: unknown): unknown {
    return this.r.mapError(e)
  }
  connecting(): void {
    this.r.observer?.connecting()
  }
  optionsExposed(): void {
    if (this.r.leases) exposeOptions(this.r.leases.pool.builder)
  }
  queryFactory(): QueryFactory | undefined {
    return this.r.leases?.pool.queryFactory
  }
}

/** `RequestContext.lease` on a shared pool (one function for every request). */
function leaseFor(this: RequestContext, g: Gate | undefined): Promise<{ sql: Sql<any>; release: Release }> {
  const r = this.r
  r.ensure() // the request's leases exist once a query was built
  return r.leases!.lease(g)
}
