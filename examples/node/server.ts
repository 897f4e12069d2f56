/**
 * The notes app on a stationary Node server (@hono/node-server). Without POOL, each request's client is
 * closed when the response has been sent (there is no waitUntil on Node: the middleware awaits the close
 * itself); with POOL=n, requests share a pool of n connections (+ n/2 overflow), closed on SIGTERM/SIGINT.
 *
 *   DATABASE_URL=postgres://… PORT=3000 POOL=10 node --import ./examples/node/register.ts examples/node/server.ts
 *   (in your own project, importing from 'hono-pooler', plain `node server.ts` does)
 */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Hono } from 'hono'
import { closePools } from '../../src/index.ts'
import { type AppEnv, createApp } from '../app.ts'

export interface Server {
  url: string
  close(): Promise<void>
}

/** Starts the server; `port: 0` picks a free port. */
export function start({
  port = 3000,
  hostname = '127.0.0.1',
  app = createApp(),
}: {
  port?: number
  hostname?: string
  app?: Hono<AppEnv>
} = {}): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname }, (info: AddressInfo) =>
      resolve({
        url: `http://${info.family === 'IPv6' ? `[${info.address}]` : info.address}:${info.port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()))
            ;(server as any).closeAllConnections?.()
          }),
      }),
    )
    server.once('error', reject)
  })
}

/** POOL=n: a shared pool of n connections (n/2 more under a burst); unset: one client per request. */
export function poolFromEnv(value = process.env.POOL): { size: number; overflow: number } | undefined {
  const size = Number(value)
  return Number.isInteger(size) && size > 0 ? { size, overflow: Math.floor(size / 2) } : undefined
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const pool = poolFromEnv()
  const server = await start({
    port: Number(process.env.PORT ?? 3000),
    hostname: process.env.HOST,
    app: createApp(pool ? { pool } : {}),
  })
  console.log(`notes example on ${server.url}${pool ? ` (pool of ${pool.size} + ${pool.overflow})` : ''}`)
  // Stop accepting requests, give running ones 10 s, close every pooled connection, exit.
  const stop = () =>
    void server
      .close()
      .then(() => closePools({ timeout: 10 }))
      .then(() => process.exit(0))
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
