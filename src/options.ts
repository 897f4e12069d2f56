/**
 * `pooler()`'s options: their types, their validation with zod (when `pooler()` is called) and every
 * default in one place. No message ever contains a password.
 */
import type { Context } from 'hono'
import type { Options as PostgresOptions } from 'postgres'
import * as z from 'zod/v4/mini'
import { PoolerError } from './errors'
import type { PoolOptions, ResolvedPoolOptions } from './pool/options'
import { PRESET_OWNED, presetOwned } from './preset-owned'
import { type TelemetryOptions, telemetrySchema } from './telemetry/options'
import { checkStartupParams, POOLER_MODES, type PoolerMode } from './url'

/** What the guard does with a statement transaction mode cannot run. */
export const GUARD_LEVELS = ['error', 'warn', 'off'] as const
export type GuardLevel = (typeof GUARD_LEVELS)[number]

/** Every default of `pooler()`: the options table of the README. */
export const DEFAULTS = {
  binding: 'DATABASE_URL',
  mode: 'auto',
  max: 1,
  connectTimeout: 5,
  closeTimeout: 5,
  idleTimeout: 30,
  queryTimeout: 30,
  applicationName: 'hono-pooler',
  /** hono-pooler runs TLS, the startup and SCRAM itself (SCRAM keys derived once per process). */
  fastConnect: true,
  /** Startup + SCRAM + first statement in two round trips: opt-in (see docs/fast-connect.md). */
  pipelineConnect: false,
  /** A statement silent for half of connectTimeout asks a probe whether the pooler's database is down. */
  downProbe: true,
} as const

/** Defaults of `pooler({ pool })`: SQLAlchemy QueuePool's, with a 30-minute `pool_recycle`; and its flags. */
export const POOL_DEFAULTS = { size: 5, overflow: 10, timeout: 30, recycle: 1800 } as const
const POOL_FLAGS = { allowServerless: false, checkBudget: true } as const

/** Every default of the `hono-pooler` command (`doctor`, `top`): its usage text shows them. */
export const CLI_DEFAULTS = {
  /** Seconds the whole `doctor` run may take (`--timeout`). */
  timeout: 10,
  /** Seconds the `ipv6` check's connect attempt may take (within `--timeout`). */
  ipv6Timeout: 3,
  /** `select 1` round trips the `query` check takes the median of. */
  queryRuns: 5,
  /** Seconds between two `top` frames (`--interval`). */
  interval: 2,
  /** `application_name` of the commands' own connections. */
  doctorApplicationName: 'hono-pooler-doctor',
  topApplicationName: 'hono-pooler-top',
} as const

// After an abort: the CancelRequest repeated after 100, 200, 400 ms …, for at most 3 s; after queryTimeout: 1 s
// to land (and a cancel in flight 1 s to close before the next statement is sent).
export const [ABORT_CANCEL_EVERY_MS, ABORT_WAIT_MS, CANCEL_GRACE_MS] = [100, 3000, 1000] as const
/** `application_name` of the short-lived probe connection (client/probe.ts). */
export const PROBE_APPLICATION_NAME = 'hono-pooler-probe'
/**
 * The defaults that depend on the mode: transaction mode refuses what its pooler breaks, never prepares
 * named statements and inlines parameters; session and direct mode keep postgres.js's behaviour.
 *
 * @example
 * ```ts
 * modeDefaults('transaction') // { guard: 'error', prepare: false, inlineParams: true, fetchTypes: false }
 * modeDefaults('direct', true) // { guard: 'error', prepare: true, inlineParams: false, fetchTypes: true } (a shared pool)
 * ```
 */
export function modeDefaults(
  mode: PoolerMode,
  pooled = false,
): {
  guard: GuardLevel
  prepare: boolean
  inlineParams: boolean
  fetchTypes: boolean
} {
  const transaction = mode === 'transaction'
  // A shared pool hands one connection to many requests: session state would leak, so the guard is on.
  return {
    guard: transaction || pooled ? 'error' : 'off',
    prepare: !transaction,
    inlineParams: transaction,
    // transaction mode registers the built-in array types instead (one round trip saved per connection)
    fetchTypes: !transaction,
  }
}

/** The Hyperdrive preset (`hyperdrive` option or `*.hyperdrive.local`): Cloudflare's postgres.js guidance. */
export const HYPERDRIVE_DEFAULTS = { ...modeDefaults('transaction'), prepare: true, inlineParams: false }

