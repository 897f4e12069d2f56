/**
 * `doctor --probe-pipeline`: does the pooler accept a pipelined connect — the StartupMessage and the SASL
 * initial response in ONE write, before the server has asked for SCRAM? Written with raw node:net so the
 * bytes on the wire are exactly that. Both ways are timed to ReadyForQuery: the classic connect waits 3
 * round trips (startup → SASL, initial → continue, final → ok), the pipelined one 2.
 */
import type { Socket } from 'node:net'
import { isIP } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { scramExchange } from '../connect/scram'
import { CLI_DEFAULTS } from '../options'
import type { DoctorState } from './context'
import { connectTcp, SSL_REQUEST, within } from './net'
import { type CheckResult, errText, ms } from './output'

const int32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}
const message = (type: string, body: Buffer) =>
  Buffer.concat([Buffer.from(type), int32(body.length + 4), body])

function startup(user: string, database: string): Buffer {
  const pairs = {
    user,
    database,
    application_name: CLI_DEFAULTS.doctorApplicationName,
    client_encoding: 'UTF8',
  }
  const body = Buffer.concat([
    int32(196608),
    Buffer.from(
      `${Object.entries(pairs)
        .map(([k, v]) => `${k}\0${v}\0`)
        .join('')}\0`,
    ),
  ])
  return Buffer.concat([int32(body.length + 4), body])
}
const saslInitial = (first: string) =>
  message(
    'p',
    Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(Buffer.byteLength(first)), Buffer.from(first)]),
  )

/** Reads whole backend messages from a socket. */
function reader(socket: Socket): () => Promise<{ type: string; body: Buffer }> {
  let buf = Buffer.alloc(0)
  let wake: (() => void) | undefined
  let ended: Error | undefined
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d])
    wake?.()
  })
  socket.on('close', () => {
    ended = new Error('the server closed the connection')
    wake?.()
  })
  return async function next() {
    for (;;) {
      if (buf.length >= 5) {
        const len = buf.readInt32BE(1)
        if (buf.length >= len + 1) {
          const msg = { type: String.fromCharCode(buf[0] as number), body: buf.subarray(5, len + 1) }
          buf = buf.subarray(len + 1)
          return msg
        }
      }
      if (ended) throw ended
      await new Promise<void>((r) => (wake = r))
    }
  }
}

/** The ErrorResponse's message and SQLSTATE. */
const errorFields = (body: Buffer) => {
  const f: Record<string, string> = {}
  for (const part of body.toString('utf8').split('\0')) if (part) f[part[0] as string] = part.slice(1)
  return `${f.M ?? 'error'}${f.C ? ` (${f.C})` : ''}`
}

type Outcome = { ok: true; ms: number } | { ok: false; reason: string; rejected: boolean }

/** One connect to ReadyForQuery, classic or pipelined; the socket is closed with Terminate. */
async function connectOnce(s: DoctorState, address: string, pipelined: boolean): Promise<Outcome> {
  const info = s.info!
  const { socket: tcp } = await connectTcp(address, info.port, s.left())
  let socket: Socket = tcp
  try {
    if (s.tlsMode === 'require' || s.tlsMode.startsWith('verify')) {
      tcp.write(SSL_REQUEST)
      const answer = await within(
        new Promise<number>((r) => tcp.once('data', (d: Buffer) => r(d[0] as number))),
        s.left(),
        'SSLRequest',
      )
      if (answer !== 83) return { ok: false, reason: 'the server does not offer TLS', rejected: false }
      const tls = tlsConnect({
        socket: tcp,
        host: info.host,
        ...(isIP(info.host) ? {} : { servername: info.host }),
        rejectUnauthorized: s.tlsMode.startsWith('verify'),
      })
      await within(
        new Promise<void>((r, j) => tls.once('secureConnect', r).once('error', j)),
        s.left(),
        'TLS',
      )
      socket = tls
    }
    socket.on('error', () => {})
    const next = reader(socket)
    const scram = scramExchange()
    const started = performance.now()
    const hello = startup(info.user, info.database)
    socket.write(pipelined ? Buffer.concat([hello, saslInitial(scram.clientFirst)]) : hello)
    let verified = false // the server proved it knows the password (SASLFinal checked)
    for (;;) {
      const m = await within(next(), s.left(), 'pipelined connect')
      if (m.type === 'E') return { ok: false, reason: errorFields(m.body), rejected: true }
      if (m.type === 'Z')
        return verified
          ? { ok: true, ms: performance.now() - started }
          : {
              ok: false,
              reason:
                'the server ended the login without proving it knows the password (no SCRAM server signature)',
              rejected: false,
            }
      if (m.type !== 'R') continue
      const code = m.body.readInt32BE(0)
      if (code === 10) {
        if (!m.body.toString('utf8', 4).split('\0').includes('SCRAM-SHA-256'))
          return { ok: false, reason: 'the server does not offer SCRAM-SHA-256', rejected: false }
        if (!pipelined) socket.write(saslInitial(scram.clientFirst))
      } else if (code === 11)
        socket.write(message('p', Buffer.from(scram.clientFinal(m.body.toString('utf8', 4), s.password))))
      else if (code === 12) {
        if (!scram.verifyServer(m.body.toString('utf8', 4)))
          return { ok: false, reason: 'wrong SCRAM server signature', rejected: false }
        verified = true
      } else if (code !== 0)
        return {
          ok: false,
          reason: `the server asked for authentication method ${code}, not SCRAM (a pipelined connect applies to SCRAM only)`,
          rejected: false,
        }
    }
  } finally {
    if (!socket.destroyed) socket.end(message('X', Buffer.alloc(0)))
    socket.destroy()
    tcp.destroy()
  }
}

/**
 * @example
 * ```ts
 * declare const state: import('./context').DoctorState
 * await pipelineCheck(state) // { id: 'pipeline', status: 'ok', message: 'accepted: … 2 round trips instead of 3 …' }
 * ```
 */
export async function pipelineCheck(s: DoctorState): Promise<CheckResult> {
  const address = s.reachable[0]
  if (!s.loggedIn || !s.info || address === undefined)
    return { id: 'pipeline', status: 'skip', message: 'needs a working login (see auth)' }
  const classic: number[] = []
  const piped: number[] = []
  try {
    for (let i = 0; i < 3; i++) {
      const a = await connectOnce(s, address, false)
      if (!a.ok) return { id: 'pipeline', status: 'skip', message: `classic connect failed: ${a.reason}` }
      classic.push(a.ms)
      const b = await connectOnce(s, address, true)
      if (!b.ok)
        return {
          id: 'pipeline',
          status: b.rejected ? 'warn' : 'skip',
          message: `a pipelined connect (startup + SASL initial response in one write) did not work: ${b.reason}`,
          ...(b.rejected ? { fix: 'leave pipelineConnect off for this pooler' } : {}),
        }
      piped.push(b.ms)
    }
  } catch (e) {
    return { id: 'pipeline', status: 'fail', message: `probe failed: ${errText(e)}` }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[1] as number
  const rtt = s.rttMs === undefined ? '' : `; one round trip ${ms(s.rttMs)}`
  return {
    id: 'pipeline',
    status: 'ok',
    message: `accepted: the startup message and the SASL initial response in one write reach ReadyForQuery after 2 round trips instead of 3 (measured here: pipelined ${ms(median(piped))}, classic ${ms(median(classic))}, median of 3${rtt})`,
    fix: 'pipelineConnect can be turned on for this pooler: it saves 1 round trip per new connection',
    ms: median(piped),
  }
}
