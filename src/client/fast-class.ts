/**
 * postgres.js's `Query` (a Promise) and `Result` (an Array) each declare `static get [Symbol.species]`. V8
 * creates a class with a computed-key static accessor in dictionary mode, and then aborts every TurboFan
 * compilation of code that constructs it ("Bailed out due to dependency change", `StableMapDependency`):
 * postgres.js's `sql`, `Query`, `ReadyForQuery` and `Result` stay unoptimized under load
 * (`node bench/query-class.ts` counts it; docs/pool.md, Performance).
 *
 * `fastClass` moves such a class to fast mode the way V8 does for any prototype: it makes the class the
 * prototype of a throwaway object and looks up a property that does not exist through it a few times (V8's
 * load IC then makes the prototypes on the way fast; extending the class does the same). Nothing observable
 * changes: no property of the class is read, written or redefined. Where V8 does not do this, nothing happens
 * at all. The query hook hands it the class of the queries and results it sees, whenever it changes.
 */

/** Never defined anywhere: every lookup of it walks the whole prototype chain and misses. */
const MISSING = Symbol('hono-pooler.missing')

const done = new WeakSet<object>()
/** The classes fastSpeciesClasses walked already (the query hook hands it a class each time it changes). */
const seen = new WeakSet<object>()

function miss(o: Record<symbol, unknown>): unknown {
  return o[MISSING]
}

/**
 * The classes from `cls` up its chain of superclasses that declare a static `Symbol.species` getter of their
 * own (postgres.js's Query and Result; never Promise or Array, which they extend), each moved to fast mode
 * once.
 *
 * @example
 * ```ts
 * import { fastSpeciesClasses } from './fast-class'
 *
 * declare const rows: unknown[]
 * fastSpeciesClasses(rows.constructor) // postgres.js's Result
 * ```
 */
export function fastSpeciesClasses(cls: unknown): void {
  if (seen.has(cls as object)) return
  if (typeof cls === 'function') seen.add(cls)
  for (
    let c = cls;
    typeof c === 'function' && c !== Promise && c !== Array && c !== Function.prototype;
    c = Object.getPrototypeOf(c)
  )
    if (Object.getOwnPropertyDescriptor(c, Symbol.species)?.get) fastClass(c)
}

/**
 * Moves a class (any object) to V8's fast mode, once per class.
 *
 * @example
 * ```ts
 * import { fastClass } from './fast-class'
 *
 * declare const query: Promise<unknown>
 * fastClass(query.constructor) // postgres.js's Query
 * ```
 */
export function fastClass(cls: unknown): void {
  if ((typeof cls !== 'function' && (typeof cls !== 'object' || cls === null)) || done.has(cls)) return
  done.add(cls)
  const probe = Object.create(cls) as Record<symbol, unknown>
  // The load IC makes the prototypes fast once it caches the lookup (from its second or third miss on).
  for (let i = 0; i < 16; i++) miss(probe)
}
