/**
 * The connect layer against servers that misbehave during login (a scripted fake server on 127.0.0.1,
 * test/support/fake-pg.ts): an impostor that does not know the password must never get a statement
 * answered or accepted (SCRAM's server signature is the only proof), and a malformed message must end the
 * request with a coded error — no crash, no hang. The honest fake server is the positive control.
 */
import { createServer } from 'node:net'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import { openNodeSocket } from '../../src/connect/tls'
import { scramDerivations, tlsSettings } from '../../src/internal'
import {
  be,
  clientFirstOf,
  type FakeConn,
  type FakePg,
  type FrontendMessage,
  honestScram,
  nonceOf,
  PASSWORD,
  startFakePg,
} from '../support/fake-pg'

const SCRAM = 'SCRAM-SHA-256'
const SALT = Buffer.from('0123456789abcdef').toString('base64')

let fake: FakePg | undefined
afterEach(async () => {
  await fake?.close()
  fake = undefined
})

function makeApp(url: string, extra: PoolerOptions = {}) {
  const app = new Hono<{ Variables: PoolerVariables }>()
  // closeTimeout above the 15 s bound: a client whose end() waits shows as a hang.
  app.use(pooler({ url, connectTimeout: 5, closeTimeout: 20, ...extra }))
  app.onError((err, c) =>
    c.json({ code: (err as { code?: string }).code ?? 'UNKNOWN', message: err.message }, 503),
  )
  // Two statements: the first is the pipelined one; the second shows a hang after forged results.
  app.get('/two', async (c) => {
    const a = await c.var.sql.unsafe('select 42 as x')
    const b = await c.var.sql.unsafe('select 43 as x')
    return c.json([a[0], b[0]])
  })
  return app
}

/** The request's answer, or `{ status: 0 }` when none came within 15 s (a hang). */
async function ask(url: string, extra: PoolerOptions = {}): Promise<{ status: number; body: any }> {
  const hang = new Promise<{ status: number; body: any }>((r) =>
    setTimeout(() => r({ status: 0, body: 'no answer within 15 s' }), 15_000).unref(),
  )
  const answer = (async () => {
    const res = await makeApp(url, extra).request('/two')
    return { status: res.status, body: await res.json() }
  })()
  return Promise.race([answer, hang])
}

/** Answers every simple query ('Q') with rows, until the client leaves. */
async function answerQueries(c: FakeConn, value = '42') {
  for (;;) {
    const m = await c.next()
    if (m.type === 'Q') c.send(be.row(value), be.ready())
    if (m.type === 'X') return
  }
}

/** AuthenticationSASL, then the client's SASLInitialResponse (already sent when pipelined). */
async function saslStart(c: FakeConn): Promise<string> {
  c.send(be.authSasl(SCRAM))
  const first = await c.next()
  expect(first.type).toBe('p')
  return nonceOf(clientFirstOf(first))
}

const queries = (received: FrontendMessage[][]) =>
  received.flat().filter((m) => m.type === 'Q' || m.type === 'P')

const modes = [
  ['pipelined', { pipelineConnect: true }],
  ['not pipelined', {}],
] as const

describe('positive control: an honest SCRAM server', () => {
  for (const [name, options] of modes) {
    it(`${name}: logs in (a notice during login is fine) and runs both statements`, async () => {
      fake = await startFakePg(async (c) => {
        c.send(be.authSasl(SCRAM))
        const first = await c.next()
        const scram = honestScram(clientFirstOf(first))
        c.send(be.saslContinue(scram.serverFirst))
        const final = await c.next()
        const v = scram.serverFinal(final.body.toString())
        if (!v) return c.send(be.notice('wrong proof'))
        c.send(be.saslFinal(v), be.notice('hello'), be.authOk(), be.param('server_version', '15.0'))
        c.send(be.keyData(), be.ready())
        await answerQueries(c)
      })
      expect(await ask(fake.url(), options)).toEqual({ status: 200, body: [{ x: 42 }, { x: 42 }] })
    })
  }
})