/** What `pooler()` accepts. Every field is optional. */
export interface PoolerOptions extends TelemetryOptions {
  /** The connection string, or a function of the request. Default: `env(c)[binding]`. */
  url?: string | ((c: Context<any>) => string | undefined)
  /** Name of the binding / environment variable holding the URL. Default `DATABASE_URL`. */
  binding?: string
  /** A Cloudflare Hyperdrive binding's name: the URL is its `connectionString`, with the Hyperdrive preset. */
  hyperdrive?: string
  /** `auto` (default) reads the mode from the URL: see `classifyUrl`. */
  mode?: 'auto' | PoolerMode
  /** Connections per request, 1–5 (Workers allow 6 simultaneous outbound connections). Default 1. */
  max?: number
  /** Seconds to wait for a connection. Default 5. */
  connectTimeout?: number
  /** Seconds `sql.end({ timeout })` waits for running queries at the end of a request. Default 5. */
  closeTimeout?: number
  /** Seconds an unused connection may sit idle inside one request before it is closed. Default 30. */
  idleTimeout?: number
  /** Seconds a statement may go unanswered: then cancelled, `QUERY_TIMEOUT` (504). 0 disables. Default 30. */
  queryTimeout?: number
  /** Sent as `application_name`. Default `hono-pooler`. */
  applicationName?: string
  /** Named prepared statements. Refused in transaction mode (`PREPARE_UNSUPPORTED`). */
  prepare?: boolean
  /** What to do with statements transaction mode cannot run. Default `error` in transaction mode, else `off`. */
  guard?: GuardLevel
  /** Send parameters as escaped literals (one round trip per query). Default: on in transaction mode. */
  inlineParams?: boolean
  /** TLS. Default: the URL's `sslmode`; else `require` for Supabase/Neon hosts, none for loopback. */
  ssl?: boolean | 'require' | 'prefer' | 'allow' | 'verify-full' | Record<string, unknown>
  /**
   * hono-pooler owns the connection's setup (TLS, startup, SCRAM with the keys derived once per process;
   * other auth methods fall through to postgres.js). Default `true`; `false` leaves it all to postgres.js.
   */
  fastConnect?: boolean
  /**
   * Login and first statement in two round trips (SCRAM only; never to Supavisor). Needs TLS with
   * verification unless the host is loopback or `'insecure'` is given. Default `false`.
   */
  pipelineConnect?: boolean | 'insecure'
  /**
   * Through a pooler, a statement with no answer for half of `connectTimeout` asks a short-lived probe
   * connection whether the pooler can reach its database (503 `CONNECTION_LOST` at once if not). Turn it
   * off when several PgBouncer processes share one address (`so_reuseport`). Default `true`.
   */
  downProbe?: boolean
  /** More postgres.js options (types, transform, onnotice, debug, …). The preset wins where they clash. */
  postgres?: PostgresOptions<any>
  /** A shared pool for long-running servers (see docs/pool.md). Default: none, one client per request. */
  pool?: PoolOptions
  /** Observes each client's life: opened, closed, errors. For logs and metrics; must not throw. */
  onEvent?: (event: PoolerEvent) => void
}

/** What `onEvent` receives. Never contains a password. */
export type PoolerEvent =
  | {
      type: 'close'
      host: string
      mode: PoolerMode
      used: boolean
      queries: number
      ms: number
      reason: CloseReason
    }
  | { type: 'error'; host: string; mode: PoolerMode; code: string; message: string }

export type CloseReason = 'done' | 'error' | 'abort' | 'stream-end' | 'stream-cancel'

