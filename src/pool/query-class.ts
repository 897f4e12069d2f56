/**
 * The shared pool's queries as instances of a subclass of postgres.js's `Query` with no static members.
 *
 * postgres.js's `Query` (a Promise) declares `static get [Symbol.species]`. A class with a computed-key
 * static accessor is created in V8's dictionary mode, and V8 (Node 20 and 22) then aborts every TurboFan
 * compilation of code that constructs it with itself as `new.target` ("Bailed out due to dependency change",
 * `StableMapDependency`): postgres.js's `sql`, `Query`, and whatever inlines them stay unoptimized under
 * load. A subclass without static members is an ordinary fast-mode class, and extending Query moves Query
 * itself to fast mode too (V8 does that for any prototype; client/fast-class.ts does it for queries built
 * elsewhere): the same constructor compiles (docs/pool.md, Performance). Its instances are postgres.js Queries in every other
 * respect (`instanceof Query`, its methods, its species). Its prototype also reads what the parameter
 * inliner leaves on an inlined query (`INLINED`), which the inliner would otherwise define on the query
 * itself as accessors: that turns a query into a slow dictionary object (80 k instructions per request).
 */
import type { PendingQuery, Sql } from 'postgres'
import { INLINED, type InlinedText } from '../inline/inliner'

type QueryClass = new (...args: any[]) => PendingQuery<any>
/** postgres.js's Query as the subclass sees it (its `origin` getter; the rest through `any`). */
type QueryBase = new (...args: any[]) => any

/** One subclass per postgres.js `Query` class (a process may load more than one copy of postgres.js). */
const subclasses = new WeakMap<Function, QueryClass>()

/** The text postgres.js set as `string` (what it sent). */
const SENT = Symbol('hono-pooler.sent')

function subclassOf(base: QueryBase): QueryClass {
  let sub = subclasses.get(base)
  if (!sub) {
    // Members on its prototype only: a static accessor with a computed key is what makes a class slow.
    class PoolerQuery extends base {
      declare [INLINED]: InlinedText | undefined
      declare [SENT]: string | undefined
      /** What errors show (`err.query`): an inlined query's template with `$n`, never its values. */
      get string(): string | undefined {
        const inlined = this[INLINED]
        return inlined ? inlined.text : this[SENT]
      }
      set string(text: string | undefined) {
        this[SENT] = text
      }
      /**
       * postgres.js caches a query's call site per template: an inlined query's is its template's. An
       * untagged query (`unsafe`) has none: postgres.js answers '' too, after keeping an entry per failed
       * query in its cache, keyed by the query's own strings array (never freed).
       */
      get origin(): string {
        const self = this as any
        if (!self.tagged && !self.handler?.debug) return ''
        const inlined = this[INLINED]
        if (!inlined) return super.origin
        const sent = self.strings
        self.strings = inlined.original
        try {
          return super.origin
        } finally {
          self.strings = sent
        }
      }
    }
    // `INLINED in query` tells the inliner this class reads it (inline/inliner.ts).
    ;(PoolerQuery.prototype as any)[INLINED] = undefined
    sub = PoolerQuery as unknown as QueryClass
    subclasses.set(base, sub)
  }
  return sub
}

/**
 * Builds the queries postgres.js's `sql\`…\`` and `sql.unsafe()` build on one client, with the same
 * arguments, handler and canceller, as instances of the fast subclass. The caller has already read
 * `unsafe`'s two-argument form (`unsafe(text, options)`) into `args` and `options`.
 */
export class QueryFactory {
  constructor(
    private readonly Query: QueryClass,
    private readonly handler: unknown,
    private readonly canceller: unknown,
  ) {}
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

/** A template object for the self-check (one: postgres.js caches a call site per template). */
const CHECK_STRINGS = Object.freeze(
  Object.assign(['select ', ''], { raw: Object.freeze(['select ', '']) }),
) as unknown as TemplateStringsArray

/** The same own keys in the same order, the same handler, canceller and options, one class apart. */
function sameQuery(theirs: any, ours: any): boolean {
  const a = Reflect.ownKeys(theirs)
  const b = Reflect.ownKeys(ours)
  return (
    a.length === b.length &&
    a.every((k, i) => k === b[i]) &&
    Object.getPrototypeOf(Object.getPrototypeOf(ours)) === Object.getPrototypeOf(theirs) &&
    theirs.handler === ours.handler &&
    theirs.canceller === ours.canceller &&
    theirs.tagged === ours.tagged &&
    JSON.stringify(theirs.options) === JSON.stringify(ours.options)
  )
}

/**
 * The factory for one postgres.js client, or undefined when what it builds would differ from what the client
 * itself builds: a postgres.js version whose `sql` or `unsafe` changed, or a client something wraps (an
 * instrumentation's Proxy, or one patching each query it builds), which must keep seeing every query. Then
 * the pool lets postgres.js build its queries, as before.
 *
 * @example
 * ```ts
 * import postgres from 'postgres'
 *
 * const factory = queryFactory(postgres('postgres://app:pw@127.0.0.1:5432/app'))
 * factory?.unsafe('select $1::int as n', [1], {})
 * ```
 */
export function queryFactory(sql: Sql<any>): QueryFactory | undefined {
  try {
    const util = (
      globalThis as { process?: { getBuiltinModule?: (id: string) => any } }
    ).process?.getBuiltinModule?.('node:util')
    if (util?.types?.isProxy(sql) || util?.types?.isProxy(sql.unsafe)) return undefined
    // A query built and never run: its class, and the client's handler and canceller.
    const probe = sql.unsafe('') as unknown as { constructor: unknown; handler: unknown; canceller: unknown }
    const base = probe?.constructor
    if (!((probe as unknown) instanceof Promise) || typeof base !== 'function') return undefined
    const factory = new QueryFactory(subclassOf(base as QueryBase), probe.handler, probe.canceller)
    const s = sql as any
    const pairs: [unknown, unknown][] = [
      [s(CHECK_STRINGS, 1), factory.tagged(CHECK_STRINGS, [1])],
      [s.unsafe('select $1', [1]), factory.unsafe('select $1', [1], {})],
      [s.unsafe('select 1', [], { prepare: true }), factory.unsafe('select 1', [], { prepare: true })],
    ]
    return pairs.every(([theirs, ours]) => sameQuery(theirs, ours)) ? factory : undefined
  } catch {
    return undefined
  }
}
