/**
 * Turns the ways a request can fail to get a connection into `PoolerError`s with stable codes (answered
 * with HTTP 503), and leaves SQL errors from the user's own queries untouched.
 */

import { PoolerError } from '../errors'
import type { ClientConfig } from '../preset'
import { scrub } from '../redact'

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
])
/** workerd (cloudflare:sockets) rejects a refused or unreachable address with this message and no `code`. */
const UNREACHABLE_WORKERD = /proxy request failed, cannot connect to the specified address/i
const SATURATED =
  /no more connections allowed|max client connections reached|max_client_conn|too many (clients|connections)|remaining connection slots|query_wait_timeout|pool_timeout|connection pool (is )?exhausted/i
/** The live connection died: the socket closed or was reset, the server shut down or was terminated. */
const LOST = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED', // the client was ended under the request (a statement past its deadline)
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  '57P01', // admin_shutdown (pg_terminate_backend, fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '08006', // connection_failure
  '08003', // connection_does_not_exist
])
/** PgBouncer's own FATALs when its server side is gone (sent with SQLSTATE 08P01). */
const LOST_BOUNCER =
  /server login has been failing|server conn crashed|pgbouncer cannot connect to server|server closed the connection unexpectedly|client_login_timeout|no server connection|server_lifetime/i
/** TLS: the handshake or the certificate failed (OpenSSL codes, or the server refusing SSL). */
const TLS_CODES =
  /^(ERR_SSL_|ERR_TLS_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|CERT_|HOSTNAME_MISMATCH|ERR_TLS_CERT_ALTNAME_INVALID)/
const AUTH =
  /password authentication failed|SASL|SCRAM|authentication failed|no such user|not allowed to connect/i

/**
 * Maps a driver error to a `PoolerError` when it means "no connection for this request"; returns any other
 * error unchanged. Messages name host and port, never the password.
 *
 * @example
 * ```ts
 * import { parseOptions } from '../options'
 * import { clientConfig } from '../preset'
 *
 * const config = clientConfig('postgres://app:pw@127.0.0.1:6432/app', parseOptions())
 * const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
 * ;(mapConnectionError(refused, config) as { code: string }).code // 'CONNECT_FAILED'
 * ```
 */
export function mapConnectionError(e: unknown, config: ClientConfig): unknown {
  if (!e || typeof e !== 'object' || e instanceof PoolerError) return e
  const err = e as { code?: unknown; message?: unknown }
  const code = typeof err.code === 'string' ? err.code : ''
  const message = scrub(String(err.message ?? ''), config.password)
  const host = config.info.host
  const where = `${host}:${config.info.port}`
  // The Supabase guide's classic: the direct host is IPv6-only, and Vercel, GitHub Actions, Render… are not.
  const ipv6 = config.info.ipv6Only
    ? ` — ${config.info.host} is IPv6-only: from an IPv4-only platform use the pooler URL (…pooler.supabase.com:6543) or the IPv4 add-on`
    : ''
  if (UNREACHABLE.has(code) || (!code && UNREACHABLE_WORKERD.test(message)))
    return new PoolerError(
      'CONNECT_FAILED',
      `Cannot reach the database at ${where} (${code || message})${ipv6 || ' — check the host and port in the URL and that the pooler is up'}`,
      { cause: e, host },
    )
  if (TLS_CODES.test(code))
    return new PoolerError(
      'TLS_FAILED',
      `TLS to ${where} failed (${code.startsWith('ERR_SSL_') ? code : `${code}: ${message}`}) — check sslmode: the server may not offer TLS, or its certificate does not match (verify-full needs the server's CA)`,
      { cause: e, host },
    )
  if (LOST.has(code) || (code === '08P01' && LOST_BOUNCER.test(message)))
    return connectionLost(
      config,
      lostWhy(code, message, e as { severity?: unknown; severity_local?: unknown }),
      e,
    )
  if (code === 'CONNECT_TIMEOUT')
    return new PoolerError(
      'CONNECT_TIMEOUT',
      `No connection to ${where} within ${config.options.connectTimeout} s${ipv6 || ' — the pooler may be overloaded or unreachable from this runtime'}`,
      { cause: e, host },
    )
  // Only connection-class errors (no SQLSTATE, 08xxx, 53xxx, XX000): a user's own SQL error whose text
  // happens to mention "max_client_conn" stays what it is.
  const connectionClass = !code || code.startsWith('08') || code.startsWith('53') || code === 'XX000'
  if (code === '53300' || (connectionClass && SATURATED.test(message)))
    return new PoolerError(
      'POOLER_SATURATED',
      `The pooler at ${where} refused the connection (${message}) — retry shortly, lower max, or raise the pool size`,
      { cause: e, retryAfter: 1, host },
    )
  if (
    code === '28P01' ||
    code === '28000' ||
    code === 'SASL_SIGNATURE_MISMATCH' ||
    (code === '08P01' && AUTH.test(message))
  )
    return new PoolerError(
      'AUTH_FAILED',
      `Authentication to ${where} as "${config.info.user}" failed (${message}) — check the user and password in the URL (Supavisor users look like postgres.<project-ref>)`,
      { cause: e, host },
    )
  return e
}

/** PgBouncer's own text (08P01), the server's FATAL as `code: text`, else the driver's code. */
const lostWhy = (
  code: string,
  message: string,
  e: { severity?: unknown; severity_local?: unknown },
): string => {
  const severity = e.severity ?? e.severity_local
  return code === '08P01'
    ? message
    : (severity === 'FATAL' || severity === 'PANIC') && message
      ? `${code}: ${message}`
      : code
}

/**
 * `CONNECTION_LOST` (503, `Retry-After: 1`) for `config`'s host; `why` is the driver's code or the pooler's
 * text (never holding the password).
 *
 * @example
 * ```ts
 * import { parseOptions } from '../options'
 * import { clientConfig } from '../preset'
 *
 * const config = clientConfig('postgres://app:pw@127.0.0.1:6432/app', parseOptions())
 * connectionLost(config, 'server login has been failing', undefined).code // 'CONNECTION_LOST'
 * ```
 */
export function connectionLost(config: ClientConfig, why: string, cause: unknown): PoolerError {
  return new PoolerError(
    'CONNECTION_LOST',
    `The connection to ${config.info.host}:${config.info.port} was lost (${scrub(why, config.password)}) — the pooler or the database restarted or went away; retry the request`,
    { cause, host: config.info.host },
  )
}
