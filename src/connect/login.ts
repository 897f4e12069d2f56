/**
 * Which server messages a login accepts, and in which order: the rules that keep an impostor's answers
 * away from postgres.js. Until the server's SCRAM signature is verified only 'R' in SCRAM's order
 * (AuthenticationSASL, SASLContinue, SASLFinal, then AuthenticationOk), 'E' and 'N' are valid; anything
 * else — an AuthenticationOk without SASLFinal, a ReadyForQuery, rows, a switch to cleartext — fails with
 * `AUTH_FAILED`. Pipelined, after the synthetic ReadyForQuery: SASLFinal, then AuthenticationOk, then only
 * 'S', 'K', 'N', 'E' until the server's ReadyForQuery. handshake.ts drives the socket; this decides.
 */
import type { Buffer } from 'node:buffer'
import { loginProtocolError, saslSignatureMismatch } from '../errors'
import {
  AUTH,
  authType,
  SYNTHETIC_READY,
  saslData,
  saslInitialResponse,
  saslMechanisms,
  saslResponse,
} from './messages'
import { type ScramExchange, scramExchange } from './scram'

/** What handshake.ts does with a message: hand it to postgres.js, drop it, or go pass-through. */
export type Action = 'forward' | 'swallow' | 'pass' | 'pass-after' | 'stop'

export interface LoginContext {
  pipelined: boolean
  password(): string
  /** Writes to the server. */
  send(data: Buffer): void
  /** Hands postgres.js a message. */
  emit(data: Buffer): void
  /** Pipelined: postgres.js got the synthetic ReadyForQuery; `final` leaves with its first statement. */
  holdFinal(final: Buffer): void
  /** Pipelined, the server does not ask for SCRAM: connect normally. */
  fallback(): 'stop'
  fail(err: unknown): void
}

const SCRAM = 'SCRAM-SHA-256'
const typeName = (m: Buffer) => String.fromCharCode(m[0] ?? 0)

/**
 * The login rules for one connection attempt.
 *
 * @example
 * ```ts
 * import { Buffer } from 'node:buffer'
 *
 * const rules = loginRules({
 *   pipelined: false,
 *   password: () => 'pw',
 *   send: () => {},
 *   emit: () => {},
 *   holdFinal: () => {},
 *   fallback: () => 'stop',
 *   fail: (e) => console.error(e),
 * })
 * rules.beforeReady(Buffer.from([0x5a, 0, 0, 0, 5, 0x49])) // 'stop': a ReadyForQuery before any login
 * ```
 */
export function loginRules(ctx: LoginContext) {
  /** SCRAM's progress: the server asked for it, client-final sent, server signature verified. */
  let step: 'none' | 'first' | 'final' | 'verified' = 'none'
  let scram: ScramExchange | undefined
  let realOk = false

  function verify(m: Buffer): Action {
    if (!scram?.verifyServer(saslData(m))) return refuse()
    step = 'verified'
    return 'swallow'
  }

  /** Not proven (SCRAM not verified): AUTH_FAILED; after a verified login: a protocol error. */
  function refuse(why = 'out of order'): 'stop' {
    ctx.fail(step === 'verified' ? loginProtocolError(why) : saslSignatureMismatch())
    return 'stop'
  }

  return {
    /** Pipelined: the SASLInitialResponse that leaves with the StartupMessage. */
    initialResponse(): Buffer {
      scram = scramExchange()
      return saslInitialResponse(SCRAM, scram.clientFirst)
    },

    /** Before postgres.js got anything but notices. */
    beforeReady(m: Buffer): Action {
      const type = m[0]
      if (type === 0x4e) return 'forward'
      if (type === 0x45) return 'pass'
      if (type !== 0x52) return refuse(`message '${typeName(m)}' before authentication`)
      const auth = authType(m)
      if (auth === AUTH.sasl && step === 'none') {
        if (!saslMechanisms(m).includes(SCRAM)) return ctx.pipelined ? ctx.fallback() : 'pass'
        step = 'first'
        if (!ctx.pipelined) {
          scram = scramExchange()
          ctx.send(saslInitialResponse(SCRAM, scram.clientFirst))
        }
        return 'swallow'
      }
      // trust, md5, cleartext, …: postgres.js's business — unless SCRAM started (an impostor's downgrade).
      if (step === 'none') return ctx.pipelined ? ctx.fallback() : 'pass'
      if (auth === AUTH.saslContinue && step === 'first' && scram) {
        const final = saslResponse(scram.clientFinal(saslData(m), ctx.password()))
        step = 'final'
        if (ctx.pipelined) ctx.holdFinal(final)
        else ctx.send(final)
        return 'swallow'
      }
      if (auth === AUTH.saslFinal && step === 'final') return verify(m)
      // AuthenticationOk only once the server proved it knows the password.
      if (auth === AUTH.ok && step === 'verified') return 'pass'
      return refuse()
    },

    /** Pipelined, after the synthetic ReadyForQuery (postgres.js awaits its first statement's results). */
    afterReady(m: Buffer): Action {
      const type = m[0]
      if (type === 0x45) {
        // A login error (FATAL): postgres.js holds an error until the next ReadyForQuery, which the server
        // (closing) never sends. Give it one, so the statement rejects now.
        ctx.emit(m)
        ctx.emit(SYNTHETIC_READY.subarray(9))
        return 'pass-after'
      }
      if (type === 0x4e) return 'forward'
      if (realOk) {
        if (type === 0x5a) return 'pass-after' // the server's ReadyForQuery: swallowed, then pass-through
        if (type === 0x53 || type === 0x4b) return 'forward'
      } else if (type === 0x52) {
        const auth = authType(m)
        if (auth === AUTH.saslFinal && step === 'final') return verify(m)
        if (auth === AUTH.ok && step === 'verified') {
          realOk = true
          return 'swallow'
        }
      }
      return refuse(`message '${typeName(m)}' before ReadyForQuery`)
    },
  }
}
