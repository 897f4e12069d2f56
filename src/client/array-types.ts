/**
 * Built-in array types without a round trip. postgres.js normally asks the server for array types when it
 * connects (`fetch_types`), one extra round trip per connection; the built-in OIDs are fixed in Postgres,
 * so the transaction-mode preset turns `fetch_types` off and registers this table instead. The parser and
 * serializer are ports of postgres.js's own, so results are identical.
 */
import postgres, { type Sql } from 'postgres'
import { arrayElement } from '../sql/escape'

/**
 * [element OID, array OID] for every built-in scalar type (PostgreSQL 14–17 agree on these; the multiranges are 14+).
 *
 * @example
 * ```ts
 * new Map(BUILTIN_ARRAY_TYPES).get(23) // 1007: int4 → int4[]
 * ```
 */
export const BUILTIN_ARRAY_TYPES: ReadonlyArray<readonly [number, number]> = [
  [16, 1000],
  [17, 1001],
  [18, 1002],
  [19, 1003],
  [20, 1016],
  [21, 1005],
  [22, 1006],
  [23, 1007],
  [24, 1008],
  [25, 1009],
  [26, 1028],
  [27, 1010],
  [28, 1011],
  [29, 1012],
  [30, 1013],
  [114, 199],
  [142, 143],
  [600, 1017],
  [601, 1018],
  [602, 1019],
  [603, 1020],
  [604, 1027],
  [628, 629],
  [650, 651],
  [700, 1021],
  [701, 1022],
  [718, 719],
  [774, 775],
  [790, 791],
  [829, 1040],
  [869, 1041],
  [1033, 1034],
  [1042, 1014],
  [1043, 1015],
  [1082, 1182],
  [1083, 1183],
  [1114, 1115],
  [1184, 1185],
  [1186, 1187],
  [1266, 1270],
  [1560, 1561],
  [1562, 1563],
  [1700, 1231],
  [1790, 2201],
  [2202, 2207],
  [2203, 2208],
  [2204, 2209],
  [2205, 2210],
  [2206, 2211],
  [2275, 1263],
  [2950, 2951],
  [2970, 2949],
  [3220, 3221],
  [3614, 3643],
  [3615, 3645],
  [3642, 3644],
  [3734, 3735],
  [3769, 3770],
  [3802, 3807],
  [3904, 3905],
  [3906, 3907],
  [3908, 3909],
  [3910, 3911],
  [3912, 3913],
  [3926, 3927],
  [4072, 4073],
  [4089, 4090],
  [4096, 4097],
  [4191, 4192],
  [4451, 6150],
  [4532, 6151],
  [4533, 6152],
  [4534, 6153],
  [4535, 6155],
  [4536, 6157],
  [5038, 5039],
  [5069, 271],
]

type Options = Sql<any>['options'] & { shared: { typeArrayMap: Record<number, number> }; transform: any }
type Parser = ((x: string) => unknown) & { array?: boolean }
type Serializer = (x: unknown) => unknown

interface Shared {
  parsers: Record<number, Parser>
  serializers: Record<number, Serializer>
  typeArrayMap: Record<number, number>
  /** postgres.js's default element parsers/serializers (the same function objects in every client). */
  elementParsers: Record<number, Parser | undefined>
  elementSerializers: Record<number, Serializer | undefined>
}
let shared: Shared | undefined

/** The array parsers and serializers built once, from the defaults of a client that never connects. */
function sharedTables(): Shared {
  if (shared) return shared
  const probe = postgres({ max: 1, fetch_types: false }).options as Options
  const t: Shared = {
    parsers: {},
    serializers: {},
    typeArrayMap: {},
    elementParsers: {},
    elementSerializers: {},
  }
  for (const [oid, typarray] of BUILTIN_ARRAY_TYPES) {
    const ep = probe.parsers[oid] as Parser | undefined
    const es = probe.serializers[oid] as Serializer | undefined
    t.elementParsers[oid] = ep
    t.elementSerializers[oid] = es
    t.typeArrayMap[oid] = typarray
    const parse: Parser = (xs) => arrayParser(xs, ep, typarray)
    parse.array = true
    t.parsers[typarray] = parse
    t.serializers[typarray] = (xs) => arraySerializer(xs, es, undefined, typarray)
  }
  shared = t
  return t
}

/**
 * Registers the built-in array types on a postgres.js client created with `fetch_types: false`: three
 * prototype links to tables built once (a per-request client pays microseconds, not one closure per type).
 * Call `syncArrayTypes` before the first query, as postgres.js registers its own at connect time.
 *
 * @example
 * ```ts
 * import postgres from 'postgres'
 *
 * const sql = postgres('postgres://app:pw@127.0.0.1:6432/app', { fetch_types: false })
 * registerArrayTypes(sql)
 * await sql`select array[1,2]::int4[] as a` // [{ a: [1, 2] }]
 * ```
 */
