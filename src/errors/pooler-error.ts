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

export const LOG_INTERVAL_MS = 10_000 // a saturated pooler fails every request: one line per code and host per 10 s
const logged = new Map<string, { at: number; suppressed: number }>()

/**
 * Logs `[hono-pooler] CODE: message` at most once per code and database host (`err.host`; no host: per code)
 * per `LOG_INTERVAL_MS`. The lines left out are counted, and the count (`+N more`) is printed with the next
 * line of that code and host — the first one after the interval — never on its own.
 */
export function logError(err: PoolerError, now = Date.now()): void {
  const key = err.host === undefined ? err.code : `${err.code} ${err.host}`
  const seen = logged.get(key)
  if (seen && now - seen.at < LOG_INTERVAL_MS && ++seen.suppressed) return
  const more = seen?.suppressed
    ? ` (+${seen.suppressed} more ${err.code} in the last ${Math.round((now - seen.at) / 1000)} s)`
    : ''
  logged.set(key, { at: now, suppressed: 0 })
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
  /** The database host the error is about (connection errors): the log limit counts per code and host. */
  host?: string
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
  /** The database host a connection error is about (no password, no port). */
  readonly host?: string
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
    if (options.host !== undefined) this.host = options.host
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
