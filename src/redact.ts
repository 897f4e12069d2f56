/**
 * Redaction: a connection string with its password masked, a secret removed from a foreign error's text.
 * Every message hono-pooler builds from a URL or a driver error goes through one of these.
 */

/**
 * A connection string with its password replaced by `***` (also in query parameters such as `password=`).
 *
 * @example
 * ```ts
 * redactUrl('postgres://app:secret@db:6543/app') // 'postgres://app:***@db:6543/app'
 * ```
 */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([\s\S]*)$/i.exec(url)
  let out = url
  // The user info ends at the LAST '@': a raw '@', '/', '?' or '#' in a password must not end it early
  // (masking a little too much when an '@' stands in the query is the safe side).
  const rest = m ? (m[2] as string) : url
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    const userinfo = rest.slice(0, at)
    const colon = userinfo.indexOf(':')
    const masked = m ? (colon >= 0 ? `${userinfo.slice(0, colon)}:***` : userinfo) : '***'
    out = `${m ? m[1] : ''}${masked}@${rest.slice(at + 1)}`
  }
  return out.replace(/([?&](?:password|pass|sslpassword)=)[^&#]*/gi, '$1***')
}

/**
 * Removes every occurrence of `secret` from a string (for messages built from foreign errors).
 *
 * @example
 * ```ts
 * scrub('auth failed for p4ss', 'p4ss') // 'auth failed for ***'
 * ```
 */
export function scrub(text: string, secret: string | undefined): string {
  if (!secret) return text
  let out = text.split(secret).join('***')
  const enc = encodeURIComponent(secret)
  if (enc !== secret) out = out.split(enc).join('***')
  return out
}
