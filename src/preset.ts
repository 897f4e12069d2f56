/**
 * The postgres.js options for one connection string: the mode (from the URL unless given), the checks a
 * URL must pass before anything connects, and the preset each mode gets (transaction mode: no named
 * prepared statements, no type fetch, UTF8, the guard on, parameters inlined). No message ever contains a
 * password.
 */
import type { Options as PostgresOptions } from 'postgres'
import { fastConnectSocket } from './connect/socket'
import { type TlsSettings, tlsSettings, verifiesServer } from './connect/tls'
import { isWorkerd, workerdSocket } from './connect/workerd-socket'
import { PoolerError, pipelineConnectUnsafe, prepareUnsupported } from './errors'
import { type GuardLevel, HYPERDRIVE_DEFAULTS, modeDefaults, type ResolvedOptions } from './options'
import { redactUrl } from './redact'
import {
  checkUrlParams,
  classifyUrl,
  defaultsToTls,
  isLoopback,
  type PoolerMode,
  portMismatch,
  type UrlInfo,
} from './url'

/** Everything a request's client needs: where to connect and how. */
export interface ClientConfig {
  url: string
  info: UrlInfo
  mode: PoolerMode
  password: string
  options: ResolvedOptions
  /** The guard's level: the option, else the mode's default. */
  guard: GuardLevel
  /** Parameters sent as escaped literals (the option, else the mode's default; never with custom `types`). */
  inline: boolean
  /** The Hyperdrive preset applies (the `hyperdrive` option, or a `*.hyperdrive.local` host). */
  hyperdrive: boolean
  /** postgres.js options (the preset applied). */
  driver: PostgresOptions<any>
  /** The TLS the connect layer negotiates (fast connect; then `driver.ssl` is false), else undefined. */
  tls: TlsSettings | undefined
}

// Per options object (one per pooler() call), then per URL string: two pooler()s on one URL never evict each other.
const cache = new WeakMap<ResolvedOptions, Map<string, ClientConfig>>()

/**
 * Validates a URL and builds the driver config for it (cached per options and URL string, never the client).
 *
 * @example
 * ```ts
 * import { parseOptions } from './options'
 *
 * clientConfig('postgres://u:p@db.pooler.supabase.com:6543/postgres', parseOptions()).driver.prepare // false
 * ```
 */
