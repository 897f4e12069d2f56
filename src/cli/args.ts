/**
 * The command line of `hono-pooler`: which command, its options (validated; a bad one is a usage error,
 * exit code 2), the URL from the argument or `DATABASE_URL`, and the usage text. Never echoes a URL.
 */
import { parseArgs } from 'node:util'
import { PLATFORMS, type Platform } from '../guide'
import { CLI_DEFAULTS } from '../options'
import type { DoctorOptions } from './context'
import type { TopOptions } from './top'

export const USAGE = `Usage:
  hono-pooler doctor [URL] [options]   check a connection string: url, dns, ipv6, tcp, tls, auth,
                                       query, connections, budget (and pipeline)
  hono-pooler top [URL] [options]      live connections by application, user and state

URL defaults to $DATABASE_URL. Exit codes: 0 nothing failed, 1 a check failed, 2 usage error.

doctor options:
  --json                  one JSON document: { url, checks: [{ id, status, message, fix?, ms? }], server?, budget? }
  --timeout SECONDS       bound on the whole run (default ${CLI_DEFAULTS.timeout})
  --platform NAME         where the app runs: ${PLATFORMS.join(', ')}
  --data-api              the Supabase Data API uses the database too (budget 40 % instead of 80 %)
  --instances N           instances sharing the budget (default 1)
  --probe-pipeline        check whether the pooler accepts a pipelined connect

top options:
  --pgbouncer ADMIN_URL   also show PgBouncer's SHOW POOLS (default $PGBOUNCER_ADMIN_URL)
  --interval SECONDS      refresh period (default ${CLI_DEFAULTS.interval})
  --once                  print one frame and exit
  --data-api, --instances N   as for doctor
`

/** A usage error: printed with the usage text, exit code 2. */
export class UsageError extends Error {}

export type Command =
  | { command: 'doctor'; options: DoctorOptions }
  | { command: 'top'; options: TopOptions }
  | { command: 'help' }

const num = (name: string, v: string | undefined, min: number, max: number, integer = false) => {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`)
  return n
}

/**
 * @example
 * ```ts
 * parseCommand(['doctor', '--json'], { DATABASE_URL: 'postgres://u:p@h:6543/db' }).command // 'doctor'
 * ```
 */
export function parseCommand(argv: string[], env: NodeJS.ProcessEnv): Command {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (e) {
    // parseArgs names the option, never its value.
    throw new UsageError((e as Error).message.split('\n')[0])
  }
  const { values: v, positionals } = parsed
  if (v.help) return { command: 'help' }
  const [command, url, ...rest] = positionals
  if (command === undefined || command === 'help') return { command: 'help' }
  if (command !== 'doctor' && command !== 'top') throw new UsageError(`unknown command "${command}"`)
  if (rest.length) throw new UsageError('one URL at most')
  const target = url ?? env.DATABASE_URL
  if (!target) throw new UsageError('no URL: pass it as an argument or set DATABASE_URL')
  const dataApi = Boolean(v['data-api'])
  const instances = num('instances', v.instances, 1, 100_000, true) ?? 1
  if (command === 'doctor') {
    if (v.platform !== undefined && !(PLATFORMS as readonly string[]).includes(v.platform))
      throw new UsageError(`--platform must be one of ${PLATFORMS.join(', ')}`)
    return {
      command,
      options: {
        url: target,
        json: Boolean(v.json),
        timeout: num('timeout', v.timeout, 0.1, 600) ?? CLI_DEFAULTS.timeout,
        ...(v.platform ? { platform: v.platform as Platform } : {}),
        dataApi,
        instances,
        probePipeline: Boolean(v['probe-pipeline']),
      },
    }
  }
  const admin = v.pgbouncer ?? env.PGBOUNCER_ADMIN_URL
  return {
    command,
    options: {
      url: target,
      ...(admin ? { admin } : {}),
      interval: num('interval', v.interval, 0.2, 3600) ?? CLI_DEFAULTS.interval,
      once: Boolean(v.once),
      dataApi,
      instances,
    },
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      timeout: { type: 'string' },
      platform: { type: 'string' },
      'data-api': { type: 'boolean' },
      instances: { type: 'string' },
      'probe-pipeline': { type: 'boolean' },
      pgbouncer: { type: 'string' },
      interval: { type: 'string' },
      once: { type: 'boolean' },
    },
  })
}
