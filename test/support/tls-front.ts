/**
 * A throwaway TLS front for PgBouncer (the stack's own TLS is CA-signed; this one is self-signed): answers SSLRequest with 'S',
 * terminates TLS with a self-signed certificate for 127.0.0.1 made by openssl, and pipes the plaintext to
 * the target. For tests of TLS findings (`sslmode=verify-full` against a self-signed pooler).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TLSSocket } from 'node:tls'

export interface TlsFront {
  port: number
  /** The self-signed certificate (PEM file), for NODE_EXTRA_CA_CERTS. */
  certFile: string
  /** TLS handshakes completed so far. */
  handshakes(): number
  stop(): Promise<void>
}

/**
 * With `tls: false` the front answers SSLRequest with 'N' and pipes plaintext: a pooler without TLS.
 *
 * @example
 * const front = await startTlsFront(new URL(stack.databaseUrl)); …; await front.stop()
 */
export async function startTlsFront(target: URL, { tls = true } = {}): Promise<TlsFront> {
  const dir = mkdtempSync(join(tmpdir(), 'hp-cli-tls-'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  )
  const key = readFileSync(join(dir, 'key.pem'))
  const cert = readFileSync(join(dir, 'cert.pem'))
  const held: Socket[] = []
  let handshakes = 0
  const server = createServer((socket) => {
    held.push(socket)
    socket.on('error', () => {})
    socket.once('data', (first) => {
      const sslRequest = first.length === 8 && first.readUInt32BE(4) === 80877103
      if (!tls) {
        if (sslRequest) socket.write('N')
        const upstream = netConnect(Number(target.port), target.hostname)
        upstream.on('error', () => socket.destroy())
        socket.on('close', () => upstream.destroy())
        upstream.on('close', () => socket.destroy())
        if (!sslRequest) upstream.write(first)
        socket.pipe(upstream).pipe(socket)
        return
      }
      if (!sslRequest) return socket.destroy()
      socket.write('S')
      const secure = new TLSSocket(socket, { isServer: true, key, cert })
      secure.on('error', () => {})
      secure.once('secure', () => {
        handshakes++
        const upstream = netConnect(Number(target.port), target.hostname)
        upstream.on('error', () => secure.destroy())
        secure.on('close', () => upstream.destroy())
        upstream.on('close', () => secure.destroy())
        secure.pipe(upstream).pipe(secure)
      })
    })
  })
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )
  return {
    port,
    certFile: join(dir, 'cert.pem'),
    handshakes: () => handshakes,
    async stop() {
      for (const s of held) s.destroy()
      await new Promise((r) => server.close(r))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
