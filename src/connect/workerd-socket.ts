/**
 * A postgres.js `socket` factory for Cloudflare Workers (workerd).
 *
 * postgres.js's own Socket polyfill for workerd (postgres/cf/polyfills.js) closes the socket with
 * `raw.close()` and drops the promise it returns; after a Terminate message the server has usually closed
 * the socket first, so that promise rejects ("This socket has been closed.") and every request that
 * connected logs an unhandled rejection. This is the same Socket (same fields, events and states, so the
 * polyfill's `tls.connect({ socket })` still upgrades it for `ssl`), with every promise of the raw socket
 * and its streams handled.
 *
 * The factory resolves as soon as `connect()` returned (writes are queued until the TCP handshake is done,
 * as with the polyfill), so postgres.js's own `connect_timeout` timer, which starts when the factory
 * resolves, covers the handshake; a failed connection is reported through `error` + `close`, as the
 * polyfill does, so postgres.js's connection lifecycle (close, retry on the next query) is unchanged.
 */

import type { Socket as RawSocket } from 'cloudflare:sockets'
import { Buffer } from 'node:buffer'
import { EventEmitter } from 'node:events'

/**
 * True inside workerd (Cloudflare Workers, wrangler dev).
 *
 * @example
 * ```ts
 * const socket = isWorkerd() ? workerdSocket : undefined
 * ```
 */
export const isWorkerd = (): boolean =>
  typeof navigator !== 'undefined' && (navigator as { userAgent?: string }).userAgent === 'Cloudflare-Workers'

/** The postgres.js options the factory reads (postgres.js has normalised host and port to arrays). */
interface DriverOptions {
  host: string[]
  port: number[]
  ssl?: unknown
  sslnegotiation?: string | null
}

/** The socket object postgres.js (and its polyfilled `tls.connect`) drives. */
export interface WorkerdSocket extends EventEmitter {
  readyState: 'opening' | 'open' | 'upgrading' | 'upgrade' | 'closed'
  raw: RawSocket
  writer: WritableStreamDefaultWriter<Uint8Array>
  reader: ReadableStreamDefaultReader<Uint8Array>
  ssl: unknown
  host: string
  port: number
  destroyed: boolean
  write(data: Uint8Array, cb?: () => void): boolean
  end(data?: Uint8Array): void
  destroy(): void
  read(): Promise<void>
}

const noop = () => {}
/** Per postgres.js instance: the next host to try (as postgres.js rotates hosts for its own sockets). */
const nextHost = new WeakMap<object, number>()

/**
 * `postgres(url, { socket: workerdSocket })`: opens a `cloudflare:sockets` TCP socket to the next host.
 *
 * @example
 * ```ts
 * import postgres from 'postgres'
 *
 * postgres('postgres://app:pw@db.example.com:6543/app', { socket: workerdSocket } as any) // on workerd only
 * ```
 */
export async function workerdSocket(options: DriverOptions): Promise<WorkerdSocket> {
  const { connect } = await import('cloudflare:sockets')
  const index = (nextHost.get(options) ?? 0) % Math.max(1, options.host.length)
  nextHost.set(options, index + 1)
  const host = options.host[index] ?? 'localhost'
  const port = options.port[index] ?? options.port[0] ?? 5432
  const ssl = options.ssl
  const direct = options.sslnegotiation === 'direct'

  const tcp = Object.assign(new EventEmitter(), {
    readyState: 'open',
    ssl,
    host,
    port,
    destroyed: false,
    write,
    end,
    destroy,
    read,
  }) as WorkerdSocket

  // An 'error' nobody listens to (postgres.js removes every listener once the socket closed) must not
  // throw from inside a promise callback: that is an unhandled rejection again.
  const emit = tcp.emit.bind(tcp)
  tcp.emit = (event: string | symbol, ...args: unknown[]) =>
    event === 'error' && tcp.listenerCount('error') === 0 ? false : emit(event, ...args)

  tcp.raw = connect({ hostname: host, port }, ssl ? { secureTransport: 'starttls' } : {})
  tcp.raw.opened?.then(() => tcp.readyState === 'open' && tcp.emit('connect'), noop) // errors: see `closed`
  tcp.raw.closed.then(
    // Resolves on close, and for `ssl` when the plaintext socket is handed over to startTls: the
    // polyfill's tls.connect sets readyState 'upgrade' once the TLS writer is ready.
    () => {
      if (tcp.readyState !== 'upgrade') return close()
      tcp.readyState = 'open'
      tcp.emit('secureConnect')
    },
    fail,
  )
  tcp.writer = tcp.raw.writable.getWriter()
  tcp.reader = tcp.raw.readable.getReader()
  if (!ssl) void read()
  else if (!direct) void readFirst() // the answer to SSLRequest; tls.connect takes over the streams

  return tcp

  function close() {
    if (tcp.readyState === 'closed') return
    tcp.readyState = 'closed'
    tcp.emit('close')
  }

  function fail(err: unknown) {
    tcp.emit('error', err)
    close()
  }

  function closeRaw() {
    try {
      tcp.raw.close().catch(noop) // rejects when the peer closed first: nothing left to do
    } catch {}
  }

  function write(data: Uint8Array, cb?: () => void): boolean {
    tcp.writer.write(data).then(() => {
      try {
        cb?.()
      } catch (e) {
        fail(e)
      }
    }, fail)
    return true
  }

  function end(data?: Uint8Array): void {
    data ? write(data, closeRaw) : closeRaw()
  }

  function destroy(): void {
    tcp.destroyed = true
    tcp.end()
  }

  async function read(): Promise<void> {
    const reader = tcp.reader
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        tcp.emit('data', Buffer.from(value))
      }
    } catch (err) {
      // The reader was released for a TLS upgrade (tls.connect reads from the new one): not an error.
      if (reader === tcp.reader) fail(err)
    }
  }

  async function readFirst(): Promise<void> {
    const reader = tcp.reader
    try {
      const { done, value } = await reader.read()
      if (done) return
      tcp.emit('data', Buffer.from(value))
      // 'S' (83): tls.connect releases this reader and reads the TLS one. Anything else (the server refused
      // TLS and ssl is 'prefer'): the session continues in plaintext, so keep reading.
      if (value[0] !== 83 && reader === tcp.reader) void read()
    } catch (err) {
      if (reader === tcp.reader) fail(err)
    }
  }
}
