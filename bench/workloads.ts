/** The same five workloads for postgres.js-style clients and for `pg`. */
import type pg from 'pg'
import postgres from 'postgres'

/**
 * The raw postgres.js pool the pool benches compare with: named prepared statements only on the direct
 * connection (what each mode allows). `single`: one statement per connection at a time, the shared pool's
 * rule (`max_pipeline: 0`; postgres.js reads it, its types do not list it).
 */
export function rawPool(url: string, mode: 'direct' | 'transaction', max: number, single = false) {
  return postgres(url, {
    max,
    prepare: mode === 'direct',
    onnotice: () => {},
    ...((single ? { max_pipeline: 0 } : {}) as object),
  })
}

export const WORKLOADS = [
  'select 1',
  'one param select',
  '3 sequential param selects',
  'insert',
  'sql.begin + 2 statements',
] as const
export type Workload = (typeof WORKLOADS)[number]

const id = () => 1 + Math.floor(Math.random() * 100)

export async function runPostgres(sql: any, w: Workload): Promise<void> {
  switch (w) {
    case 'select 1':
      await sql`select 1`
      return
    case 'one param select':
      await sql`select id, v from bench_items where id = ${id()}`
      return
    case '3 sequential param selects':
      for (let i = 0; i < 3; i++) await sql`select id, v from bench_items where id = ${id()}`
      return
    case 'insert':
      await sql`insert into bench_log (v) values (${'x'})`
      return
    case 'sql.begin + 2 statements':
      await sql.begin(async (tx: any) => {
        const k = id()
        await tx`update bench_items set v = ${`v${k}`} where id = ${k}`
        await tx`select v from bench_items where id = ${k}`
      })
  }
}

export async function runPg(client: pg.Client | pg.Pool, w: Workload): Promise<void> {
  const q = 'select id, v from bench_items where id = $1'
  switch (w) {
    case 'select 1':
      await client.query('select 1')
      return
    case 'one param select':
      await client.query(q, [id()])
      return
    case '3 sequential param selects':
      for (let i = 0; i < 3; i++) await client.query(q, [id()])
      return
    case 'insert':
      await client.query('insert into bench_log (v) values ($1)', ['x'])
      return
    case 'sql.begin + 2 statements': {
      const k = id()
      await client.query('begin')
      await client.query('update bench_items set v = $1 where id = $2', [`v${k}`, k])
      await client.query('select v from bench_items where id = $1', [k])
      await client.query('commit')
    }
  }
}

export const SCHEMA = `
create table if not exists bench_items (id int primary key, v text);
insert into bench_items select g, 'v' || g from generate_series(1, 100) g on conflict do nothing;
create table if not exists bench_log (id bigserial primary key, v text, at timestamptz default now());`

/**
 * Creates the bench tables on `npm run stack`'s database when missing, as its superuser (SUPER_URL), and
 * lets the app user use them: what the profiling scripts need before their first request.
 */
export async function ensureSchema(): Promise<void> {
  const su = new URL(process.env.SUPER_URL!)
  su.pathname = new URL(process.env.DIRECT_URL!).pathname
  const setup = postgres(su.toString(), { max: 1, onnotice: () => {} })
  await setup
    .unsafe(`${SCHEMA}; grant all on all tables in schema public to app;`)
    .simple()
    .finally(() => setup.end())
}
