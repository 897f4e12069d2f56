/**
 * Which kind of connection string is this? The Supabase connection guide as code: direct, session-mode
 * pooler or transaction-mode pooler, IPv6-only direct hosts, TLS defaults of the known clouds, and the
 * query parameters a pooler would reject.
 */
import { PoolerError } from './errors'
import { redactUrl } from './redact'

/** How the server side treats the connection. */
export const POOLER_MODES = ['transaction', 'session', 'direct'] as const
export type PoolerMode = (typeof POOLER_MODES)[number]
export type Provider = 'supabase' | 'neon' | 'hyperdrive' | 'local' | 'other'

export interface UrlInfo {
  mode: PoolerMode
  provider: Provider
  host: string
  port: number
  database: string
  user: string
  /** Direct Supabase hosts (`db.<ref>.supabase.co`) resolve to IPv6 only unless the IPv4 add-on is on. */
  ipv6Only: boolean
  /** Why this mode was chosen (one line, for logs and docs). */
  reason: string
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[?::1\]?)$/i

/**
 * Parses a postgres URL; the error never echoes the URL's password.
 *
 * @example
 * ```ts
 * parseDbUrl('postgres://u:pw@db:6543/app').port // '6543'
 * ```
 */
export function parseDbUrl(url: string): URL {
  // The host list starts after the LAST '@' (a password may hold '@', '/', '?', '#' or ','), as in redactUrl.
  const rest = /^[a-z][a-z0-9+.-]*:\/\/([\s\S]*)$/i.exec(url)?.[1] ?? ''
  const hosts = /^[^/?#]*/.exec(rest.slice(rest.lastIndexOf('@') + 1))![0]
  if (hosts.includes(','))
    throw new PoolerError(
      'MULTI_HOST_URL',
      `${redactUrl(url)} lists several hosts (${hosts}) — hono-pooler connects to one host: put the pooler's single host in the URL (poolers fail over on their side)`,
    )
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new PoolerError(
      'INVALID_URL',
      `Not a valid URL: ${redactUrl(url)} — expected postgres://user:password@host:port/database`,
    )
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')
    throw new PoolerError(
      'INVALID_URL',
      `Unsupported scheme "${u.protocol}" in ${redactUrl(url)} — use postgres:// or postgresql://`,
    )
  if (!u.hostname)
    throw new PoolerError(
      'INVALID_URL',
      `No host in ${redactUrl(url)} — expected postgres://user:password@host:port/database`,
    )
  return u
}

/**
 * True for 127.0.0.0/8, ::1 and localhost.
 *
 * @example
 * ```ts
 * isLoopback('127.0.0.1') // true
 * ```
 */
export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host)
}

/**
 * Classifies a connection string: mode, provider, host, port, database, user, IPv6-only. Never returns the
 * password.
 *
 * | URL | mode |
 * |---|---|
 * | `*.pooler.supabase.com:6543` | transaction (Supavisor) |
 * | `*.pooler.supabase.com:5432` | session (Supavisor) |
 * | `db.<ref>.supabase.co:5432` | direct (IPv6-only unless the IPv4 add-on) |
 * | `db.<ref>.supabase.co:6543` | transaction (dedicated PgBouncer) |
 * | Neon host with `-pooler.` | transaction |
 * | `*.hyperdrive.local` (Cloudflare Hyperdrive) | transaction (provider `hyperdrive`) |
 * | any other host, port 6543 | transaction |
 * | anything else | transaction (the safe default) |
 *
 * @example
 * ```ts
 * classifyUrl('postgres://postgres.abc:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres')
 * // { mode: 'transaction', provider: 'supabase', port: 6543, user: 'postgres.abc', ipv6Only: false, ... }
 * ```
 */
export function classifyUrl(url: string): UrlInfo {
  const u = parseDbUrl(url)
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const port = u.port ? Number(u.port) : 5432
  const base = {
    host,
    port,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres',
    user: decodeURIComponent(u.username),
    ipv6Only: false,
  }
  if (host.endsWith('.pooler.supabase.com'))
    return port === 5432
      ? {
          ...base,
          mode: 'session',
          provider: 'supabase',
          reason: 'Supavisor session mode (pooler host, port 5432)',
        }
      : {
          ...base,
          mode: 'transaction',
          provider: 'supabase',
          reason: 'Supavisor transaction mode (pooler host, port 6543)',
        }
  if (/^db\.[a-z0-9]+\.supabase\.co$/.test(host))
    return port === 6543
      ? {
          ...base,
          mode: 'transaction',
          provider: 'supabase',
          reason: 'Supabase dedicated PgBouncer (port 6543)',
        }
      : {
          ...base,
          mode: 'direct',
          provider: 'supabase',
          ipv6Only: true,
          reason: 'Supabase direct connection (IPv6-only unless the IPv4 add-on is enabled)',
        }
  // Cloudflare Hyperdrive's binding: `postgresql://user:pw@<id>.hyperdrive.local:5432/db` (also in wrangler dev).
  if (host.endsWith('.hyperdrive.local'))
    return {
      ...base,
      mode: 'transaction',
      provider: 'hyperdrive',
      reason: 'Cloudflare Hyperdrive (a transaction-mode pooler that keeps prepared statements)',
    }
  if (host.endsWith('.neon.tech'))
    return host.split('.')[0]?.endsWith('-pooler')
      ? { ...base, mode: 'transaction', provider: 'neon', reason: 'Neon pooled host (-pooler)' }
      : {
          ...base,
          mode: 'direct',
          provider: 'neon',
          reason: 'Neon direct host (no -pooler in the host name)',
        }
  const provider: Provider = isLoopback(host) ? 'local' : 'other'
  if (port === 6543)
    return { ...base, mode: 'transaction', provider, reason: 'port 6543 (transaction-mode pooler)' }
  return {
    ...base,
    mode: 'transaction',
    provider,
    reason: 'unknown host: assuming a transaction-mode pooler (the safe default)',
  }
}

