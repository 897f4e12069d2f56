/**
 * `doctor`'s `tls` check: SSLRequest on a fresh connection, the handshake when the server offers TLS, and
 * whether the certificate is verified (and why not) — judged against the URL's `sslmode`.
 */
import { isLoopback } from '../url'
import type { DoctorState } from './context'
import { hostPort, probeTls } from './net'
import type { CheckResult } from './output'
import { errText } from './output'

const CA_FIX =
  'give Node the CA that signed it (NODE_EXTRA_CA_CERTS=ca.pem), or sslmode=require (encrypts without verifying)'

/**
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * await tlsCheck(state) // { id: 'tls', status: 'ok', message: 'not offered by the server and not requested (loopback)' }
 * ```
 */
export async function tlsCheck(s: DoctorState): Promise<CheckResult> {
  const info = s.info
  const address = s.reachable[0]
  if (!info || address === undefined)
    return { id: 'tls', status: 'skip', message: 'no TCP connection to probe' }
  const mode = s.tlsMode
  const verify = mode === 'verify-full' || mode === 'verify-ca'
  const wants = verify || mode === 'require'
  const loop = isLoopback(info.host)
  const where = hostPort(address, info.port)
  const started = performance.now()
  let probe: Awaited<ReturnType<typeof probeTls>>
  try {
    probe = await probeTls(info.host, address, info.port, s.left())
  } catch (e) {
    const code = errText(e)
    const took = performance.now() - started
    if (code === 'ETIMEDOUT')
      return {
        id: 'tls',
        status: 'fail',
        message: `${where} accepts TCP connections but did not answer the SSLRequest within ${(took / 1000).toFixed(1)} s`,
        fix: 'this port is not a Postgres server or pooler, or it is overloaded — check the port',
        ms: took,
      }
    return { id: 'tls', status: 'fail', message: `TLS negotiation with ${where} failed: ${code}`, ms: took }
  }
  const took = performance.now() - started
  const done = (r: Omit<CheckResult, 'id' | 'ms'>): CheckResult => {
    s.tlsOk = r.status !== 'fail'
    return { id: 'tls', ...r, ms: took }
  }
  if (!probe.offered) {
    if (wants)
      return done({
        status: 'fail',
        message: `the server does not offer TLS, but the URL asks for sslmode=${mode}`,
        fix: 'connect to the provider’s TLS endpoint (on loopback only: sslmode=disable)',
      })
    if (loop) return done({ status: 'ok', message: 'not offered by the server and not requested (loopback)' })
    return done({
      status: 'warn',
      message: 'unencrypted: the server does not offer TLS',
      fix: 'do not send passwords in clear text over a network: use the provider’s TLS endpoint',
    })
  }
  const cert = `${probe.subject ? ` for ${probe.subject}` : ''}${probe.issuer ? ` issued by ${probe.issuer}` : ''}`
  const desc = `${probe.protocol ?? 'TLS'}, certificate${cert} ${probe.authorized ? 'verified' : `not verified (${probe.reason ?? 'unknown reason'})`}`
  if (mode === 'disable')
    return done(
      loop
        ? { status: 'ok', message: `the server offers TLS (${desc}); not used on loopback` }
        : {
            status: 'warn',
            message: `the server offers TLS (${desc}) but the URL does not use it`,
            fix: 'add sslmode=verify-full (or sslmode=require) to the URL',
          },
    )
  if (probe.authorized)
    return done({
      status: 'ok',
      message: `negotiated: ${desc}${verify ? '' : ` (sslmode=${mode} would not have checked it; verify-full does)`}`,
    })
  if (verify)
    return done({
      status: 'fail',
      message: `negotiated ${probe.protocol ?? 'TLS'}, but sslmode=${mode} rejects the certificate${cert}: ${probe.reason ?? 'not trusted'}`,
      fix:
        probe.reason === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? 'connect by the host name the certificate names'
          : CA_FIX,
    })
  return done({
    status: 'warn',
    message: `encrypted (${desc}): sslmode=${mode} does not check the certificate`,
    fix: 'sslmode=verify-full verifies it (with the provider’s CA in NODE_EXTRA_CA_CERTS if it is not public)',
  })
}
