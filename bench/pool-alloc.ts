/**
 * CPU and allocation per request of the shared pool's request client, without HTTP (not part of
 * `npm run bench`; the HTTP view is `bench/pool-profile.ts`):
 *
 *   node --env-file .tmp/stack.env bench/pool-alloc.ts shared 16
 *
 * (`npm run stack` writes .tmp/stack.env.) Each "request" runs one parameterized select on DIRECT_URL, `C`
 * of them at a time: `shared` creates a request client on a shared pool of 10 (what `pooler({ pool })`
 * gives `c.var.sql`), queries, and closes it; `raw` queries a postgres.js pool of 10; `single` the same pool
 * with `max_pipeline: 0` (one statement per connection at a time, the shared pool's rule); `pg` a `pg.Pool`
 * of 10. Prints CPU µs per
 * request for three runs of `N` requests, then bytes allocated per request from V8's sampling heap profiler
 * (objects the GCs collected included) and the allocation sites above 200 bytes per request.
 */
import { Session } from 'node:inspector/promises'
import pg from 'pg'
import { loadLib } from './lib-build.ts'
import { ensureSchema, rawPool } from './workloads.ts'

const [, , which = 'shared', conc = '16', n = '30000'] = process.argv
if (!['shared', 'raw', 'single', 'pg'].includes(which) || !(Number(conc) > 0) || !(Number(n) > 0)) {
  console.error(
    'usage: node --env-file .tmp/stack.env bench/pool-alloc.ts shared|raw|single|pg [concurrency] [requests]',
  )
  process.exit(2)
}
const url = process.env.DIRECT_URL!
const lib = await loadLib()
await ensureSchema()

const id = () => 1 + Math.floor(Math.random() * 100)
let run: () => Promise<void>
let end: () => Promise<unknown>
if (which === 'shared') {
  const config = lib.clientConfig(
    url,
    lib.parseOptions({ url, mode: 'direct', pool: { size: 10, overflow: 0 } }),
  )
  run = async () => {
    const client = lib.createRequestClient(config)
    await client.sql`select id, v from bench_items where id = ${id()}`
    if (!client.closeIdle()) await client.close(5)
  }
  end = () => lib.closePools({ timeout: 1 })
} else if (which === 'pg') {
  const pool = new pg.Pool({ connectionString: url, max: 10 })
  run = async () => {
    await pool.query('select id, v from bench_items where id = $1', [id()])
  }
  end = () => pool.end()
} else {
  const raw = rawPool(url, 'direct', 10, which === 'single')
  run = async () => {
    await raw`select id, v from bench_items where id = ${id()}`
  }
  end = () => raw.end({ timeout: 1 })
}

async function go(total: number): Promise<void> {
  let left = total
  await Promise.all(
    Array.from({ length: Number(conc) }, async () => {
      while (left-- > 0) await run()
    }),
  )
}

await go(5000) // warm up
for (let r = 0; r < 3; r++) {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await go(Number(n))
  const c = process.cpuUsage(c0)
  const rps = (Number(n) / (performance.now() - t0)) * 1000
  console.log(
    which,
    `c${conc}`,
    `${((c.user + c.system) / Number(n)).toFixed(1)} µs/req CPU`,
    `${rps.toFixed(0)} req/s`,
  )
}

const session = new Session()
session.connect()
await session.post('HeapProfiler.enable')
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 512,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
})
const sampled = 20000
await go(sampled)
const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: Node } }
interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number }
  selfSize: number
  children: Node[]
}
const sites = new Map<string, number>()
let total = 0
const walk = (node: Node) => {
  const f = node.callFrame
  const site = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`
  total += node.selfSize
  sites.set(site, (sites.get(site) ?? 0) + node.selfSize)
  for (const c of node.children) walk(c)
}
walk(profile.head)
console.log(which, `c${conc}`, `${(total / sampled).toFixed(0)} bytes/req allocated (sampled)`)
for (const [site, bytes] of [...sites].sort((a, b) => b[1] - a[1]))
  if (bytes / sampled >= 200) console.log(`  ${(bytes / sampled).toFixed(0).padStart(6)}  ${site}`)
await end()
process.exit(0)
