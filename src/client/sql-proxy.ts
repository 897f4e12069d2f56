/**
 * `c.var.sql`: a Proxy over a real postgres.js `Sql` (or a transaction's), so Drizzle and postgres.js's
 * helpers keep working, with the methods that bypass the query hook replaced (`unsafe`, `file`, `notify`,
 * `savepoint`, `begin`) and, in transaction mode, the ones that need a session of their own refused.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Sql, TransactionSql } from 'postgres'
import { clientClosed, PoolerError, poolUnsupported, prepareUnsupported, SESSION_ONLY } from '../errors'
import type { QueryFactory } from '../pool/query-class'
import { type Gate, gateTurn, type Release } from './gate'
import { reserveMethod } from './reserve'

/** What a wrapped `Sql` needs from its request client. */
export interface ProxyContext {
  transaction: boolean
  /** Connections per request (`max`). */
  max: number
  /** The client is about to need a connection (for observers). */
  connecting?(): void
  /** Reserved connections not yet released (`sql.reserve()`). */
  reservations?: Set<() => Promise<void>>
  /** postgres.js's `prepare` (the preset's): `true` only outside transaction mode, and with Hyperdrive. */
  prepare: boolean | undefined
  isClosed(): boolean
  /** The driver client, created on first use. */
  ensure(): Sql<any>
  /** The error when `c.var.sql` is used inside its own transaction with max 1, else undefined. */
  deadlocked(): PoolerError | undefined
  /** Hooks one query (`load` supplies its text first: `sql.file`; `top`: a statement of `c.var.sql` itself). */
  patch<Q>(query: Q, g: Gate | undefined, load?: () => Promise<string>, top?: boolean): Q
  mapError(e: unknown): unknown
  /** Identifies the request client, for `insideTransaction`. */
  owner: object
  /** Shared pool: a pooled connection for `sql.begin`, taken after the request's gate `g`. */
  lease?(g: Gate | undefined): Promise<{ sql: Sql<any>; release: Release }>
  /** A shared pool is set (`pooler({ pool })`): what would open or end connections outside it is refused. */
  pooled?: boolean
  /** The driver's `options` were read (or a property set) through the wrapped Sql: they may change. */
  optionsExposed?(): void
  /** Shared pool: builds the top-level tagged and `unsafe` queries (after `ensure()`). */
  queryFactory?(): QueryFactory | undefined
}

/** Which client's sql.begin() callback the current code runs in (to catch the outer-client deadlock). */
export const insideTransaction = new AsyncLocalStorage<object>()

const QUERY_METHODS = new Set([
  'unsafe',
  'file',
  'begin',
  'notify',
  'listen',
  'subscribe',
  'reserve',
  'largeObject',
])

const rejectWith = (method: keyof typeof SESSION_ONLY) => async (): Promise<never> => {
  throw new PoolerError(SESSION_ONLY[method].code, SESSION_ONLY[method].message)
}
/** Replacements for the postgres.js methods that need a session of their own (transaction mode). */
const SESSION_ONLY_METHODS = {
  listen: rejectWith('listen'),
  subscribe: rejectWith('subscribe'),
}
const outsidePool = (what: string, fix: string) => () => {
  throw poolUnsupported(what, fix)
}
/** With a shared pool: these would open connections outside it, or end the pool's own client. */
const POOL_REFUSED = {
  listen: outsidePool(
    'sql.listen() opens a connection outside the pool',
    'use a postgres() client of your own',
  ),
  subscribe: outsidePool(
    'sql.subscribe() opens a connection outside the pool',
    'use a postgres() client of your own',
  ),
  largeObject: outsidePool('sql.largeObject() runs outside the pool', 'use a postgres() client of your own'),
  end: outsidePool('sql.end() would end the shared pool', 'call closePools() at shutdown'),
  close: outsidePool('sql.close() would end the shared pool', 'call closePools() at shutdown'),
}

const noop = () => {}
let originKey: symbol | undefined
const callSites = new WeakMap<readonly string[], Error>()

/**
 * postgres.js records where a tagged query was created (a 4-frame stack, cached per template) and appends
 * it to the query's errors; called through the Proxy, those frames would end in the Proxy's trap. Records
 * the same, from the caller of `trap` on (so `err.stack` names the user's own line).
 */
function keepCallSite(q: any, trap: Function): void {
  if (!q.tagged || q.handler?.debug) return // debug mode keeps postgres.js's full stack
  originKey ??= Object.getOwnPropertySymbols(q).find((k) => k.description === 'OriginError')
  if (!originKey) return
  let origin = callSites.get(q.strings)
  if (!origin) {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 4
    origin = new Error()
    Error.captureStackTrace?.(origin, trap)
    Error.stackTraceLimit = limit
    callSites.set(q.strings, origin)
  }
  q[originKey] = origin
}

