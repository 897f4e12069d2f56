/**
 * `hono-pooler top [URL] [--pgbouncer ADMIN_URL]`: a live view of `pg_stat_activity` by application,
 * user and state, the budget line, and PgBouncer's `SHOW POOLS`, refreshed every `--interval` seconds.
 * Full screen on a terminal (Ctrl-C restores it); plain frames on a pipe; `--once` prints one frame.
 */
import postgres from 'postgres'
import { createRequestClient } from '../client/request-client'
import { connectionStats, poolBudget } from '../guide'
import { CLI_DEFAULTS, parseOptions } from '../options'
import { clientConfig } from '../preset'
import { scrub } from '../redact'
import { errText, type Io } from './output'
import { fullScreen } from './terminal'
import { type FrameData, type PoolRow, renderFrame } from './top-frame'

export interface TopOptions {
  url: string
  admin?: string
  interval: number
  once: boolean
  dataApi: boolean
  instances: number
}

const oneLine = (e: unknown, secrets: string[]) =>
  secrets.reduce((t, p) => scrub(t, p), errText(e).split('\n')[0] as string)

/**
 * @example
 * ```ts
 * import { processIo } from './output'
 * const url = 'postgres://app:pw@127.0.0.1:6432/app'
 * process.exitCode = await top({ url, interval: 2, once: true, dataApi: false, instances: 1 }, processIo())
 * ```
 */
export async function top(opts: TopOptions, io: Io): Promise<number> {
  const config = clientConfig(
    opts.url,
    parseOptions({ applicationName: CLI_DEFAULTS.topApplicationName, closeTimeout: 0, connectTimeout: 10 }),
  )
  const client = createRequestClient(config)
  const secrets = [config.password]
  const admin = opts.admin
    ? postgres(opts.admin, {
        max: 1,
        prepare: false,
        fetch_types: false,
        connect_timeout: 10,
        onnotice: () => {},
        connection: { application_name: CLI_DEFAULTS.topApplicationName },
      })
    : undefined
  if (opts.admin) secrets.push(decodeURIComponent(new URL(opts.admin).password))
  const { info } = config
  const target = `${info.user}@${info.host.includes(':') ? `[${info.host}]` : info.host}:${info.port}/${info.database}`

  const sample = async (): Promise<FrameData> => {
    const d: FrameData = { target, mode: config.mode, at: new Date(), interval: opts.interval }
    const [stats, pools] = await Promise.allSettled([
      connectionStats(client.sql, { usesDataApi: opts.dataApi }),
      admin ? admin.unsafe('SHOW POOLS').simple() : Promise.resolve(undefined),
    ])
    if (stats.status === 'fulfilled') {
      d.stats = stats.value
      d.budget = {
        ...poolBudget({
          maxConnections: stats.value.maxConnections,
          usesDataApi: opts.dataApi,
          instances: opts.instances,
        }),
        instances: opts.instances,
      }
    } else d.statsError = oneLine(stats.reason, secrets)
    if (pools.status === 'fulfilled' && pools.value)
      d.pools = (pools.value as unknown as PoolRow[]).filter((p) => p.database !== 'pgbouncer')
    else if (pools.status === 'rejected') d.poolsError = oneLine(pools.reason, secrets)
    return d
  }
  const close = async () => {
    await Promise.allSettled([client.close(0), admin?.end({ timeout: 0 })])
  }

  if (opts.once) {
    try {
      const d = await sample()
      io.out(`${renderFrame(d, io).join('\n')}\n`)
      return d.stats ? 0 : 1
    } finally {
      await close()
    }
  }

  let stopped = false
  let wake: (() => void) | undefined
  const stop = () => {
    stopped = true
    wake?.()
    // A refresh may be waiting for an unreachable server (up to connectTimeout): do not make Ctrl-C wait.
    setTimeout(() => process.exit(0), 1500).unref()
  }
  const screen = io.tty ? fullScreen(stop) : undefined
  const onSignal = () => stop()
  if (!screen) for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal)
  try {
    while (!stopped) {
      const d = await sample()
      if (stopped) break
      const lines = renderFrame(d, io, true)
      if (screen) screen.draw(lines)
      else io.out(`${lines.join('\n')}\n\n`)
      await new Promise<void>((r) => {
        wake = r
        setTimeout(r, opts.interval * 1000)
      })
    }
  } finally {
    screen?.restore()
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal)
    await close()
  }
  return 0
}
