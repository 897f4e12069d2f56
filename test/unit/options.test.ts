/** Options postgres.js would lose to the preset, and URLs hono-pooler refuses with their own code. */
import { describe, expect, it } from 'vitest'
import { classifyUrl } from '../../src'
import { clientConfig, parseOptions } from '../../src/internal'

const code = (f: () => unknown) => {
  try {
    f()
  } catch (e) {
    return [(e as { code?: string }).code, (e as Error).message]
  }
  return ['no error', '']
}

describe('postgres.js options the preset owns are refused, naming the pooler() option', () => {
  it.each([
    [{ max: 3 }, 'postgres.max', 'pooler({ max })'],
    [{ connect_timeout: { seconds: 3 } }, 'postgres.connect_timeout', 'pooler({ connectTimeout })'],
    [{ idle_timeout: 10 }, 'postgres.idle_timeout', 'pooler({ idleTimeout })'],
    [{ max_lifetime: 60 }, 'postgres.max_lifetime', 'idleTimeout'],
    [{ prepare: true }, 'postgres.prepare', 'pooler({ prepare })'],
    [{ ssl: 'require' }, 'postgres.ssl', 'pooler({ ssl })'],
    [{ connection: { application_name: 'x' } }, 'postgres.connection.application_name', 'applicationName'],
  ])('%j', (postgres, where, instead) => {
    const [c, message] = code(() => parseOptions({ postgres: postgres as any }))
    expect(c).toBe('INVALID_OPTIONS')
    expect(message).toContain(where)
    expect(message).toContain(instead)
  })

  it.each([
    [{ host: 'a,b' }, 'postgres.host'],
    [{ port: 5433 }, 'postgres.port'],
    [{ database: 'other' }, 'postgres.database'],
    [{ username: 'other' }, 'postgres.username'],
    [{ password: 'other' }, 'postgres.password'],
    [{ path: '/tmp/.s.PGSQL.5432' }, 'postgres.path'],
    [{ target_session_attrs: 'read-write' }, 'postgres.target_session_attrs'],
  ])('%j: the URL the mode was read from cannot be overridden', (postgres, where) => {
    const [c, message] = code(() => parseOptions({ postgres: postgres as any }))
    expect(c).toBe('INVALID_OPTIONS')
    expect(message).toContain(where)
    expect(message).toContain('pooler({ url')
  })

  it('a preset-owned key set to undefined changes nothing and is accepted', () => {
    expect(() => parseOptions({ postgres: { ssl: undefined, max: undefined } as any })).not.toThrow()
  })

  it('a connection that is not an object is INVALID_OPTIONS, not a TypeError', () => {
    expect(code(() => parseOptions({ postgres: { connection: 'x' } as any }))[0]).toBe('INVALID_OPTIONS')
  })

  it('keeps the options the preset does not own', () => {
    const o = parseOptions({ postgres: { onnotice: () => {}, connection: { TimeZone: 'UTC' } } })
    const driver = clientConfig('postgres://u:p@127.0.0.1:5432/db', { ...o, mode: 'direct' }).driver
    expect((driver.connection as Record<string, unknown>).TimeZone).toBe('UTC')
    expect(typeof driver.onnotice).toBe('function')
  })

  it('transaction mode refuses fetch_types: true and a non-UTF8 client_encoding (it would drop them)', () => {
    const url = 'postgres://u:p@127.0.0.1:6543/db'
    expect(code(() => clientConfig(url, parseOptions({ postgres: { fetch_types: true } })))[0]).toBe(
      'INVALID_OPTIONS',
    )
    expect(
      code(() =>
        clientConfig(url, parseOptions({ postgres: { connection: { client_encoding: 'LATIN1' } } })),
      )[0],
    ).toBe('INVALID_OPTIONS')
    // direct mode honours both
    const direct = parseOptions({ mode: 'direct', postgres: { fetch_types: true } })
    expect(clientConfig('postgres://u:p@127.0.0.1:5432/db', direct).driver.fetch_types).toBe(true)
  })
})

describe('multi-host URLs', () => {
  it.each([
    'postgres://u:secret@h1:5432,h2:5433/db',
    'postgresql://u:secret@h1,h2/db?target_session_attrs=read-write',
  ])('%s → MULTI_HOST_URL, never the password', (url) => {
    const [c, message] = code(() => classifyUrl(url))
    expect(c).toBe('MULTI_HOST_URL')
    expect(message).toContain('several hosts')
    expect(message).not.toContain('secret')
  })
  it('a password with a comma and a slash is neither multi-host nor echoed', () => {
    const [c, message] = code(() => classifyUrl('postgres://app:s3cr,et/x@db.example.com:6543/postgres'))
    expect(message).not.toContain('s3cr')
    expect(c).not.toBe('MULTI_HOST_URL')
  })
  it('a single host with a comma elsewhere (password, query) is not multi-host', () => {
    expect(classifyUrl('postgres://u:a,b@h1:6543/db').host).toBe('h1')
    expect(classifyUrl('postgres://u:p@h1:6543/db?application_name=a,b').host).toBe('h1')
  })
})
