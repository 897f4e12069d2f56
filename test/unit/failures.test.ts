/**
 * Failure semantics without a database: the status and JSON of every code, the log rate limit, the
 * driver-error mapping, and the options that would make every request fail.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { mapConnectionError } from '../../src/client/driver-errors'
import {
  LOG_INTERVAL_MS,
  logError,
  PoolerError,
  type PoolerErrorCode,
  resetErrorLog,
  STATUS,
} from '../../src/errors'
import { clientConfig, parseOptions } from '../../src/internal'

// Exhaustive (a code added to PoolerErrorCode without a line here fails to typecheck).
const ALL: Record<PoolerErrorCode, true> = {
  INVALID_OPTIONS: true,
  MISSING_DATABASE_URL: true,
  INVALID_URL: true,
  MULTI_HOST_URL: true,
  UNSUPPORTED_URL_PARAM: true,
  WRONG_PORT_FOR_MODE: true,
  PREPARE_UNSUPPORTED: true,
  CLIENT_CLOSED: true,
  CONNECT_FAILED: true,
  CONNECT_TIMEOUT: true,
  AUTH_FAILED: true,
  POOLER_SATURATED: true,
  CONNECTION_LOST: true,
  TLS_FAILED: true,
  QUERY_TIMEOUT: true,
  UNSAFE_IN_TRANSACTION_MODE: true,
  LISTEN_UNSUPPORTED: true,
  SUBSCRIBE_UNSUPPORTED: true,
  INVALID_SETTING: true,
  DEADLOCK_IN_TRANSACTION: true,
  PIPELINE_CONNECT_UNSAFE: true,
  POOL_TIMEOUT: true,
  POOL_CLOSED: true,
  POOL_UNSUPPORTED: true,
}
const CODES = Object.keys(ALL) as PoolerErrorCode[]
const status = (code: PoolerErrorCode) => STATUS[code] ?? 500
const config = clientConfig('postgres://app:Secret-Pw-9@127.0.0.1:6432/app', parseOptions())

afterEach(() => {
  vi.restoreAllMocks()
  resetErrorLog()
})

describe('every code answers JSON with its status', () => {
  it.each(CODES)('%s', async (code) => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const err = new PoolerError(code, `detail for ${code} at 127.0.0.1:6432`)
    const res = (err as unknown as { getResponse(): Response }).getResponse()
    expect(res.status).toBe(status(code))
    expect(err.status).toBe(status(code))
    expect(res.headers.get('content-type')).toMatch(/application\/json/)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe(code)
    expect(body.error.message).toBe(err.publicMessage)
    expect(body.error.message).not.toContain('127.0.0.1')
    expect(res.headers.get('retry-after')).toBe(
      code === 'POOLER_SATURATED' || code === 'CONNECTION_LOST' ? '1' : null,
    )
  })

  it('503 for connection codes, 504 for QUERY_TIMEOUT, 500 for configuration errors', () => {
    expect(status('CONNECTION_LOST')).toBe(503)
    expect(status('TLS_FAILED')).toBe(503)
    expect(status('QUERY_TIMEOUT')).toBe(504)
    expect(status('CONNECT_FAILED')).toBe(503)
    expect(status('MISSING_DATABASE_URL')).toBe(500)
    expect(status('UNSUPPORTED_URL_PARAM')).toBe(500)
    expect(status('PREPARE_UNSUPPORTED')).toBe(500)
  })
})

describe('log rate limit', () => {
  it('one line per code per 10 s, the next one with the count left out', () => {
    const lines: string[] = []
    vi.spyOn(console, 'error').mockImplementation((l: string) => void lines.push(l))
    const saturated = new PoolerError('POOLER_SATURATED', 'no more connections allowed')
    const lost = new PoolerError('CONNECTION_LOST', 'lost')
    const t = 1_000_000
    for (let i = 0; i < 25_000; i++) logError(saturated, t + i * 0.3) // 25 000 in 7.5 s
    logError(lost, t + 5)
    expect(lines).toEqual([
      '[hono-pooler] POOLER_SATURATED: no more connections allowed',
      '[hono-pooler] CONNECTION_LOST: lost',
    ])
    logError(saturated, t + LOG_INTERVAL_MS + 1)
    expect(lines[2]).toMatch(
      /^\[hono-pooler\] POOLER_SATURATED: no more connections allowed \(\+24999 more POOLER_SATURATED in the last 10 s\)$/,
    )
  })
})

describe('log rate limit per host', () => {
  it('keyed by code and host (no host: by code); the count comes with the next line of that key', () => {
    const lines: string[] = []
    vi.spyOn(console, 'error').mockImplementation((l: string) => void lines.push(l))
    const a = new PoolerError('CONNECTION_LOST', 'lost a', { host: 'a.example' })
    const b = new PoolerError('CONNECTION_LOST', 'lost b', { host: 'b.example' })
    const none = new PoolerError('CONNECTION_LOST', 'lost')
    const t = 2_000_000
    for (let i = 0; i < 3; i++) {
      logError(a, t + i)
      logError(b, t + i)
      logError(none, t + i)
    }
    expect(lines).toEqual([
      '[hono-pooler] CONNECTION_LOST: lost a',
      '[hono-pooler] CONNECTION_LOST: lost b',
      '[hono-pooler] CONNECTION_LOST: lost',
    ])
    logError(a, t + LOG_INTERVAL_MS)
    expect(lines).toHaveLength(4)
    expect(lines[3]).toBe('[hono-pooler] CONNECTION_LOST: lost a (+2 more CONNECTION_LOST in the last 10 s)')
  })
})

describe('driver errors', () => {
  const driver = (code: string, message = code) => Object.assign(new Error(message), { code })

  it.each([
    'CONNECTION_CLOSED',
    'CONNECTION_DESTROYED',
    'ECONNRESET',
    'EPIPE',
    '57P01',
    '57P02',
    '57P03',
    '08006',
  ])('%s → CONNECTION_LOST', (code) => {
    const e = driver(code)
    const mapped = mapConnectionError(e, config) as PoolerError
    expect(mapped).toBeInstanceOf(PoolerError)
    expect(mapped.code).toBe('CONNECTION_LOST')
    expect(mapped.cause).toBe(e)
    expect(mapped.retryAfter).toBe(1)
  })

  it.each([
    'server login has been failing, try again later (server_login_retry)',
    'server conn crashed?',
    'pgbouncer cannot connect to server',
  ])('PgBouncer FATAL "%s" → CONNECTION_LOST, text kept', (message) => {
    const mapped = mapConnectionError(driver('08P01', message), config) as PoolerError
    expect(mapped.code).toBe('CONNECTION_LOST')
    expect(mapped.message).toContain(message)
  })

  it("a server's FATAL keeps its text next to the code; a bare driver code stays bare", () => {
    const fatal = Object.assign(driver('57P01', 'terminating connection due to administrator command'), {
      severity: 'FATAL',
    })
    const mapped = mapConnectionError(fatal, config) as PoolerError
    expect(mapped.code).toBe('CONNECTION_LOST')
    expect(mapped.message).toContain('57P01: terminating connection due to administrator command')
    const bare = mapConnectionError(driver('ECONNRESET', 'read ECONNRESET'), config) as PoolerError
    expect(bare.message).toContain('(ECONNRESET)')
  })

  it('OpenSSL failures → TLS_FAILED without the raw OpenSSL text', () => {
    const raw = driver(
      'ERR_SSL_WRONG_VERSION_NUMBER',
      'C02CE664487F0000:error:0A00010B:SSL routines:tls_validate_record_header:wrong version number',
    )
    const mapped = mapConnectionError(raw, config) as PoolerError
    expect(mapped.code).toBe('TLS_FAILED')
    expect(mapped.message).not.toContain('SSL routines')
    expect(mapped.publicMessage).not.toContain('SSL routines')
  })

  it("a user's SQL error stays what it is", () => {
    for (const code of ['23505', '57014', '42P01', '08P01']) {
      const e = driver(code, 'something else entirely')
      expect(mapConnectionError(e, config)).toBe(e)
    }
  })
})

describe('options', () => {
  it('queryTimeout: default 30, 0 disables, validated', () => {
    expect(parseOptions().queryTimeout).toBe(30)
    expect(parseOptions({ queryTimeout: 0 }).queryTimeout).toBe(0)
    expect(() => parseOptions({ queryTimeout: -1 })).toThrow(/queryTimeout: must be >= 0/)
  })

  it('postgres.connection.statement_timeout is refused at pooler(), naming queryTimeout and withSettings', () => {
    let err: unknown
    try {
      parseOptions({ postgres: { connection: { statement_timeout: 1000 } } as never })
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ code: 'INVALID_OPTIONS' })
    expect((err as Error).message).toContain('postgres.connection.statement_timeout')
    expect((err as Error).message).toContain('queryTimeout')
    expect((err as Error).message).toContain('withSettings')
    // Startup parameters poolers accept, and anything on a direct connection, stay allowed.
    expect(() => parseOptions({ postgres: { connection: { timezone: 'UTC' } } as never })).not.toThrow()
    expect(() =>
      parseOptions({ mode: 'direct', postgres: { connection: { statement_timeout: 1000 } } as never }),
    ).not.toThrow()
  })

  it('an IPv6-literal host reaches postgres.js as host and port', () => {
    const c = clientConfig('postgres://app:pw@[::1]:6432/app', parseOptions())
    expect(c.driver.host).toEqual(['::1'])
    expect(c.driver.port).toEqual([6432])
    expect(c.info.host).toBe('::1')
  })
})
