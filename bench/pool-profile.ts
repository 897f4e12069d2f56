/**
 * One strategy of the pool bench under load, for profiling (not part of `npm run bench`):
 *
 *   node --env-file .tmp/stack.env bench/pool-profile.ts shared direct 16 5 [--cpu-prof]
 *
 * (`npm run stack` writes .tmp/stack.env; the bench_items table comes from `npm run bench`'s schema, created
 * here when missing.) Strategies: shared (hono-pooler's shared pool), raw (a postgres.js pool of 10), behind
 * (the raw pool behind an unused pooler()), single (the raw pool with max_pipeline: 0: one statement per
 * connection at a time, as the shared pool), pg (pg.Pool). Targets: direct (DIRECT_URL) or bouncer
 * (DATABASE_URL). The server runs in a child process (with `--cpu-prof`: its profile lands in .tmp/prof/);
 * prints req/s, p99 and the server's (user and system apart) and autocannon's CPU µs per request. POOL_PROFILE_NODE_FLAGS adds V8 flags to
 * the server only (`POOL_PROFILE_NODE_FLAGS=--trace-gc-nvp`, not allowed in NODE_OPTIONS): what it prints goes to stderr.
 * `POOL_PROFILE_NODE_FLAGS=--trace-pretenuring-statistics` lists the allocation sites V8 moved to the old
 * generation (docs/pool.md, Performance).
 */
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import autocannon from 'autocannon'
import { Hono } from 'hono'
import pg from 'pg'
import { LIB_OUT, loadLib } from './lib-build.ts'
import { ensureSchema, rawPool, runPg, runPostgres } from './workloads.ts'

const [, , which = 'shared', to = 'direct', conns = '16', secs = '5', prof] = process.argv
const W = 'one param select'

async function server(): Promise<void> {
  const url = to === 'direct' ? process.env.DIRECT_URL! : process.env.DATABASE_URL!
  const mode = to === 'direct' ? 'direct' : 'transaction'
  const lib = await import(LIB_OUT)
  const app = new Hono<any>()
  let close = async () => {}
  if (which === 'shared') {
    app.use(lib.pooler({ url, mode, applicationName: 'profile', pool: { size: 10, overflow: 0 } }))
    app.get('/', async (c) => {
      await runPostgres(c.var.sql, W)
      return c.text('ok')
    })
    close = () => lib.closePools({ timeout: 1 })
  } else if (which === 'pg') {
    const pool = new pg.Pool({ connectionString: url, max: 10 })
    app.get('/', async (c) => {
      await runPg(pool, W)
      return c.text('ok')
    })
    close = () => pool.end()
  } else {
    const raw = rawPool(url, mode, 10, which === 'single')
    // noop: the raw pool behind a middleware that only awaits next() (Hono's own cost of one middleware).
    if (which === 'noop') app.use(async (_c, next) => void (await next()))
    if (which === 'behind')
      app.use(lib.pooler({ url, mode, applicationName: 'profile-mw', pool: { size: 1, checkBudget: false } }))
    app.get('/', async (c) => {
      await runPostgres(raw, W)
      return c.text('ok')
    })
    close = () => raw.end({ timeout: 1 })
  }
  app.onError((_e, c) => c.text('aborted', 500))
  const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((r) => (s.listening ? r(null) : s.once('listening', r)))
  const control = createServer((_q, res) => res.end(JSON.stringify(process.cpuUsage())))
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  console.log(JSON.stringify({ port, control: (control.address() as AddressInfo).port }))
  process.once('SIGTERM', async () => {
    s.close()
    await close()
    process.exit(0)
  })
}

async function drive(): Promise<void> {
  await loadLib()
  await ensureSchema()
  const flags = prof
    ? ['--cpu-prof', '--cpu-prof-dir=.tmp/prof', `--cpu-prof-name=${which}-${to}-${conns}.cpuprofile`]
    : []
  // Extra V8 flags for the server only, e.g. POOL_PROFILE_NODE_FLAGS='--trace-gc --max-semi-space-size=64'.
  flags.push(...(process.env.POOL_PROFILE_NODE_FLAGS?.split(' ').filter(Boolean) ?? []))
  // POOL_PROFILE_CPU=1: the server alone on that CPU (taskset), for steadier A/B figures on a shared machine.
  const pin = process.env.POOL_PROFILE_CPU
  const argv = [...flags, process.argv[1]!, which, to, conns, secs]
  const child = spawn(
    pin ? 'taskset' : process.execPath,
    pin ? ['-c', pin, process.execPath, ...argv] : argv,
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, POOL_PROFILE_SERVER: '1' },
    },
  )
  const line = await new Promise<string>((resolve) => {
    // The server's first JSON line; anything else it prints (a GC trace) goes to stderr.
    let buf = ''
    let found = false
    child.stdout!.on('data', (d) => {
      if (found) return void process.stderr.write(d)
      buf += d
      const lines = buf.split('\n')
      buf = lines.pop()!
      for (const l of lines) {
        if (!found && l.startsWith('{')) {
          found = true
          resolve(l)
        } else process.stderr.write(`${l}\n`)
      }
    })
  })
  const { port, control } = JSON.parse(line)
  const cpu = async () => {
    const u = (await (await fetch(`http://127.0.0.1:${control}/`)).json()) as { user: number; system: number }
    return u
  }
  const url = `http://127.0.0.1:${port}/`
  await autocannon({ url, connections: Number(conns), duration: 1 }) // warm up
  const [u0, p0] = [await cpu(), process.cpuUsage()]
  const r = await autocannon({ url, connections: Number(conns), duration: Number(secs) })
  const [u1, p1] = [await cpu(), process.cpuUsage(p0)]
  const [c0, c1] = [u0.user + u0.system, u1.user + u1.system]
  const n = Math.max(1, r.requests.total)
  console.log(
    which,
    to,
    `c${conns}`,
    `${r.requests.average} req/s`,
    `p99 ${r.latency.p99} ms`,
    `server ${((c1 - c0) / n).toFixed(1)} µs/req (user ${((u1.user - u0.user) / n).toFixed(1)}, system ${((u1.system - u0.system) / n).toFixed(1)})`,
    `autocannon ${((p1.user + p1.system) / n).toFixed(1)} µs/req`,
    `errors ${r.errors + r.non2xx}`,
  )
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
}

await (process.env.POOL_PROFILE_SERVER ? server() : drive())
