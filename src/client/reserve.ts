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
  /** The releases of the connections reserved and not yet released (the client releases them at close). */
  reservations?: Set<() => void>
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
    let released = false
    const release = () => {
      if (released) return
      released = true
      ctx.reservations?.delete(release)
      reserved.release()
      slot?.()
    }
    ctx.reservations?.add(release)
    const own = ctx.transaction ? gate(1) : undefined
    const wrapped = wrap(ctx, () => reserved as unknown as Sql<any>, own, false)
    return new Proxy(wrapped, {
      get(target, prop, receiver) {
        return prop === 'release' ? release : Reflect.get(target, prop, receiver)
      },
    }) as unknown as ReservedSql<any>
  }
}
