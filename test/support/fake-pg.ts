/**
 * A scripted fake Postgres server on 127.0.0.1 (node:net) for the connect layer's fault tests: impostors
 * that do not know the password, servers that skip SCRAM steps, malformed messages. Each connection runs
 * the test's script, which reads what the client sent and answers raw backend messages. It can also play
 * an honest SCRAM-SHA-256 server (the positive control). Stopped by `close()` (destroys its sockets).
 */
import { Buffer } from 'node:buffer'
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto'
import { createServer, type Socket } from 'node:net'

/** One frontend message: `type` is '' for the untyped first messages (SSLRequest, StartupMessage). */
export interface FrontendMessage {
  type: string
  body: Buffer
}

export interface FakeConn {
  /** The next message the client sends (rejects when the client closed first). */
  next(): Promise<FrontendMessage>
  send(...messages: Buffer[]): void
  end(): void
}

export interface FakePg {
  port: number
  /** postgres://app:<password>@127.0.0.1:<port>/app */
  url(password?: string): string
  /** Everything each connection's client sent, in connection order. */
  received: FrontendMessage[][]
  close(): Promise<void>
}

export const PASSWORD = 'fake-pg-secret-pw'

/** A backend message: type byte + Int32 length + body. */
export function msg(type: string, ...parts: (Buffer | string | number)[]): Buffer {
  const body = Buffer.concat(
    parts.map((p) => {
      if (typeof p === 'string') return Buffer.from(p)
      if (typeof p === 'number') {
        const b = Buffer.alloc(4)
        b.writeInt32BE(p)
        return b
      }
      return p
    }),
  )
  const head = Buffer.alloc(5)
  head.write(type, 0, 'latin1')
  head.writeUInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

const int16 = (n: number) => {
  const b = Buffer.alloc(2)
  b.writeInt16BE(n)
  return b
}

export const be = {
  authOk: () => msg('R', 0),
  authCleartext: () => msg('R', 3),
  authSasl: (...mechs: string[]) => msg('R', 10, ...mechs.map((m) => `${m}\0`), '\0'),
  saslContinue: (data: string) => msg('R', 11, data),
  saslFinal: (data: string) => msg('R', 12, data),
  param: (k: string, v: string) => msg('S', `${k}\0${v}\0`),
  keyData: () => msg('K', 1234, 5678),
  ready: () => msg('Z', 'I'),
  notice: (text: string) => msg('N', 'SNOTICE\0', `M${text}\0`, '\0'),
  /** One text column `x` (int4) with one row: what `select 42 as x` answers. */
  row: (value: string) =>
    Buffer.concat([
      msg('T', int16(1), 'x\0', 0, int16(0), 23, int16(4), -1, int16(0)),
      msg('D', int16(1), value.length, value),
      msg('C', 'SELECT 1\0'),
    ]),
  /** What an extended-protocol statement answers before its rows. */
  parsed: () => Buffer.concat([msg('1'), msg('2')]),
}

/** The client nonce of a SASLInitialResponse (`n,,n=*,r=<nonce>`). */
export function clientFirstOf(m: FrontendMessage): string {
  const zero = m.body.indexOf(0)
  return m.body.toString('utf8', zero + 5)
}
export const nonceOf = (clientFirst: string) => clientFirst.slice(clientFirst.indexOf('r=') + 2)

/** An honest SCRAM-SHA-256 server exchange for PASSWORD (salt and iterations fixed). */
export function honestScram(clientFirst: string, password = PASSWORD) {
  const salt = Buffer.from('fake-pg-salt-16b')
  const iterations = 4096
  const serverFirst = `r=${nonceOf(clientFirst)}SERVERNONCE,s=${salt.toString('base64')},i=${iterations}`
  const hmac = (k: Buffer, d: string) => createHmac('sha256', k).update(d).digest()
  return {
    serverFirst,
    /** The server-final (`v=…`) for the client-final message, or undefined when the proof is wrong. */
    serverFinal(clientFinal: string): string | undefined {
      const withoutProof = clientFinal.slice(0, clientFinal.indexOf(',p='))
      const proof = Buffer.from(clientFinal.slice(clientFinal.indexOf(',p=') + 3), 'base64')
      const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256')
      const authMessage = `${clientFirst.slice(3)},${serverFirst},${withoutProof}`
      const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest()
      const signature = hmac(storedKey, authMessage)
      const clientKey = Buffer.from(proof.map((b, k) => b ^ (signature[k] as number)))
      if (!createHash('sha256').update(clientKey).digest().equals(storedKey)) return undefined
      return `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}`
    },
  }
}

/**
 * Starts a fake server; `script` runs for each connection after the StartupMessage (an SSLRequest is
 * refused with `N` first). Errors in a script (the client went away) end that connection only.
 */
export async function startFakePg(script: (c: FakeConn, startup: FrontendMessage) => Promise<void>) {
  const sockets = new Set<Socket>()
  const received: FrontendMessage[][] = []
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    const log: FrontendMessage[] = []
    received.push(log)
    let buffered = Buffer.alloc(0)
    let typed = false
    const waiting: ((m: FrontendMessage | undefined) => void)[] = []
    const queue: FrontendMessage[] = []
    let closed = false
    const deliver = (m: FrontendMessage) => {
      log.push(m)
      const w = waiting.shift()
      if (w) w(m)
      else queue.push(m)
    }
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk])
      for (;;) {
        const head = typed ? 1 : 0
        if (buffered.length < head + 4) break
        const len = buffered.readUInt32BE(head)
        if (buffered.length < head + len) break
        const type = typed ? String.fromCharCode(buffered[0] as number) : ''
        const body = buffered.subarray(head + 4, head + len)
        buffered = buffered.subarray(head + len)
        const sslRequest = !typed && len === 8 && body.readUInt32BE(0) === 80877103
        if (sslRequest) socket.write('N')
        else typed = true
        if (!sslRequest) deliver({ type, body })
      }
    })
    socket.on('close', () => {
      closed = true
      for (const w of waiting.splice(0)) w(undefined)
    })
    const conn: FakeConn = {
      next: () =>
        new Promise((resolve, reject) => {
          const m = queue.shift()
          if (m) return resolve(m)
          if (closed) return reject(new Error('client closed'))
          waiting.push((x) => (x ? resolve(x) : reject(new Error('client closed'))))
        }),
      send: (...messages) => {
        if (!closed) socket.write(Buffer.concat(messages))
      },
      end: () => socket.end(),
    }
    conn
      .next()
      .then((startup) => script(conn, startup))
      .catch(() => {})
      .finally(() => socket.end())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  return {
    port,
    url: (password = PASSWORD) => `postgres://app:${password}@127.0.0.1:${port}/app`,
    received,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  } satisfies FakePg
}
