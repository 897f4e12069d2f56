/**
 * The shared pool's queries as instances of a subclass of postgres.js's `Query` that declares nothing.
 *
 * postgres.js's `Query` (a Promise) declares `static get [Symbol.species]`. A class with a computed-key
 * static accessor is created in V8's dictionary mode, and V8 (Node 20 and 22) then aborts every TurboFan
 * compilation of code that constructs it with itself as `new.target` ("Bailed out due to dependency change",
 * `StableMapDependency`): postgres.js's `sql`, `Query`, and whatever inlines them stay unoptimized under
 * load. A subclass without static members is an ordinary fast-mode class: constructed through it, the same
 * constructor compiles (docs/pool.md, Performance). Its instances are postgres.js Queries in every other
 * respect (`instanceof Query`, its methods, its species).
 */
import type { PendingQuery, Sql } from 'postgres'

type QueryClass = new (...args: any[]) => PendingQuery<any>

/** One subclass per postgres.js `Query` class (a process may load more than one copy of postgres.js). */
const subclasses = new WeakMap<Function, QueryClass>()

function subclassOf(base: QueryClass): QueryClass {
  let sub = subclasses.get(base)
  if (!sub) {
    sub = class PoolerQuery extends base {}
    subclasses.set(base, sub)
  }
  return sub
}

/**
 * Builds the queries postgres.js's `sql\`…\`` and `sql.unsafe()` would build on one client, with the same
 * arguments, handler and canceller, as instances of the fast subclass.
 */
export class QueryFactory {
  private readonly Query: QueryClass
  private readonly handler: unknown
  private readonly canceller: unknown
  constructor(sql: Sql<any>) {
    // A query built and never run: its class, and the client's handler and canceller.
    const probe = sql.unsafe('') as any
    this.Query = subclassOf(probe.constructor)
    this.handler = probe.handler
    this.canceller = probe.canceller
  }
  /** `sql\`…\``: postgres.js's `new Query(strings, args, handler, cancel)`. */
  tagged(strings: TemplateStringsArray, args: unknown[]): PendingQuery<any> {
    return new this.Query(strings, args, this.handler, this.canceller)
  }
  /** `sql.unsafe(text, args, options)`: postgres.js's own defaults (unprepared; simple without arguments). */
  unsafe(text: string, args: unknown[], options: Record<string, any>): PendingQuery<any> {
    return new this.Query([text], args, this.handler, this.canceller, {
      prepare: false,
      ...options,
      simple: 'simple' in options ? options.simple : args.length === 0,
    })
  }
}
