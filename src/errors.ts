/**
 * Every error hono-pooler raises is a `PoolerError` with a stable `code` and a one-line message that says
 * what to do. Messages never contain a password: URLs are always shown through `redactUrl` (`redact.ts`).
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
  | 'CONNECTION_LOST'
  | 'TLS_FAILED'
  | 'QUERY_TIMEOUT'
  | 'PIPELINE_CONNECT_UNSAFE'
  | 'POOL_TIMEOUT'
  | 'POOL_CLOSED'

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
  'CONNECTION_LOST',
  'TLS_FAILED',
  'POOL_TIMEOUT',
  'POOL_CLOSED',
])

/** HTTP status of the codes that are not 500: 503 unreachable or lost (retry later), 504 past the deadline. */
export const STATUS: Readonly<Partial<Record<PoolerErrorCode, 503 | 504>>> = {
  ...Object.fromEntries([...CONNECTION_CODES].map((c) => [c, 503])),
  QUERY_TIMEOUT: 504,
}

export const LOG_INTERVAL_MS = 10_000 // a saturated pooler fails every request: one line per code per 10 s
const logged = new Map<PoolerErrorCode, { at: number; suppressed: number }>()

/** Logs `[hono-pooler] CODE: message` at most once per code per `LOG_INTERVAL_MS`, then with the count left out. */
export function logError(err: PoolerError, now = Date.now()): void {
  const seen = logged.get(err.code)
  if (seen && now - seen.at < LOG_INTERVAL_MS && ++seen.suppressed) return
  const more = seen?.suppressed
    ? ` (+${seen.suppressed} more ${err.code} in the last ${Math.round((now - seen.at) / 1000)} s)`
    : ''
  logged.set(err.code, { at: now, suppressed: 0 })
  console.error(`[hono-pooler] ${err.code}: ${err.message}${more}`)
}

/** Forgets what `logError` has logged (tests). */
export const resetErrorLog = (): void => logged.clear()

export interface PoolerErrorOptions {
  cause?: unknown
  /** Guard rule id, for `UNSAFE_IN_TRANSACTION_MODE`. */
  rule?: string
  /** The safe alternative, for guard errors. */
  fix?: string
  /** A short excerpt of the offending statement (never with parameter values). */
  statement?: string
  /** Seconds, sent as `Retry-After` (default: 1 for `POOLER_SATURATED` and `CONNECTION_LOST`). */
  retryAfter?: number
}

/**
 * The error class of hono-pooler. Every one carries `getResponse()`, so Hono's default error handler answers
 * it with JSON and its `status`, while an app's own `onError` still sees it.
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
  /** HTTP status Hono's default error handler answers with (`STATUS`: 503 connection, 504 timeout, else 500). */
  readonly status: number

  constructor(code: PoolerErrorCode, message: string, options: PoolerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options.rule !== undefined) this.rule = options.rule
    if (options.fix !== undefined) this.fix = options.fix
    if (options.statement !== undefined) this.statement = options.statement
    const retryAfter =
      options.retryAfter ?? (code === 'POOLER_SATURATED' || code === 'CONNECTION_LOST' ? 1 : undefined)
    if (retryAfter !== undefined) this.retryAfter = retryAfter
    this.status = STATUS[code] ?? 500
    // Hono's default onError answers with it (JSON with the code) and, as it does for other errors, logs
    // the detailed message (rate-limited per code): the response carries the public one.
    Object.defineProperty(this, 'getResponse', {
      value: () => {
        logError(this)
        return errorResponse(this)
      },
      enumerable: false,
    })
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
  CONNECTION_LOST: 'The connection to the database was lost. Retry shortly.',
  TLS_FAILED: 'The server could not open a secure connection to its database.',
  QUERY_TIMEOUT: 'The database did not answer in time.',
  POOL_TIMEOUT: 'The database is busy. Retry shortly.',
  POOL_CLOSED: 'The server is shutting down. Retry shortly.',
}

/**
 * The JSON error response hono-pooler uses: `{ error: { code, message } }` with `err.status` and `Retry-After`
 * when saturated or lost. The message is `err.publicMessage` — no host, port, user or SQL reaches the HTTP
 * client — unless `expose: true` (development) sends `err.message`.
 *
 * @example
 * ```ts
 * app.onError((err, c) => (err instanceof PoolerError ? errorResponse(err) : c.text('oops', 500)))
 * ```
 */
export function errorResponse(
  err: PoolerError,
  { status = err.status, expose = false }: { status?: number; expose?: boolean } = {},
): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=UTF-8' }
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter)
  const message = expose ? err.message : err.publicMessage
  return new Response(JSON.stringify({ error: { code: err.code, message } }), { status, headers })
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

/** A statement had no complete answer within `queryTimeout` seconds (it was cancelled on the server). */
export const queryTimedOut = (seconds: number, cause?: unknown): PoolerError =>
  new PoolerError(
    'QUERY_TIMEOUT',
    `A statement had no complete answer within ${seconds} s (queryTimeout) and was cancelled on the server — make it faster, or raise queryTimeout (0 disables)`,
    cause === undefined ? {} : { cause },
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
