import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { PoolerError, type PoolerOptions, type PoolerVariables, withSettings } from '../../src'
import { inRequest as request } from '../support/in-request'
import { showClients, sleep, stack, waitForNoClients } from '../support/stack'

// Every test here goes through PgBouncer's `app_pool1` alias: ONE server connection shared by every client,
// so session state left by one client is what the next client gets.
const APP = 'hp-guard'
const raw = () => postgres(stack.pool1Url, { max: 1, prepare: false, fetch_types: false, onnotice: () => {} })
const superApp = () => postgres(stack.superUrl.replace(/\/postgres$/, '/app'), { max: 1, onnotice: () => {} })

/** Runs `fn` with c.var.sql inside a real request through the middleware; returns its result or error. */
const inRequest = <T>(fn: (sql: PoolerVariables['sql']) => Promise<T>, opts: PoolerOptions = {}) =>
  request({ url: stack.pool1Url, applicationName: APP, ...opts }, fn)

async function setting(name: string): Promise<string> {
  const sql = raw()
  try {
    const [row] = await sql`select current_setting(${name}, true) as v`
    return row?.v
  } finally {
    await sql.end()
  }
}

beforeAll(async () => {
  const su = superApp()
  await su.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'authenticated') then create role authenticated nologin; end if;
    end $$;
    grant authenticated to app;
    create table if not exists rls_notes (id serial primary key, owner text not null, body text not null);
    alter table rls_notes enable row level security;
    drop policy if exists own on rls_notes;
    create policy own on rls_notes using (owner = current_setting('request.jwt.claims', true)::json->>'sub');
    grant select on rls_notes to authenticated;
    grant all on rls_notes to app;
    truncate rls_notes;
    insert into rls_notes (owner, body) values ('u1', 'one'), ('u2', 'two'), ('u1', 'three');
  `)
  await su.end()
})

afterAll(async () => {
  expect(await waitForNoClients(APP)).toEqual([])
})

describe('reproduced with raw postgres.js, then blocked by the guard', () => {
  it('session-set: SET search_path leaks to the next client; the guard refuses it before connecting', async () => {
    const a = raw()
    await a.unsafe('set search_path to leaked_by_a')
    await a.end()
    expect(await setting('search_path')).toBe('leaked_by_a')
    const b = raw()
    await b.unsafe('reset all')
    await b.end()

    const { error } = await inRequest((sql) => sql`set search_path to leaked_by_a`)
    expect(error).toBeInstanceOf(PoolerError)
    expect(error).toMatchObject({ code: 'UNSAFE_IN_TRANSACTION_MODE', rule: 'session-set' })
    expect((error as PoolerError).fix).toMatch(/SET LOCAL|withSettings/)
    expect(await setting('search_path')).toBe('"$user", public')
  })

  it('session-set: SET statement_timeout leaks too; sql.unsafe, sql.file, fragments and sql.begin are all guarded', async () => {
    const a = raw()
    await a.unsafe('set statement_timeout = 1234')
    await a.end()
    expect(await setting('statement_timeout')).toBe('1234ms')
    const b = raw()
    await b.unsafe('reset statement_timeout')
    await b.end()

    const file = join(tmpdir(), `hp-guard-${process.pid}.sql`)
    writeFileSync(file, '-- a migration\nselect 1;\nSET statement_timeout = 1234;\n')
    const attempts: ((sql: PoolerVariables['sql']) => Promise<unknown>)[] = [
      (sql) => sql`set statement_timeout = 1234`,
      (sql) => sql.unsafe('SELECT 1; SET statement_timeout = 1234'),
      (sql) => sql.unsafe('set statement_timeout = $1', ['1234']),
      (sql) => sql.file(file),
      (sql) => sql`select 1; ${sql`set statement_timeout = 1234`}`,
      (sql) => sql.begin((tx) => tx`set statement_timeout = 1234`),
      (sql) => sql.begin((tx) => tx.savepoint((s) => s.unsafe('reset all'))),
      (sql) => sql`select set_config('statement_timeout', '1234', false)`,
    ]
    for (const attempt of attempts) {
      const { error } = await inRequest(attempt)
      expect(error).toMatchObject({ code: 'UNSAFE_IN_TRANSACTION_MODE', rule: 'session-set' })
    }
    expect(await setting('statement_timeout')).toBe('0')
  })

  it('listen: LISTEN through the pooler never receives a notification; the guard refuses LISTEN and sql.listen()', async () => {
    const listener = postgres(stack.databaseUrl, { max: 1, prepare: false, fetch_types: false })
    const got: string[] = []
    await listener.listen('hp_channel', (x) => got.push(x))
    const notifier = raw()
    await notifier`select pg_notify('hp_channel', 'hello')`
    await notifier.end()
    await sleep(500)
    expect(got).toEqual([])
    await listener.end({ timeout: 0 })

    expect((await inRequest((sql) => sql`listen hp_channel`)).error).toMatchObject({ rule: 'listen' })
    expect((await inRequest((sql) => sql.unsafe('UNLISTEN *'))).error).toMatchObject({ rule: 'listen' })
    expect((await inRequest((sql) => sql.listen('hp_channel', () => {}))).error).toMatchObject({
      code: 'LISTEN_UNSUPPORTED',
    })
  })

  it('session-advisory-lock: another client can release your lock; the guard refuses it, xact locks work', async () => {
    const a = raw()
    const b = raw()
    await a`select pg_advisory_lock(42)`
    const [released] = await b`select pg_advisory_unlock(42) as ok`
    expect(released?.ok).toBe(true) // B released A's lock: no error anywhere
    await Promise.all([a.end(), b.end()])

    expect((await inRequest((sql) => sql`select pg_advisory_lock(${42})`)).error).toMatchObject({
      rule: 'session-advisory-lock',
    })
    expect((await inRequest((sql) => sql`select pg_try_advisory_lock(1, 2)`)).error).toMatchObject({
      rule: 'session-advisory-lock',
    })
    const ok = await inRequest((sql) =>
      sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${42})`
        return tx`select count(*)::int as held from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()`
      }),
    )
    expect(ok).toEqual({ value: [{ held: 1 }] })
  })

  it("session-set: setseed() makes the next client's random() predictable; the guard refuses it", async () => {
    const a = raw()
    const b = raw()
    const c = raw()
    await a`select setseed(0.25)`
    const [leaked] = await b`select random() as r` // another client, the same server connection
    await c`select setseed(0.25)`
    const [seeded] = await c`select random() as r`
    expect(leaked?.r).toBe(seeded?.r) // B drew the number A's seed predicts
    await Promise.all([a.end(), b.end(), c.end()])

    const { error } = await inRequest((sql) => sql`select setseed(${0.25})`)
    expect(error).toMatchObject({ code: 'UNSAFE_IN_TRANSACTION_MODE', rule: 'session-set' })
    expect((error as PoolerError).fix).toMatch(/seed a generator in your application/)
    expect(await inRequest((sql) => sql`select random() < 1 as ok`)).toEqual({ value: [{ ok: true }] })
  })

  it.each([
    ['sql-prepare', 'prepare q as select 1'],
    ['sql-prepare', 'execute q'],
    ['sql-prepare', 'deallocate all'],
    ['with-hold-cursor', 'declare c cursor with hold for select 1'],
    ['session-temp-table', 'create temp table scratch (x int)'],
    ['session-temp-table', 'select 1 as x into temporary scratch'],
    ['load', "load 'auto_explain'"],
  ])('%s: %s is refused before it is sent', async (rule, text) => {
    const { error } = await inRequest((sql) => sql.unsafe(text))
    expect(error).toMatchObject({ code: 'UNSAFE_IN_TRANSACTION_MODE', rule })
    expect((error as PoolerError).message).toContain((error as PoolerError).fix)
  })

  it('a refused statement opens no connection at all', async () => {
    let peak = 0
    await inRequest(async (sql) => {
      const p = sql`set search_path to x`.catch((e) => e)
      peak = (await showClients(APP)).length
      return p
    })
    expect(peak).toBe(0)
  })
})

