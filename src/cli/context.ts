/**
 * What `doctor`'s checks share: the options, the run's deadline, and what earlier checks found (the
 * URL's classification, the addresses, which connections worked, the open client).
 */
import type { RequestClient } from '../client/request-client'
import type { ConnectionStats, Platform } from '../guide'
import type { UrlInfo } from '../url'

export interface DoctorOptions {
  url: string
  json: boolean
  /** Seconds the whole run may take. */
  timeout: number
  platform?: Platform
  dataApi: boolean
  instances: number
  probePipeline: boolean
}

export type TlsMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'

export interface DoctorState {
  opts: DoctorOptions
  /** Milliseconds left before the run's deadline (never below 1). */
  left(): number
  info?: UrlInfo
  /** The URL can be handed to the driver (parses, no parameter the pooler would reject). */
  usable: boolean
  password: string
  tlsMode: TlsMode
  /** The TLS mode was not in the URL (the default for this host). */
  tlsDefault: boolean
  v4: string[]
  v6: string[]
  /** Addresses a TCP connection succeeded to (IPv4 first). */
  reachable: string[]
  /** The server speaks the Postgres protocol and TLS is as the URL asks. */
  tlsOk: boolean
  client?: RequestClient
  loggedIn: boolean
  firstRowMs?: number
  rttMs?: number
  serverVersion?: string
  stats?: ConnectionStats
}

/**
 * A fresh state for one run, the deadline counted from now.
 *
 * @example
 * ```ts
 * const url = 'postgres://app:pw@127.0.0.1:6432/app'
 * const state = newState({ url, json: false, timeout: 10, dataApi: false, instances: 1, probePipeline: false })
 * ```
 */
export function newState(opts: DoctorOptions): DoctorState {
  const deadline = performance.now() + opts.timeout * 1000
  return {
    opts,
    left: () => Math.max(1, deadline - performance.now()),
    usable: false,
    password: '',
    tlsMode: 'disable',
    tlsDefault: true,
    v4: [],
    v6: [],
    reachable: [],
    tlsOk: false,
    loggedIn: false,
  }
}

/**
 * Splits a `PoolerError` message "what happened — what to do" into the finding and the fix.
 *
 * @example
 * ```ts
 * splitFix('URL parameter "x" … — remove it') // { message: 'URL parameter "x" …', fix: 'remove it' }
 * ```
 */
export function splitFix(text: string): { message: string; fix?: string } {
  const i = text.lastIndexOf(' — ')
  return i < 0 ? { message: text } : { message: text.slice(0, i), fix: text.slice(i + 3) }
}
