/**
 * Bounded network primitives for `doctor`: a TCP connect with a deadline, a deadline on any promise, and
 * the Postgres SSLRequest probe (with the TLS handshake when the server offers it).
 */
import { connect, isIP, type Socket } from 'node:net'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'

/** A timeout error shaped like Node's own (`code: 'ETIMEDOUT'`). */
export const timedOut = (what: string, ms: number): Error =>
  Object.assign(new Error(`${what}: no answer within ${(ms / 1000).toFixed(1)} s`), { code: 'ETIMEDOUT' })

/**
 * Rejects with `ETIMEDOUT` when `p` has not settled within `ms`; `onTimeout` cleans up (destroys sockets).
 *
 * @example
 * ```ts
 * import { lookup } from 'node:dns/promises'
 * await within(lookup('db.example.com'), 2000, 'dns lookup')
 * ```
 */
export function within<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        onTimeout?.()
        reject(timedOut(what, ms))
      },
      Math.max(1, ms),
    )
    p.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e) => {
        clearTimeout(timer)
        reject(e)
      },
    )
  })
}

/**
 * Opens a TCP connection to one address; resolves with the socket and the connect time.
 *
 * @example
 * ```ts
 * const { socket, ms } = await connectTcp('127.0.0.1', 6432, 3000)
 * socket.destroy()
 * ```
 */
export function connectTcp(
  address: string,
  port: number,
  ms: number,
): Promise<{ socket: Socket; ms: number }> {
  const started = performance.now()
  const socket = connect({ host: address, port })
  socket.setNoDelay(true)
  const opened = new Promise<{ socket: Socket; ms: number }>((resolve, reject) => {
    socket.once('connect', () => {
      socket.removeAllListeners('error')
      socket.on('error', () => {})
      resolve({ socket, ms: performance.now() - started })
    })
    socket.once('error', reject)
  })
  return within(opened, ms, `TCP connect to ${hostPort(address, port)}`, () => socket.destroy())
}

/**
 * `host:port`, with brackets around an IPv6 address.
 *
 * @example
 * ```ts
 * hostPort('::1', 6432) // '[::1]:6432'
 * ```
 */
export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** The SSLRequest message: length 8, code 80877103. */
export const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47])

/** What the server answered to SSLRequest, and the handshake when it offered TLS. */
export type TlsProbe =
  | { offered: false }
  | {
      offered: true
      protocol: string | null
      authorized: boolean
      /** Why the certificate is not verified (`DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_TLS_CERT_ALTNAME_INVALID`, …). */
      reason?: string
      subject?: string
      issuer?: string
    }

/**
 * Sends SSLRequest on a fresh connection; on 'S' completes a TLS handshake (never rejecting the
 * certificate, so the finding can say why it is not trusted) and reports it. `host` is the name the
 * certificate must match; `address` where to connect.
 *
 * @example
 * ```ts
 * const probe = await probeTls('db.example.com', '203.0.113.7', 5432, 5000)
 * ```
 */
export async function probeTls(host: string, address: string, port: number, ms: number): Promise<TlsProbe> {
  const started = performance.now()
  const left = () => ms - (performance.now() - started)
  const { socket } = await connectTcp(address, port, ms)
  let secure: TLSSocket | undefined
  try {
    socket.write(SSL_REQUEST)
    const answer = await within(
      new Promise<number>((resolve, reject) => {
        socket.once('data', (d: Buffer) => resolve(d[0] as number))
        socket.once('close', () => reject(new Error('the server closed the connection after SSLRequest')))
      }),
      left(),
      `SSLRequest to ${hostPort(address, port)}`,
    )
    if (answer === 78) return { offered: false } // 'N'
    if (answer !== 83)
      throw new Error(`unexpected answer to SSLRequest (byte ${answer}): not a Postgres server or pooler?`)
    socket.removeAllListeners('close')
    const tls = tlsConnect({
      socket,
      host,
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
    })
    secure = tls
    await within(
      new Promise<void>((resolve, reject) => {
        tls.once('secureConnect', resolve)
        tls.once('error', reject)
      }),
      left(),
      `TLS handshake with ${hostPort(address, port)}`,
    )
    const cert = tls.getPeerCertificate()
    const name = (x: Record<string, unknown> | undefined) =>
      x ? String(x.CN ?? x.O ?? '') || undefined : undefined
    return {
      offered: true,
      protocol: tls.getProtocol(),
      authorized: tls.authorized,
      ...(tls.authorizationError ? { reason: String(tls.authorizationError) } : {}),
      ...(name(cert?.subject as any) ? { subject: name(cert.subject as any) } : {}),
      ...(name(cert?.issuer as any) ? { issuer: name(cert.issuer as any) } : {}),
    }
  } finally {
    secure?.destroy()
    socket.destroy()
  }
}
