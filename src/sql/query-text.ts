/**
 * The SQL text of a postgres.js query as the server would see it: nested fragments and identifiers
 * spliced in, values as `$n`. Shared by the guard (which must never see values) and the inliner (which
 * needs each placeholder's offset).
 */

/** The parts of a postgres.js Query (or fragment) the text is built from. */
export interface QueryParts {
  tagged: boolean
  strings: readonly string[]
  args: unknown[]
}

/**
 * True for a postgres.js `Identifier` (`sql(name)` used as a column or table name). postgres.js does not
 * export the class, and a minified bundle (`wrangler deploy --minify`) renames it, so it is recognised by
 * its shape: one own property `value` (the escaped name), on a class whose base (postgres.js's
 * `NotTagged`) defines `then`, `catch` and `finally` itself (`Parameter` and `Builder` carry other fields).
 *
 * @example
 * ```ts
 * import postgres from 'postgres'
 *
 * const sql = postgres()
 * isIdentifier(sql('users')) // true
 * isIdentifier({ value: 'users' }) // false
 * ```
 */
export function isIdentifier(a: any): boolean {
  if (!isInstance(a) || typeof a.value !== 'string' || a instanceof Promise) return false
  const keys = Object.keys(a)
  if (keys.length !== 1 || keys[0] !== 'value') return false
  const base = Object.getPrototypeOf(Object.getPrototypeOf(a))
  return (
    !!base &&
    base !== Object.prototype &&
    Object.hasOwn(base, 'then') &&
    Object.hasOwn(base, 'catch') &&
    Object.hasOwn(base, 'finally')
  )
}

/**
 * Only class instances are helpers: a plain object is a value (JSON), whatever its shape — a request body
 * shaped like a fragment must never be spliced into the text as SQL.
 */
function isInstance(a: any): boolean {
  if (!a || typeof a !== 'object') return false
  const proto = Object.getPrototypeOf(a)
  return proto !== Object.prototype && proto !== null
}
/** A postgres.js fragment is a Query, a Promise subclass (which no JSON value can be). */
const isFragment = (a: any): boolean => a instanceof Promise && Array.isArray((a as any).strings)
const isFragmentList = (a: any): boolean => Array.isArray(a) && a.length > 0 && isFragment(a[0])

/**
 * True for an argument that adds SQL text (a fragment, a list of fragments, an identifier) rather than a
 * value.
 *
 * @example
 * ```ts
 * isTextArg(sql`a = ${1}`) // true
 * isTextArg(42) // false
 * ```
 */
export function isTextArg(a: any): boolean {
  return isFragment(a) || isIdentifier(a) || isFragmentList(a)
}

/**
 * The text with `$n` in place of each value, the offset of each `$n` in it, and the values (`$n` is
 * `values[n - 1]`).
 *
 * @example
 * ```ts
 * queryText(sql`select ${1} where ${sql`a = ${2}`}` as any) // { text: 'select $1 where a = $2', at: [7, 20], values: [1, 2] }
 * ```
 */
export function queryText(q: QueryParts): { text: string; at: number[]; values: unknown[] } {
  const at: number[] = []
  const values: unknown[] = []
  if (!q.tagged) return { text: q.strings[0] ?? '', at, values: q.args }
  let n = 0
  let out = ''
  const walk = (strings: readonly string[], args: unknown[]): void => {
    out += strings[0] ?? ''
    for (let i = 1; i < strings.length; i++) {
      const a = args[i - 1] as any
      if (isFragment(a)) walk(a.strings, a.args)
      else if (isFragmentList(a))
        a.forEach((f: any, j: number) => {
          if (j) out += ' '
          walk(f.strings, f.args)
        })
      else if (isIdentifier(a)) out += a.value
      else {
        at.push(out.length)
        values.push(a)
        out += `$${++n}`
      }
      out += strings[i]
    }
  }
  walk(q.strings, q.args)
  return { text: out, at, values }
}
