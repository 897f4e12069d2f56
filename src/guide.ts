/**
 * The Supabase connection guide as tools: which URL fits which platform (IPv6-only direct hosts on
 * IPv4-only platforms, serverless vs. stationary), pool sizing (the 40 % / 80 % rule), and live
 * connection monitoring from `pg_stat_activity`.
 */
import type { Sql } from 'postgres'
import { livePools } from './pool/live'
import type { PoolStats } from './pool/pool'
import { classifyUrl, type UrlInfo } from './url'

/** Where the code runs. The guide names Vercel, GitHub Actions, Render and Retool as IPv4-only. */
export type Platform =
  | 'cloudflare-workers'
  | 'vercel'
  | 'netlify'
  | 'aws-lambda'
  | 'github-actions'
  | 'render'
  | 'retool'
  | 'node-server'
  | 'other'

/** The platforms the guide names as IPv4-only (no IPv6 egress). */
export const IPV4_ONLY: ReadonlySet<Platform> = new Set(['vercel', 'github-actions', 'render', 'retool'])
/** Every `Platform` value (the CLI's `--platform` accepts these). */
export const PLATFORMS: readonly Platform[] = [
  'cloudflare-workers',
  'vercel',
  'netlify',
  'aws-lambda',
  'github-actions',
  'render',
  'retool',
  'node-server',
  'other',
]
const STATIONARY: ReadonlySet<Platform> = new Set(['node-server'])

export interface Advice {
  level: 'error' | 'warn' | 'info'
  code: 'IPV6_ONLY_HOST' | 'CHECK_IPV6' | 'USE_TRANSACTION_POOLER' | 'STATIONARY_USE_DIRECT'
  message: string
}

/**
 * Checks a connection string against the platform it will run on. Never returns the password.
 *
 * @example
 * ```ts
 * adviseConnection('postgres://postgres:pw@db.abc.supabase.co:5432/postgres', { platform: 'vercel' }).advice[0]
 * // { level: 'error', code: 'IPV6_ONLY_HOST', message: 'db.abc.supabase.co is IPv6-only … use the pooler …' }
 * ```
 */
export function adviseConnection(
  url: string,
  { platform }: { platform: Platform },
): { info: UrlInfo; advice: Advice[] } {
  const info = classifyUrl(url)
  const advice: Advice[] = []
  const pooler = 'the Supavisor pooler (…pooler.supabase.com:6543 transaction mode, or :5432 session mode)'
  if (info.ipv6Only && IPV4_ONLY.has(platform))
    advice.push({
      level: 'error',
      code: 'IPV6_ONLY_HOST',
      message: `${info.host} is IPv6-only and ${platform} has IPv4 egress only — use ${pooler}, or enable the IPv4 add-on`,
    })
  else if (info.ipv6Only && platform === 'other')
    advice.push({
      level: 'warn',
      code: 'CHECK_IPV6',
      message: `${info.host} is IPv6-only — check the platform with \`curl -6 https://ifconfig.co/ip\`; if it prints nothing, use ${pooler}`,
    })
  if (!STATIONARY.has(platform) && info.mode !== 'transaction')
    advice.push({
      level: 'warn',
      code: 'USE_TRANSACTION_POOLER',
      message: `${platform} runs short-lived, auto-scaling instances: connect through a transaction-mode pooler (Supabase: port 6543) with one client per request, not a ${info.mode} connection`,
    })
  if (STATIONARY.has(platform) && info.mode === 'transaction')
    advice.push({
      level: 'info',
      code: 'STATIONARY_USE_DIRECT',
      message: `a long-running server can keep a pool on the direct connection (db.<ref>.supabase.co:5432, IPv6) or the session pooler (port 5432); per-request clients through ${info.host}:${info.port} work too`,
    })
  return { info, advice }
}

/**
 * The guide's rule of thumb for how many of the database's connections one deployment's pool may use:
 * 40 % of `max_connections` when the Supabase Data (REST) API is in use too, otherwise up to 80 %. `size` and
 * `overflow` split one instance's share for `pooler({ pool })`: half kept open, half for bursts.
 *
 * @example
 * ```ts
 * poolBudget({ maxConnections: 60, usesDataApi: true }) // { fraction: 0.4, poolSize: 24, perInstance: 24, size: 12, overflow: 12 }
 * poolBudget({ maxConnections: 60, usesDataApi: false, instances: 4 }) // { …, perInstance: 12, size: 6, overflow: 6 }
 * ```
 */
export function poolBudget({
  maxConnections,
  usesDataApi,
  instances = 1,
}: {
  maxConnections: number
  usesDataApi: boolean
  instances?: number
}): { fraction: number; poolSize: number; perInstance: number; size: number; overflow: number } {
  if (!Number.isInteger(maxConnections) || maxConnections < 1)
    throw new RangeError('maxConnections must be a positive integer')
  if (!Number.isInteger(instances) || instances < 1)
    throw new RangeError('instances must be a positive integer')
  const fraction = usesDataApi ? 0.4 : 0.8
  const poolSize = Math.max(1, Math.floor(maxConnections * fraction))
  const perInstance = Math.max(1, Math.floor(poolSize / instances))
  const size = Math.max(1, Math.ceil(perInstance / 2))
  return { fraction, poolSize, perInstance, size, overflow: perInstance - size }
}

export interface ConnectionGroup {
  application_name: string
  user: string | null
  state: string | null
  connections: number
}

export interface ConnectionStats {
  maxConnections: number
  /** Client backends right now (pooler server connections count here, not pooler clients). */
  used: number
  usedShare: number
  groups: ConnectionGroup[]
  budget: { fraction: number; poolSize: number }
  overBudget: boolean
  /** hono-pooler's shared pools in this process (`poolStats()`), next to the server's numbers. */
  pools?: PoolStats[]
}

/**
 * Live connection monitoring: one query on `pg_stat_activity` (works through a transaction-mode pooler),
 * grouped by application, user and state, compared with the 40 % / 80 % budget; with this process's shared
 * pools (`pools`).
 *
 * @example
 * ```ts
 * app.get('/admin/connections', async (c) => c.json(await connectionStats(c.var.sql, { usesDataApi: true })))
 * ```
 */
export async function connectionStats(sql: Sql<any>, { usesDataApi = false } = {}): Promise<ConnectionStats> {
  const [row] = await sql`
    select current_setting('max_connections')::int as max_connections,
      (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as used,
      coalesce((select json_agg(g order by g.connections desc, g.application_name) from (
        select coalesce(nullif(application_name, ''), '(none)') as application_name, usename::text as "user",
          state, count(*)::int as connections
        from pg_stat_activity where backend_type = 'client backend' group by 1, 2, 3) g), '[]'::json) as groups`
  const maxConnections = Number(row?.max_connections)
  const used = Number(row?.used)
  const { fraction, poolSize } = poolBudget({ maxConnections, usesDataApi })
  return {
    maxConnections,
    used,
    usedShare: used / maxConnections,
    groups: (row?.groups ?? []) as ConnectionGroup[],
    budget: { fraction, poolSize },
    overBudget: used > poolSize,
    pools: [...livePools].map((p) => p.stats()),
  }
}
