/**
 * `doctor`'s checks before any Postgres byte is sent: `url` (classification, parameters, TLS mode),
 * `dns` (A and AAAA), `ipv6` (can this machine reach an IPv6-only host) and `tcp` (connect time per family).
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { adviseConnection, IPV4_ONLY } from '../guide'
import { CLI_DEFAULTS } from '../options'
import { checkUrlParams, classifyUrl, defaultsToTls, isLoopback } from '../url'
import { type DoctorState, splitFix, type TlsMode } from './context'
import { connectTcp, hostPort, within } from './net'
import { type CheckResult, errText, ms } from './output'

const TLS_MODES: readonly TlsMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/**
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * urlCheck(state) // { id: 'url', status: 'ok', message: 'transaction mode (port 6543 …), …' }
 * ```
 */
export function urlCheck(s: DoctorState): CheckResult {
  let info: ReturnType<typeof classifyUrl>
  try {
    info = classifyUrl(s.opts.url)
  } catch (e) {
    return { id: 'url', status: 'fail', ...splitFix((e as Error).message) }
  }
  s.info = info
  const u = new URL(s.opts.url)
  s.password = decodeURIComponent(u.password)
  const sslmode = (u.searchParams.get('sslmode') ?? u.searchParams.get('ssl'))?.toLowerCase()
  s.tlsDefault = !sslmode
  s.tlsMode = sslmode
    ? (((TLS_MODES as readonly string[]).includes(sslmode)
        ? sslmode
        : sslmode === 'true'
          ? 'require'
          : 'disable') as TlsMode)
    : defaultsToTls(info.host)
      ? 'require'
      : 'disable'
  const tls = `TLS ${s.tlsMode}${s.tlsDefault ? ` (default for ${isLoopback(info.host) ? 'loopback' : defaultsToTls(info.host) ? 'this provider' : 'postgres.js'})` : ''}`
  const what = `${info.mode} mode (${info.reason}), ${info.provider}, user "${info.user}", database "${info.database}", ${tls}${info.ipv6Only ? ', IPv6-only host' : ''}`
  try {
    checkUrlParams(u)
  } catch (e) {
    const { message, fix } = splitFix((e as Error).message)
    return { id: 'url', status: 'fail', message: `${what}; ${message}`, ...(fix ? { fix } : {}) }
  }
  s.usable = true
  if (s.opts.platform) {
    const advice = adviseConnection(s.opts.url, { platform: s.opts.platform }).advice.find(
      (a) => a.code === 'USE_TRANSACTION_POOLER',
    )
    if (advice) return { id: 'url', status: 'warn', message: what, ...splitFixAdvice(advice.message) }
  }
  return { id: 'url', status: 'ok', message: what }
}

const splitFixAdvice = (text: string) => {
  const i = text.indexOf(': ')
  return i < 0 ? { fix: text } : { fix: text.slice(i + 2) }
}

/**
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * await dnsCheck(state) // { id: 'dns', status: 'ok', message: 'A 127.0.0.1; AAAA ::1' }
 * ```
 */
export async function dnsCheck(s: DoctorState): Promise<CheckResult> {
  const host = s.info?.host
  if (!host) return { id: 'dns', status: 'skip', message: 'no host (the URL did not parse)' }
  const started = performance.now()
  const family = isIP(host)
  if (family) {
    ;(family === 4 ? s.v4 : s.v6).push(host)
    return { id: 'dns', status: 'ok', message: `${host} is an IPv${family} address (no lookup)`, ms: 0 }
  }
  const find = (f: 4 | 6) =>
    within(lookup(host, { family: f, all: true }), s.left(), `DNS lookup of ${host}`).then((r) =>
      r.map((a) => a.address),
    )
  const [a, aaaa] = await Promise.allSettled([find(4), find(6)])
  const took = performance.now() - started
  if (a.status === 'fulfilled') s.v4.push(...new Set(a.value))
  if (aaaa.status === 'fulfilled') s.v6.push(...new Set(aaaa.value))
  if (!s.v4.length && !s.v6.length) {
    const reason = a.status === 'rejected' ? errText(a.reason) : 'no records'
    const timeout = /ETIMEDOUT|EAI_AGAIN/.test(reason)
    return {
      id: 'dns',
      status: 'fail',
      message: timeout ? `no DNS answer for ${host} (${reason})` : `${host} does not resolve (${reason})`,
      fix: timeout
        ? 'check this machine’s DNS resolver and network'
        : 'check the host name in the URL (copy the connection string from the dashboard)',
      ms: took,
    }
  }
  const list = (xs: string[]) => (xs.length ? xs.join(', ') : 'none')
  const only6 = !s.v4.length
  return {
    id: 'dns',
    status: 'ok',
    message: `A ${list(s.v4)}; AAAA ${list(s.v6)}${only6 ? ` — ${host} is IPv6-only` : ''}`,
    ms: took,
  }
}

const POOLER_FIX =
  'use the pooler URL (…pooler.supabase.com:6543, transaction mode), which has IPv4, or enable the IPv4 add-on'

