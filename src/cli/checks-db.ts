/**
 * `doctor`'s checks through hono-pooler's own request client (the same preset an app gets): `auth`
 * (SCRAM login), `query` (`select 1` round trips), `connections` (`pg_stat_activity`) and `budget` (the
 * 40 % / 80 % rule).
 */
import { createRequestClient } from '../client/request-client'
import { connectionStats, poolBudget } from '../guide'
import { CLI_DEFAULTS, parseOptions } from '../options'
import { clientConfig } from '../preset'
import { scrub } from '../redact'
import { type DoctorState, splitFix } from './context'
import { within } from './net'
import { type CheckResult, ms } from './output'

const pct = (x: number) => `${Math.round(x * 100)} %`

/**
 * Logs in with the URL's user and password (`select 1` is the first query: connect, TLS, SCRAM, query).
 *
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * await authCheck(state) // { id: 'auth', status: 'ok', message: 'logged in as "app" to database "app" …' }
 * ```
 */
export async function authCheck(s: DoctorState): Promise<CheckResult> {
  const info = s.info
  if (!info || !s.usable) return { id: 'auth', status: 'skip', message: 'fix the URL first' }
  if (!s.reachable.length) return { id: 'auth', status: 'skip', message: 'no TCP connection' }
  if (!s.tlsOk) return { id: 'auth', status: 'skip', message: 'the server did not get past the tls check' }
  const config = clientConfig(
    s.opts.url,
    parseOptions({
      connectTimeout: Math.min(120, s.left() / 1000),
      closeTimeout: 0,
      applicationName: CLI_DEFAULTS.doctorApplicationName,
    }),
  )
  const client = createRequestClient(config)
  s.client = client
  const started = performance.now()
  try {
    await within(Promise.resolve(client.sql`select 1 as one`), s.left(), 'login', () => void client.abort())
    s.firstRowMs = performance.now() - started
    s.loggedIn = true
    return {
      id: 'auth',
      status: 'ok',
      message: `logged in as "${info.user}" to database "${info.database}" (${ms(s.firstRowMs)} from connect to the first row)`,
      ms: s.firstRowMs,
    }
  } catch (e) {
    const took = performance.now() - started
    const text = scrub(String((e as Error)?.message ?? e), s.password).split('\n')[0] as string
    const code = (e as { code?: string }).code
    const { message, fix } = splitFix(text)
    const hint =
      code === 'AUTH_FAILED' &&
      info.provider === 'supabase' &&
      info.mode !== 'direct' &&
      !info.user.includes('.')
        ? `Supavisor needs the user postgres.<project-ref>, not "${info.user}"`
        : fix
    return {
      id: 'auth',
      status: 'fail',
      message: `${code ? `${code}: ` : ''}${message}`,
      ...(hint ? { fix: hint } : {}),
      ms: took,
    }
  }
}

/**
 * `select 1` round-trip time (the median of `CLI_DEFAULTS.queryRuns`).
 *
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * await queryCheck(state) // { id: 'query', status: 'ok', message: 'select 1: median 0.4 ms of 5 …' }
 * ```
 */
export async function queryCheck(s: DoctorState): Promise<CheckResult> {
  const client = s.client
  if (!client || !s.loggedIn) return { id: 'query', status: 'skip', message: 'needs a login (see auth)' }
  const times: number[] = []
  try {
    for (let i = 0; i < CLI_DEFAULTS.queryRuns; i++) {
      const t = performance.now()
      await within(Promise.resolve(client.sql`select 1 as one`), s.left(), 'select 1')
      times.push(performance.now() - t)
    }
  } catch (e) {
    return {
      id: 'query',
      status: 'fail',
      message: `select 1 failed: ${scrub(String((e as Error).message), s.password)}`,
    }
  }
  times.sort((a, b) => a - b)
  s.rttMs = times[Math.floor(times.length / 2)] as number
  return {
    id: 'query',
    status: 'ok',
    message: `select 1: median ${ms(s.rttMs)} of ${times.length} round trips; connect to first row ${ms(s.firstRowMs ?? 0)}`,
    ms: s.rttMs,
  }
}

/**
 * `max_connections` and the connections now, by application, user and state.
 *
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * await connectionsCheck(state) // { id: 'connections', status: 'ok', message: '5 of 40 in use (13 %) …' }
 * ```
 */
export async function connectionsCheck(s: DoctorState): Promise<CheckResult> {
  const client = s.client
  if (!client || !s.loggedIn)
    return { id: 'connections', status: 'skip', message: 'needs a login (see auth)' }
  const started = performance.now()
  try {
    s.stats = await within(
      connectionStats(client.sql, { usesDataApi: s.opts.dataApi }),
      s.left(),
      'pg_stat_activity',
    )
    const [row] = await within(
      Promise.resolve(client.sql`select current_setting('server_version') as v`),
      s.left(),
      'server_version',
    )
    s.serverVersion = String(row?.v ?? '')
  } catch (e) {
    return {
      id: 'connections',
      status: 'fail',
      message: `could not read pg_stat_activity: ${scrub(String((e as Error).message), s.password)}`,
    }
  }
  const { maxConnections, used, usedShare, groups } = s.stats
  const top = groups
    .slice(0, 4)
    .map((g) => `${g.application_name} (${g.user ?? '?'}, ${g.state ?? 'no state'}) ${g.connections}`)
    .join(', ')
  const more = groups.length > 4 ? `, … ${groups.length - 4} more groups` : ''
  const message = `${used} of max_connections ${maxConnections} in use (${pct(usedShare)}) on Postgres ${s.serverVersion}: ${top}${more}`
  const took = performance.now() - started
  if (usedShare >= 0.9)
    return {
      id: 'connections',
      status: 'warn',
      message,
      fix: 'the server is nearly out of connections: lower pool sizes, or a larger compute size',
      ms: took,
    }
  return { id: 'connections', status: 'ok', message, ms: took }
}

/**
 * The guide's 40 % / 80 % rule → pool size per instance, and whether the server is over it now.
 *
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * budgetCheck(state) // { id: 'budget', status: 'ok', message: '80 % of max_connections 40 = 32 …' }
 * ```
 */
export function budgetCheck(s: DoctorState): CheckResult & { budget?: Record<string, unknown> } {
  const stats = s.stats
  if (!stats) return { id: 'budget', status: 'skip', message: 'needs max_connections (see connections)' }
  const { dataApi, instances } = s.opts
  const b = poolBudget({ maxConnections: stats.maxConnections, usesDataApi: dataApi, instances })
  const split = instances > 1 ? ` ÷ ${instances} instances` : ''
  const why = dataApi ? 'the Data API uses the database too' : 'no --data-api'
  const message = `${pct(b.fraction)} (${why}) of max_connections ${stats.maxConnections} = ${b.poolSize}${split} → pool size ${b.perInstance} per instance; ${stats.used} in use now`
  const budget = { ...b, instances, usesDataApi: dataApi, used: stats.used, overBudget: stats.overBudget }
  if (stats.overBudget)
    return {
      id: 'budget',
      status: 'warn',
      message: `over budget now: ${message}`,
      fix: 'lower the pool sizes or the number of instances, or move to a larger compute size (more max_connections)',
      budget,
    }
  return { id: 'budget', status: 'ok', message, budget }
}
