/**
 * `sql.reserve()` in every mode (Kysely's postgres.js dialect reserves a connection for every query and
 * every transaction). A reserved connection takes one of the request's `max` connections until `release()`,
 * so it holds a slot of the request's gate; statements on it pass through the same hook as any other
 * (closed check, guard, inlining) and, in transaction mode, through a gate of its own: one statement in
 * flight on it (pipelining behind a ReadyForQuery hangs the client, as on any connection). `BEGIN` …
 * `COMMIT` sent as separate statements keep the server connection pinned in PgBouncer and Supavisor until
 * the transaction ends, so Kysely's `db.transaction()` is safe.
 */
import type { ReservedSql, Sql } from 'postgres'
import { poolUnsupported } from '../errors'
import { splitStatements } from '../sql/lexer'
import { type Gate, gate, gateTurn } from './gate'

const noop = () => {}
/** What postgres.js's own ReservedSql does not have (a pooled connection's full Sql would). */
const NOT_RESERVED = new Set(['begin', 'end', 'close', 'listen', 'subscribe', 'reserve', 'largeObject'])
const refused = (method: string) => () => {
  throw poolUnsupported(
    `reserved.${method}() on a pooled connection would bypass hono-pooler or end the pooled connection`,
    'send begin/commit as statements on the reserved connection, or use sql.begin — and release() it',
  )
}

/** Whether a connection is inside a transaction after `text` (every statement's first words). */
function transactionState(text: string, open: boolean): boolean {
  for (const { tokens } of splitStatements(text)) {
    const [a, b] = [tokens[0]?.value, tokens[1]?.value]
    if (a === 'begin' || (a === 'start' && b === 'transaction')) open = true
    else if (a === 'commit' || a === 'end' || a === 'abort') open = false
    else if ((a === 'rollback' && b !== 'to') || (a === 'prepare' && b === 'transaction')) open = false
  }
  return open
}

/** What reserving needs from the request client (a part of sql-proxy's `ProxyContext`). */
export interface ReserveContext {
  transaction: boolean
  /** The request's `max`. */
  max: number
  connecting?(): void
  /** Shared pool: a pooled connection, taken after the request's gate (it is the reserved connection). */
  lease?(g: Gate | undefined): Promise<{ sql: Sql<any>; release: () => void }>
  /** The releases of the connections reserved and not yet released (the client awaits them at close). */
  reservations?: Set<() => Promise<void>>
  ensure(): Sql<any>
  deadlocked(): Error | undefined
  /** Hooks one query (`top`: a statement of `c.var.sql` itself, not of a transaction or reservation). */
  patch<Q>(query: Q, g: Gate | undefined, load?: () => Promise<string>, top?: boolean): Q
  mapError(e: unknown): unknown
}

type Wrap<C> = (ctx: C, target: () => Sql<any>, g: Gate | undefined, top: boolean) => Sql<any>

/**
 * The `reserve` method of `c.var.sql`.
 *
 * @example
 * ```ts
 * import { wrapSql } from './sql-proxy'
 *
 * declare const ctx: Parameters<typeof wrapSql>[0]
 * const reserve = reserveMethod(ctx, undefined, wrapSql)
 * const reserved = await reserve()
 * await reserved`select 1`
 * reserved.release()
 * ```
 */