describe('one level down, and values that decide', () => {
  it('a bound is_local decides set_config at query time: false or null refused, true sent (same call site)', async () => {
    const call = (sql: PoolerVariables['sql'], local: unknown) =>
      sql`select set_config('hp.bound', 'x', ${local as boolean})`
    for (const local of [false, null, 'off']) {
      const { error } = await inRequest((sql) => call(sql, local))
      expect(error, String(local)).toMatchObject({ code: 'UNSAFE_IN_TRANSACTION_MODE', rule: 'session-set' })
    }
    const ok = await inRequest((sql) =>
      sql.begin(async (tx) => [await call(tx as any, true), await call(tx as any, 'on')]),
    )
    expect(ok.error).toBeUndefined()
    const { error } = await inRequest((sql) => sql.unsafe("select set_config('hp.bound', 'x', $1)", [false]))
    expect(error).toMatchObject({ rule: 'session-set' })
    const undecided = await inRequest((sql) =>
      sql.unsafe("select set_config('hp.bound', 'x', $1::bool)", [{}]),
    )
    expect(undecided.error).toMatchObject({ rule: 'undecidable' })
    expect((undecided.error as PoolerError).message).not.toContain('[object Object]')
    expect(await setting('hp.bound')).toBeOneOf([undefined, null, ''])
  })

  it('DO blocks and EXPLAIN ANALYZE are refused for what they run; plain EXPLAIN and stored code pass', async () => {
    const refused: [string, string][] = [
      ['session-set', "do $$ begin perform set_config('hp.nested', 'x', false); end $$"],
      ['session-advisory-lock', 'explain analyze select pg_advisory_lock(7)'],
      ['undecidable', "do $$ begin execute format('set %I = 1', 'hp.nested'); end $$"],
    ]
    for (const [rule, text] of refused) {
      const { error } = await inRequest((sql) => sql.unsafe(text))
      expect(error, text).toMatchObject({ code: 'UNSAFE_IN_TRANSACTION_MODE', rule })
    }
    const { value, error } = await inRequest(async (sql) => {
      await sql.unsafe("do $$ begin set local hp.nested = 'x'; perform pg_advisory_xact_lock(7); end $$")
      return sql.unsafe('explain select pg_advisory_lock(7)')
    })
    expect(error).toBeUndefined()
    expect((value as unknown[]).length).toBeGreaterThan(0)
    expect(await setting('hp.nested')).toBeOneOf([undefined, null, ''])
  })
})