/**
 * Runs only for an IPv6-only host: a real connect attempt over IPv6 with a short timeout.
 *
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * await ipv6Check(state) // { id: 'ipv6', status: 'skip', message: 'not needed: … has IPv4 addresses' }
 * ```
 */
export async function ipv6Check(s: DoctorState): Promise<CheckResult> {
  const info = s.info
  if (!info) return { id: 'ipv6', status: 'skip', message: 'no host (the URL did not parse)' }
  const platform = s.opts.platform
  const fix = info.provider === 'supabase' ? POOLER_FIX : 'use a host or pooler URL reachable over IPv4'
  if (!s.v6.length) {
    // Known IPv6-only (Supabase's direct host) on a platform the guide names as IPv4-only: wrong without a lookup.
    const advice =
      platform && adviseConnection(s.opts.url, { platform }).advice.find((a) => a.code === 'IPV6_ONLY_HOST')
    if (advice) return { id: 'ipv6', status: 'fail', message: advice.message.split(' — ')[0] as string, fix }
    return {
      id: 'ipv6',
      status: 'skip',
      message: s.v4.length ? `not needed: ${info.host} has no IPv6 address` : 'no address to connect to',
    }
  }
  if (s.v4.length)
    return {
      id: 'ipv6',
      status: 'skip',
      message: `not needed: ${info.host} has IPv4 addresses too${info.ipv6Only ? ' (the IPv4 add-on?)' : ''}`,
    }
  const address = s.v6[0] as string
  const where = hostPort(address, info.port)
  const budget = Math.min(CLI_DEFAULTS.ipv6Timeout * 1000, s.left())
  try {
    const { socket, ms: took } = await connectTcp(address, info.port, budget)
    socket.destroy()
    if (platform && IPV4_ONLY.has(platform))
      return {
        id: 'ipv6',
        status: 'fail',
        message: `this machine reaches ${where} over IPv6 (${ms(took)}), but ${platform} has IPv4 egress only: the deployed app cannot`,
        fix,
        ms: took,
      }
    return {
      id: 'ipv6',
      status: 'ok',
      message: `this machine reaches ${where} over IPv6 (${ms(took)})${platform ? ` and ${platform} is not on the guide’s IPv4-only list` : '; Vercel, GitHub Actions, Render and Retool have IPv4 egress only (--platform checks yours)'}`,
      ms: took,
    }
  } catch (e) {
    return {
      id: 'ipv6',
      status: 'fail',
      message: `this machine cannot reach ${where} over IPv6 (${errText(e)}): ${info.host} has no IPv4 address`,
      fix,
    }
  }
}

const TCP_FIX: Record<string, string> = {
  ECONNREFUSED:
    'check the port (Supabase: 6543 transaction pooler, 5432 session pooler / direct) and that the pooler runs',
  ETIMEDOUT: 'a firewall drops the packets, or the host is not reachable from this network',
  EHOSTUNREACH: 'no route to the host from this network',
  ENETUNREACH: 'this network has no route for that address family (IPv6 on an IPv4-only network?)',
}

/**
 * Connect time per address family (the first address of each).
 *
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * await tcpCheck(state) // { id: 'tcp', status: 'ok', message: 'IPv4 127.0.0.1:6432 0.3 ms · IPv6 [::1]:6432 0.4 ms' }
 * ```
 */
export async function tcpCheck(s: DoctorState): Promise<CheckResult> {
  const port = s.info?.port
  const targets = [s.v4[0], s.v6[0]].filter((a): a is string => a !== undefined)
  if (port === undefined || !targets.length)
    return { id: 'tcp', status: 'skip', message: 'no address to connect to' }
  const started = performance.now()
  const results = await Promise.all(
    targets.map((address) =>
      connectTcp(address, port, s.left()).then(
        ({ socket, ms: took }) => {
          socket.destroy()
          return { address, took, error: undefined as unknown }
        },
        (error: unknown) => ({ address, took: 0, error }),
      ),
    ),
  )
  const took = performance.now() - started
  const line = results
    .map((r) => {
      const fam = isIP(r.address) === 6 ? 'IPv6' : 'IPv4'
      const where = hostPort(r.address, port)
      if (r.error === undefined) return `${fam} ${where} ${ms(r.took)}`
      const code = errText(r.error)
      return code === 'ECONNREFUSED'
        ? `${fam} ${where} refused (ECONNREFUSED: nothing listens there)`
        : `${fam} ${where} failed (${code === 'ETIMEDOUT' ? 'ETIMEDOUT: no answer before the deadline' : code})`
    })
    .join(' · ')
  for (const r of results) if (r.error === undefined) s.reachable.push(r.address)
  const failed = results.filter((r) => r.error !== undefined)
  if (!failed.length) return { id: 'tcp', status: 'ok', message: line, ms: took }
  const fix = TCP_FIX[errText(failed[0]?.error)] ?? 'check the host, the port and the network'
  if (failed.length < results.length)
    return {
      id: 'tcp',
      status: 'warn',
      message: line,
      fix: `clients that try the failing family first wait for it: ${fix}`,
      ms: took,
    }
  return { id: 'tcp', status: 'fail', message: line, fix, ms: took }
}