export function reserveMethod<C extends ReserveContext>(
  ctx: C,
  g: Gate | undefined,
  wrap: Wrap<C>,
): () => Promise<ReservedSql<any>> {
  // postgres.js 3.4 never settles reserve() when it has to open the connection itself with fetch_types: false
  // (porsager/postgres#751, #1219): the connection is opened by a plain statement first (one round trip,
  // once with max: 1; before every reserve with max > 1, where it cannot tell whether one is idle).
  let warm = false
  return async function reserve() {
    const s = ctx.ensure()
    const stuck = ctx.deadlocked()
    if (stuck) throw stuck
    let target: Sql<any>
    let giveBack: () => void
    if (ctx.lease) {
      // Shared pool: a pooled connection is already one connection of our own until it is given back.
      const lease = ctx.lease
      const leased = await gateTurn(() => lease.call(ctx, g))
      target = leased.sql
      giveBack = leased.release
    } else {
      const slot = g ? await gateTurn(() => g.acquireNow()) : undefined
      let reserved: ReservedSql<any>
      try {
        ctx.connecting?.()
        if (!warm || ctx.max > 1) await s.unsafe('select 1')
        reserved = await s.reserve()
        warm = true
      } catch (e) {
        slot?.()
        throw ctx.mapError(e)
      }
      target = reserved as unknown as Sql<any>
      giveBack = () => {
        reserved.release()
        slot?.()
      }
    }
    // Shared pool: a connection given back inside a transaction would hand the next request an open
    // transaction, so one still open (BEGIN sent, no COMMIT/ROLLBACK) is rolled back first.
    let inTransaction = false
    const note = (text: unknown) => {
      if (ctx.lease && typeof text === 'string') inTransaction = transactionState(text, inTransaction)
    }
    // Statements sent on it: the connection is given back only once they settled.
    const inFlight = new Map<any, Promise<void>>()
    // Hooked on its resolve/reject (never a handler on its promise: that would mark a failure nobody awaits
    // as handled); a cursor replaces them per fetch, so its iteration is not waited for.
    const track = (query: unknown) => {
      if (!(query instanceof Promise)) return query
      const q = query as any
      let ended = noop
      inFlight.set(q, new Promise<void>((r) => (ended = r)))
      const done = () => {
        inFlight.delete(q)
        ended()
      }
      // Over the hook's accessors (which map errors and settle the hook): read through, never wrapped twice.
      for (const key of ['resolve', 'reject']) {
        const d = Object.getOwnPropertyDescriptor(q, key)
        const read = d?.get ?? (() => d?.value)
        Object.defineProperty(q, key, {
          get: () => {
            const f = read.call(q)
            return (x: unknown) => {
              done()
              return f.call(q, x)
            }
          },
          set: (f: unknown) => (d?.set ? d.set.call(q, f) : Object.assign(d ?? {}, { value: f })),
          configurable: true,
        })
      }
      return q
    }
    let released: Promise<void> | undefined
    const release = (): Promise<void> => {
      if (released) return released
      ctx.reservations?.delete(release)
      const drained = Promise.all([...inFlight].filter(([q]) => q.executed).map(([, settled]) => settled))
      released = drained
        .then(() => (ctx.lease && inTransaction ? target.unsafe('rollback') : undefined))
        .then(giveBack, giveBack)
        .then(noop)
      return released
    }
    ctx.reservations?.add(release)
    // One statement in flight on it in transaction mode, its own gate, never a lease of another connection.
    const own = ctx.transaction ? gate(1) : undefined
    // The request's context with its own patch (Object.create: the context's methods live on its prototype).
    const inner: C = Object.create(ctx)
    inner.patch = (q, g2, load, top) => track(ctx.patch(q, g2, load, top))
    const wrapped = wrap(inner, () => target, own, false)
    const unsafe = (text: string, ...rest: unknown[]) => {
      note(text)
      return (wrapped.unsafe as (...a: unknown[]) => unknown)(text, ...rest)
    }
    return new Proxy(wrapped, {
      apply(target, self, args) {
        if (Array.isArray(args[0]?.raw)) note(args[0].join('$0'))
        return Reflect.apply(target, self, args)
      },
      get(target, prop, receiver) {
        if (prop === 'release') return () => void release()
        if (prop === 'unsafe') return unsafe
        // A pooled connection is a whole postgres.js client: only what a ReservedSql has is exposed.
        if (ctx.lease && typeof prop === 'string' && NOT_RESERVED.has(prop)) return refused(prop)
        return Reflect.get(target, prop, receiver)
      },
    }) as unknown as ReservedSql<any>
  }
}