/**
 * Hosts that require TLS by default when the URL says nothing about it.
 *
 * @example
 * ```ts
 * defaultsToTls('aws-0-eu-central-1.pooler.supabase.com') // true
 * ```
 */
export function defaultsToTls(host: string): boolean {
  return /\.(supabase\.com|supabase\.co|neon\.tech)$/i.test(host)
}

/**
 * Checks an explicit mode against what the URL's port says, for hosts whose ports are known.
 * Returns an error message, or undefined when they agree (or nothing is known).
 *
 * @example
 * ```ts
 * portMismatch(classifyUrl('postgres://u:pw@x.pooler.supabase.com:5432/db'), 'transaction') // 'mode "transaction" but port 5432 …'
 * ```
 */
export function portMismatch(info: UrlInfo, mode: PoolerMode): string | undefined {
  if (info.provider !== 'supabase' || info.mode === mode) return undefined
  const want = mode === 'transaction' ? 6543 : 5432
  const onPooler = info.host.endsWith('.pooler.supabase.com')
  if (mode === 'direct' && onPooler)
    return `mode "direct" but ${info.host} is the Supavisor pooler — use db.<ref>.supabase.co:5432 for a direct connection`
  return `mode "${mode}" but port ${info.port} on ${info.host} is ${info.mode} mode — use port ${want}, or mode "${info.mode}"`
}

/*
 * Query parameters of the connection string. postgres.js forwards every parameter it does not read itself
 * to the server as a startup parameter, and PgBouncer/Supavisor reject unknown ones
 * (`unsupported startup parameter`) — so those are refused before connecting, Prisma's by name.
 */

/** Query parameters postgres.js reads itself (not forwarded as startup parameters). */
const DRIVER_PARAMS = new Set([
  'sslmode',
  'ssl',
  'sslnegotiation',
  'connect_timeout',
  'idle_timeout',
  'max_lifetime',
  'keep_alive',
  'target_session_attrs',
  'max',
  'fetch_types',
  'prepare',
  'backoff',
  'max_pipeline',
  'publications',
  'debug',
])
/** Startup parameters PgBouncer and Supavisor accept. */
export const STARTUP_PARAMS = new Set([
  'application_name',
  'client_encoding',
  'datestyle',
  'timezone',
  'standard_conforming_strings',
])
const PRISMA_PARAMS: Record<string, string> = {
  pgbouncer: 'a Prisma flag; hono-pooler already applies the transaction-mode preset',
  connection_limit: 'a Prisma option; use pooler({ max })',
  pool_timeout: 'a Prisma option; use pooler({ connectTimeout })',
  statement_cache_size: 'a Prisma option; hono-pooler never prepares named statements in transaction mode',
  schema: 'a Prisma option; use withSettings(sql, { search_path }, fn) or schema-qualified names',
  socket_timeout: 'a Prisma option; use pooler({ connectTimeout })',
}

/**
 * Throws `UNSUPPORTED_URL_PARAM` for a parameter the pooler would reject.
 *
 * @example
 * ```ts
 * checkUrlParams(new URL('postgres://u:pw@h:6543/db?pgbouncer=true')) // throws: a Prisma flag …
 * ```
 */
export function checkUrlParams(url: URL): void {
  for (const key of url.searchParams.keys()) {
    const k = key.toLowerCase()
    if (k in PRISMA_PARAMS)
      throw new PoolerError(
        'UNSUPPORTED_URL_PARAM',
        `URL parameter "${key}" is ${PRISMA_PARAMS[k]} — remove it from the URL (PgBouncer rejects unknown startup parameters)`,
      )
    if (!DRIVER_PARAMS.has(k) && !STARTUP_PARAMS.has(k))
      throw new PoolerError(
        'UNSUPPORTED_URL_PARAM',
        `URL parameter "${key}" would be sent to the pooler as a startup parameter, which PgBouncer/Supavisor reject ("unsupported startup parameter") — remove it from the URL`,
      )
  }
}

/**
 * Throws `INVALID_OPTIONS` for a `postgres: { connection }` key a pooler rejects: postgres.js sends them as
 * startup parameters, and PgBouncer and Supavisor answer `unsupported startup parameter` (08P01) — every
 * request would fail at connect. Only a direct connection takes them.
 *
 * @example
 * ```ts
 * checkStartupParams({ statement_timeout: 1000 }) // throws: … use pooler({ queryTimeout }) … or withSettings …
 * ```
 */
export function checkStartupParams(connection: object | undefined): void {
  for (const key of Object.keys(connection ?? {}))
    if (!STARTUP_PARAMS.has(key.toLowerCase()))
      throw new PoolerError(
        'INVALID_OPTIONS',
        `Invalid hono-pooler option postgres.connection.${key}: a pooler rejects it as a startup parameter ("unsupported startup parameter") — ${
          key === 'statement_timeout'
            ? 'use pooler({ queryTimeout }) for a client-side deadline, or withSettings(sql, { statement_timeout }, fn) for a server-side one'
            : `set it per transaction with withSettings(sql, { ${key} }, fn), or use mode: 'direct'`
        }`,
      )
}
