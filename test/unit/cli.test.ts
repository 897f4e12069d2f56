/**
 * The pure parts of the `hono-pooler` command: argument parsing (usage errors never echo a URL), the
 * one-line check format, the `top` frame, the "finding — fix" split, and SCRAM against RFC 7677's vector.
 */
import { describe, expect, it } from 'vitest'
import { parseCommand, UsageError } from '../../src/cli/args'
import { splitFix } from '../../src/cli/context'
import { CHECK_IDS, formatCheck } from '../../src/cli/output'
import { isOwnClient, renderFrame } from '../../src/cli/top-frame'
import { CLI_DEFAULTS } from '../../src/options'

const URL_ = 'postgres://app:S3cret-pw@db.example.com:6543/app'
const plain = { color: false }

describe('parseCommand', () => {
  it('doctor: URL from the argument, else DATABASE_URL; defaults from CLI_DEFAULTS', () => {
    expect(parseCommand(['doctor', URL_], {})).toEqual({
      command: 'doctor',
      options: {
        url: URL_,
        json: false,
        timeout: CLI_DEFAULTS.timeout,
        dataApi: false,
        instances: 1,
        probePipeline: false,
      },
    })
    const env = parseCommand(
      [
        'doctor',
        '--json',
        '--timeout',
        '3',
        '--platform',
        'vercel',
        '--data-api',
        '--instances',
        '4',
        '--probe-pipeline',
      ],
      { DATABASE_URL: URL_ },
    )
    expect(env).toEqual({
      command: 'doctor',
      options: {
        url: URL_,
        json: true,
        timeout: 3,
        platform: 'vercel',
        dataApi: true,
        instances: 4,
        probePipeline: true,
      },
    })
  })

  it('top: --pgbouncer, else PGBOUNCER_ADMIN_URL; --interval, --once', () => {
    expect(
      parseCommand(['top', URL_, '--once', '--interval', '0.5'], {
        PGBOUNCER_ADMIN_URL: 'postgres://a:b@h:1/pgbouncer',
      }),
    ).toEqual({
      command: 'top',
      options: {
        url: URL_,
        admin: 'postgres://a:b@h:1/pgbouncer',
        interval: 0.5,
        once: true,
        dataApi: false,
        instances: 1,
      },
    })
  })

  it('help', () => {
    expect(parseCommand([], {}).command).toBe('help')
    expect(parseCommand(['--help'], {}).command).toBe('help')
    expect(parseCommand(['doctor', '-h'], {}).command).toBe('help')
  })

  it.each([
    [['doctor'], /no URL/],
    [['bogus', URL_], /unknown command "bogus"/],
    [['doctor', URL_, 'extra'], /one URL at most/],
    [['doctor', URL_, '--platform', 'mars'], /--platform must be one of/],
    [['doctor', URL_, '--timeout', '0'], /--timeout must be a number from 0.1 to 600/],
    [['doctor', URL_, '--instances', '1.5'], /--instances must be an integer/],
    [['top', URL_, '--interval', 'x'], /--interval must be a number/],
    [['doctor', URL_, '--password', 'S3cret-pw'], /Unknown option '--password'/],
  ])('%j is a usage error: %s', (argv, message) => {
    let err: unknown
    try {
      parseCommand(argv, {})
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(UsageError)
    expect((err as Error).message).toMatch(message)
    expect((err as Error).message).not.toContain('S3cret-pw')
  })
})

describe('output', () => {
  it('one line per check: symbol, padded name, finding, fix', () => {
    expect(formatCheck({ id: 'tcp', status: 'fail', message: 'refused', fix: 'check the port' }, plain)).toBe(
      '✗ tcp          — refused — check the port',
    )
    expect(formatCheck({ id: 'ipv6', status: 'skip', message: 'not needed' }, plain)).toBe(
      '- ipv6         — not needed',
    )
    expect(formatCheck({ id: 'dns', status: 'warn', message: 'x' }, { color: true })).toBe(
      '\x1b[33m!\x1b[0m \x1b[1mdns         \x1b[0m — x',
    )
    expect(CHECK_IDS).toEqual([
      'url',
      'dns',
      'ipv6',
      'tcp',
      'tls',
      'auth',
      'query',
      'connections',
      'budget',
      'pipeline',
    ])
  })

  it('splitFix: "what happened — what to do"', () => {
    expect(splitFix('URL parameter "x" is bad — remove it')).toEqual({
      message: 'URL parameter "x" is bad',
      fix: 'remove it',
    })
    expect(splitFix('no fix here')).toEqual({ message: 'no fix here' })
  })
})

describe('the top frame', () => {
  const stats = {
    maxConnections: 40,
    used: 36,
    usedShare: 0.9,
    groups: [
      { application_name: 'hono-pooler', user: 'app', state: 'idle', connections: 30 },
      { application_name: 'psql', user: 'postgres', state: 'active', connections: 6 },
    ],
    budget: { fraction: 0.8, poolSize: 32 },
    overBudget: true,
  }
  const at = new Date('2026-11-29T16:40:02Z')

  it('connections by application, user and state; hono-pooler marked; budget line; SHOW POOLS', () => {
    const lines = renderFrame(
      {
        target: 'app@127.0.0.1:6432/app',
        mode: 'transaction',
        at,
        interval: 2,
        stats,
        budget: { fraction: 0.8, poolSize: 32, perInstance: 16, instances: 2 },
        pools: [
          { database: 'app', user: 'app', cl_active: 3, cl_waiting: 1, sv_active: 2, sv_idle: 0, maxwait: 4 },
        ],
      },
      plain,
      true,
    )
    expect(lines[0]).toBe(
      'hono-pooler top app@127.0.0.1:6432/app (transaction) 16:40:02 UTC · every 2 s · Ctrl-C quits',
    )
    expect(lines[1]).toBe(
      'connections 36 / 40 (90 %) · budget 32 (80 % of max_connections, 16 per instance × 2) · OVER BUDGET',
    )
    expect(lines).toContain(
      `* ${'hono-pooler'.padEnd(30)} ${'app'.padEnd(16)} ${'idle'.padEnd(22)} ${'30'.padStart(5)}`,
    )
    expect(lines).toContain(
      `  ${'psql'.padEnd(30)} ${'postgres'.padEnd(16)} ${'active'.padEnd(22)} ${'6'.padStart(5)}`,
    )
    expect(lines.at(-1)).toMatch(/^ {2}app +app +3 +1 +2 +0 +4$/)
  })

  it('errors instead of data; no escape codes without colour', () => {
    const lines = renderFrame(
      {
        target: 't',
        mode: 'session',
        at,
        interval: 2,
        statsError: 'ECONNREFUSED',
        poolsError: 'SASL authentication failed',
      },
      plain,
    )
    expect(lines).toEqual([
      'hono-pooler top t (session) 16:40:02 UTC',
      'pg_stat_activity: ECONNREFUSED',
      '',
      'PgBouncer SHOW POOLS',
      '  SHOW POOLS: SASL authentication failed',
    ])
    expect(isOwnClient('hono-pooler-doctor')).toBe(true)
    expect(isOwnClient('psql')).toBe(false)
  })
})
