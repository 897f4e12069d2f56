/**
 * Every error hono-pooler raises is a `PoolerError` with a stable `code` and a one-line message that says
 * what to do. Messages never contain a password: URLs are always shown through `redactUrl`.
 */

/** Stable error codes. Match on `err.code`, never on the message. */
export type PoolerErrorCode =
  | 'INVALID_OPTIONS'
  | 'MISSING_DATABASE_URL'
  | 'INVALID_URL'
  | 'MULTI_HOST_URL'
  | 'UNSUPPORTED_URL_PARAM'
  | 'WRONG_PORT_FOR_MODE'
  | 'PREPARE_UNSUPPORTED'
  | 'CLIENT_CLOSED'
  | 'CONNECT_FAILED'
  | 'CONNECT_TIMEOUT'
  | 'AUTH_FAILED'
  | 'POOLER_SATURATED'
  | 'UNSAFE_IN_TRANSACTION_MODE'
  | 'LISTEN_UNSUPPORTED'
  | 'SUBSCRIBE_UNSUPPORTED'
  | 'INVALID_SETTING'
  | 'DEADLOCK_IN_TRANSACTION'
  | 'PIPELINE_CONNECT_UNSAFE'
  | 'POOL_TIMEOUT'
  | 'POOL_CLOSED'
  | 'POOL_UNSUPPORTED'

/**
 * Codes meaning "this request could not get a database connection": answered with HTTP 503.
 *
 * @example
 * ```ts
 * const err = new PoolerError('CONNECT_FAILED', 'Cannot reach the database')
 * if (CONNECTION_CODES.has(err.code)) console.log('retry later')
 * ```
 */
export const CONNECTION_CODES: ReadonlySet<PoolerErrorCode> = new Set([
  'CONNECT_FAILED',
  'CONNECT_TIMEOUT',
  'AUTH_FAILED',
  'POOLER_SATURATED',
  'POOL_TIMEOUT',
  'POOL_CLOSED',
])

export interface PoolerErrorOptions {
  cause?: unknown
  /** Guard rule id, for `UNSAFE_IN_TRANSACTION_MODE`. */
  rule?: string
  /** The safe alternative, for guard errors. */
  fix?: string
  /** A short excerpt of the offending statement (never with parameter values). */
  statement?: string
  /** Seconds, for `POOLER_SATURATED` (sent as `Retry-After`). */
  retryAfter?: number
}

/**
 * The error class of hono-pooler. Connection errors (`CONNECTION_CODES`) carry `getResponse()`, so Hono's
 * default error handler answers them with a 503 JSON body, while an app's own `onError` still sees them.
 *
 * @example
 * ```ts
 * app.onError((err, c) => {
 *   if (err instanceof PoolerError && err.code === 'POOLER_SATURATED') return c.json({ busy: true }, 503)
 *   throw err
 * })
 * ```
 */
export class PoolerError extends Error {
  override readonly name = 'PoolerError'
  readonly code: PoolerErrorCode
  readonly rule?: string
  readonly fix?: string
  readonly statement?: string
  readonly retryAfter?: number
  /** HTTP status Hono's default error handler answers with (503 for connection errors). */
  readonly status?: number

  constructor(code: PoolerErrorCode, message: string, options: PoolerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options.rule !== undefined) this.rule = options.rule
    if (options.fix !== undefined) this.fix = options.fix
    if (options.statement !== undefined) this.statement = options.statement
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter
    if (CONNECTION_CODES.has(code)) {
      this.status = 503
      // Own property, only on connection errors: Hono's default onError answers with it (and, as it does
      // for other errors, logs the detailed message: the response carries the public one).
      Object.defineProperty(this, 'getResponse', {
        value: () => {
          console.error(`[hono-pooler] ${this.code}: ${this.message}`)
          return errorResponse(this)
        },
        enumerable: false,
      })
    }
  }

  /** A message fit for HTTP clients: no host, port, user or statement. */
  get publicMessage(): string {
    return PUBLIC_MESSAGES[this.code] ?? 'Internal Server Error'
  }
}