export function clientConfig(url: string, options: ResolvedOptions): ClientConfig {
  let byUrl = cache.get(options)
  const hit = byUrl?.get(url)
  if (hit) return hit
  const info = classifyUrl(url)
  const u = new URL(url)
  checkUrlParams(u)
  // Hyperdrive pools in transaction mode whatever the host of the string handed to it.
  const hyperdrive = options.hyperdrive !== undefined || info.provider === 'hyperdrive'
  const mode = hyperdrive ? 'transaction' : options.mode === 'auto' ? info.mode : options.mode
  if (options.mode !== 'auto' && !hyperdrive) {
    const mismatch = portMismatch(info, options.mode)
    if (mismatch) throw new PoolerError('WRONG_PORT_FOR_MODE', `${mismatch} (${redactUrl(url)})`)
  }
  const transaction = mode === 'transaction'
  const defaults = hyperdrive ? HYPERDRIVE_DEFAULTS : modeDefaults(mode, options.pool !== undefined)
  const urlPrepare = u.searchParams.get('prepare')
  // Named prepared statements break behind PgBouncer/Supavisor in transaction mode, not behind Hyperdrive.
  const prepareRefused = transaction && !hyperdrive
  if (prepareRefused && (options.prepare === true || urlPrepare === 'true')) throw prepareUnsupported()
  if (transaction) {
    const driver = options.postgres as { fetch_types?: unknown; connection?: { client_encoding?: unknown } }
    if (driver?.fetch_types === true)
      throw new PoolerError(
        'INVALID_OPTIONS',
        'Invalid hono-pooler option postgres.fetch_types: transaction mode skips the type lookup (built-in array types are registered without it) — drop it, or use mode "session"/"direct" for custom types',
      )
    const encoding = driver?.connection?.client_encoding
    if (encoding !== undefined && !/^utf-?8$/i.test(String(encoding)))
      throw new PoolerError(
        'INVALID_OPTIONS',
        'Invalid hono-pooler option postgres.connection.client_encoding: transaction mode speaks UTF8 — drop it',
      )
  }
  const tlsInUrl = u.searchParams.has('sslmode') || u.searchParams.has('ssl')
  const ssl =
    options.ssl ??
    (tlsInUrl ? undefined : defaultsToTls(info.host) ? 'require' : isLoopback(info.host) ? false : undefined)
  const driver: PostgresOptions<any> = {
    ...options.postgres,
    max: options.max,
    connect_timeout: options.connectTimeout,
    idle_timeout: options.idleTimeout,
    max_lifetime: null,
    prepare: prepareRefused ? false : (options.prepare ?? defaults.prepare),
    fetch_types: transaction ? false : (options.postgres?.fetch_types ?? defaults.fetchTypes),
    // UTF8 is what the parameter inliner's escaping assumes (it also re-checks what the server reports).
    connection: {
      ...options.postgres?.connection,
      application_name: options.applicationName,
      ...(transaction ? { client_encoding: 'UTF8' } : {}),
    },
    ...(ssl === undefined ? {} : { ssl: ssl as PostgresOptions<any>['ssl'] }),
    // An IPv6-literal host (postgres://u:p@[::1]:6432/db): postgres.js keeps the brackets from the URL and
    // splits host strings at ':', so it could never connect; as arrays it takes them as they are.
    ...(info.host.includes(':')
      ? { host: [info.host] as unknown as string, port: [info.port] as unknown as number }
      : {}),
    // workerd: postgres.js's socket polyfill leaves close() rejections unhandled (see connect/workerd-socket.ts).
    ...(isWorkerd() && !(options.postgres as { socket?: unknown } | undefined)?.socket
      ? { socket: workerdSocket }
      : {}),
  }
  const tls = fastConnect(driver, u, info, options)
  const config: ClientConfig = {
    url,
    info,
    mode,
    password: decodeURIComponent(u.password),
    options,
    guard: options.guard ?? defaults.guard,
    hyperdrive,
    inline: (options.inlineParams ?? defaults.inlineParams) && !driver.types,
    driver,
    tls,
  }
  if (!byUrl) {
    byUrl = new Map()
    cache.set(options, byUrl)
  }
  if (byUrl.size >= 16) byUrl.clear() // a url function of the request: at most 16 kept
  byUrl.set(url, config)
  return config
}

/**
 * hono-pooler owns the setup phase (connect/): postgres.js gets `ssl: false` and a socket that is already
 * TLS (as the URL's sslmode or `ssl` says) and runs SCRAM with the cached keys. Not for a socket of the
 * user's own or a Unix socket. `pipelineConnect` without verified TLS is refused off loopback.
 */
function fastConnect(
  driver: PostgresOptions<any>,
  u: URL,
  info: UrlInfo,
  options: ResolvedOptions,
): TlsSettings | undefined {
  const d = driver as PostgresOptions<any> & { socket?: unknown; sslnegotiation?: unknown }
  const own = (options.postgres as { socket?: unknown } | undefined)?.socket
  if (!options.fastConnect || own || info.host.startsWith('/')) {
    if (options.pipelineConnect)
      throw new PoolerError(
        'INVALID_OPTIONS',
        'Invalid hono-pooler option pipelineConnect: needs fastConnect and no socket of your own',
      )
    return undefined
  }
  const q = u.searchParams
  const fromUrl = q.get('sslmode') ?? q.get('ssl')
  const ssl = 'ssl' in d ? d.ssl : fromUrl === 'disable' || fromUrl === 'false' ? false : fromUrl
  const tls = tlsSettings(ssl, d.sslnegotiation ?? q.get('sslnegotiation'))
  const pipeline = options.pipelineConnect
  if (pipeline === true && !verifiesServer(tls) && !isLoopback(info.host))
    throw pipelineConnectUnsafe(info.host)
  d.ssl = false
  d.socket = fastConnectSocket({ tls, pipeline: Boolean(pipeline), host: info.host, port: info.port })
  return tls
}