const fn = <T>() => z.custom<T>((v) => typeof v === 'function')
const num = (...checks: Parameters<ReturnType<typeof z.number>['check']>) => z.number().check(...checks)
// zod/mini (from 'zod/v4/mini': zod ^3.25 and ^4 both ship it) keeps the Worker bundle small: no locales,
// no method chains; the messages are written by `describeIssue`.
const schema = z.strictObject({
  url: z.optional(z.union([z.string().check(z.minLength(1)), fn<(c: Context<any>) => string | undefined>()])),
  binding: z.optional(z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/))),
  hyperdrive: z.optional(z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/))),
  mode: z.optional(z.enum(['auto', ...POOLER_MODES])),
  max: z.optional(z.int().check(z.gte(1), z.lte(5))),
  connectTimeout: z.optional(num(z.gt(0), z.lte(120))),
  closeTimeout: z.optional(num(z.gte(0), z.lte(120))),
  idleTimeout: z.optional(num(z.gt(0), z.lte(3600))),
  queryTimeout: z.optional(num(z.gte(0), z.lte(3600))),
  applicationName: z.optional(z.string().check(z.maxLength(63))),
  prepare: z.optional(z.boolean()),
  guard: z.optional(z.enum(GUARD_LEVELS)),
  inlineParams: z.optional(z.boolean()),
  ssl: z.optional(
    z.union([
      z.boolean(),
      z.enum(['require', 'prefer', 'allow', 'verify-full']),
      z.record(z.string(), z.unknown()),
    ]),
  ),
  fastConnect: z.optional(z.boolean()),
  pipelineConnect: z.optional(z.union([z.boolean(), z.literal('insecure')])),
  downProbe: z.optional(z.boolean()),
  postgres: z.optional(z.looseObject({ connection: z.optional(z.record(z.string(), z.unknown())) })),
  ...telemetrySchema,
  onEvent: z.optional(fn<(e: PoolerEvent) => void>()),
  pool: z.optional(
    z.strictObject({
      size: z.optional(z.int().check(z.gte(1), z.lte(1000))),
      overflow: z.optional(z.int().check(z.gte(0), z.lte(1000))),
      timeout: z.optional(num(z.gt(0), z.lte(3600))),
      recycle: z.optional(num(z.gte(0), z.lte(86400))),
      allowServerless: z.optional(z.boolean()),
      checkBudget: z.optional(z.boolean()),
    }),
  ),
})

/** One line for a zod issue, without echoing the input (it may be a URL with a password). */
function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown option ${issue.keys.join(', ')}`
    case 'too_big':
      return `must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`
    case 'too_small':
      return `must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`
    case 'invalid_type':
      return `expected ${issue.expected}`
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
    case 'invalid_union':
      return 'has an unsupported type'
    case 'invalid_format':
      return `has an invalid format (${issue.format})`
    default:
      return 'is invalid'
  }
}

/** Options after validation, with defaults filled in. */
export type ResolvedOptions = Omit<PoolerOptions, keyof typeof DEFAULTS | 'pool'> &
  Required<Pick<PoolerOptions, keyof typeof DEFAULTS>> & { pool?: ResolvedPoolOptions }

/**
 * Validates `pooler()` options; throws `PoolerError` `INVALID_OPTIONS` naming the option.
 *
 * @example
 * ```ts
 * parseOptions({ max: 9 }) // throws INVALID_OPTIONS: Invalid hono-pooler option max: must be <= 5
 * ```
 */
export function parseOptions(options: PoolerOptions = {}): ResolvedOptions {
  const r = schema.safeParse(options)
  if (!r.success) {
    const issue = r.error.issues[0]
    const where = issue?.path.length ? issue.path.join('.') : 'options'
    const what = issue ? describeIssue(issue) : 'is invalid'
    throw new PoolerError('INVALID_OPTIONS', `Invalid hono-pooler option ${where}: ${what}`)
  }
  if (options.hyperdrive !== undefined && (options.url !== undefined || options.binding !== undefined))
    throw new PoolerError('INVALID_OPTIONS', 'Invalid hono-pooler option hyperdrive: drop url / binding')
  const owned = presetOwned(options.postgres as Record<string, unknown> | undefined)
  if (owned)
    throw new PoolerError(
      'INVALID_OPTIONS',
      `Invalid hono-pooler option postgres.${owned}: hono-pooler sets it — use pooler({ ${PRESET_OWNED[owned]} }) instead`,
    )
  if (options.mode !== 'direct') checkStartupParams(options.postgres?.connection)
  const { pool, ...rest } = options
  return {
    ...rest,
    binding: options.binding ?? DEFAULTS.binding,
    mode: options.mode ?? DEFAULTS.mode,
    max: options.max ?? DEFAULTS.max,
    connectTimeout: options.connectTimeout ?? DEFAULTS.connectTimeout,
    closeTimeout: options.closeTimeout ?? DEFAULTS.closeTimeout,
    idleTimeout: options.idleTimeout ?? DEFAULTS.idleTimeout,
    queryTimeout: options.queryTimeout ?? DEFAULTS.queryTimeout,
    applicationName: options.applicationName ?? DEFAULTS.applicationName,
    fastConnect: options.fastConnect ?? DEFAULTS.fastConnect,
    pipelineConnect: options.pipelineConnect ?? DEFAULTS.pipelineConnect,
    downProbe: options.downProbe ?? DEFAULTS.downProbe,
    ...(pool ? { pool: { ...POOL_DEFAULTS, ...POOL_FLAGS, ...pool } } : {}),
  }
}