export function registerArrayTypes(sql: Sql<any>): void {
  const t = sharedTables()
  const options = sql.options as Options
  // Linked already (a shared pool's builder, on every request): reading is cheaper than setting again.
  if (
    Object.getPrototypeOf(options.parsers) === t.parsers &&
    Object.getPrototypeOf(options.serializers) === t.serializers &&
    Object.getPrototypeOf(options.shared.typeArrayMap) === t.typeArrayMap
  )
    return
  // Own properties (a user's own `types`) still win over these.
  Object.setPrototypeOf(options.parsers, t.parsers)
  Object.setPrototypeOf(options.serializers, t.serializers)
  Object.setPrototypeOf(options.shared.typeArrayMap, t.typeArrayMap)
}

/**
 * Where a client's element parsers or serializers were changed after it was created (Drizzle turns the
 * date parsers into identity functions) or `transform.undefined` is set, gives those array types their
 * own parser/serializer built from the client's current ones — what postgres.js's `fetch_types` would
 * have registered at connect time.
 *
 * @example
 * ```ts
 * registerArrayTypes(sql)
 * sql.options.parsers[1184] = (x: string) => x // Drizzle does this for timestamptz
 * syncArrayTypes(sql) // before the first query
 * ```
 */
export function syncArrayTypes(sql: Sql<any>): void {
  const t = sharedTables()
  const options = sql.options as Options
  const parsers = options.parsers as Record<number, Parser>
  const serializers = options.serializers as Record<number, Serializer>
  // A per-request client's tables inherit synced ones (driver-options.ts): nothing to do unless changed.
  if (
    synced.has(Object.getPrototypeOf(parsers)) &&
    synced.has(Object.getPrototypeOf(serializers)) &&
    Object.keys(parsers).length === 0 &&
    Object.keys(serializers).length === 0
  )
    return
  const undef = options.transform?.undefined !== undefined
  for (const [oid, typarray] of BUILTIN_ARRAY_TYPES) {
    const ep = parsers[oid]
    if (ep !== t.elementParsers[oid] && !Object.hasOwn(parsers, typarray)) {
      const parse: Parser = (xs) => arrayParser(xs, ep, typarray)
      parse.array = true
      parsers[typarray] = parse
    }
    const es = serializers[oid]
    if ((undef || es !== t.elementSerializers[oid]) && !Object.hasOwn(serializers, typarray))
      serializers[typarray] = (xs) => arraySerializer(xs, es, options.transform, typarray)
  }
}

/** Type tables that `syncArrayTypes` went through (the parsed options of driver-options.ts). */
const synced = new WeakSet<object>()

/**
 * `syncArrayTypes` once on a client whose type tables other clients inherit (`Object.create`): those
 * clients then skip it until they change their own tables.
 */
export function syncArrayTypesOnce(sql: Sql<any>): void {
  syncArrayTypes(sql)
  synced.add(sql.options.parsers).add(sql.options.serializers)
}

function arraySerializer(
  xs: unknown,
  serializer: ((x: unknown) => unknown) | undefined,
  transform: { undefined?: unknown } | undefined,
  typarray: number,
): unknown {
  if (!Array.isArray(xs)) return xs
  if (!xs.length) return '{}'
  const first = xs[0]
  const delimiter = typarray === 1020 ? ';' : ','
  if (Array.isArray(first) && !(first as any).type)
    return `{${xs.map((x) => arraySerializer(x, serializer, transform, typarray)).join(delimiter)}}`
  return `{${xs
    .map((x) => {
      if (x === undefined) {
        x = transform?.undefined
        if (x === undefined)
          throw Object.assign(new Error('Undefined values are not allowed'), { code: 'UNDEFINED_VALUE' })
      }
      return x === null
        ? 'null'
        : arrayElement(serializer ? String(serializer(x.type ? x.value : x)) : `${x}`)
    })
    .join(delimiter)}}`
}

interface ParserState {
  i: number
  char: string
  str: string
  quoted: boolean
  last: number
  p?: string
}

function arrayParser(x: string, parser: ((x: string) => unknown) | undefined, typarray: number): unknown[] {
  return arrayParserLoop({ i: 0, char: '', str: '', quoted: false, last: 0 }, x, parser, typarray)
}

function arrayParserLoop(
  s: ParserState,
  x: string,
  parser: ((x: string) => unknown) | undefined,
  typarray: number,
): unknown[] {
  const xs: unknown[] = []
  const delimiter = typarray === 1020 ? ';' : ','
  const out = (v: string) => xs.push(parser ? parser(v) : v)
  for (; s.i < x.length; s.i++) {
    s.char = x[s.i] as string
    if (s.quoted) {
      if (s.char === '\\') {
        s.str += x[++s.i]
      } else if (s.char === '"') {
        out(s.str)
        s.str = ''
        s.quoted = x[s.i + 1] === '"'
        s.last = s.i + 2
      } else {
        s.str += s.char
      }
    } else if (s.char === '"') {
      s.quoted = true
    } else if (s.char === '{') {
      s.last = ++s.i
      xs.push(arrayParserLoop(s, x, parser, typarray))
    } else if (s.char === '}') {
      s.quoted = false
      s.last < s.i && out(x.slice(s.last, s.i))
      s.last = s.i + 1
      break
    } else if (s.char === delimiter && s.p !== '}' && s.p !== '"') {
      out(x.slice(s.last, s.i))
      s.last = s.i + 1
    }
    s.p = s.char
  }
  s.last < s.i && out(x.slice(s.last, s.i + 1))
  return xs
}
