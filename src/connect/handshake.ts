/**
 * The socket postgres.js drives when hono-pooler owns the setup phase, between postgres.js and the real
 * socket (already TLS when asked). It runs SCRAM-SHA-256 itself (cached keys, scram.ts), swallows the SASL
 * messages and, once the server's signature is verified, hands postgres.js everything from
 * AuthenticationOk on (then a plain pass-through). md5, cleartext, trust and CancelRequests pass through.
 * Until SCRAM is verified only 'R' in SCRAM's order, 'E' and 'N' are accepted: anything else is an
 * impostor's (AUTH_FAILED). Pipelined (`pipelineConnect`): StartupMessage + SASLInitialResponse in one
 * write; on the server-first message postgres.js gets a synthetic AuthenticationOk + ReadyForQuery, and
 * its first statement leaves with the SASLResponse. A server not asking for SCRAM: a normal connection
 * replaces this one and `onNotScram` is told. See docs/fast-connect.md.
 */
import { Buffer } from 'node:buffer'
import { EventEmitter } from 'node:events'
import { type Action, type LoginContext, loginRules } from './login'
import { endsReady, firstWriteKind, messageReader, SYNTHETIC_READY, trailingFatal } from './messages'
import { quietErrors, type Transport } from './transport'

export interface HandshakeOptions {
  host: string
  port: number
  /** Opens TCP (+ TLS) to host:port. */
  open(): Promise<Transport>
  /** The password (postgres.js's `pass`, a string or a function). */
  password(): Promise<string>
  /** Pipeline this connection's setup. */
  pipeline: boolean
  /** The server did not ask for SCRAM while pipelined: remember the host, connect normally. */
  onNotScram(): void
  /** The setup phase must be over within this many ms (0: no limit). */
  timeoutMs: number
}

type Phase = 'opening' | 'startup' | 'auth' | 'await-first' | 'final' | 'pass' | 'closed'
const noop = () => {}

/**
 * The postgres.js `socket` for one connection. Returned at once; failures arrive as `error` + `close`, as
 * from a Node socket, so postgres.js's connection lifecycle is unchanged.
 *
 * @example
 * ```ts
 * import type { Transport } from './transport'
 *
 * declare function open(): Promise<Transport>
 * const password = async () => 'pw'
 * const options = { host: '127.0.0.1', port: 6432, open, password, pipeline: false, timeoutMs: 5000 }
 * const socket = handshakeSocket({ ...options, onNotScram: () => {} })
 * ```
 */
