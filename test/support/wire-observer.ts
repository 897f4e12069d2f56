/**
 * A loopback TCP proxy that reads the Postgres protocol in both directions and records how many statements
 * a client had in flight at once on one connection: each Sync or simple Query the client sends opens one,
 * each ReadyForQuery the server answers closes one. `maxInFlight` above 1 means the client pipelined.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface WireObserver {
  /** The target URL rewritten to go through the observer. */
  url: string
  /** The most statements one connection had in flight at once, over all connections so far. */
  readonly maxInFlight: number
  /** Statements (Sync or Query) sent by clients so far. */
  readonly statements: number
  /** How many messages of each type clients sent (`Q` simple Query, `P` Parse, `S` Sync, …). */
  readonly sent: Readonly<Record<string, number>>
  close(): Promise<void>
}

/** Calls `onMessage(type)` for each complete message; the first message has no type byte when `untyped`. */
function messageReader(untypedFirst: boolean, onMessage: (type: string) => void) {
  let buf = Buffer.alloc(0)
  let untyped = untypedFirst
  return (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      if (untyped) {
        if (buf.length < 4) return
        const len = buf.readInt32BE(0)
        if (buf.length < len) return
        buf = buf.subarray(len)
        untyped = false
        continue
      }
      if (buf.length < 5) return
      const len = buf.readInt32BE(1)
      if (buf.length < 1 + len) return
      onMessage(String.fromCharCode(buf[0]!))
      buf = buf.subarray(1 + len)
    }
  }
}

/**
 * @example
 * const wire = await observeWire(stack.databaseUrl)
 * // … connect to wire.url …
 * expect(wire.maxInFlight).toBe(1)
 */
export async function observeWire(target: string): Promise<WireObserver> {
  const t = new URL(target)
  let maxInFlight = 0
  let statements = 0
  const sent: Record<string, number> = {}
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(Number(t.port), t.hostname.replace(/^\[|\]$/g, ''))
    sockets.add(client)
    sockets.add(upstream)
    let inFlight = 0
    const fromClient = messageReader(true, (type) => {
      sent[type] = (sent[type] ?? 0) + 1
      if (type === 'S' || type === 'Q') {
        statements++
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
      }
    })
    const fromServer = messageReader(false, (type) => {
      if (type === 'Z' && inFlight > 0) inFlight--
    })
    client.on('data', (d) => {
      fromClient(d)
      upstream.write(d)
    })
    upstream.on('data', (d) => {
      fromServer(d)
      client.write(d)
    })
    const end = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const url = new URL(target)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return {
    url: url.toString(),
    get maxInFlight() {
      return maxInFlight
    },
    get statements() {
      return statements
    },
    get sent() {
      return sent
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}
