/**
 * Is the database behind the pooler down? PgBouncer logs a client in by itself and then holds its statement
 * in the queue while it cannot reach Postgres: on the request's own connection that looks exactly like a
 * long statement. A statement that has had no answer for half of `connectTimeout` asks a second, short-lived
 * connection: log in, send an empty query (it needs a server connection, like any statement). PgBouncer
 * answers it at once with its own FATAL (`server login has been failing`, `pgbouncer cannot connect to
 * server`) once its server login failed: then the waiting statement is lost, with that text. Any other
 * outcome — the empty query answered, the probe itself waiting, another error — says nothing, and the
 * statement goes on under its `queryTimeout`. One probe per database at a time; its verdict is kept 1 s.
 */
import postgres from 'postgres'
import type { ClientConfig } from '../preset'
import { scrub } from '../redact'

/** PgBouncer's FATALs while its server side is unreachable, and Postgres refusing logins. */
const DOWN =
  /server login has been failing|pgbouncer cannot connect to server|server login failed|database system is (starting up|shutting down|in recovery mode)|cannot connect now/i
const KEEP_MS = 1000
const MAX_KEYS = 16

interface Verdict {
  /** When the probe settled (Infinity while it runs: every statement asking meanwhile shares it). */
  at: number
  down: Promise<string | undefined>
}
const verdicts = new Map<string, Verdict>()

/** What the probe asks for one database: the FATAL text when the pooler says its server is down. */
export interface Probe {
  /** After this many ms without an answer, a statement asks `check`. */
  readonly afterMs: number
  check(): Promise<string | undefined>
}

/** One short-lived connection: log in, empty query; the pooler's "server down" FATAL, else undefined. */
async function ask(config: ClientConfig, ms: number): Promise<string | undefined> {
  const sql = postgres(config.url, {
    ...config.driver,
    max: 1,
    connect_timeout: Math.max(1, Math.ceil(ms / 1000)),
    idle_timeout: 0,
    onnotice: () => {},
    onparameter: () => {},
  })
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const answer = sql.unsafe('').then(
      () => undefined,
      (e: { code?: unknown; message?: unknown }) => {
        const message = String(e?.message ?? '')
        return DOWN.test(message) || e?.code === '57P03' ? scrub(message, config.password) : undefined
      },
    )
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms)
      ;(timer as { unref?: () => void }).unref?.()
    })
    return await Promise.race([answer, late])
  } finally {
    clearTimeout(timer)
    void sql.end({ timeout: 0 }).catch(() => {})
  }
}

/**
 * The probe for a config, or undefined where none applies (direct Postgres does not queue; Hyperdrive's
 * own pool is not PgBouncer).
 *
 * @example
 * ```ts
 * import { parseOptions } from '../options'
 * import { clientConfig } from '../preset'
 *
 * const probe = downProbe(clientConfig('postgres://app:pw@127.0.0.1:6432/app', parseOptions()))
 * const down = await probe?.check() // e.g. 'server login has been failing, try again later (server_login_retry)'
 * ```
 */
export function downProbe(config: ClientConfig): Probe | undefined {
  if (config.mode === 'direct' || config.hyperdrive) return undefined
  let probe = probes.get(config)
  if (!probe) {
    probe = makeProbe(config)
    probes.set(config, probe)
  }
  return probe
}

const probes = new WeakMap<ClientConfig, Probe>()

function makeProbe(config: ClientConfig): Probe {
  const half = (config.options.connectTimeout * 1000) / 2
  const key = `${config.info.host}:${config.info.port}/${config.info.database}/${config.info.user}`
  return {
    afterMs: half,
    check() {
      const hit = verdicts.get(key)
      if (hit && !(Date.now() - hit.at >= KEEP_MS)) return hit.down
      if (verdicts.size >= MAX_KEYS) verdicts.delete(verdicts.keys().next().value as string)
      const verdict: Verdict = { at: Number.POSITIVE_INFINITY, down: Promise.resolve(undefined) }
      verdict.down = ask(config, half)
        .catch(() => undefined)
        .finally(() => {
          verdict.at = Date.now()
        })
      verdicts.set(key, verdict)
      return verdict.down
    },
  }
}