describe('an impostor that does not know the password', () => {
  it('pipelined: SASLContinue, never SASLFinal, answers the statement → AUTH_FAILED, no forged rows', async () => {
    fake = await startFakePg(async (c) => {
      const nonce = await saslStart(c)
      c.send(be.saslContinue(`r=${nonce}IMPOSTOR,s=${SALT},i=4096`))
      await answerQueries(c)
    })
    const r = await ask(fake.url(), { pipelineConnect: true })
    expect(r.status).toBe(503)
    expect(r.body.code).toBe('AUTH_FAILED')
  })

  it('pipelined: AuthenticationOk before SASLFinal → AUTH_FAILED, no fallback connection', async () => {
    fake = await startFakePg(async (c) => {
      const nonce = await saslStart(c)
      c.send(be.saslContinue(`r=${nonce}IMPOSTOR,s=${SALT},i=4096`))
      await c.next() // SASLResponse (+ the statement)
      c.send(be.authOk(), be.keyData(), be.ready())
      await answerQueries(c)
    })
    const r = await ask(fake.url(), { pipelineConnect: true })
    expect(r.status).toBe(503)
    expect(r.body.code).toBe('AUTH_FAILED')
    expect(fake.received.length).toBe(1)
  })

  for (const [name, options] of modes) {
    it(`${name}: AuthenticationOk without SASLFinal → AUTH_FAILED`, async () => {
      fake = await startFakePg(async (c) => {
        const nonce = await saslStart(c)
        c.send(be.saslContinue(`r=${nonce}IMPOSTOR,s=${SALT},i=4096`))
        await c.next()
        c.send(be.authOk(), be.ready())
        await answerQueries(c)
      })
      const r = await ask(fake.url(), options)
      expect(r.status).toBe(503)
      expect(r.body.code).toBe('AUTH_FAILED')
      expect(fake.received.length).toBe(1)
      if (name === 'not pipelined') expect(queries(fake.received)).toEqual([])
    })

    it(`${name}: an iteration count of 100 000 000 → AUTH_FAILED before any PBKDF2`, async () => {
      fake = await startFakePg(async (c) => {
        const nonce = await saslStart(c)
        c.send(be.saslContinue(`r=${nonce}IMPOSTOR,s=${SALT},i=100000000`))
        await answerQueries(c)
      })
      const before = scramDerivations()
      const r = await ask(fake.url(), options)
      expect(r.status).toBe(503)
      expect(r.body.code).toBe('AUTH_FAILED')
      expect(scramDerivations()).toBe(before)
    })

    it(`${name}: a ReadyForQuery in the middle of SCRAM → AUTH_FAILED`, async () => {
      fake = await startFakePg(async (c) => {
        const nonce = await saslStart(c)
        c.send(be.saslContinue(`r=${nonce}IMPOSTOR,s=${SALT},i=4096`))
        await c.next()
        c.send(be.ready())
        await answerQueries(c)
      })
      const r = await ask(fake.url(), options)
      expect(r.status).toBe(503)
      expect(r.body.code).toBe('AUTH_FAILED')
      if (name === 'not pipelined') expect(queries(fake.received)).toEqual([])
    })

    it(`${name}: a switch to cleartext after SCRAM started → AUTH_FAILED, the password is never sent`, async () => {
      fake = await startFakePg(async (c) => {
        await saslStart(c)
        c.send(be.authCleartext())
        await c.next() // what a client that falls for it would send: the password
        c.send(be.authOk(), be.ready())
        await answerQueries(c)
      })
      const r = await ask(fake.url(), options)
      expect(r.status).toBe(503)
      expect(r.body.code).toBe('AUTH_FAILED')
      expect(fake.received.flat().some((m) => m.body.toString('latin1').includes(PASSWORD))).toBe(false)
    })
  }
})

describe('malformed messages during login: a coded error, no crash, no hang', () => {
  const cases: [string, (c: FakeConn) => Promise<void>][] = [
    [
      "an 'R' of length 4 (no auth type) for the StartupMessage",
      async (c) => c.send(Buffer.from([0x52, 0, 0, 0, 4])),
    ],
    ['a message length below 4', async (c) => c.send(Buffer.from([0x52, 0, 0, 0, 2, 0, 0, 0, 0]))],
    [
      'a SASLContinue without its data',
      async (c) => {
        await saslStart(c)
        c.send(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 11]))
        await c.next()
      },
    ],
    [
      "an 'R' of length 4 after the SASLContinue",
      async (c) => {
        const nonce = await saslStart(c)
        c.send(be.saslContinue(`r=${nonce}IMPOSTOR,s=${SALT},i=4096`))
        await c.next()
        c.send(Buffer.from([0x52, 0, 0, 0, 4]))
        await c.next()
      },
    ],
  ]
  for (const [name, options] of modes) {
    for (const [what, script] of cases) {
      it(`${name}: ${what}`, async () => {
        fake = await startFakePg(script)
        const r = await ask(fake.url(), options)
        expect(r.status).toBe(503)
        expect(['CONNECT_FAILED', 'AUTH_FAILED']).toContain(r.body.code)
      })
    }
  }
})

describe('the opened socket before handshake.ts takes it', () => {
  for (const ssl of [false, 'prefer'] as const) {
    it(`ssl ${ssl}: an 'error' before handshake.ts listens is not unhandled`, async () => {
      const server = createServer((s) => {
        s.on('error', () => {})
        s.once('data', () => s.write('N')) // refuses the SSLRequest (prefer: plaintext)
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as { port: number }).port
      const socket = await openNodeSocket('127.0.0.1', port, tlsSettings(ssl, null))
      try {
        expect(socket.listenerCount('error')).toBeGreaterThan(0)
        expect(() => socket.emit('error', new Error('reset before attach'))).not.toThrow()
      } finally {
        socket.destroy()
        await new Promise((r) => server.close(r))
      }
    })
  }
})
