/**
 * A loopback TCP proxy that counts client "flights": runs of client→server data between two server
 * answers (a round trip the client started). A normal SCRAM login + one query is 4 flights (+1 for
 * Terminate), a pipelined one 2 (+1). It also keeps what the client sent, to check what reached the server.
 */
import { createServer, type Server, Socket } from 'node:net'

export interface FlightProxy {
  port: number
  /** Client flights per connection, in connection order. */
  flights: number[]
  /** Everything clients sent (latin1), all connections. */
  sent(): string
  /** What the client sent in each flight (latin1), per connection. */
  texts: string[][]
  reset(): void
  close(): Promise<void>
}

export async function startFlightProxy(target: { host: string; port: number }): Promise<FlightProxy> {
  const sockets = new Set<Socket>()
  const flights: number[] = []
  const texts: string[][] = []
  let sent = ''
  const server: Server = createServer((client) => {
    const index = flights.push(0) - 1
    texts.push([])
    let lastFromClient = false
    const upstream = new Socket()
    sockets.add(client).add(upstream)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    client.on('data', (buf) => {
      sent += buf.toString('latin1')
      if (!lastFromClient) flights[index] = (flights[index] ?? 0) + 1
      lastFromClient = true
      const mine = texts[index] as string[]
      mine[(flights[index] as number) - 1] =
        (mine[(flights[index] as number) - 1] ?? '') + buf.toString('latin1')
      upstream.write(buf)
    })
    upstream.on('data', (buf) => {
      lastFromClient = false
      client.write(buf)
    })
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('end', () => b.end())
      a.on('error', () => b.destroy())
      a.on('close', () => {
        sockets.delete(a)
        b.destroy()
      })
    }
    upstream.connect(target.port, target.host)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const address = server.address()
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    flights,
    texts,
    sent: () => sent,
    reset: () => {
      flights.length = 0
      texts.length = 0
      sent = ''
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}