async function readText(path: string): Promise<string> {
  const spec = 'node:fs/promises' // not an import statement: bundlers for Workers leave it alone
  const fs = (await import(spec)) as { readFile(p: string, enc: 'utf8'): Promise<string> }
  return fs.readFile(path, 'utf8')
}

function unsafeArgs(args: unknown[]): [unknown[], Record<string, any>] {
  const [params = [], opts = {}] = args as [unknown, unknown]
  return Array.isArray(params) ? [params, (opts ?? {}) as any] : [[], (params ?? {}) as any]
}

/**
 * Wraps a postgres.js Sql (the top-level one, `top`, or a transaction's) so every query is hooked.
 *
 * @example
 * ```ts
 * import { gate } from './gate'
 *
 * declare const ctx: ProxyContext
 * const sql = wrapSql(ctx, undefined, gate(1), true) // the request's driver client, ctx.ensure()
 * ```
 */
export function wrapSql<S extends Sql<any> | TransactionSql<any>>(
  ctx: ProxyContext,
  target: (() => S) | undefined,
  g: Gate | undefined,
  top: boolean,
): S {
  const traps = new SqlTraps(ctx, target, g, top)
  const proxy: S = new Proxy(function sql() {} as unknown as S, traps)
  traps.proxy = proxy
  return proxy
}

/**
 * The traps of `wrapSql`'s Proxy. A class, not an object literal of closures: V8 may allocate what a
 * literal builds once per request straight in the old generation, where a dead one keeps the whole request
 * alive until the next full GC.
 */
class SqlTraps<S extends Sql<any> | TransactionSql<any>> implements ProxyHandler<S> {
  // Built on the first property read (most requests only call the tagged function).
  private built: Record<string, unknown> | undefined
  /** The Proxy these traps serve (its methods' `self`). */
  proxy: S | undefined
  constructor(
    private readonly ctx: ProxyContext,
    /** The wrapped Sql; undefined: the request's driver client (`ctx.ensure()`, created on first use). */
    private readonly of: (() => S) | undefined,
    private readonly g: Gate | undefined,
    private readonly top: boolean,
  ) {}
  private target(): S {
    return this.of ? this.of() : (this.ctx.ensure() as S)
  }
  private overrides(): Record<string, unknown> {
    this.built ??= methods(
      this.ctx,
      () => this.target(),
      this.g,
      this.top,
      () => this.proxy!,
    )
    return this.built
  }
  apply(_t: S, _this: unknown, args: unknown[]): unknown {
    const { ctx } = this
    if (ctx.isClosed()) throw clientClosed()
    const s = this.target() as any
    const strings = args[0] as TemplateStringsArray | undefined
    // Shared pool: a tagged query as postgres.js builds it, through a class V8 can optimize (query-class.ts).
    const built = this.top ? ctx.queryFactory?.() : undefined
    const q =
      built && strings && Array.isArray(strings.raw)
        ? built.tagged(strings, args.slice(1))
        : Reflect.apply(s, undefined, args)
    if (!(q instanceof Promise)) return q
    keepCallSite(q, SqlTraps.prototype.apply)
    return ctx.patch(q, this.g, undefined, this.top)
  }
  get(_t: S, prop: string | symbol): unknown {
    if (typeof prop === 'string') {
      const own = this.overrides()
      if (prop in own) {
        if (this.ctx.isClosed() && QUERY_METHODS.has(prop)) throw clientClosed()
        return own[prop]
      }
    }
    const value = Reflect.get(this.target() as object, prop)
    if (prop === 'options') this.ctx.optionsExposed?.()
    return value
  }
  set(_t: S, prop: string | symbol, value: unknown): boolean {
    const done = Reflect.set(this.target() as object, prop, value)
    this.ctx.optionsExposed?.()
    return done
  }
  has(_t: S, prop: string | symbol): boolean {
    return prop in (this.target() as object)
  }
}

