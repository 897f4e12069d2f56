/**
 * The contract between the connect layer and the real socket: what handshake.ts needs from a transport
 * (a Node net/tls socket, or the workerd transport), and event emitters that never throw on an `error`
 * nobody listens to (postgres.js removes its listeners once a socket closed).
 */
import type { EventEmitter } from 'node:events'

/** What the real socket offers (a Node net/tls socket, or the workerd transport). */
export interface Transport extends EventEmitter {
  write(data: Uint8Array, cb?: (err?: Error | null) => void): boolean
  end(data?: Uint8Array): unknown
  destroy(): unknown
  setKeepAlive?(enable: boolean, ms: number): unknown
  pause?(): unknown
  resume?(): unknown
}

/**
 * Makes `emit('error')` a no-op while nobody listens, instead of a throw (often inside a promise callback,
 * i.e. an unhandled rejection).
 *
 * @example
 * ```ts
 * import { EventEmitter } from 'node:events'
 *
 * const e = quietErrors(new EventEmitter())
 * e.emit('error', new Error('late')) // false, no throw
 * ```
 */
export function quietErrors<T extends EventEmitter>(emitter: T): T {
  const emit = emitter.emit.bind(emitter)
  emitter.emit = (event: string | symbol, ...args: unknown[]) =>
    event === 'error' && emitter.listenerCount('error') === 0 ? false : emit(event, ...args)
  return emitter
}
