/** The connect layer's pure parts: SCRAM against RFC 7677, the key cache, message framing, TLS modes. */
import { Buffer } from 'node:buffer'
import { describe, expect, it, vi } from 'vitest'
import {
  authType,
  firstWriteKind,
  messageReader,
  saslInitialResponse,
  trailingFatal,
} from '../../src/connect/messages'
import { scramExchange } from '../../src/connect/scram'
import { verifiesServer } from '../../src/connect/tls'
import {
  clearScramCache,
  clientConfig,
  parseOptions,
  scramDerivations,
  tlsSettings,
} from '../../src/internal'

// RFC 7677 §3: user "user", password "pencil".
const NONCE = 'rOprNGfwEbeRWgbNEkqO'
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'
const CLIENT_FINAL =
  'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='

describe('SCRAM-SHA-256', () => {
  it('matches the RFC 7677 test vector, and checks the server signature', () => {
    const s = scramExchange(NONCE, 'user')
    expect(s.clientFirst).toBe(`n,,n=user,r=${NONCE}`)
    expect(s.clientFinal(SERVER_FIRST, 'pencil')).toBe(CLIENT_FINAL)
    expect(s.verifyServer(SERVER_FINAL)).toBe(true)
    expect(s.verifyServer('v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).toBe(false)
    expect(s.verifyServer('e=invalid-proof')).toBe(false)
  })

  it('refuses a foreign nonce, no salt, bad or huge iteration counts, and m= (AUTH_FAILED)', () => {
    const refused = (serverFirst: string) => {
      const start = scramDerivations()
      expect(() => scramExchange(NONCE, 'user').clientFinal(serverFirst, 'x')).toThrow(
        expect.objectContaining({ code: 'AUTH_FAILED', message: expect.stringMatching(/SCRAM/) }),
      )
      expect(scramDerivations()).toBe(start) // refused before PBKDF2
    }
    refused('r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')
    refused(`r=${NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`) // no server part
    refused(`r=${NONCE}x,s=,i=4096`)
    refused(`r=${NONCE}x,s=abc=,i=0`)
    refused(`r=${NONCE}x,s=abc=,i=1.5`)
    refused(`r=${NONCE}x,s=abc=,i=1000001`)
    refused(`r=${NONCE}x,s=abc=,i=4294967296`)
    refused(`m=ext,${SERVER_FIRST}`)
    // Control: the bounds themselves are accepted.
    expect(scramExchange(NONCE, 'user').clientFinal(SERVER_FIRST, 'pencil')).toBe(CLIENT_FINAL)
  })

  it('evicts the least recently used key, not the oldest', () => {
    clearScramCache()
    const run = (pw: string) => scramExchange(NONCE, 'user').clientFinal(SERVER_FIRST, pw)
    run('pencil')
    for (let i = 0; i < 7; i++) run(`lru-${i}`) // the cache is full (8)
    run('pencil') // a hit: now the most recently used
    const before = scramDerivations()
    run('lru-extra') // evicts lru-0, the least recently used
    run('pencil')
    expect(scramDerivations() - before).toBe(1)
    run('lru-0')
    expect(scramDerivations() - before).toBe(2)
  })

  it('derives once per (password, salt, iterations): a changed password or salt misses', () => {
    clearScramCache()
    const before = scramDerivations()
    const run = (pw: string, serverFirst = SERVER_FIRST) =>
      scramExchange(NONCE, 'user').clientFinal(serverFirst, pw)
    expect(run('pencil')).toBe(CLIENT_FINAL)
    expect(run('pencil')).toBe(CLIENT_FINAL)
    expect(scramDerivations() - before).toBe(1)
    expect(run('pencil2')).not.toBe(CLIENT_FINAL)
    expect(scramDerivations() - before).toBe(2)
    run('pencil', SERVER_FIRST.replace('s=W22ZaJ0SNY7soEsUEjb6gQ==', 's=AAAAAAAAAAAAAAAAAAAAAA=='))
    expect(scramDerivations() - before).toBe(3)
    // The cache is bounded: after many other passwords the first one is derived again.
    for (let i = 0; i < 20; i++) run(`other-${i}`)
    const mid = scramDerivations()
    expect(run('pencil')).toBe(CLIENT_FINAL)
    expect(scramDerivations() - mid).toBe(1)
  })
})

describe('protocol messages', () => {
  it('splits a stream into messages across chunk boundaries', () => {
    const r = messageReader()
    const z = Buffer.from([0x5a, 0, 0, 0, 5, 0x49])
    const auth = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0])
    const all = Buffer.concat([auth, z])
    expect(r.push(all.subarray(0, 3))).toEqual([])
    expect(r.push(all.subarray(3, 11)).map((m) => m[0])).toEqual([0x52])
    expect(r.push(all.subarray(11)).map((m) => [...m])).toEqual([[...z]])
    expect(r.rest().length).toBe(0)
  })

  it('refuses a message length below 4, and an auth request too short for its type (CONNECT_FAILED)', () => {
    const failed = expect.objectContaining({ code: 'CONNECT_FAILED' })
    expect(() => messageReader().push(Buffer.from([0x52, 0, 0, 0, 3, 0, 0]))).toThrow(failed)
    expect(() => authType(Buffer.from([0x52, 0, 0, 0, 4]))).toThrow(failed)
    expect(() => authType(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 11]))).toThrow(failed) // no SASL data
    expect(() => authType(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 5]))).toThrow(failed) // md5 without salt
    expect(authType(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]))).toBe(0)
    expect(authType(Buffer.from([0x52, 0, 0, 0, 9, 0, 0, 0, 12, 0x76]))).toBe(12)
  })

  it('tells a StartupMessage from a CancelRequest', () => {
    const startup = Buffer.from([0, 0, 0, 13, 0, 3, 0, 0, 0x75, 0x3d, 0x78, 0, 0])
    expect(firstWriteKind(startup)).toBe('startup')
    expect(firstWriteKind(Buffer.from([0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 1, 0, 0, 0, 2]))).toBe('cancel')
    expect(firstWriteKind(Buffer.from([0x51, 0, 0, 0, 4]))).toBe('other')
  })

  it('frames SASLInitialResponse', () => {
    const m = saslInitialResponse('SCRAM-SHA-256', 'n,,n=*,r=abc')
    expect(String.fromCharCode(m[0] as number)).toBe('p')
    expect(m.readUInt32BE(1)).toBe(m.length - 1)
    expect(m.toString('latin1', 5)).toBe('SCRAM-SHA-256\0\0\0\0\x0cn,,n=*,r=abc')
  })
})

