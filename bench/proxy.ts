/**
 * A loopback TCP proxy that delays every chunk by `delayMs` in each direction (order preserved: timers of
 * one duration fire in insertion order), so one round trip costs 2 × delayMs. Connects are not delayed.
 */
import { createServer, type Server, Socket } from 'node:net'

export interface LatencyProxy {
  port: number
  close(): Promise<void>
}

export async function startLatencyProxy(
  target: { host: string; port: number },
  delayMs: number,
): Promise<LatencyProxy> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = new Socket()
    sockets.add(client).add(upstream)
    upstream.setNoDelay(true)
    client.setNoDelay(true)
    const pipe = (from: Socket, to: Socket) => {
      from.on('data', (buf) => void setTimeout(() => to.writable && to.write(buf), delayMs))
      from.on('end', () => void setTimeout(() => to.end(), delayMs))
      from.on('error', () => to.destroy())
      from.on('close', () => sockets.delete(from))
    }
    pipe(client, upstream)
    pipe(upstream, client)
    upstream.connect(target.port, target.host)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const address = server.address()
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}