export function handshakeSocket(o: HandshakeOptions) {
  let phase: Phase = 'opening'
  let transport: Transport | undefined
  let startup: Buffer | undefined
  let passFirst = false
  let password = ''
  let pipelined = o.pipeline
  let pendingFinal: Buffer | undefined
  let reader = messageReader()
  let keepAlive: [boolean, number] | undefined
  // Pass-through: a statement of postgres.js's is out (written since the last ReadyForQuery), and the last
  // chunk the server sent while one was (where a FATAL before a close is looked for).
  let busy = false
  let lastChunk: Buffer | undefined
  const queued: [Uint8Array, ((err?: Error | null) => void) | undefined][] = []

  const socket = Object.assign(quietErrors(new EventEmitter()), {
    host: o.host,
    port: o.port,
    get readyState() {
      return phase === 'closed' ? 'closed' : 'open'
    },
    write,
    end,
    destroy,
    setKeepAlive: (on: boolean, ms: number) => {
      keepAlive = [on, ms]
      transport?.setKeepAlive?.(on, ms)
    },
    pause: () => transport?.pause?.(),
    resume: () => transport?.resume?.(),
  })

  let rules = loginRules(login())

  const timedOut = () => fail(Object.assign(new Error('CONNECT_TIMEOUT'), { code: 'CONNECT_TIMEOUT' }))
  const timer = o.timeoutMs > 0 ? setTimeout(timedOut, o.timeoutMs) : undefined

  void start()
  return socket

  async function start() {
    const opening = o.open()
    try {
      password = await o.password()
    } catch (e) {
      opening.then((t) => t.destroy(), noop) // a `pass` function that threw: no socket left behind
      return fail(e)
    }
    try {
      const t = await opening
      if (phase === 'closed') {
        t.destroy()
        return
      }
      attach(t)
      phase = 'startup'
      if (passFirst) goPass(Buffer.alloc(0))
      else if (startup) begin()
    } catch (e) {
      fail(e)
    }
  }

  function attach(t: Transport) {
    transport = t
    if (keepAlive) t.setKeepAlive?.(...keepAlive)
    t.on('data', onData)
    t.on('error', (e: unknown) => socket.emit('error', e))
    t.on('close', (hadError: boolean) => closed(hadError))
    t.on('drain', () => socket.emit('drain'))
  }

  function begin() {
    phase = 'auth'
    if (pipelined) transport?.write(Buffer.concat([startup as Buffer, rules.initialResponse()]))
    else transport?.write(startup as Buffer)
  }

  function write(data: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    if (phase === 'pass' || phase === 'final') {
      busy = true
      return transport ? transport.write(data, cb) : false
    }
    if (phase === 'await-first') {
      phase = 'final'
      busy = true
      const first = Buffer.concat([pendingFinal as Buffer, data])
      pendingFinal = undefined
      return (transport as Transport).write(first, cb)
    }
    if (!startup && !passFirst) {
      if (firstWriteKind(data) === 'startup') {
        startup = Buffer.from(data)
        if (phase === 'startup') begin()
      } else {
        passFirst = true // a CancelRequest: no setup phase at all
        queued.push([data, cb])
        if (phase === 'startup') goPass(Buffer.alloc(0))
      }
      return true
    }
    queued.push([data, cb])
    return true
  }

  function end(data?: Uint8Array) {
    if (phase === 'pass' && transport) transport.end(data)
    else destroy()
  }

  function destroy() {
    if (transport) transport.destroy()
    else if (phase !== 'closed') setTimeout(() => closed(false))
  }

  function fail(err: unknown) {
    if (phase === 'closed') return
    socket.emit('error', err)
    // Pipelined: postgres.js holds its statement (rejected just now) until a ReadyForQuery; without one its
    // end() would wait for closeTimeout.
    if (phase === 'await-first' || phase === 'final') socket.emit('data', SYNTHETIC_READY.subarray(9))
    if (transport) transport.destroy()
    else closed(true)
  }

  function closed(hadError: boolean) {
    if (phase === 'closed') return
    const was = phase
    phase = 'closed'
    clearTimeout(timer)
    // The server's last words under a statement were a FATAL (PgBouncer: `server conn crashed?`): postgres.js
    // keeps it for a ReadyForQuery that never comes, rejects with a bare CONNECTION_CLOSED, and would reject
    // the connection's NEXT statement with it after a reconnect. A ReadyForQuery now makes it reject the
    // statement with the FATAL itself and forget it; what it sends meanwhile stays queued here (closed).
    const last = lastChunk
    lastChunk = undefined
    if (was === 'pass' && busy && !hadError && last && trailingFatal(last))
      socket.emit('data', SYNTHETIC_READY.subarray(9))
    socket.emit('close', hadError)
  }

  function goPass(rest: Buffer) {
    phase = 'pass'
    clearTimeout(timer)
    for (const [data, cb] of queued.splice(0)) transport?.write(data, cb)
    if (rest.length) socket.emit('data', rest)
  }

  function onData(chunk: Buffer) {
    if (phase === 'pass') {
      if (endsReady(chunk)) busy = false
      lastChunk = busy ? chunk : undefined
      return void socket.emit('data', chunk)
    }
    try {
      const messages = reader.push(chunk)
      for (let k = 0; k < messages.length; k++) {
        const m = messages[k] as Buffer
        const action: Action =
          phase === 'await-first' || phase === 'final' ? rules.afterReady(m) : rules.beforeReady(m)
        if (action === 'stop') return
        if (action === 'forward') socket.emit('data', m)
        else if (action === 'pass' || action === 'pass-after') {
          const from = action === 'pass' ? k : k + 1
          return goPass(Buffer.concat([...messages.slice(from), reader.rest()]))
        }
      }
    } catch (e) {
      fail(e) // a malformed message: a coded error for the request, never a crash
    }
  }

  function login(): LoginContext {
    return {
      pipelined,
      password: () => password,
      send: (data) => transport?.write(data),
      emit: (data) => socket.emit('data', data),
      holdFinal,
      fallback,
      fail,
    }
  }

  /** Pipelined: postgres.js gets a synthetic ReadyForQuery; its first statement leaves with `final`. */
  function holdFinal(final: Buffer) {
    phase = 'await-first'
    pendingFinal = final
    socket.emit('data', SYNTHETIC_READY)
    // postgres.js writes its first statement from a setImmediate queued just now; if it has none, the
    // SASLResponse leaves alone.
    setImmediate(() => {
      if (phase !== 'await-first') return
      phase = 'final'
      transport?.write(pendingFinal as Buffer)
      pendingFinal = undefined
    })
  }

  /** The server did not take the pipelined SCRAM login: a fresh, normal connection (same startup). */
  function fallback(): 'stop' {
    o.onNotScram()
    const old = transport
    transport = undefined
    old?.removeAllListeners()
    old?.on('error', noop)
    old?.destroy()
    pipelined = false
    rules = loginRules(login())
    reader = messageReader()
    phase = 'opening'
    o.open().then((t) => {
      if (phase === 'closed') return void t.destroy()
      attach(t)
      begin()
    }, fail)
    return 'stop'
  }
}

export type HandshakeSocket = ReturnType<typeof handshakeSocket>
