/**
 * One strategy of the pool bench as a server of its own (a child process of `bench/pool.ts` and
 * `bench/pool-profile.ts`): its CPU time and its heap are its own, as on a real server, and no strategy's
 * objects make postgres.js's functions polymorphic for another.
 *
 *   node bench/pool-server.ts <strategy> <url> <direct|transaction>
 *
 * Serves one parameterized select per request on a loopback port, plus a control port answering
 * `process.cpuUsage()`, and prints `{ port, control }` as one JSON line; SIGTERM closes its pool and exits.
 * Strategies (`POOL_STRATEGIES`): shared (hono-pooler's shared pool), raw (a postgres.js pool), pg
 * (`pg.Pool`), behind (the raw pool behind an unused `pooler()`), noop (the raw pool behind a middleware
 * that only awaits `next()`: what any middleware costs), single (the raw pool with `max_pipeline: 0`, one
 * statement per connection at a time, the shared pool's rule). Pools of BENCH_POOL_SIZE (default 10).
 */
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import pg from 'pg'
import { LIB_OUT } from './lib-build.ts'
import { rawPool, runPg, runPostgres } from './workloads.ts'

export const POOL_STRATEGIES = ['shared', 'raw', 'pg', 'behind', 'noop', 'single'] as const
export type PoolStrategy = (typeof POOL_STRATEGIES)[number]

const W = 'one param select'
const SIZE = Number(process.env.BENCH_POOL_SIZE ?? 10)

/** The app and its pool's close for one strategy. */
export async function poolApp(
  which: PoolStrategy,
  url: string,
  mode: 'direct' | 'transaction',
): Promise<{ app: Hono<any>; close: () => Promise<unknown> }> {
  const lib = await import(LIB_OUT)
  const app = new Hono<any>()
  let close: () => Promise<unknown>
  if (which === 'shared') {
    // POOL_SERVER_OPTIONS: more pooler() options as JSON, for experiments (e.g. '{"guard":"off"}').
    const extra = JSON.parse(process.env.POOL_SERVER_OPTIONS ?? '{}') as object
    app.use(
      lib.pooler({ url, mode, applicationName: 'bench-pool', pool: { size: SIZE, overflow: 0 }, ...extra }),
    )
    app.get('/', async (c) => {
      await runPostgres(c.var.sql, W)
      return c.text('ok')
    })
    close = () => lib.closePools({ timeout: 1 })
    // POOL_SERVER_STATS=ms: poolStats() to stderr every ms (diagnostics: stalls, reconnects).
    const every = Number(process.env.POOL_SERVER_STATS ?? 0)
    if (every > 0)
      setInterval(() => console.error(Date.now() % 100000, JSON.stringify(lib.poolStats())), every).unref()
  } else if (which === 'pg') {
    const pool = new pg.Pool({ connectionString: url, max: SIZE })
    app.get('/', async (c) => {
      await runPg(pool, W)
      return c.text('ok')
    })
    close = () => pool.end()
  } else {
    const raw = rawPool(url, mode, SIZE, which === 'single')
    if (which === 'noop') app.use(async (_c, next) => void (await next()))
    if (which === 'behind')
      app.use(
        lib.pooler({ url, mode, applicationName: 'bench-pool-mw', pool: { size: 1, checkBudget: false } }),
      )
    app.get('/', async (c) => {
      await runPostgres(raw, W)
      return c.text('ok')
    })
    close = () => raw.end({ timeout: 1 })
  }
  // autocannon drops its sockets at the end of a run: the aborted requests' cancelled queries land here.
  app.onError((_e, c) => c.text('aborted', 500))
  return { app, close }
}

async function main(): Promise<void> {
  const [, , which, url, mode] = process.argv
  if (
    !POOL_STRATEGIES.includes(which as PoolStrategy) ||
    !url ||
    (mode !== 'direct' && mode !== 'transaction')
  ) {
    console.error(`usage: node bench/pool-server.ts ${POOL_STRATEGIES.join('|')} <url> direct|transaction`)
    process.exit(2)
  }
  const { app, close } = await poolApp(which as PoolStrategy, url, mode)
  const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((r) => (s.listening ? r(null) : s.once('listening', r)))
  const control = createServer((_q, res) => res.end(JSON.stringify(process.cpuUsage())))
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r))
  console.log(
    JSON.stringify({
      port: (s.address() as AddressInfo).port,
      control: (control.address() as AddressInfo).port,
    }),
  )
  process.once('SIGTERM', async () => {
    s.close()
    control.close()
    await close().catch(() => {})
    process.exit(0)
  })
}

/** A running strategy server: its port, its CPU time so far (µs, user and system), and its stop. */
export interface PoolServer {
  port: number
  cpu(): Promise<{ user: number; system: number }>
  stop(): Promise<void>
}

/** The URL and mode of a profiling target of `npm run stack` (.tmp/stack.env): direct or bouncer. */
export function poolTarget(to: 'direct' | 'bouncer'): { url: string; mode: 'direct' | 'transaction' } {
  return to === 'direct'
    ? { url: process.env.DIRECT_URL!, mode: 'direct' }
    : { url: process.env.DATABASE_URL!, mode: 'transaction' }
}

/**
 * Starts `which` in a child process. `flags`: extra Node/V8 flags for it; `prefix`: a command Node runs
 * under (`taskset -c 1`, `valgrind …`); `stderr`: receives what the child writes there (else it goes to
 * this process's stderr, as does what it prints besides its JSON line).
 */
export async function startPoolServer(
  which: PoolStrategy,
  url: string,
  mode: 'direct' | 'transaction',
  {
    flags = [],
    prefix = [],
    stderr,
  }: { flags?: string[]; prefix?: string[]; stderr?: (text: string) => void } = {},
): Promise<PoolServer> {
  const argv = [process.execPath, ...flags, fileURLToPath(import.meta.url), which, url, mode]
  const [command, ...args] = [...prefix, ...argv]
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', stderr ? 'pipe' : 'inherit'] })
  let said = ''
  if (stderr) child.stderr!.on('data', (d) => stderr(String(d)))
  else said = ' (its stderr is above)'
  const line = await new Promise<string>((ok, fail) => {
    let buf = ''
    let found = false
    child.once('exit', (code) => found || fail(new Error(`pool server ${which} exited (${code})${said}`)))
    child.stdout!.on('data', (d) => {
      if (found) return void process.stderr.write(d)
      buf += d
      const lines = buf.split('\n')
      buf = lines.pop()!
      for (const l of lines) {
        if (!found && l.startsWith('{')) {
          found = true
          ok(l)
        } else process.stderr.write(`${l}\n`)
      }
    })
  })
  const { port, control } = JSON.parse(line) as { port: number; control: number }
  return {
    port,
    cpu: async () =>
      (await (await fetch(`http://127.0.0.1:${control}/`)).json()) as { user: number; system: number },
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    },
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