describe("a server's last FATAL before it closed", () => {
  const error = (fields: string) => {
    const body = Buffer.from(`${fields}\0`)
    const head = Buffer.from([0x45, 0, 0, 0, 0])
    head.writeUInt32BE(body.length + 4, 1)
    return Buffer.concat([head, body])
  }
  const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49])

  it('finds a FATAL that ends the chunk, after other messages or a partial one', () => {
    const fatal = error('SFATAL\0VFATAL\0C08P01\0Mserver conn crashed?\0')
    expect(trailingFatal(fatal)).toEqual({
      severity: 'FATAL',
      code: '08P01',
      message: 'server conn crashed?',
    })
    const after = Buffer.concat([error('SFATAL\0C57P01\0Mterminating connection\0'), fatal])
    expect(trailingFatal(after)?.message).toBe('server conn crashed?')
    expect(trailingFatal(Buffer.concat([Buffer.from([1, 2, 3]), fatal]))?.code).toBe('08P01')
  })

  it('ignores an ERROR, a chunk ending in anything else, and garbage', () => {
    expect(trailingFatal(error('SERROR\0VERROR\0C42P01\0Mno such table\0'))).toBeUndefined()
    expect(trailingFatal(Buffer.concat([error('SFATAL\0C08P01\0Mx\0'), ready]))).toBeUndefined()
    expect(trailingFatal(Buffer.from([0x45, 0, 0]))).toBeUndefined()
    expect(trailingFatal(Buffer.alloc(0))).toBeUndefined()
  })
})

describe('TLS modes (postgres.js ssl semantics)', () => {
  it.each([
    [false, 'disable', {}],
    ['disable', 'disable', {}],
    ['prefer', 'prefer', { rejectUnauthorized: false }],
    ['allow', 'prefer', { rejectUnauthorized: false }],
    ['require', 'require', { rejectUnauthorized: false }],
    ['verify-full', 'verify-full', {}],
    [true, 'verify-full', {}],
    [{ ca: 'PEM' }, 'verify-full', { ca: 'PEM' }],
    [{ rejectUnauthorized: false }, 'require', { rejectUnauthorized: false }],
  ])('%j → %s', (ssl, mode, options) => {
    expect(tlsSettings(ssl, null)).toEqual({ mode, options, direct: false })
  })

  it('an ssl object with its own checkServerIdentity is not "verified": pipelineConnect refused off loopback', () => {
    const url = 'postgres://app:pw@db.example.com:6432/app'
    const custom = { ca: 'PEM', checkServerIdentity: () => undefined }
    expect(verifiesServer(tlsSettings({ ca: 'PEM' }, null))).toBe(true)
    expect(verifiesServer(tlsSettings(custom, null))).toBe(false)
    expect(() => clientConfig(url, parseOptions({ pipelineConnect: true, ssl: custom }))).toThrow(
      expect.objectContaining({ code: 'PIPELINE_CONNECT_UNSAFE' }),
    )
    expect(clientConfig(url, parseOptions({ pipelineConnect: true, ssl: { ca: 'PEM' } })).driver.ssl).toBe(
      false,
    )
  })

  it('sslmode=verify-ca is verified like verify-full (host name included)', () => {
    expect(tlsSettings('verify-ca', null)).toEqual({ mode: 'verify-full', options: {}, direct: false })
  })

  it('sslnegotiation=direct only with TLS', () => {
    expect(tlsSettings('require', 'direct').direct).toBe(true)
    expect(tlsSettings(false, 'direct').direct).toBe(false)
  })
})

describe('pipelineConnect decision', () => {
  it('never pipelines to Supavisor, and warns once', async () => {
    const { pipelineFor } = await import('../../src/connect/socket')
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      expect(pipelineFor(true, 'aws-0-eu-west-1.pooler.supabase.com', 6543)).toBe(false)
      expect(pipelineFor(true, 'aws-0-us-east-1.POOLER.supabase.com', 5432)).toBe(false)
      expect(warn).toHaveBeenCalledTimes(1)
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/Supavisor/)
      expect(pipelineFor(true, 'db.abc.supabase.co', 6543)).toBe(true)
      expect(pipelineFor(false, 'db.abc.supabase.co', 6543)).toBe(false)
    } finally {
      warn.mockRestore()
    }
  })
})
