/**
 * Is the database behind the pooler down? PgBouncer logs a client in by itself and then holds its statement
 * in the queue while it cannot reach Postgres: on the request's own connection that looks exactly like a
 * long statement. A top-level statement that has had no answer for half of `connectTimeout` (at least 1 s)
 * asks a second, short-lived connection: log in, send an empty query (it needs a server connection, like any
 * statement). PgBouncer refuses it at once with its own FATAL (`server login has been failing`, `pgbouncer
 * cannot connect to server`) only when it has no server connection for that pool and its last server login
 * failed — then the waiting statement cannot be running anywhere, and it is lost, with that text. Any other
 * outcome — the empty query answered, the probe itself waiting, another error — says nothing, and the
 * statement goes on under its `queryTimeout` (and asks again every half `connectTimeout`).
 * One probe per database at a time; a verdict is shared for 1 s after it settled. Needs the connect layer
 * (`fastConnect`): without it postgres.js drops PgBouncer's FATAL text.
 */
import postgres from 'postgres'
import { PROBE_APPLICATION_NAME } from '../options'
import type { ClientConfig } from '../preset'
import { scrub } from '../redact'

/** PgBouncer's own FATALs when it cannot reach its server (never its auth or saturation errors). */
const DOWN = /server login has been failing|pgbouncer cannot connect to server/i
const KEEP_MS = 1000
const MAX_KEYS = 16

interface Verdict {
  started: number
  /** When the probe settled (undefined while it runs: statements asking meanwhile share it). */
  settled: number | undefined
  down: Promise<string | undefined>
}
const verdicts = new Map<string, Verdict>()
let asked = 0

/** Probe connections opened by this process (tests). */
export const probeCount = (): number => asked

/** What a statement asks when it had no answer for `afterMs`. */
export interface Probe {
  readonly afterMs: number
  /**
   * The pooler's "server down" text, from a probe started at `since` or later; undefined when it says
   * nothing (or only an older probe is still running).
   */
  check(since: number): Promise<string | undefined>
}

/** One short-lived connection: log in, empty query; the pooler's "server down" FATAL, else undefined. */
async function ask(config: ClientConfig, ms: number): Promise<string | undefined> {
  asked++
  const sql = postgres(config.url, {
    ...config.driver,
    max: 1,
    fetch_types: false,
    connect_timeout: Math.max(1, Math.ceil(ms / 1000)),
    idle_timeout: 0,
    onnotice: () => {},
    onparameter: () => {},
    connection: { ...config.driver.connection, application_name: PROBE_APPLICATION_NAME },
  })
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const answer = sql.unsafe('').then(
      () => undefined,
      (e: { message?: unknown }) => {
        const message = String(e?.message ?? '')
        return DOWN.test(message) ? scrub(message, config.password) : undefined
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
 * The probe for a config, or undefined where none applies: direct Postgres (nothing queues there),
 * Hyperdrive (not PgBouncer), postgres.js's own connect (`fastConnect: false`), `downProbe: false`.
 *
 * @example
 * ```ts
 * import { parseOptions } from '../options'
 * import { clientConfig } from '../preset'
 *
 * const probe = downProbe(clientConfig('postgres://app:pw@127.0.0.1:6432/app', parseOptions()))
 * const down = await probe?.check(Date.now()) // e.g. 'server login has been failing, try again later (server_login_retry)'
 * ```
 */
export function downProbe(config: ClientConfig): Probe | undefined {
  if (config.mode === 'direct' || config.hyperdrive || !config.tls || !config.options.downProbe)
    return undefined
  let probe = probes.get(config)
  if (!probe) {
    probe = makeProbe(config)
    probes.set(config, probe)
  }
  return probe
}

const probes = new WeakMap<ClientConfig, Probe>()

function makeProbe(config: ClientConfig): Probe {
  const afterMs = Math.max(1000, (config.options.connectTimeout * 1000) / 2)
  const key = `${config.info.host}:${config.info.port}/${config.info.database}/${config.info.user}`
  return {
    afterMs,
    check(since) {
      const now = Date.now()
      const hit = verdicts.get(key)
      if (hit) {
        // Still running (and not given up on: on workerd a socket may die with the request that opened it),
        // or settled within the last second: at most one probe per second per database. A verdict from
        // before the statement's clock started says nothing about it (it asks again later).
        const running = hit.settled === undefined && now - hit.started < afterMs + 1000
        const fresh = hit.settled !== undefined && now - hit.settled < KEEP_MS
        if (running || fresh) return hit.started >= since ? hit.down : Promise.resolve(undefined)
        verdicts.delete(key)
      }
      for (const [k, v] of verdicts) {
        if (verdicts.size < MAX_KEYS) break
        if (v.settled !== undefined || now - v.started >= afterMs + 1000) verdicts.delete(k)
      }
      const verdict: Verdict = { started: now, settled: undefined, down: Promise.resolve(undefined) }
      verdict.down = ask(config, afterMs)
        .catch(() => undefined)
        .finally(() => {
          verdict.settled = Date.now()
        })
      verdicts.set(key, verdict)
      return verdict.down
    },
  }
}
