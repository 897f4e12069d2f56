/**
 * The postgres.js `socket` option when hono-pooler owns the setup phase: picks the host (postgres.js's
 * rotation), decides whether this connection pipelines (never to Supavisor, never to a host that did not
 * ask for SCRAM before), and opens the transport for the runtime (Node `net`/`tls`, workerd
 * `cloudflare:sockets`).
 */
import { type HandshakeSocket, handshakeSocket } from './handshake'
import { openNodeSocket, type TlsSettings } from './tls'
import type { Transport } from './transport'
import { isWorkerd } from './workerd-socket'
import { openWorkerdTransport } from './workerd-transport'

/** The postgres.js options the factory reads (normalised by postgres.js: host and port are arrays). */
interface DriverOptions {
  host: string[]
  port: number[]
  pass?: unknown
  connect_timeout?: number | null
}

export interface FastConnectConfig {
  tls: TlsSettings
  /** `pipelineConnect` after the safety checks (see preset.ts). */
  pipeline: boolean
  /**
   * The URL's host and port as hono-pooler parsed them (one host per URL): postgres.js splits an IPv6
   * literal such as `[::1]` at its first colon. Without them, postgres.js's hosts in rotation.
   */
  host?: string
  port?: number
}

/** Supavisor reads each TCP chunk as one message during login: never pipeline to it. */
export const isSupavisor = (host: string): boolean => /\.pooler\.supabase\.com$/i.test(host)

/** host:port that answered a pipelined login with something other than SCRAM (bounded). */
const notScram = new Set<string>()
const nextHost = new WeakMap<object, number>()
let warned = false

/**
 * Whether this connection pipelines: asked for, not Supavisor (warned once), not a host that answered a
 * pipelined login with something other than SCRAM.
 *
 * @example
 * ```ts
 * pipelineFor(true, 'aws-0-eu-west-1.pooler.supabase.com', 6543) // false, and one console.warn
 * ```
 */
export function pipelineFor(asked: boolean, host: string, port: number): boolean {
  if (!asked || notScram.has(`${host}:${port}`)) return false
  if (!isSupavisor(host)) return true
  if (!warned) {
    warned = true
    console.warn(
      `[hono-pooler] pipelineConnect is off for ${host}: Supavisor does not accept a pipelined login (connecting normally)`,
    )
  }
  return false
}

/**
 * The `socket` factory for `postgres(url, { ssl: false, socket })`.
 *
 * @example
 * ```ts
 * import postgres from 'postgres'
 * import { tlsSettings } from './tls'
 *
 * const socket = fastConnectSocket({ tls: tlsSettings('verify-full', null), pipeline: false })
 * const db = postgres('postgres://app:pw@db.example.com:6432/app', { ssl: false, socket } as object)
 * ```
 */
export function fastConnectSocket(config: FastConnectConfig) {
  return async (options: DriverOptions): Promise<HandshakeSocket> => {
    const index = (nextHost.get(options) ?? 0) % Math.max(1, options.host.length)
    nextHost.set(options, index + 1)
    const host = config.host ?? options.host[index] ?? 'localhost'
    const port = config.port ?? options.port[index] ?? options.port[0] ?? 5432
    const key = `${host}:${port}`
    const pipeline = pipelineFor(config.pipeline, host, port)
    const workerd = isWorkerd()
    return handshakeSocket({
      host,
      port,
      open: (): Promise<Transport> =>
        workerd
          ? openWorkerdTransport(host, port, config.tls)
          : (openNodeSocket(host, port, config.tls) as Promise<unknown> as Promise<Transport>),
      password: async () => {
        const pass = options.pass
        return String((typeof pass === 'function' ? await pass() : pass) ?? '')
      },
      pipeline,
      onNotScram: () => {
        if (notScram.size > 64) notScram.clear()
        notScram.add(key)
      },
      timeoutMs: (options.connect_timeout ?? 0) * 1000,
    })
  }
}
