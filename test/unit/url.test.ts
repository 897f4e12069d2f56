import { describe, expect, it } from 'vitest'
import { classifyUrl, pooler, redactUrl } from '../../src'
import { clientConfig, parseOptions } from '../../src/internal'

const PW = 'S3cret-Canary-Pw'

describe('classifyUrl: the Supabase connection guide as a table', () => {
  it.each([
    [
      'postgres://postgres.abcd:PW@aws-0-eu-central-1.pooler.supabase.com:6543/postgres',
      'transaction',
      'supabase',
      false,
    ],
    [
      'postgres://postgres.abcd:PW@aws-0-eu-central-1.pooler.supabase.com:5432/postgres',
      'session',
      'supabase',
      false,
    ],
    ['postgresql://postgres:PW@db.abcdefghij.supabase.co:5432/postgres', 'direct', 'supabase', true],
    ['postgresql://postgres:PW@db.abcdefghij.supabase.co/postgres', 'direct', 'supabase', true],
    ['postgres://postgres:PW@db.abcdefghij.supabase.co:6543/postgres', 'transaction', 'supabase', false],
    [
      'postgres://u:PW@ep-cool-rain-123456-pooler.us-east-2.aws.neon.tech/neondb',
      'transaction',
      'neon',
      false,
    ],
    ['postgres://u:PW@ep-cool-rain-123456.us-east-2.aws.neon.tech/neondb', 'direct', 'neon', false],
    ['postgres://u:PW@pgbouncer.internal:6543/app', 'transaction', 'other', false],
    ['postgres://u:PW@db.example.com:5432/app', 'transaction', 'other', false],
    ['postgres://u:PW@127.0.0.1:6432/app', 'transaction', 'local', false],
    ['postgres://u:PW@[::1]:6432/app', 'transaction', 'local', false],
  ] as const)('%s', (url, mode, provider, ipv6Only) => {
    const info = classifyUrl(url.replace('PW', PW))
    expect(info).toMatchObject({ mode, provider, ipv6Only })
    expect(JSON.stringify(info)).not.toContain(PW)
  })

  it('returns host, port, database and user', () => {
    expect(classifyUrl(`postgres://postgres.ref:${PW}@aws-0-x.pooler.supabase.com:6543/postgres`)).toEqual({
      mode: 'transaction',
      provider: 'supabase',
      host: 'aws-0-x.pooler.supabase.com',
      port: 6543,
      database: 'postgres',
      user: 'postgres.ref',
      ipv6Only: false,
      reason: expect.stringContaining('6543'),
    })
  })

  it('refuses non-postgres URLs with INVALID_URL and no password', () => {
    for (const url of [`mysql://u:${PW}@h/db`, 'nope', `postgres://u:${PW}@/db`]) {
      let err: any
      try {
        classifyUrl(url)
      } catch (e) {
        err = e
      }
      expect(err?.code).toBe('INVALID_URL')
      expect(String(err) + err.stack).not.toContain(PW)
    }
  })
})

describe('redactUrl', () => {
  it('hides the password in the authority and in query parameters', () => {
    expect(redactUrl(`postgres://app:${PW}@h:6543/db`)).toBe('postgres://app:***@h:6543/db')
    expect(redactUrl(`postgres://app@h/db?password=${PW}&sslmode=require`)).toBe(
      'postgres://app@h/db?password=***&sslmode=require',
    )
    expect(redactUrl('postgres://h/db')).toBe('postgres://h/db')
  })
})

