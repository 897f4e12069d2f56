/**
 * The client side of SCRAM-SHA-256 (RFC 5802/7677, no channel binding: `n,,`), for the `pipeline` probe,
 * which writes the protocol messages itself. The same computation as postgres.js's connection.js.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'

const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest()

/** One SCRAM exchange: `first` → server-first → `final(serverFirst)` → server-final → `verify`. */
export interface Scram {
  /** The client-first message (`n,,n=*,r=<nonce>`), sent in SASLInitialResponse. */
  first: string
  /** The client-final message for the server-first message; throws on a nonce the client did not start. */
  final(serverFirst: string): string
  /** True when the server-final message carries the expected server signature. */
  verify(serverFinal: string): boolean
}

/**
 * @example
 * ```ts
 * const scram = startScram('secret')
 * scram.first // 'n,,n=*,r=<nonce>': the SASL initial response
 * // `nonce` and `user` are for the RFC 7677 test vector only.
 * ```
 */
export function startScram(
  password: string,
  { nonce = randomBytes(18).toString('base64'), user = '*' }: { nonce?: string; user?: string } = {},
): Scram {
  // Postgres ignores the SCRAM user name (it has the startup message's): '*' as postgres.js sends.
  const bare = `n=${user},r=${nonce}`
  let serverSignature = ''
  return {
    first: `n,,${bare}`,
    final(serverFirst) {
      const f = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]))
      if (!f.r?.startsWith(nonce) || !f.s || !f.i) throw new Error('malformed SCRAM server-first message')
      const salted = pbkdf2Sync(password, Buffer.from(f.s, 'base64'), Number(f.i), 32, 'sha256')
      const clientKey = hmac(salted, 'Client Key')
      const storedKey = createHash('sha256').update(clientKey).digest()
      const withoutProof = `c=biws,r=${f.r}`
      const auth = `${bare},${serverFirst},${withoutProof}`
      const signature = hmac(storedKey, auth)
      const proof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] as number)))
      serverSignature = hmac(hmac(salted, 'Server Key'), auth).toString('base64')
      return `${withoutProof},p=${proof.toString('base64')}`
    },
    verify(serverFinal) {
      return serverSignature !== '' && serverFinal.split(',')[0] === `v=${serverSignature}`
    },
  }
}