const PUBLIC_MESSAGES: Partial<Record<PoolerErrorCode, string>> = {
  CONNECT_FAILED: 'The database is unreachable. Try again later.',
  CONNECT_TIMEOUT: 'The database did not answer in time. Try again later.',
  AUTH_FAILED: 'The server could not log in to its database.',
  POOLER_SATURATED: 'The database is busy. Retry shortly.',
  POOL_TIMEOUT: 'The database is busy. Retry shortly.',
  POOL_CLOSED: 'The server is shutting down. Retry shortly.',
}

/**
 * The JSON error response hono-pooler uses: `{ error: { code, message } }` with the error's status (503 for
 * connection errors, else 500) and `Retry-After` when saturated. The message is `err.publicMessage` — no
 * host, port, user or SQL reaches the HTTP client — unless `expose: true` (development) sends `err.message`.
 *
 * @example
 * ```ts
 * app.onError((err, c) => (err instanceof PoolerError ? errorResponse(err) : c.text('oops', 500)))
 * ```
 */
export function errorResponse(
  err: PoolerError,
  { status = err.status ?? 500, expose = false }: { status?: number; expose?: boolean } = {},
): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=UTF-8' }
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter)
  const message = expose ? err.message : err.publicMessage
  return new Response(JSON.stringify({ error: { code: err.code, message } }), { status, headers })
}

/**
 * A connection string with its password replaced by `***` (also in query parameters such as `password=`).
 *
 * @example
 * ```ts
 * redactUrl('postgres://app:secret@db:6543/app') // 'postgres://app:***@db:6543/app'
 * ```
 */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([\s\S]*)$/i.exec(url)
  let out = url
  // The user info ends at the LAST '@': a raw '@', '/', '?' or '#' in a password must not end it early
  // (masking a little too much when an '@' stands in the query is the safe side).
  const rest = m ? (m[2] as string) : url
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    const userinfo = rest.slice(0, at)
    const colon = userinfo.indexOf(':')
    const masked = m ? (colon >= 0 ? `${userinfo.slice(0, colon)}:***` : userinfo) : '***'
    out = `${m ? m[1] : ''}${masked}@${rest.slice(at + 1)}`
  }
  return out.replace(/([?&](?:password|pass|sslpassword)=)[^&#]*/gi, '$1***')
}

/**
 * Removes every occurrence of `secret` from a string (for messages built from foreign errors).
 *
 * @example
 * ```ts
 * scrub('auth failed for p4ss', 'p4ss') // 'auth failed for ***'
 * ```
 */
export function scrub(text: string, secret: string | undefined): string {
  if (!secret) return text
  let out = text.split(secret).join('***')
  const enc = encodeURIComponent(secret)
  if (enc !== secret) out = out.split(enc).join('***')
  return out
}

/*
 * The refusals: what a transaction-mode pooler cannot do at the driver level (the SQL-level ones come from
 * the guard), and using a request's client outside its request. One factory per error, so every refusal of
 * the same kind carries the same code and message, and each error's stack points at its own caller.
 */

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
    'CONNECT_FAILED',
    `TLS to ${host}:${port} failed: ${why} — enable TLS on the server, or use sslmode=prefer / disable for a local database`,
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
    { retryAfter: 1 },
  )
export const poolClosed = (): PoolerError =>
  new PoolerError('POOL_CLOSED', 'closePools() was called: the server is shutting down — retry', {
    retryAfter: 1,
  })
/** What a shared pool (`pooler({ pool })`) cannot allow on `c.var.sql`: each would leak to other requests. */
export const poolUnsupported = (what: string, fix: string): PoolerError =>
  new PoolerError('POOL_UNSUPPORTED', `${what} with a shared pool (pooler({ pool })) — ${fix}`)
