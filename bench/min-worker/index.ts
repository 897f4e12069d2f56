// The smallest Worker that uses hono-pooler: measured by `npm run bench` (bundle size), never deployed.
import { Hono } from 'hono'
import { type PoolerVariables, pooler } from '../../src/index.ts'

const app = new Hono<{ Bindings: { DATABASE_URL: string }; Variables: PoolerVariables }>()
app.use(pooler())
app.get('/now', async (c) => c.json((await c.var.sql`select now() as now`)[0]))

export default app