describe('safe alternatives do not leak', () => {
  it('SET LOCAL inside sql.begin, and temp tables ON COMMIT DROP', async () => {
    const { value } = await inRequest((sql) =>
      sql.begin(async (tx) => {
        await tx`set local search_path to pg_catalog`
        await tx`create temp table scratch (x int) on commit drop`
        await tx`insert into scratch values (1), (2)`
        const [row] =
          await tx`select current_setting('search_path') as sp, (select count(*)::int from scratch) as n`
        return row
      }),
    )
    expect(value).toEqual({ sp: 'pg_catalog', n: 2 })
    expect(await setting('search_path')).toBe('"$user", public')
  })

  it('withSettings: transaction-local settings, role and JWT claims seen by RLS, nothing left for the next client', async () => {
    const { value, error } = await inRequest((sql) =>
      withSettings(
        sql,
        {
          search_path: 'public',
          statement_timeout: '2s',
          role: 'authenticated',
          'request.jwt.claims': JSON.stringify({ sub: 'u1', role: 'authenticated' }),
        },
        async (tx) => {
          const rows = await tx`select body from rls_notes order by id`
          const [s] = await tx`select current_user as u, current_setting('statement_timeout') as t`
          return { bodies: rows.map((r) => r.body), ...s }
        },
      ),
    )
    expect(error).toBeUndefined()
    expect(value).toEqual({ bodies: ['one', 'three'], u: 'authenticated', t: '2s' })
    const next = raw()
    const [after] = await next`select current_user as u, current_setting('statement_timeout') as t,
      coalesce(current_setting('request.jwt.claims', true), '') as claims`
    await next.end()
    expect(after).toEqual({ u: 'app', t: '0', claims: '' })
  })

  it('withSettings rejects a bad setting or role name with INVALID_SETTING before sending anything', async () => {
    const bad: Record<string, string>[] = [{ 'bad name': 'x' }, { role: 'x; drop table rls_notes' }]
    for (const settings of bad) {
      const { error } = await inRequest((sql) => withSettings(sql, settings, (tx) => tx`select 1`))
      expect(error).toMatchObject({ code: 'INVALID_SETTING' })
    }
  })
})

describe('guard levels', () => {
  it("'warn' logs once per statement and sends it", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      const { value } = await inRequest(
        async (sql) => {
          await sql`set application_name = 'warned'`
          await sql`set application_name = 'warned'`
          return (await sql`select current_setting('application_name') as n`)[0]?.n
        },
        { guard: 'warn' },
      )
      expect(value).toBe('warned')
      expect(warn).toHaveBeenCalledTimes(1)
      expect(String(warn.mock.calls[0]?.[0])).toContain('session-set')
    } finally {
      warn.mockRestore()
      const b = raw()
      await b.unsafe('reset all')
      await b.end()
    }
  })

  it("'off' and session mode let everything through", async () => {
    const off = await inRequest((sql) => sql.begin((tx) => tx`set search_path to public`), { guard: 'off' })
    expect(off.error).toBeUndefined()
    const session = await inRequest((sql) => sql.unsafe('prepare hp_q as select 1; deallocate hp_q'), {
      mode: 'session',
    })
    expect(session.error).toBeUndefined()
  })
})