describe('driver preset and TLS defaults', () => {
  const opts = parseOptions({ fastConnect: false })
  it('transaction mode: prepare off, fetch_types off, max 1, connect timeout 5', () => {
    expect(clientConfig(`postgres://u:${PW}@x.pooler.supabase.com:6543/db`, opts).driver).toMatchObject({
      prepare: false,
      fetch_types: false,
      max: 1,
      connect_timeout: 5,
      ssl: 'require',
      connection: { application_name: 'hono-pooler', client_encoding: 'UTF8' },
    })
  })
  it('session mode keeps prepared statements', () => {
    expect(clientConfig(`postgres://u:${PW}@x.pooler.supabase.com:5432/db`, opts).driver).toMatchObject({
      prepare: true,
      fetch_types: true,
    })
  })
  it('TLS: clouds default to require, loopback to none, sslmode in the URL wins', () => {
    expect(clientConfig(`postgres://u:${PW}@ep-x-pooler.aws.neon.tech/db`, opts).driver.ssl).toBe('require')
    expect(clientConfig(`postgres://u:${PW}@127.0.0.1:6432/db`, opts).driver.ssl).toBe(false)
    expect(
      clientConfig(`postgres://u:${PW}@x.pooler.supabase.com:6543/db?sslmode=verify-full`, opts).driver,
    ).not.toHaveProperty('ssl')
    expect(clientConfig(`postgres://u:${PW}@10.0.0.5:6432/db`, opts).driver).not.toHaveProperty('ssl')
  })
  it('fast connect (default): the connect layer does TLS with the same defaults, postgres.js gets ssl false', () => {
    const fast = parseOptions()
    const mode = (url: string, o = fast) => clientConfig(url, o).tls?.mode
    expect(mode(`postgres://u:${PW}@ep-x-pooler.aws.neon.tech/db`)).toBe('require')
    expect(mode(`postgres://u:${PW}@127.0.0.1:6432/db`)).toBe('disable')
    expect(mode(`postgres://u:${PW}@x.pooler.supabase.com:6543/db?sslmode=verify-full`)).toBe('verify-full')
    expect(mode(`postgres://u:${PW}@x.pooler.supabase.com:6543/db?sslmode=disable`)).toBe('disable')
    expect(mode(`postgres://u:${PW}@10.0.0.5:6432/db`)).toBe('disable')
    expect(mode(`postgres://u:${PW}@10.0.0.5:6432/db`, parseOptions({ ssl: { ca: 'x' } }))).toBe(
      'verify-full',
    )
    expect(clientConfig(`postgres://u:${PW}@ep-x-pooler.aws.neon.tech/db`, fast).driver.ssl).toBe(false)
    expect(clientConfig(`postgres://u:${PW}@127.0.0.1:6432/db`, opts).tls).toBeUndefined()
  })
})

describe('connection errors name the IPv6-only direct host', () => {
  it('CONNECT_FAILED / CONNECT_TIMEOUT on db.<ref>.supabase.co point at the pooler URL', async () => {
    const { mapConnectionError } = await import('../../src/client/driver-errors')
    const opts = parseOptions()
    const direct = clientConfig(`postgres://postgres:${PW}@db.abcdefghij.supabase.co:5432/postgres`, opts)
    const unreachable = Object.assign(new Error('connect ENETUNREACH 2600::1:5432'), { code: 'ENETUNREACH' })
    const failed = mapConnectionError(unreachable, direct) as Error & { code: string }
    expect(failed.code).toBe('CONNECT_FAILED')
    expect(failed.message).toMatch(/IPv6-only.*pooler\.supabase\.com:6543/)
    const timeout = Object.assign(new Error('write CONNECT_TIMEOUT'), { code: 'CONNECT_TIMEOUT' })
    expect((mapConnectionError(timeout, direct) as Error).message).toMatch(/IPv6-only/)
    const pooled = clientConfig(`postgres://postgres.abc:${PW}@x.pooler.supabase.com:6543/postgres`, opts)
    expect((mapConnectionError(unreachable, pooled) as Error).message).not.toMatch(/IPv6-only/)
    expect(String(failed) + failed.stack).not.toContain(PW)
  })
})

describe('redactUrl with awkward passwords', () => {
  it.each([
    ['postgres://app:pa/ss@db.example.com:6543/app', 'postgres://app:***@db.example.com:6543/app'],
    ['postgres://app:pa#ss@db.example.com:6543/app', 'postgres://app:***@db.example.com:6543/app'],
    ['postgres://app:pa?ss@db.example.com:6543/app', 'postgres://app:***@db.example.com:6543/app'],
    ['postgres://app:p@ss@db.example.com:6543/app', 'postgres://app:***@db.example.com:6543/app'],
    ['app:secret@db.example.com:6543/app', '***@db.example.com:6543/app'],
    ['postgres://db.example.com/app?password=secret&x=1', 'postgres://db.example.com/app?password=***&x=1'],
  ])('%s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected)
  })

  it('INVALID_URL never echoes such a password', () => {
    let thrown = 0
    for (const pw of ['pa/ss', 'pa#ss', 'pa?ss', 'p@ss', 'p:a:ss']) {
      for (const url of [
        `postgres://app:${pw}@db.example.com:6543/app`,
        `app:${pw}@db/app`,
        `mysql://app:${pw}@db/app`,
      ]) {
        let err: any
        try {
          pooler({ url })
          classifyUrl(url)
        } catch (e) {
          err = e
        }
        if (!err) continue
        thrown++
        expect(err.code).toBe('INVALID_URL')
        expect(`${err.message} ${err.stack}`).not.toContain(pw)
      }
    }
    expect(thrown).toBeGreaterThanOrEqual(10)
  })
})
