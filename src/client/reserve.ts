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
import { type Gate, gate } from './gate'

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
      const leased = await ctx.lease(g)
      target = leased.sql
      giveBack = leased.release
    } else {
      const slot = await g?.acquire()
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
      const m =
        typeof text === 'string'
          ? /^\s*(begin|start|commit|end|abort|rollback)\b(\s+to\b)?/i.exec(text)
          : null
      if (m) inTransaction = /^(begin|start)$/i.test(m[1]!) || (/^rollback$/i.test(m[1]!) && !!m[2])
    }
    let released: Promise<void> | undefined
    const release = (): Promise<void> => {
      if (released) return released
      ctx.reservations?.delete(release)
      released =
        ctx.lease && inTransaction
          ? target
              .unsafe('rollback')
              .then(giveBack, giveBack)
              .then(() => {})
          : Promise.resolve(giveBack())
      return released
    }
    ctx.reservations?.add(release)
    // (with a shared pool a statement's gate would lease another pooled connection: none there)
    const own = ctx.transaction && !ctx.lease ? gate(1) : undefined
    const wrapped = wrap(ctx, () => target, own, false)
    const unsafe = (text: string, ...rest: unknown[]) => {
      note(text)
      return (wrapped.unsafe as (...a: unknown[]) => unknown)(text, ...rest)
    }
    return new Proxy(wrapped, {
      apply(target, self, args) {
        if (Array.isArray(args[0]?.raw)) note(args[0][0])
        return Reflect.apply(target, self, args)
      },
      get(target, prop, receiver) {
        if (prop === 'release') return () => void release()
        if (prop === 'unsafe') return unsafe
        return Reflect.get(target, prop, receiver)
      },
    }) as unknown as ReservedSql<any>
  }
}
