/**
 * The throughput bench's servers, in a child process of their own so that their CPU time is measured
 * apart from the load generator: `node bench/tp-server.ts <url>` serves every strategy of
 * throughput.ts on its own loopback port, plus a control port answering `process.cpuUsage()`, and prints
 * `{ ports: { name: port }, control: port }` as one JSON line. Stopped by its parent (SIGTERM).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import { LIB_OUT } from './lib-build.ts'
import { apps } from './throughput.ts'

const url = process.argv[2] as string
const lib = await import(join(LIB_OUT))
const ports: Record<string, number> = {}
const closers: (() => Promise<void>)[] = []
for (const s of apps(lib, url)) {
  const server = serve({ fetch: s.app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((r) => (server.listening ? r(null) : server.once('listening', r)))
  ports[s.name] = (server.address() as AddressInfo).port
  if (s.close) closers.push(s.close)
}
const control = createServer((_req, res) => res.end(JSON.stringify(process.cpuUsage())))
await new Promise<void>((r) => control.listen(0, '127.0.0.1', r))
console.log(JSON.stringify({ ports, control: (control.address() as AddressInfo).port }))
process.once('SIGTERM', async () => {
  await Promise.all(closers.map((c) => c()))
  process.exit(0)
})
