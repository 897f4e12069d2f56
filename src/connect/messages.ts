/**
 * The frontend/backend protocol messages of the setup phase: SSLRequest, the StartupMessage and
 * CancelRequest postgres.js writes, the SASL messages, and splitting what the server sends into messages.
 * See https://www.postgresql.org/docs/current/protocol-message-formats.html.
 */
import { Buffer } from 'node:buffer'
import { loginProtocolError } from '../errors'

/** Int32 length 8 + the SSLRequest code 80877103. */
export const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47])
const CANCEL_CODE = 80877102
const PROTOCOL_3 = 196608

/** Authentication request types ('R' messages). */
export const AUTH = { ok: 0, cleartext: 3, md5: 5, sasl: 10, saslContinue: 11, saslFinal: 12 } as const

/**
 * What postgres.js wrote first: a StartupMessage (protocol 3.0) or a CancelRequest (which must pass through).
 *
 * @example
 * ```ts
 * firstWriteKind(new Uint8Array([0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 1, 0, 0, 0, 2])) // 'cancel'
 * ```
 */
export function firstWriteKind(x: Uint8Array): 'startup' | 'cancel' | 'other' {
  if (x.length < 8) return 'other'
  const b = Buffer.from(x.buffer, x.byteOffset, x.length)
  const code = b.readUInt32BE(4)
  if (code === CANCEL_CODE && b.readUInt32BE(0) === 16) return 'cancel'
  return code === PROTOCOL_3 && b.readUInt32BE(0) === x.length ? 'startup' : 'other'
}

/** SASLInitialResponse ('p'): the mechanism and the client-first message. */
export function saslInitialResponse(mechanism: string, clientFirst: string): Buffer {
  const mech = Buffer.from(`${mechanism}\0`)
  const data = Buffer.from(clientFirst)
  const out = Buffer.allocUnsafe(1 + 4 + mech.length + 4 + data.length)
  out[0] = 0x70
  out.writeUInt32BE(out.length - 1, 1)
  mech.copy(out, 5)
  out.writeUInt32BE(data.length, 5 + mech.length)
  data.copy(out, 9 + mech.length)
  return out
}

/** SASLResponse ('p'): the client-final message. */
export function saslResponse(clientFinal: string): Buffer {
  const data = Buffer.from(clientFinal)
  const out = Buffer.allocUnsafe(5 + data.length)
  out[0] = 0x70
  out.writeUInt32BE(4 + data.length, 1)
  data.copy(out, 5)
  return out
}

/** AuthenticationOk + ReadyForQuery(idle): what postgres.js needs to send its first statement. */
export const SYNTHETIC_READY = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49])

/** The SASL mechanisms an AuthenticationSASL message offers. */
export function saslMechanisms(msg: Buffer): string[] {
  return msg.toString('utf8', 9, msg.length).split('\0').filter(Boolean)
}

/** The SASL data of an AuthenticationSASLContinue/Final message. */
export const saslData = (msg: Buffer): string => msg.toString('utf8', 9)

/**
 * The authentication type of an 'R' message, after checking its length for that type (SASL steps carry
 * data); throws `CONNECT_FAILED` on a malformed one.
 *
 * @example
 * ```ts
 * authType(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0])) // 0 (AuthenticationOk)
 * ```
 */
export function authType(msg: Buffer): number {
  if (msg.length < 9) throw loginProtocolError(`an authentication request of ${msg.length} bytes`)
  const type = msg.readUInt32BE(5)
  const min = type === AUTH.md5 ? 13 : type >= AUTH.sasl && type <= AUTH.saslFinal ? 10 : 9
  if (msg.length < min) throw loginProtocolError(`authentication request ${type} without its data`)
  return type
}

/**
 * Splits a byte stream into backend messages (type byte + Int32 length); keeps the incomplete tail. A
 * length below 4 throws `CONNECT_FAILED`.
 *
 * @example
 * ```ts
 * const reader = messageReader()
 * for (const m of reader.push(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))) console.log(String.fromCharCode(m[0] ?? 0)) // Z
 * ```
 */
export function messageReader(): { push(chunk: Buffer): Buffer[]; rest(): Buffer } {
  let pending: Buffer = Buffer.alloc(0)
  return {
    push(chunk) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
      const out: Buffer[] = []
      let at = 0
      while (pending.length - at >= 5) {
        const length = pending.readUInt32BE(at + 1)
        if (length < 4) throw loginProtocolError(`a message length of ${length}`)
        const end = at + 1 + length
        if (end > pending.length) break
        out.push(pending.subarray(at, end))
        at = end
      }
      pending = pending.subarray(at)
      return out
    },
    rest: () => pending,
  }
}

/** Whether `chunk` ends with a ReadyForQuery ('Z', length 5, status): the server waits for the next statement. */
export const endsReady = (chunk: Uint8Array): boolean => {
  const n = chunk.length
  return (
    n >= 6 &&
    chunk[n - 6] === 0x5a &&
    chunk[n - 5] === 0 &&
    chunk[n - 4] === 0 &&
    chunk[n - 3] === 0 &&
    chunk[n - 2] === 5
  )
}

/** The fields of a FATAL ErrorResponse a server sent last before closing. */
export interface FatalError {
  severity: 'FATAL' | 'PANIC'
  code: string
  message: string
}

/**
 * A FATAL (or PANIC) ErrorResponse that ends exactly at the end of `chunk` (the last bytes a server sent
 * before it closed), else undefined. PgBouncer says why it drops a client this way (`server conn crashed?`).
 *
 * @example
 * ```ts
 * const body = Buffer.from('SFATAL\0C08P01\0Mserver conn crashed?\0\0')
 * const head = Buffer.from([0x45, 0, 0, 0, 0])
 * head.writeUInt32BE(body.length + 4, 1)
 * trailingFatal(Buffer.concat([head, body]))?.message // 'server conn crashed?'
 * ```
 */
export function trailingFatal(chunk: Buffer): FatalError | undefined {
  for (let i = 0; i + 5 <= chunk.length; i++) {
    if (chunk[i] !== 0x45 || i + 1 + chunk.readUInt32BE(i + 1) !== chunk.length) continue
    const fields = new Map<string, string>()
    let at = i + 5
    while (at < chunk.length && chunk[at] !== 0) {
      const end = chunk.indexOf(0, at + 1)
      if (end < 0) break
      fields.set(String.fromCharCode(chunk[at] as number), chunk.toString('utf8', at + 1, end))
      at = end + 1
    }
    const severity = fields.get('V') ?? fields.get('S')
    if (severity !== 'FATAL' && severity !== 'PANIC') return undefined
    return { severity, code: fields.get('C') ?? '', message: fields.get('M') ?? '' }
  }
  return undefined
}
