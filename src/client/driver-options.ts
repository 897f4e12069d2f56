/**
 * postgres.js options parsed once per configuration instead of once per request. `postgres(url, options)`
 * re-parses the URL and the options, copies every type parser and serializer, and builds a second client
 * for `sql.subscribe` each time: about a tenth of a per-request client's CPU. postgres.js takes an already
 * parsed options object as is (what the shared pool does); each request gets a shallow copy of it with
 * fresh per-client state — the server parameters, the retry counter, the type tables (a user may change
 * `sql.options.parsers`, as Drizzle does, and that must stay in one request), which inherit the parsed
 * ones (built-in array types included) instead of copying them.
 */
import postgres, { type Options, type Sql } from 'postgres'
import type { ClientConfig } from '../preset'
import { registerArrayTypes, syncArrayTypesOnce } from './array-types'

type Parsed = Sql<any>['options'] & {
  shared: { retries: number; typeArrayMap: Record<number, number> }
  parameters: Record<string, string>
  no_subscribe?: boolean
}

const parsed = new WeakMap<ClientConfig, Parsed>()

/** postgres.js's parsed `transform` with its own `column` / `value` / `row` parts. */
function copyTransform(t: Parsed['transform']): Parsed['transform'] {
  const part = (x: unknown) => (x && typeof x === 'object' ? { ...x } : x)
  return { ...t, column: part(t.column), value: part(t.value), row: part(t.row) } as Parsed['transform']
}

function parse(config: ClientConfig): Parsed {
  // A client that never connects: only its parsed options are kept.
  const probe = postgres(config.url, config.driver)
  if (config.driver.fetch_types === false) {
    registerArrayTypes(probe)
    syncArrayTypesOnce(probe) // a user's own element types get their array types here, once
  }
  // Transaction mode answers `sql.subscribe` itself (sql-proxy.ts: it needs a replication connection):
  // postgres.js's own subscriber client would be built for nothing.
  return { ...(probe.options as Parsed), no_subscribe: config.mode === 'transaction' }
}

/**
 * The options for one request's `postgres(…)`: the configuration's parsed options with fresh per-client
 * state.
 *
 * @example
 * ```ts
 * import postgres from 'postgres'
 * import { clientConfig, parseOptions } from 'hono-pooler/internal'
 *
 * const config = clientConfig('postgres://app:pw@127.0.0.1:6432/app', parseOptions())
 * const sql = postgres(driverOptions(config))
 * ```
 */
export function driverOptions(config: ClientConfig): Options<any> {
  let base = parsed.get(config)
  if (!base) {
    base = parse(config)
    parsed.set(config, base)
  }
  // Objects a handler could change in place through `c.var.sql.options` stay its own request's.
  return {
    ...base,
    connection: { ...base.connection },
    transform: copyTransform(base.transform),
    host: [...base.host],
    port: [...base.port],
    types: { ...base.types },
    parameters: {},
    shared: { retries: 0, typeArrayMap: Object.create(base.shared.typeArrayMap) },
    parsers: Object.create(base.parsers),
    serializers: Object.create(base.serializers),
  } as unknown as Options<any>
}
