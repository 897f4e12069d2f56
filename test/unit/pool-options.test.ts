/** pooler({ pool }): validation, defaults, the guard a shared pool turns on, and the serverless refusal. */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { errorResponse, PoolerError } from '../../src'
import { poolClosed, poolTimeout } from '../../src/errors'
import {
  ConnectionPool,
  clientConfig,
  POOL_DEFAULTS,
  parseOptions,
  serverlessPlatform,
} from '../../src/internal'
import { refuseServerless } from '../../src/pool/serverless'

const failure = (f: () => unknown) => {
  try {
    f()
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`
  }
  return 'no error'
}

afterEach(() => vi.unstubAllEnvs())

describe('pool options', () => {
  it('no pool: none resolved (one client per request stays the default)', () => {
    expect(parseOptions({}).pool).toBeUndefined()
  })

  it('defaults are SQLAlchemy QueuePool figures, filled in per field', () => {
    expect(POOL_DEFAULTS).toEqual({ size: 5, overflow: 10, timeout: 30, recycle: 1800 })
    expect(parseOptions({ pool: {} }).pool).toEqual({
      ...POOL_DEFAULTS,
      allowServerless: false,
      checkBudget: true,
    })
    expect(parseOptions({ pool: { size: 4, overflow: 2, timeout: 0.5 } }).pool).toMatchObject({
      size: 4,
      overflow: 2,
      timeout: 0.5,
      recycle: 1800,
    })
  })

  it.each([
    [{ size: 0 }, 'pool.size: must be >= 1'],
    [{ size: 2.5 }, 'pool.size'],
    [{ overflow: -1 }, 'pool.overflow: must be >= 0'],
    [{ timeout: 0 }, 'pool.timeout: must be > 0'],
    [{ recycle: -5 }, 'pool.recycle: must be >= 0'],
    [{ allowServerless: 'yes' }, 'pool.allowServerless: expected boolean'],
    [{ sizee: 3 }, 'unknown option sizee'],
  ])('%j is refused: INVALID_OPTIONS names it', (pool, message) => {
    expect(failure(() => parseOptions({ pool: pool as any }))).toMatch(
      new RegExp(`^INVALID_OPTIONS: .*${message.replace(/[.+]/g, '\\$&')}`),
    )
  })

  it('a shared pool turns the guard on in session and direct mode too', () => {
    const url = 'postgres://app:pw@127.0.0.1:5432/app'
    expect(clientConfig(url, parseOptions({ mode: 'direct' })).guard).toBe('off')
    expect(clientConfig(url, parseOptions({ mode: 'direct', pool: {} })).guard).toBe('error')
    expect(clientConfig(url, parseOptions({ mode: 'session', pool: {} })).guard).toBe('error')
    expect(clientConfig(url, parseOptions({ mode: 'direct', pool: {}, guard: 'warn' })).guard).toBe('warn')
  })
})

describe('pool errors', () => {
  it('POOL_TIMEOUT and POOL_CLOSED answer 503 with Retry-After and a public message', async () => {
    for (const err of [poolTimeout(30, 'db.example.com', 15), poolClosed()]) {
      expect(err).toBeInstanceOf(PoolerError)
      expect(err.status).toBe(503)
      const res = errorResponse(err)
      expect(res.status).toBe(503)
      expect(res.headers.get('retry-after')).toBe('1')
      const body = await res.json()
      expect(body.error.code).toBe(err.code)
      expect(body.error.message).not.toContain('db.example.com')
    }
    expect(poolTimeout(30, 'db.example.com', 15).message).toMatch(/within 30 s \(all 15 in use\)/)
  })
})

describe('a pool on a serverless platform', () => {
  it('Vercel: refused unless allowServerless', () => {
    expect(serverlessPlatform()).toBeUndefined()
    expect(failure(() => refuseServerless(false))).toBe('no error')
    vi.stubEnv('VERCEL', '1')
    expect(serverlessPlatform()).toBe('Vercel')
    expect(failure(() => refuseServerless(false))).toMatch(
      /^INVALID_OPTIONS: .*Vercel.*allowServerless: true/,
    )
    expect(failure(() => refuseServerless(true))).toBe('no error')
  })

  it('Workers (workerd): refused unless allowServerless', () => {
    vi.stubGlobal('navigator', { userAgent: 'Cloudflare-Workers' })
    try {
      expect(serverlessPlatform()).toBe('Cloudflare Workers')
      expect(failure(() => refuseServerless(false))).toMatch(/^INVALID_OPTIONS: .*Cloudflare Workers/)
    } finally {
      vi.unstubAllGlobals()
    }
  })
})

describe('ConnectionPool.close() after its timeout', () => {
  // No server needed: a slot's postgres.js client connects on its first query only.
  const url = 'postgres://app:pw@127.0.0.1:1/app'
  const newPool = () =>
    new ConnectionPool('127.0.0.1', 'direct', url, {}, parseOptions({ pool: { size: 2 } }).pool!)

  it('cancels the requests still holding a connection, including one whose connection was destroyed', async () => {
    const pool = newPool()
    const live = pool.tryAcquire()!
    const doomed = pool.tryAcquire()!
    const calls: string[] = []
    live.holder = { abort: async () => void calls.push('live') }
    doomed.holder = { abort: async () => void calls.push('doomed') }
    pool.destroy(doomed) // an aborted request's connection: terminated, not given back yet
    await pool.close(0.05)
    expect(calls.sort()).toEqual(['doomed', 'live'])
  })

  it('does not call a holder whose destroyed connection was already given back', async () => {
    const pool = newPool()
    const slot = pool.tryAcquire()!
    let called = false
    slot.holder = {
      abort: async () => {
        called = true
      },
    }
    pool.destroy(slot)
    slot.holder = undefined // what the lease does before giving it back
    pool.release(slot)
    await pool.close(0.05)
    expect(called).toBe(false)
  })
})

describe('ConnectionPool: the wait queue (one timer for the oldest wait)', () => {
  const url = 'postgres://app:pw@127.0.0.1:1/app'
  const newPool = (timeout: number) =>
    new ConnectionPool(
      '127.0.0.1',
      'direct',
      url,
      {},
      parseOptions({ pool: { size: 1, overflow: 0, timeout } }).pool!,
    )
  afterEach(() => {
    vi.useRealTimers()
  })
  /** Settles into a list, in the order the waits end. */
  const watch = (p: Promise<unknown>, name: string, log: string[]) =>
    p.then(
      () => log.push(`${name} got it`),
      (e) => log.push(`${name} ${(e as { code?: string }).code}`),
    )

  it('waits time out in the order they came, each after its own timeout; a connection given back goes to the oldest still waiting', async () => {
    vi.useFakeTimers({ now: 0 })
    const pool = newPool(0.1)
    const held = pool.tryAcquire()!
    const log: string[] = []
    void watch(pool.acquire(), 'a', log)
    await vi.advanceTimersByTimeAsync(10)
    void watch(pool.acquire(), 'b', log)
    await vi.advanceTimersByTimeAsync(10)
    void watch(pool.acquire(), 'c', log)
    await vi.advanceTimersByTimeAsync(80) // t=100: a's timeout
    expect(log).toEqual(['a POOL_TIMEOUT'])
    expect(pool.stats().waiting).toBe(2)
    await vi.advanceTimersByTimeAsync(5) // t=105: b still waits (its timeout is at 110)
    expect(log).toEqual(['a POOL_TIMEOUT'])
    pool.release(held)
    await vi.advanceTimersByTimeAsync(0)
    expect(log).toEqual(['a POOL_TIMEOUT', 'b got it'])
    await vi.advanceTimersByTimeAsync(15) // t=120: c's timeout
    expect(log).toEqual(['a POOL_TIMEOUT', 'b got it', 'c POOL_TIMEOUT'])
    expect(pool.stats().waiting).toBe(0)
    // Nothing waits: no timer left to keep the process alive.
    expect(vi.getTimerCount()).toBe(0)
    vi.useRealTimers()
    await pool.close(0)
  })

  it('a wait times out on a monotonic clock: the wall clock stepped back an hour does not hold it', async () => {
    vi.useFakeTimers({ now: 1e12 })
    const pool = newPool(1)
    pool.tryAcquire()
    const log: string[] = []
    void watch(pool.acquire(), 'a', log)
    await vi.advanceTimersByTimeAsync(500)
    vi.setSystemTime(1e12 - 3_600_000)
    await vi.advanceTimersByTimeAsync(499)
    expect(log).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(log).toEqual(['a POOL_TIMEOUT'])
    vi.useRealTimers()
    await pool.close(0)
  })

  it("a request's end cancels only its own waits, which then leave the queue", async () => {
    vi.useFakeTimers({ now: 0 })
    const pool = newPool(30)
    const held = pool.tryAcquire()!
    const log: string[] = []
    const mine = { queued: 0 }
    const other = { queued: 0 }
    void watch(pool.acquire(mine), 'mine-1', log)
    void watch(pool.acquire(other), 'other', log)
    void watch(pool.acquire(mine), 'mine-2', log)
    expect([mine.queued, other.queued, pool.stats().waiting]).toEqual([2, 1, 3])
    pool.cancelWaits(mine, new PoolerError('CLIENT_CLOSED', 'over'))
    await vi.advanceTimersByTimeAsync(0)
    expect(log).toEqual(['mine-1 CLIENT_CLOSED', 'mine-2 CLIENT_CLOSED'])
    expect([mine.queued, other.queued, pool.stats().waiting]).toEqual([0, 1, 1])
    pool.release(held)
    await vi.advanceTimersByTimeAsync(0)
    expect(log).toEqual(['mine-1 CLIENT_CLOSED', 'mine-2 CLIENT_CLOSED', 'other got it'])
    expect(other.queued).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
    vi.useRealTimers()
    await pool.close(0)
  })
})
