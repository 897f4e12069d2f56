/**
 * A loopback TCP proxy for fault tests, in front of a PgBouncer (or anything): it passes bytes through,
 * and on command delays them, stalls (stops forwarding, sockets stay open: a black hole), or cuts every
 * connection (RST). Only loopback addresses.
 *
 * @example
 * const proxy = await faultProxy(bouncerPort)
 * const url = proxy.url(stack.databaseUrl)
 * proxy.stall()        // the live connections stop forwarding
 * proxy.cut()          // every connection is reset
 * await proxy.close()
 */
import { createServer, type Server, Socket } from 'node:net'

export interface FaultProxy {
  readonly port: number
  /** `base` with its host:port replaced by the proxy's. */
  url(base: string): string
  /** Adds `ms` of latency to every chunk, both directions (0: none). */
  delay(ms: number): void
  /** Live connections stop forwarding in both directions; `newToo` also holds connections made later. */
  stall(newToo?: boolean): void
  /** Undoes `stall`. */
  resume(): void
  /** Resets every live connection (both sides see an error/close at once). */
  cut(): void
  /** Live client connections through the proxy. */
  readonly connections: number
  /** Connections accepted since the start. */
  readonly accepted: number
  close(): Promise<void>
}

interface Pair {
  client: Socket
  server: Socket
  stalled: boolean
  queue: { to: Socket; chunk: Buffer }[]
}

/**
 * Starts a proxy on 127.0.0.1 (a free port) forwarding to `targetPort` on `targetHost`.
 */
export async function faultProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<FaultProxy> {
  const pairs = new Set<Pair>()
  let latency = 0
  let stallNew = false
  let accepted = 0

  const forward = (pair: Pair, to: Socket, chunk: Buffer) => {
    if (pair.stalled) {
      pair.queue.push({ to, chunk }) // held, never forwarded until resume()
      return
    }
    if (latency > 0) setTimeout(() => to.destroyed || to.write(chunk), latency)
    else if (!to.destroyed) to.write(chunk)
  }

  const server: Server = createServer((client) => {
    accepted++
    const upstream = new Socket()
    const pair: Pair = { client, server: upstream, stalled: stallNew, queue: [] }
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('data', (d) => forward(pair, upstream, d))
    upstream.on('data', (d) => forward(pair, client, d))
    // A half-close is forwarded as a close: a stalled pair keeps both sides open (that is the point).
    client.on('end', () => pair.stalled || end())
    upstream.on('end', () => pair.stalled || end())
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', () => pair.stalled || end())
    upstream.on('close', () => pair.stalled || end())
    upstream.connect(targetPort, targetHost)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port

  return {
    port,
    url: (base) => {
      const u = new URL(base)
      u.hostname = '127.0.0.1'
      u.port = String(port)
      return u.toString()
    },
    delay: (ms) => {
      latency = ms
    },
    stall: (newToo = false) => {
      stallNew = newToo
      for (const p of pairs) p.stalled = true
    },
    resume: () => {
      stallNew = false
      for (const p of pairs) {
        p.stalled = false
        for (const { to, chunk } of p.queue.splice(0)) to.destroyed || to.write(chunk)
      }
    },
    cut: () => {
      for (const p of pairs) {
        p.client.resetAndDestroy()
        p.server.resetAndDestroy()
      }
      pairs.clear()
    },
    get connections() {
      return pairs.size
    },
    get accepted() {
      return accepted
    },
    close: async () => {
      for (const p of pairs) {
        p.client.destroy()
        p.server.destroy()
      }
      pairs.clear()
      await new Promise((r) => server.close(r))
    },
  }
}