/** The methods `wrapSql` replaces (`proxy`: the wrapped Sql itself). */
function methods<S extends Sql<any> | TransactionSql<any>>(
  ctx: ProxyContext,
  target: () => S,
  g: Gate | undefined,
  top: boolean,
  self: () => S,
): Record<string, unknown> {
  const checkPrepare = (opts: Record<string, any>) => {
    if (ctx.transaction && !ctx.prepare && opts.prepare === true) throw prepareUnsupported()
  }
  const overrides: Record<string, unknown> = {
    unsafe(text: string, ...rest: unknown[]) {
      const [params, opts] = unsafeArgs(rest)
      checkPrepare(opts)
      const s = target()
      const built = top ? ctx.queryFactory?.() : undefined
      const q = built ? built.unsafe(text, params, opts) : s.unsafe(text, params as any[], opts)
      return ctx.patch(q, g, undefined, top)
    },
    file(path: string, ...rest: unknown[]) {
      const [params, opts] = unsafeArgs(rest)
      checkPrepare(opts)
      const q = target().unsafe(
        '',
        params as any[],
        {
          prepare: ctx.prepare,
          ...opts,
          simple: 'simple' in opts ? opts.simple : params.length === 0,
        } as Record<string, unknown>,
      )
      return ctx.patch(q, g, () => readText(path), top)
    },
    // Like postgres.js's own: async, so it is sent at once even when the promise is never awaited.
    async notify(channel: string, payload: string) {
      return await (self() as any)`select pg_notify(${channel}, ${`${payload}`})`
    },
    savepoint(name: unknown, ...rest: unknown[]) {
      const t = target() as any
      const inner = (s: any) => wrapSql(ctx, () => s, undefined, false)
      // tx.savepoint`…${v}` is a query run inside a fresh savepoint (postgres.js's tagged form)
      if (Array.isArray((name as TemplateStringsArray)?.raw))
        return t.savepoint((s: any) => (inner(s) as any)(name, ...rest))
      if (typeof name === 'function') return t.savepoint((s: any) => name(inner(s)))
      return t.savepoint(name, (s: any) => (rest[0] as (s: any) => unknown)(inner(s)))
    },
  }
  if (top) {
    Object.assign(overrides, {
      // Not async: without a gate, postgres.js's begin must start in this tick, or a statement issued right
      // after it would overtake the BEGIN. With one, the gate is taken one microtask later, like a
      // statement's (postgres.js's handle() waits one before the query hook takes it): both take their
      // turn in the order they were started (see gateTurn).
      begin(opts: unknown, fn?: (tx: TransactionSql<any>) => unknown) {
        if (typeof opts === 'function') {
          fn = opts as typeof fn
          opts = ''
        }
        const s = ctx.ensure()
        const stuck = ctx.deadlocked()
        if (stuck) return Promise.reject(stuck)
        const run = (release: Release, on: Sql<any> = s) => {
          if (ctx.isClosed()) {
            release()
            return Promise.reject(clientClosed())
          }
          // What the user's callback throws is theirs and passes unchanged (a fetch() failing with
          // ECONNREFUSED inside a transaction is not "cannot reach the database"); only the driver's own
          // errors (BEGIN, COMMIT, ROLLBACK, the connection closing) are mapped.
          const theirs = new WeakSet<object>()
          const mark = (e: unknown) => {
            if (e !== null && (typeof e === 'object' || typeof e === 'function')) theirs.add(e as object)
            throw e
          }
          return on
            .begin(opts as string, (tx) =>
              insideTransaction.run(ctx.owner, () => {
                try {
                  const x = fn!(wrapSql(ctx, () => tx, undefined, false))
                  return Promise.resolve(Array.isArray(x) ? Promise.all(x) : x).catch(mark)
                } catch (e) {
                  return mark(e)
                }
              }),
            )
            .then(
              (result) => {
                release()
                return result
              },
              (e) => {
                release()
                throw theirs.has(e) ? e : ctx.mapError(e)
              },
            )
        }
        // Shared pool: the request's gate, then a pooled connection for the whole transaction.
        const lease = ctx.lease
        if (lease) return gateTurn(() => lease.call(ctx, g)).then((leased) => run(leased.release, leased.sql))
        if (!g) return run(noop)
        return gateTurn(() => g.acquireNow()).then(run)
      },
      // postgres.js's largeObject calls sql.begin on its own client, which would skip the gate, the guard
      // and CLIENT_CLOSED. It looks begin up when called, synchronously: hand it ours for that one call.
      largeObject(...args: unknown[]) {
        const s = ctx.ensure() as any
        const own = s.begin
        s.begin = (fn: unknown) => {
          s.begin = own
          return (self() as any).begin(fn)
        }
        try {
          return s.largeObject(...args)
        } finally {
          s.begin = own
        }
      },
      reserve: reserveMethod(ctx, g, wrapSql),
      ...(ctx.transaction && SESSION_ONLY_METHODS),
      ...(ctx.pooled && POOL_REFUSED),
    })
  }
  return overrides
}
