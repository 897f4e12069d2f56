/**
 * What TLS keeps between connections of one process, per TLS settings object (one per configuration: the
 * same `ssl`/`sslmode`, CA and verification): the `SecureContext` (building one parses the CAs and
 * creates an OpenSSL context, ~0.5 ms per connection otherwise), and the server's latest TLS 1.3 session
 * ticket per host, port and server name, so the next handshake resumes (no certificate sent, signed or
 * verified again; still one round trip, still a fresh key exchange). A ticket is only ever offered with the
 * settings whose handshake received it — never across different verification settings — and is dropped
 * when a handshake with it fails. Bounded: at most `MAX_SESSIONS` hosts per settings object.
 */
import type { SecureContext, TLSSocket } from 'node:tls'

/** A TLS settings object (tls.ts): its identity is the cache key, its options build the context. */
type TlsSettings = { readonly mode: string; readonly options: Record<string, unknown> }

const MAX_SESSIONS = 16
const contexts = new WeakMap<TlsSettings, SecureContext>()
const sessions = new WeakMap<TlsSettings, Map<string, Buffer>>()
let resumed = 0

/**
 * How many handshakes resumed a session in this process (tests).
 *
 * @example
 * ```ts
 * const before = tlsResumptions()
 * ```
 */
export const tlsResumptions = (): number => resumed

/** The settings' SecureContext, built on first use by `create` (node:tls's `createSecureContext`). */
export function secureContextFor(
  tls: TlsSettings,
  create: (options: object) => SecureContext,
): SecureContext {
  let context = contexts.get(tls)
  if (!context) {
    context = create(tls.options)
    contexts.set(tls, context)
  }
  return context
}

/** The session ticket to offer to `key` (host, port, server name) with these settings, if any. */
export const sessionFor = (tls: TlsSettings, key: string): Buffer | undefined => sessions.get(tls)?.get(key)

/** Keeps the tickets `socket` receives (TLS 1.3 sends them after the handshake) for the next connection. */
export function keepSessions(tls: TlsSettings, key: string, socket: TLSSocket): void {
  socket.on('session', (session: Buffer) => {
    // Only from a handshake that passed the verification these settings ask for.
    if (tls.mode === 'verify-full' && !socket.authorized) return
    let byHost = sessions.get(tls)
    if (!byHost) {
      byHost = new Map()
      sessions.set(tls, byHost)
    }
    byHost.delete(key) // most recent last: eviction takes the first
    if (byHost.size >= MAX_SESSIONS) byHost.delete(byHost.keys().next().value as string)
    byHost.set(key, session)
  })
}

/** After a handshake: counts a resumption. */
export function handshakeDone(socket: TLSSocket): void {
  if (socket.isSessionReused()) resumed++
}

/** A handshake that offered `offered` failed: that ticket is not offered again (a newer one stays). */
export function forgetSession(tls: TlsSettings, key: string, offered: Buffer | undefined): void {
  const byHost = sessions.get(tls)
  if (byHost && offered && byHost.get(key) === offered) byHost.delete(key)
}
