/**
 * A Worker using `pooler({ hyperdrive: 'HYPERDRIVE' })`, started in workerd by
 * test/integration/hyperdrive-workers.test.ts with a `[[hyperdrive]]` binding whose localConnectionString
 * points at the stack. Logs every pooler event as `[event] {…}`.
 */
import * as otel from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { Hono } from 'hono'
import { classifyUrl, type PoolerError, type PoolerVariables, pooler } from '../../src/index.ts'

type Env = { Bindings: { HYPERDRIVE: { connectionString: string } }; Variables: PoolerVariables }

const app = new Hono<Env>()

// OpenTelemetry in workerd: the API module handed over (bundled), spans kept in memory, read by /otel.
const exported = new InMemorySpanExporter()
otel.trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exported)] }),
)
const traced = new Hono<Env>()
traced.use(pooler({ hyperdrive: 'HYPERDRIVE', openTelemetry: otel, serverTiming: true }))
traced.get('/', async (c) => {
  exported.reset()
  await c.var.sql`select ${7}::int as seven`
  return c.json({ ok: true })
})
app.get('/otel/run', (c) => traced.fetch(new Request('http://x/'), c.env, c.executionCtx))
app.get('/otel/spans', (c) =>
  c.json(exported.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes }))),
)

app.use(
  pooler({
    hyperdrive: 'HYPERDRIVE',
    applicationName: 'hp-hyperdrive',
    onEvent: (e) => console.log(`[event] ${JSON.stringify(e)}`),
  }),
)

app.get('/info', (c) => {
  const { provider, mode, host } = classifyUrl(c.env.HYPERDRIVE.connectionString)
  return c.json({ provider, mode, host })
})

app.get('/query', async (c) => {
  const [row] = await c.var.sql<{ n: number; t: string }[]>`select ${41}::int + 1 as n, ${'hé'}::text as t`
  return c.json(row)
})

// What the database sees: the application_name that the no-connection-left check looks for.
app.get('/whoami', async (c) => {
  const [row] = await c.var.sql<{ name: string }[]>`select current_setting('application_name') as name`
  return c.json(row)
})

app.get('/begin', async (c) => {
  const ids = await c.var.sql.begin(async (tx) => {
    const a = await tx<{ x: string }[]>`select txid_current()::text as x`
    const b = await tx<{ x: string }[]>`select txid_current()::text as x`
    return [a[0]!.x, b[0]!.x]
  })
  return c.json(ids)
})

// The same parameterized statement three times, then what this connection has prepared.
app.get('/prepared', async (c) => {
  const sql = c.var.sql
  for (const i of [1, 2, 3]) await sql`select ${i}::int as hp_prepared_probe`
  const rows = await sql<{ statement: string }[]>`
    select statement from pg_prepared_statements
    where statement like ${'%hp_prepared_probe%'} and statement not like '%pg_prepared_statements%'`
  return c.json(rows.map((r) => r.statement))
})

app.get('/guard', async (c) => {
  const codes: (string | null)[] = []
  for (const run of [
    () => c.var.sql`select pg_advisory_lock(1)`,
    () => c.var.sql.notify('jobs', 'x'),
    () => c.var.sql`notify jobs`,
  ])
    codes.push(
      await run().then(
        () => null,
        (e: PoolerError) => `${e.code}:${e.rule}`,
      ),
    )
  return c.json(codes)
})

export default app
