/**
 * The named errors: one factory per situation hono-pooler refuses or reports, so every error of the same
 * kind carries the same code and message, and each error's stack points at its own caller.
 */
import { PoolerError } from './pooler-error'

/**
 * @example
 * ```ts
 * const opts: { prepare?: boolean } = { prepare: true }
 * if (opts.prepare === true) throw prepareUnsupported()
 * ```
 */
export const prepareUnsupported = (): PoolerError =>
  new PoolerError(
    'PREPARE_UNSUPPORTED',
    'Named prepared statements do not work behind a transaction-mode pooler (prepared statement "…" does not exist) — drop prepare: true',
  )

/**
 * @example
 * ```ts
 * if (closed) throw clientClosed()
 * ```
 */
export const clientClosed = (): PoolerError =>
  new PoolerError(
    'CLIENT_CLOSED',
    'This request is over and its database client is closed — use c.var.sql only while the request runs',
  )

/**
 * @example
 * ```ts
 * const max: number = 1
 * if (max === 1) throw deadlockInTransaction()
 * ```
 */
export const deadlockInTransaction = (): PoolerError =>
  new PoolerError(
    'DEADLOCK_IN_TRANSACTION',
    "c.var.sql was used inside its own sql.begin() callback: the transaction holds the only connection (max: 1), so it would wait forever — use the callback's tx",
  )

/** A statement had no complete answer within `queryTimeout` seconds (it was cancelled on the server). */
export const queryTimedOut = (seconds: number, cause?: unknown, host?: string): PoolerError =>
  new PoolerError(
    'QUERY_TIMEOUT',
    `A statement had no complete answer within ${seconds} s (queryTimeout) and was cancelled on the server — make it faster, or raise queryTimeout (0 disables)`,
    { ...(cause !== undefined && { cause }), ...(host !== undefined && { host }) },
  )

/**
 * TLS was asked for (`sslmode=require`/`verify-full`) and the server said no (or answered nonsense).
 *
 * @example
 * ```ts
 * declare const answer: number
 * if (answer === 0x4e) throw tlsRefused('db', 5432, 'the server does not support TLS')
 * ```
 */
export const tlsRefused = (host: string, port: number, why: string): PoolerError =>
  new PoolerError(
    'TLS_FAILED',
    `TLS to ${host}:${port} failed: ${why} — enable TLS on the server, or use sslmode=prefer / disable for a local database`,
    { host },
  )

/**
 * The server's SCRAM signature was wrong: it does not know the password (an impostor, or a broken pooler).
 *
 * @example
 * ```ts
 * declare const verified: boolean
 * if (!verified) throw saslSignatureMismatch()
 * ```
 */
export const saslSignatureMismatch = (): PoolerError =>
  new PoolerError(
    'AUTH_FAILED',
    'The server did not prove that it knows the password (SCRAM server signature mismatch) — check that the URL points at your database and use sslmode=verify-full',
  )

/**
 * The server's SCRAM server-first message is unusable (foreign nonce, no salt, an iteration count out of
 * bounds, a mandatory extension): the login is refused, as for a wrong signature.
 *
 * @example
 * ```ts
 * declare const iterations: number
 * if (iterations > 1_000_000) throw scramInvalid('iteration count above 1000000')
 * ```
 */
export const scramInvalid = (why: string): PoolerError =>
  new PoolerError(
    'AUTH_FAILED',
    `The server's SCRAM message is invalid (${why}) — check that the URL points at your database or pooler`,
  )

/**
 * The server sent a malformed or out-of-place message while logging in (not a Postgres server, or broken).
 *
 * @example
 * ```ts
 * declare const length: number
 * if (length < 4) throw loginProtocolError(`message length ${length}`)
 * ```
 */
export const loginProtocolError = (why: string): PoolerError =>
  new PoolerError(
    'CONNECT_FAILED',
    `The server sent an invalid message during login (${why}) — check that the URL's host and port are a Postgres server or pooler`,
  )

/**
 * `pipelineConnect: true` sends the first statement before the server proved it knows the password.
 *
 * @example
 * ```ts
 * declare const verified: boolean
 * if (!verified) throw pipelineConnectUnsafe('db.example.com')
 * ```
 */
export const pipelineConnectUnsafe = (host: string): PoolerError =>
  new PoolerError(
    'PIPELINE_CONNECT_UNSAFE',
    `pipelineConnect sends the first statement before ${host} has proven it knows the password: use TLS with verification (sslmode=verify-full, or ssl: { ca }) — or pipelineConnect: 'insecure' if you accept that risk`,
  )

/** The postgres.js methods that need a session of their own, and why each is refused in transaction mode. */
export const SESSION_ONLY: Record<
  'listen' | 'subscribe',
  { code: 'LISTEN_UNSUPPORTED' | 'SUBSCRIBE_UNSUPPORTED'; message: string }
> = {
  listen: {
    code: 'LISTEN_UNSUPPORTED',
    message:
      'LISTEN does not work behind a transaction-mode pooler: notifications never arrive — listen on a session-mode or direct connection, or use Supabase Realtime',
  },
  subscribe: {
    code: 'SUBSCRIBE_UNSUPPORTED',
    message:
      'sql.subscribe() needs logical replication, which a transaction-mode pooler cannot carry — subscribe over a direct connection',
  },
}
/** The shared pool's refusals (`pooler({ pool })`): 503 with `Retry-After: 1`. */
export const poolTimeout = (seconds: number, host: string, limit: number): PoolerError =>
  new PoolerError(
    'POOL_TIMEOUT',
    `No pooled connection to ${host} became free within ${seconds} s (all ${limit} in use) — raise pool.size or pool.overflow, shorten transactions, or raise pool.timeout`,
    { retryAfter: 1, host },
  )
export const poolClosed = (): PoolerError =>
  new PoolerError('POOL_CLOSED', 'closePools() was called: the server is shutting down — retry', {
    retryAfter: 1,
  })
/** What a shared pool (`pooler({ pool })`) cannot allow on `c.var.sql`: each would leak to other requests. */
export const poolUnsupported = (what: string, fix: string): PoolerError =>
  new PoolerError('POOL_UNSUPPORTED', `${what} with a shared pool (pooler({ pool })) — ${fix}`)
