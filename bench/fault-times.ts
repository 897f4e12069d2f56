/**
 * How fast failures are answered, measured (never asserted in tests: they only bound hangs): part of
 * `npm run soak`. Each fault is repeated FAULT_REPS times (default 5) against the soak's own stack, through
 * `app.request` (in process, no HTTP), with hono-pooler's defaults (connectTimeout 5 s, queryTimeout 30 s).
 */
import { Hono } from 'hono'
import { bouncerAdmin, type Stack } from '../scripts/stack.ts'

const REPS = Number(process.env.FAULT_REPS ?? 5)
const APP = 'hp-fault-times'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Row {
  fault: string
  target: string
  ms: number[]
  answers: string[]
}

const admin = (stack: Stack, command: string) => bouncerAdmin(stack.adminUrl, command, 2)

async function ask(app: Hono<any>, path: string): Promise<string> {
  const res = await app.request(path)
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string } }
  return res.status === 200 ? '200' : `${res.status} ${body.error?.code ?? ''}`.trim()
}

/** Runs the fault timings; returns the markdown section. */
export async function faultTimes(lib: any, stack: Stack): Promise<string[]> {
  const control = stack.control
  if (!control) throw new Error('fault timings need a stack started by this process')
  const app = new Hono<any>()
  app.use(lib.pooler({ url: stack.databaseUrl, applicationName: APP }))
  app.get('/one', async (c) => c.json(await c.var.sql`select 1 as x`))
  app.get('/sleep', async (c) => c.json(await c.var.sql`select pg_sleep(5) as x`))
  const quiet = console.error
  console.error = () => {} // the library's one log line per code per 10 s
  const rows: Row[] = [
    {
      fault: 'PgBouncer killed (SIGKILL) while a statement runs: kill → answer',
      target: '≤ 500 ms',
      ms: [],
      answers: [],
    },
    { fault: 'PgBouncer restarted: listening → first 200', target: '≤ 200 ms', ms: [], answers: [] },
    {
      fault: 'Postgres stopped behind PgBouncer: first request, start → answer',
      target: '≤ connectTimeout (5 000 ms)',
      ms: [],
      answers: [],
    },
    { fault: 'Postgres stopped behind PgBouncer: the next request', target: 'at once', ms: [], answers: [] },
  ]
  const [killed, restarted, downFirst, downNext] = rows as [Row, Row, Row, Row]
  try {
    await admin(stack, 'set server_login_retry = 15') // PgBouncer's default
    for (let i = 0; i < REPS; i++) {
      if ((await ask(app, '/one')) !== '200') throw new Error('the stack does not answer')
      const running = ask(app, '/sleep')
      await sleep(300)
      const at = Date.now()
      await control.killBouncer('SIGKILL')
      killed.answers.push(await running)
      killed.ms.push(Date.now() - at)
      await control.startBouncer()
      const up = Date.now()
      let answer = await ask(app, '/one')
      while (answer !== '200' && Date.now() - up < 5000) {
        await sleep(2)
        answer = await ask(app, '/one')
      }
      restarted.ms.push(Date.now() - up)
      restarted.answers.push(answer)
      await admin(stack, 'set server_login_retry = 15')

      if ((await ask(app, '/one')) !== '200') throw new Error('the stack does not answer')
      await control.stopPostgres('SIGINT')
      let t = Date.now()
      downFirst.answers.push(await ask(app, '/one'))
      downFirst.ms.push(Date.now() - t)
      t = Date.now()
      downNext.answers.push(await ask(app, '/one'))
      downNext.ms.push(Date.now() - t)
      await admin(stack, 'set server_login_retry = 1') // back quickly once Postgres is up
      await control.startPostgres()
      const back = Date.now()
      while ((await ask(app, '/one')) !== '200' && Date.now() - back < 10_000) await sleep(100)
    }
  } finally {
    console.error = quiet
    await admin(stack, 'set server_login_retry = 15').catch(() => {})
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
  const answers = (xs: string[]) =>
    [...new Set(xs)].map((a) => `${a} ×${xs.filter((x) => x === a).length}`).join(', ')
  return [
    '## How fast failures are answered',
    '',
    `Each fault ${REPS} times against the soak's stack, through \`app.request\` with hono-pooler's defaults`,
    '(connectTimeout 5 s, queryTimeout 30 s), PgBouncer with its default `server_login_retry` (15 s). The',
    'tests only bound these (a hang fails them); the figures are measured here. Targets from issue 9.',
    '',
    '| fault | answers | median ms | max ms | target |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) => `| ${r.fault} | ${answers(r.answers)} | ${median(r.ms)} | ${Math.max(...r.ms)} | ${r.target} |`,
    ),
    '',
  ]
}
