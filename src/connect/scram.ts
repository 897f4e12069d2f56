/**
 * SCRAM-SHA-256 (RFC 5802/7677) for the setup phase, with the key cache: `SaltedPassword` depends only on
 * (password, salt, iterations), which the server repeats for a role, so PBKDF2 (4096 iterations, ~1 ms of
 * CPU on the event loop) runs once per process (Workers: per isolate) instead of once per connection.
 * The cache holds a few entries keyed by a hash of (password, salt, iterations): a changed password or salt
 * misses. No key, proof or password ever reaches a message, a log or an event.
 */
import { Buffer } from 'node:buffer'
import { createHash, createHmac, pbkdf2Sync, randomFillSync, timingSafeEqual } from 'node:crypto'
import { scramInvalid } from '../errors'

interface Keys {
  clientKey: Buffer
  storedKey: Buffer
  serverKey: Buffer
}

/** At most this many (password, salt, iterations) entries; the least recently used is dropped first. */
const CACHE_SIZE = 8
/**
 * Above this, PBKDF2 would block the event loop for seconds (a hostile or broken server's `i=`): refused.
 * Postgres uses 4 096 (`scram_iterations`, settable per role); 1 000 000 is ~0.2 s of CPU.
 */
const MAX_ITERATIONS = 1_000_000
const cache = new Map<string, Keys>()
let derivations = 0

const hmac = (key: Buffer, data: string | Buffer) => createHmac('sha256', key).update(data).digest()

/** Random bytes for nonces, drawn from the CSPRNG 32 nonces at a time (one call into it per 32 connections). */
const NONCE_BYTES = 18
const randomPool = Buffer.alloc(NONCE_BYTES * 32)
let randomAt = randomPool.length
function freshNonce(): string {
  if (randomAt === randomPool.length) {
    randomFillSync(randomPool)
    randomAt = 0
  }
  const nonce = randomPool.toString('base64', randomAt, randomAt + NONCE_BYTES)
  randomPool.fill(0, randomAt, randomAt + NONCE_BYTES) // never handed out twice
  randomAt += NONCE_BYTES
  return nonce
}

/**
 * How many times PBKDF2 ran in this process (tests: cache hits leave it unchanged).
 *
 * @example
 * ```ts
 * const before = scramDerivations()
 * await sql`select 1`
 * console.log(scramDerivations() - before) // 0 when the keys were cached
 * ```
 */
export const scramDerivations = (): number => derivations

/** Empties the key cache (tests). */
export const clearScramCache = (): void => cache.clear()

function keysFor(password: string, salt: string, iterations: number): Keys {
  const id = createHash('sha256').update(`${salt}\0${iterations}\0`).update(password).digest('base64')
  const hit = cache.get(id)
  if (hit) {
    cache.delete(id) // most recently used last: eviction takes the first
    cache.set(id, hit)
    return hit
  }
  derivations++
  const salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256')
  const clientKey = hmac(salted, 'Client Key')
  const keys = {
    clientKey,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: hmac(salted, 'Server Key'),
  }
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string)
  cache.set(id, keys)
  return keys
}

/** One SCRAM exchange: the client-first message, then the client-final one, then the server's proof. */
export interface ScramExchange {
  /** `n,,n=*,r=<nonce>`: independent of anything the server sends (what pipelining relies on). */
  readonly clientFirst: string
  /** The client-final message for the server-first one; throws `AUTH_FAILED` on a malformed one (foreign nonce, no salt, `i` above 1 000 000, `m=`). */
  clientFinal(serverFirst: string, password: string): string
  /** True when the server's `v=` proves it knows the password. */
  verifyServer(serverFinal: string): boolean
}

/**
 * Starts a SCRAM-SHA-256 exchange (no channel binding, as postgres.js). Postgres ignores the SCRAM user
 * name (`*`); `nonce` and `user` are for the RFC 7677 test vector.
 *
 * @example
 * ```ts
 * declare function send(message: string): Promise<string>
 * const s = scramExchange()
 * const serverFirst = await send(s.clientFirst)
 * const serverFinal = await send(s.clientFinal(serverFirst, 'pw'))
 * if (!s.verifyServer(serverFinal)) throw new Error('impostor')
 * ```
 */
export function scramExchange(nonce = freshNonce(), user = '*'): ScramExchange {
  const clientFirstBare = `n=${user},r=${nonce}`
  let serverSignature: Buffer | undefined
  return {
    clientFirst: `n,,${clientFirstBare}`,
    clientFinal(serverFirst, password) {
      // RFC 5802 §5.1: a server-first starting with the mandatory-extension attribute `m=` must fail.
      if (serverFirst.startsWith('m=')) throw scramInvalid('a mandatory extension (m=) is not supported')
      const attrs = new Map(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)] as const))
      const r = attrs.get('r') ?? ''
      const s = attrs.get('s') ?? ''
      const i = Number(attrs.get('i'))
      if (!r.startsWith(nonce) || r.length <= nonce.length)
        throw scramInvalid('the server nonce does not extend ours')
      if (!s) throw scramInvalid('no salt')
      if (!Number.isInteger(i) || i < 1 || i > MAX_ITERATIONS)
        throw scramInvalid(`iteration count must be 1…${MAX_ITERATIONS}`)
      const keys = keysFor(password, s, i)
      const withoutProof = `c=biws,r=${r}`
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`
      const signature = hmac(keys.storedKey, authMessage)
      const proof = Buffer.allocUnsafe(32)
      for (let k = 0; k < 32; k++) proof[k] = (keys.clientKey[k] as number) ^ (signature[k] as number)
      serverSignature = hmac(keys.serverKey, authMessage)
      return `${withoutProof},p=${proof.toString('base64')}`
    },
    verifyServer(serverFinal) {
      const v = serverFinal.split(',').find((kv) => kv.startsWith('v='))
      if (!v || !serverSignature) return false
      const got = Buffer.from(v.slice(2), 'base64')
      return got.length === serverSignature.length && timingSafeEqual(got, serverSignature)
    },
  }
}
