/**
 * One frame of `hono-pooler top` as lines of text: the header, the connections by application, user and
 * state (hono-pooler's own clients marked `*`), the budget line, and PgBouncer's `SHOW POOLS`. Pure: the
 * same lines go to a terminal (full screen) and to a pipe.
 */
import type { ConnectionStats } from '../guide'
import { DEFAULTS } from '../options'
import { type Io, paint } from './output'

/** The `SHOW POOLS` columns `top` shows. */
export interface PoolRow {
  database: string
  user: string
  cl_active: number
  cl_waiting: number
  sv_active: number
  sv_idle: number
  maxwait: number
  pool_mode?: string
}

export interface FrameData {
  /** `user@host:port/database` (never the password). */
  target: string
  mode: string
  at: Date
  interval: number
  stats?: ConnectionStats
  budget?: { fraction: number; poolSize: number; perInstance: number; instances: number }
  statsError?: string
  pools?: PoolRow[]
  poolsError?: string
}

const pad = (s: string | number, n: number, right = false) => {
  const t = String(s)
  const cut = t.length > n ? `${t.slice(0, n - 1)}…` : t
  return right ? cut.padStart(n) : cut.padEnd(n)
}
const pct = (x: number) => `${Math.round(x * 100)} %`

/**
 * True for hono-pooler's own clients (its default `application_name`, and the commands' own).
 *
 * @example
 * ```ts
 * isOwnClient('hono-pooler') // true
 * ```
 */
export const isOwnClient = (app: string): boolean => app.startsWith(DEFAULTS.applicationName)

/**
 * @example
 * ```ts
 * renderFrame({ target: 'app@127.0.0.1:6432/app', mode: 'transaction', at: new Date(), interval: 2 }, { color: false })
 * ```
 */
export function renderFrame(d: FrameData, io: Pick<Io, 'color'>, live = false): string[] {
  const time = d.at.toISOString().slice(11, 19)
  const lines = [
    `${paint(io, 'bold', 'hono-pooler top')} ${d.target} (${d.mode}) ${time} UTC${live ? ` · every ${d.interval} s · Ctrl-C quits` : ''}`,
  ]
  if (d.stats) {
    const s = d.stats
    const b = d.budget
    const state = s.overBudget ? paint(io, 'red', 'OVER BUDGET') : paint(io, 'green', 'within budget')
    const split = b && b.instances > 1 ? `, ${b.perInstance} per instance × ${b.instances}` : ''
    lines.push(
      `connections ${s.used} / ${s.maxConnections} (${pct(s.usedShare)}) · budget ${s.budget.poolSize} (${pct(s.budget.fraction)} of max_connections${split}) · ${state}`,
      '',
      paint(
        io,
        'dim',
        `  ${pad('APPLICATION', 30)} ${pad('USER', 16)} ${pad('STATE', 22)} ${pad('CONNS', 5, true)}`,
      ),
    )
    for (const g of s.groups) {
      const own = isOwnClient(g.application_name)
      const row = `${own ? '*' : ' '} ${pad(g.application_name, 30)} ${pad(g.user ?? '', 16)} ${pad(g.state ?? '', 22)} ${pad(g.connections, 5, true)}`
      lines.push(own ? paint(io, 'green', row) : row)
    }
    if (!s.groups.length) lines.push('  (no client connections)')
    lines.push(
      paint(io, 'dim', `  * = hono-pooler's own clients (application_name ${DEFAULTS.applicationName}…)`),
    )
  } else lines.push(paint(io, 'red', `pg_stat_activity: ${d.statsError ?? 'no data yet'}`))
  if (d.pools || d.poolsError) {
    lines.push('', paint(io, 'bold', 'PgBouncer SHOW POOLS'))
    if (d.pools) {
      lines.push(
        paint(
          io,
          'dim',
          `  ${pad('DATABASE', 16)} ${pad('USER', 16)} ${pad('CL_ACTIVE', 9, true)} ${pad('CL_WAITING', 10, true)} ${pad('SV_ACTIVE', 9, true)} ${pad('SV_IDLE', 7, true)} ${pad('MAXWAIT', 7, true)}`,
        ),
      )
      for (const p of d.pools) {
        const row = `  ${pad(p.database, 16)} ${pad(p.user, 16)} ${pad(p.cl_active, 9, true)} ${pad(p.cl_waiting, 10, true)} ${pad(p.sv_active, 9, true)} ${pad(p.sv_idle, 7, true)} ${pad(p.maxwait, 7, true)}`
        lines.push(Number(p.cl_waiting) > 0 ? paint(io, 'yellow', row) : row)
      }
    } else lines.push(paint(io, 'red', `  SHOW POOLS: ${d.poolsError}`))
  }
  return lines
}
