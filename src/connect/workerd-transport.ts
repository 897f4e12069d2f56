/**
 * The workerd transport for the setup phase: a `cloudflare:sockets` TCP socket with TLS negotiated as
 * postgres.js's `sslmode` says (SSLRequest then `startTls`, or `secureTransport: 'on'` for
 * `sslnegotiation=direct`), exposed as the small event-emitter socket handshake.ts drives. Every promise
 * of the raw socket is handled (a close after the peer closed rejects, see connect/workerd-socket.ts).
 * workerd always verifies certificates against its trusted CAs: `require` cannot skip verification there.
 */
import type { Socket as RawSocket } from 'cloudflare:sockets'
import { Buffer } from 'node:buffer'
import { EventEmitter } from 'node:events'
import { tlsRefused } from '../errors'
import { SSL_REQUEST } from './messages'
import type { TlsSettings } from './tls'
import { quietErrors, type Transport } from './transport'

const noop = () => {}
let sockets: Promise<typeof import('cloudflare:sockets')> | undefined

/**
 * Opens host:port from workerd and negotiates TLS.
 *
 * @example
 * ```ts
 * import { tlsSettings } from './tls'
 *
 * const t = await openWorkerdTransport('db.example.com', 5432, tlsSettings('verify-full', null))
 * t.destroy()
 * ```
 */
export async function openWorkerdTransport(host: string, port: number, tls: TlsSettings): Promise<Transport> {
  sockets ??= import('cloudflare:sockets')
  const { connect } = await sockets
  const secure = tls.mode !== 'disable'
  let raw: RawSocket = connect(
    { hostname: host, port },
    { secureTransport: !secure ? 'off' : tls.direct ? 'on' : 'starttls', allowHalfOpen: false },
  )
  try {
    await raw.opened
    if (secure && !tls.direct) {
      const writer = raw.writable.getWriter()
      const reader = raw.readable.getReader()
      await writer.write(SSL_REQUEST)
      const { value } = await reader.read()
      writer.releaseLock()
      reader.releaseLock()
      if (value?.length !== 1 || (value[0] !== 0x53 && value[0] !== 0x4e))
        throw tlsRefused(host, port, 'unexpected answer to SSLRequest')
      if (value[0] === 0x53) raw = raw.startTls({ expectedServerHostname: host })
      else if (tls.mode !== 'prefer') throw tlsRefused(host, port, 'the server does not support TLS')
    }
  } catch (e) {
    raw.close().catch(noop)
    raw.closed.catch(noop)
    throw e
  }
  return transport(raw)
}

function transport(raw: RawSocket): Transport {
  const t = quietErrors(new EventEmitter()) as Transport & EventEmitter
  let closed = false
  const writer = raw.writable.getWriter()
  const reader = raw.readable.getReader()
  const close = (hadError: boolean) => {
    if (closed) return
    closed = true
    t.emit('close', hadError)
  }
  const fail = (e: unknown) => {
    if (closed) return
    t.emit('error', e)
    closeRaw()
    close(true)
  }
  const closeRaw = () => {
    try {
      raw.close().catch(noop)
    } catch {}
  }
  raw.closed.then(() => close(false), fail)
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return close(false)
        t.emit('data', Buffer.from(value))
      }
    } catch (e) {
      fail(e)
    }
  })()
  t.write = (data, cb) => {
    writer.write(data).then(() => cb?.(), fail)
    return true
  }
  t.end = (data) => {
    if (data) writer.write(data).then(closeRaw, fail)
    else closeRaw()
  }
  t.destroy = () => {
    closeRaw()
    close(false)
  }
  return t
}
