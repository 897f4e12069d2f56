/**
 * Instructions per request of one pool-bench strategy's server, counted by valgrind (cachegrind, no cache
 * simulation), not part of `npm run bench`. On a shared machine CPU time per request moves by ±20 % between
 * runs; an instruction count of the same code moves by a few percent, so a change of a few µs per request
 * shows. Needs `valgrind` (Debian: `apt-get install -y valgrind`) and `npm run stack`:
 *
 *   node --env-file .tmp/stack.env bench/pool-instructions.ts shared direct 1 3000 6000
 *
 * Runs the server (bench/pool-server.ts) under valgrind twice, answering N1 then N2 requests at the given
 * concurrency, and prints (instructions of run 2 − run 1) ÷ (N2 − N1): start-up, warm-up and shutdown
 * cancel out. Concurrency 1 measures one request's own work; at higher concurrency the count also depends
 * on how many requests the slowed-down server finds per event-loop turn, which a change can shift.
 * Minutes per run (valgrind slows Node down some 50×); run two at once on two cores.
 */
import autocannon from 'autocannon'
import { loadLib } from './lib-build.ts'
import { POOL_STRATEGIES, type PoolStrategy, poolTarget, startPoolServer } from './pool-server.ts'
import { ensureSchema } from './workloads.ts'

const [, , which = 'shared', to = 'direct', conns = '1', n1 = '3000', n2 = '6000'] = process.argv
if (
  !POOL_STRATEGIES.includes(which as PoolStrategy) ||
  (to !== 'direct' && to !== 'bouncer') ||
  !(Number(conns) > 0) ||
  !(Number(n2) > Number(n1))
) {
  console.error(
    `usage: node --env-file .tmp/stack.env bench/pool-instructions.ts ${POOL_STRATEGIES.join('|')} direct|bouncer [concurrency] [N1] [N2 > N1]`,
  )
  process.exit(2)
}
await loadLib()
await ensureSchema()
const { url, mode } = poolTarget(to)

/** Instructions the server ran in all (start to exit) while answering `n` requests. */
async function count(n: number): Promise<{ instructions: number; ok: number; errors: number }> {
  let err = ''
  const server = await startPoolServer(which as PoolStrategy, url, mode, {
    // --smc-check: V8 writes the code it runs.
    prefix: [
      'valgrind',
      '--tool=cachegrind',
      '--cache-sim=no',
      '--smc-check=all-non-file',
      '--cachegrind-out-file=/dev/null',
    ],
    stderr: (text) => {
      err += text
    },
  }).catch((e: Error) => {
    throw new Error(`${e.message}: the server under valgrind said\n${err}`)
  })
  const r = await autocannon({
    url: `http://127.0.0.1:${server.port}/`,
    connections: Number(conns),
    amount: n,
    timeout: 60,
  })
  await server.stop()
  const m = /I\s+refs:\s+([\d,]+)/.exec(err)
  if (!m) throw new Error(`no instruction count from valgrind:\n${err}`)
  return {
    instructions: Number(m[1]!.replace(/,/g, '')),
    ok: r['2xx'],
    errors: r.errors + r.non2xx + r.timeouts,
  }
}

const a = await count(Number(n1))
const b = await count(Number(n2))
console.log(
  which,
  to,
  `c${conns}`,
  `${((b.instructions - a.instructions) / (b.ok - a.ok) / 1000).toFixed(1)} k instructions/request`,
  `(${a.ok} and ${b.ok} answered, errors ${a.errors + b.errors})`,
)
