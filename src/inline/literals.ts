/**
 * Values as SQL literals with the type postgres.js would have sent: strings, numbers, JSON, arrays and
 * NULL untyped (like OID 0: the server infers the type), booleans `::bool`, bigints `::int8`, dates
 * `::timestamptz`, bytes `::bytea`. Each literal is parenthesized. `undefined` means "do not inline".
 */

import { arrayElement, quote } from '../sql/escape'

export { quote }

/**
 * Types whose postgres.js serializer is not the plain text of the value (json: JSON.stringify, bool: 't'/'f',
 * dates: Date#toISOString, bytea: hex): an untyped value cast to one of them falls back.
 *
 * @example
 * ```ts
 * TYPE_SENSITIVE.has('jsonb') // true: an untyped `${x}::jsonb` is not inlined
 * ```
 */
export const TYPE_SENSITIVE = new Set([
  'json',
  'jsonb',
  'bool',
  'boolean',
  'date',
  'timestamp',
  'timestamptz',
  'bytea',
])

/**
 * For plain objects (sent as JSON): casts to json/jsonb agree with postgres.js, the others do not.
 *
 * @example
 * ```ts
 * JSON_SENSITIVE.has('jsonb') // false: an object cast to jsonb is inlined
 * ```
 */
export const JSON_SENSITIVE = new Set([...TYPE_SENSITIVE].filter((t) => t !== 'json' && t !== 'jsonb'))

const INT8_MIN = -(2n ** 63n)
const INT8_MAX = 2n ** 63n - 1n
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** Array literal text as postgres.js's arraySerializer writes it for untyped elements, or undefined. */
function arrayText(xs: unknown[]): string | undefined {
  if (!xs.length) return '{}'
  const nested = Array.isArray(xs[0])
  const parts: string[] = []
  for (const x of xs) {
    if (Array.isArray(x) !== nested) return undefined
    if (nested) {
      const inner = arrayText(x as unknown[])
      if (inner === undefined) return undefined
      parts.push(inner)
    } else if (x === null) parts.push('null')
    else if (typeof x === 'string' || typeof x === 'number') parts.push(arrayElement(String(x)))
    else return undefined
  }
  return `{${parts.join(',')}}`
}

function isPlainObject(x: object): boolean {
  const proto = Object.getPrototypeOf(x)
  return proto === Object.prototype || proto === null
}

/**
 * The literal for one value, or undefined when it must go through postgres.js (undefined, symbols,
 * functions, helpers such as `sql(obj)`/`sql.json`/fragments, class instances, invalid dates, typed arrays).
 *
 * @example
 * ```ts
 * literal("it's") // "(E'it''s')"
 * literal(true) // "(E't'::bool)"
 * ```
 */
export function literal(v: unknown): string | undefined {
  let out: string | undefined
  switch (typeof v) {
    case 'string':
      out = quote(v)
      break
    case 'number':
      return `(E'${v}')` // digits, '-', '.', 'e', '+', Infinity, NaN: nothing to escape
    case 'boolean':
      return v ? "(E't'::bool)" : "(E'f'::bool)"
    case 'bigint':
      // Out of int8 range: an error either way, but a literal's is raised before the statement's other errors.
      return v >= INT8_MIN && v <= INT8_MAX ? `(E'${v.toString()}'::int8)` : undefined
    case 'object': {
      if (v === null) return '(NULL)'
      if (v instanceof Date) {
        // Invalid dates throw in postgres.js; years outside 1–9999 are not ISO strings Postgres reads.
        const year = v.getUTCFullYear()
        if (Number.isNaN(year) || year < 1 || year > 9999) return undefined
        return `(E'${v.toISOString()}'::timestamptz)`
      }
      if (v instanceof Uint8Array) {
        let hex = ''
        for (let i = 0; i < v.length; i++) hex += HEX[v[i]!]
        return `(E'\\\\x${hex}'::bytea)`
      }
      if (Array.isArray(v)) {
        const text = arrayText(v)
        out = text === undefined ? undefined : quote(text)
        break
      }
      if (!isPlainObject(v)) return undefined
      let json: string | undefined
      try {
        json = JSON.stringify(v)
      } catch {
        return undefined // cycles, bigints: postgres.js throws while sending, let it
      }
      out = typeof json === 'string' ? quote(json) : undefined
      break
    }
    default:
      return undefined
  }
  return out === undefined ? undefined : `(${out})`
}
