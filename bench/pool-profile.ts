/**
 * One strategy of the pool bench under load, for profiling (not part of `npm run bench`):
 *
 *   node --env-file .tmp/stack.env bench/pool-profile.ts shared direct 16 5 [--cpu-prof]
 *
 * (`npm run stack` writes .tmp/stack.env; the bench tables are created here when missing.) Strategies: those
 * of bench/pool-server.ts (shared, raw, pg, behind, noop, single). Targets: direct (DIRECT_URL) or bouncer
 * (DATABASE_URL). The server runs in a child process (with `--cpu-prof`: its profile lands in .tmp/prof/;
 * POOL_PROFILE_CPU=1 pins it to that CPU); prints req/s, p99, and the server's (user and system apart) and
 * autocannon's CPU µs per request. POOL_PROFILE_NODE_FLAGS adds V8 flags to the server only
 * (`POOL_PROFILE_NODE_FLAGS=--trace-gc-nvp`, not allowed in NODE_OPTIONS): what it prints goes to stderr.
 * `POOL_PROFILE_NODE_FLAGS=--trace-pretenuring-statistics` lists the allocation sites V8 moved to the old
 * generation (docs/pool.md, Performance).
 */
import autocannon from 'autocannon'
import { loadLib } from './lib-build.ts'
import { POOL_STRATEGIES, type PoolStrategy, poolTarget, startPoolServer } from './pool-server.ts'
import { ensureSchema } from './workloads.ts'

const [, , which = 'shared', to = 'direct', conns = '16', secs = '5', prof] = process.argv
if (!POOL_STRATEGIES.includes(which as PoolStrategy) || (to !== 'direct' && to !== 'bouncer')) {
  console.error(
    `usage: node --env-file .tmp/stack.env bench/pool-profile.ts ${POOL_STRATEGIES.join('|')} direct|bouncer [connections] [seconds] [--cpu-prof]`,
  )
  process.exit(2)
}

await loadLib()
await ensureSchema()
const flags = prof
  ? ['--cpu-prof', '--cpu-prof-dir=.tmp/prof', `--cpu-prof-name=${which}-${to}-${conns}.cpuprofile`]
  : []
// Extra V8 flags for the server only, e.g. POOL_PROFILE_NODE_FLAGS='--trace-gc --max-semi-space-size=64'.
flags.push(...(process.env.POOL_PROFILE_NODE_FLAGS?.split(' ').filter(Boolean) ?? []))
const { url: dbUrl, mode } = poolTarget(to)
const pin = process.env.POOL_PROFILE_CPU
// POOL_PROFILE_CPU=1: the server alone on that CPU (taskset).
const server = await startPoolServer(which as PoolStrategy, dbUrl, mode, {
  flags,
  prefix: pin ? ['taskset', '-c', pin] : [],
})
const url = `http://127.0.0.1:${server.port}/`
await autocannon({ url, connections: Number(conns), duration: 1 }) // warm up
const [u0, p0] = [await server.cpu(), process.cpuUsage()]
const r = await autocannon({ url, connections: Number(conns), duration: Number(secs) })
const [u1, p1] = [await server.cpu(), process.cpuUsage(p0)]
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
await server.stop()
