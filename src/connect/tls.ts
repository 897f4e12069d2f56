/**
 * TLS for the setup phase with postgres.js's `ssl` semantics: `false`/`disable` none; `prefer`/`allow` TLS
 * when the server agrees, unverified; `require` TLS, unverified; `true`/`verify-full` (and any other string,
 * `verify-ca` included: it gets verify-full's stricter host-name check too) TLS verified against the
 * system CAs; an object is passed to `tls.connect` (e.g. `{ ca }`), verified unless it says
 * `rejectUnauthorized: false`. `sslnegotiation=direct` starts TLS at once (ALPN `postgresql`), otherwise an
 * SSLRequest asks first. Node: `node:net` + `node:tls`, imported only when used.
 */
import type { Socket } from 'node:net'
import { tlsRefused } from '../errors'
import { SSL_REQUEST } from './messages'
import { forgetSession, handshakeDone, keepSessions, secureContextFor, sessionFor } from './tls-cache'

export type TlsMode = 'disable' | 'prefer' | 'require' | 'verify-full'

export interface TlsSettings {
  mode: TlsMode
  /** Extra `tls.connect` options (from an `ssl` object, or `rejectUnauthorized: false`). */
  options: Record<string, unknown>
  /** `sslnegotiation=direct`: TLS from the first byte, no SSLRequest. */
  direct: boolean
}

/**
 * The TLS settings for postgres.js's `ssl` and `sslnegotiation` values.
 *
 * @example
 * ```ts
 * tlsSettings('require', null) // { mode: 'require', options: { rejectUnauthorized: false }, direct: false }
 * ```
 */
export function tlsSettings(ssl: unknown, sslnegotiation: unknown): TlsSettings {
  const direct = sslnegotiation === 'direct'
  if (!ssl || ssl === 'disable' || ssl === 'false') return { mode: 'disable', options: {}, direct: false }
  if (ssl === 'prefer' || ssl === 'allow')
    return { mode: 'prefer', options: { rejectUnauthorized: false }, direct }
  if (ssl === 'require') return { mode: 'require', options: { rejectUnauthorized: false }, direct }
  if (typeof ssl === 'object') {
    const options = ssl as Record<string, unknown>
    return { mode: options.rejectUnauthorized === false ? 'require' : 'verify-full', options, direct }
  }
  return { mode: 'verify-full', options: {}, direct }
}

/**
 * True when the server's certificate is verified (what `pipelineConnect` needs off loopback). An `ssl`
 * object with its own `checkServerIdentity` does not count: hono-pooler cannot tell what it checks.
 *
 * @example
 * ```ts
 * verifiesServer(tlsSettings({ ca: 'PEM', checkServerIdentity: () => undefined }, null)) // false
 * ```
 */
export const verifiesServer = (t: TlsSettings): boolean =>
  t.mode === 'verify-full' && t.options.checkServerIdentity === undefined

// Imported on first use, then kept: a dynamic import per connection costs ~0.1 ms of CPU (the ESM loader).
let netModule: Promise<typeof import('node:net')> | undefined
let tlsModule: Promise<typeof import('node:tls')> | undefined

const noop = () => {}

/** True for an IP literal (no SNI, as postgres.js). */
const isIp = (host: string) => /^[\d.]+$/.test(host) || host.includes(':')

/**
 * Opens a Node socket to host:port and negotiates TLS as the settings say.
 *
 * @example
 * ```ts
 * const socket = await openNodeSocket('127.0.0.1', 6432, tlsSettings('verify-full', null))
 * socket.end()
 * ```
 */
export async function openNodeSocket(host: string, port: number, tls: TlsSettings): Promise<Socket> {
  netModule ??= import('node:net')
  const net = await netModule
  const socket = net.connect({ host, port })
  // Until handshake.ts attaches its own listener, an 'error' (e.g. a reset right after connect) must not
  // be unhandled: each `removeAllListeners` below keeps this no-op.
  socket.on('error', noop)
  socket.setNoDelay(true)
  // Queued until the TCP handshake completes, then sent at once (no turn of the event loop in between).
  const request = tls.mode !== 'disable' && !tls.direct
  if (request) socket.write(SSL_REQUEST)
  if (tls.mode !== 'disable') tlsModule ??= import('node:tls')
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    socket.removeAllListeners('error').on('error', noop)
    if (tls.mode === 'disable') return socket
    if (request) {
      const answer = await new Promise<Buffer>((resolve, reject) => {
        socket.once('data', resolve)
        socket.once('error', reject)
        socket.once('close', () => reject(tlsRefused(host, port, 'the server closed the connection')))
      })
      socket.removeAllListeners().on('error', noop)
      // More than the one byte: something injected plaintext before the handshake (CVE-2021-23222).
      if (answer.length !== 1 || (answer[0] !== 0x53 && answer[0] !== 0x4e))
        throw tlsRefused(host, port, 'unexpected answer to SSLRequest')
      if (answer[0] === 0x4e) {
        if (tls.mode === 'prefer') return socket
        throw tlsRefused(host, port, 'the server does not support TLS')
      }
    }
    const { connect, createSecureContext } = await (tlsModule as Promise<typeof import('node:tls')>)
    // Per settings object: one SecureContext, and the server's session ticket per host (tls-cache.ts).
    const key = `${host}:${port}:${tls.direct}`
    // A checkServerIdentity of the user's own (pinning) runs only on full handshakes: no resumption then.
    const resumable = typeof tls.options.checkServerIdentity !== 'function'
    const session = resumable ? sessionFor(tls, key) : undefined
    const secure = connect({
      socket,
      ...(isIp(host) ? {} : { servername: host }),
      ...(tls.direct ? { ALPNProtocols: ['postgresql'] } : {}),
      secureContext: secureContextFor(tls, createSecureContext),
      ...(session ? { session } : {}),
      ...tls.options,
    })
    if (resumable) keepSessions(tls, key, secure)
    try {
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve)
        secure.once('error', reject)
      })
    } catch (e) {
      forgetSession(tls, key, session)
      throw e
    }
    handshakeDone(secure)
    secure.removeAllListeners('error').on('error', noop)
    return secure
  } catch (e) {
    socket.destroy()
    throw e
  }
}
