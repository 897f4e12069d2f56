/**
 * The pooler as the oracle. A stratified sample of the labelled statements (test/support/guard-labels.ts,
 * the same seeded generator the unit test runs in the thousands) is run for real as client A of a
 * one-connection PgBouncer pool (`app_oracle`: pool_size = 1, no other test uses it); client B, which then
 * gets the same server connection, probes what A left behind: settings (named and any other session
 * source), current_user, temp objects (relations, functions, types, operators), advisory locks held, listening channels, open cursors, prepared
 * statements. The observation must agree with the label, and the guard with the observation.
 * GUARD_OBSERVED_SEED / GUARD_OBSERVED_PER_STRATUM override the defaults.
 */
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkSql } from '../../src'
import { generateLabelled, type LabelledCase, type Probe } from '../support/guard-labels'
import { stack } from '../support/stack'

const SEED = Number(process.env.GUARD_OBSERVED_SEED ?? 20261129)
const PER_STRATUM = Number(process.env.GUARD_OBSERVED_PER_STRATUM ?? 8)
const TRACKED =
  "'application_name', 'TimeZone', 'DateStyle', 'client_encoding', 'standard_conforming_strings', 'IntervalStyle'"

const PROBE = `select
  coalesce(current_setting('hp.a', true), '') as "setting:hp.a",
  coalesce(current_setting('hp.seed', true), '') as "setting:hp.seed",
  current_setting('search_path') as "setting:search_path",
  current_setting('statement_timeout') as "setting:statement_timeout",
  current_setting('work_mem') as "setting:work_mem",
  (select coalesce(string_agg(name || '=' || setting, ',' order by name), '') from pg_settings
    where source = 'session' and name not in (${TRACKED})) as "setting:other",
  current_user::text as "role",
  (select count(*)::int from pg_class where relnamespace = pg_my_temp_schema())
    + (select count(*)::int from pg_proc where pronamespace = pg_my_temp_schema())
    + (select count(*)::int from pg_type where typnamespace = pg_my_temp_schema())
    + (select count(*)::int from pg_operator where oprnamespace = pg_my_temp_schema()) as "temp",
  (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as "lock",
  (select count(*)::int from pg_listening_channels()) as "listen",
  (select count(*)::int from pg_cursors) as "cursor",
  (select count(*)::int from pg_prepared_statements) as "prepared"`

const client = () =>
  postgres(stack.oracleUrl, {
    max: 1,
    prepare: false,
    fetch_types: false,
    onnotice: () => {},
    idle_timeout: 5,
  })

/** Up to `n` observable cases per stratum (effect/wrapper), in generator order. */
function stratified(cases: LabelledCase[], n: number): LabelledCase[] {
  const taken = new Map<string, number>()
  return cases.filter((c) => {
    if (!c.observable) return false
    const k = taken.get(c.stratum) ?? 0
    taken.set(c.stratum, k + 1)
    return k < n
  })
}

let a: ReturnType<typeof client>
let b: ReturnType<typeof client>

beforeAll(async () => {
  const su = postgres(stack.superUrl.replace(/\/postgres$/, '/app'), { max: 1, onnotice: () => {} })
  await su.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'hp_oracle_role') then create role hp_oracle_role nologin; end if;
    end $$;
    grant hp_oracle_role to app;
  `)
  await su.end()
  a = client()
  b = client()
})

afterAll(async () => {
  await b.unsafe('discard all').simple()
  await Promise.all([a.end({ timeout: 1 }), b.end({ timeout: 1 })])
})

/** What B sees changed after A ran `sql`, as probe kinds ('setting', 'temp', …). */
async function observe(sql: string): Promise<{ leaked: Probe[]; error?: string }> {
  await b.unsafe('discard all').simple()
  await b.unsafe("set hp.seed = 's'").simple() // something for RESET to take away
  const [before] = await b.unsafe(PROBE)
  let error: string | undefined
  await a
    .unsafe(sql)
    .simple()
    .catch((e: Error) => {
      error = e.message
    })
  const [after] = await b.unsafe(PROBE)
  const kinds = Object.keys(after!)
    .filter((k) => after![k] !== before![k])
    .map((k) => k.split(':')[0] as Probe)
  await b.unsafe('discard all').simple()
  const [row] = await b`select count(*)::int as n from pg_prepared_xacts where gid = 'hp-oracle-gid'`
  if (row?.n) await b.unsafe("rollback prepared 'hp-oracle-gid'").simple() // the two-phase cases
  return { leaked: [...new Set(kinds)], ...(error && { error }) }
}

describe(`the pooler as the guard's oracle (seed ${SEED}, ${PER_STRATUM} per stratum)`, () => {
  const sample = stratified(generateLabelled(SEED, 4000), PER_STRATUM)

  it('the sample covers both labels, every observable rule and every wrapper', () => {
    expect(sample.length).toBeGreaterThan(150)
    expect(new Set(sample.map((c) => c.label))).toEqual(new Set(['leaks', 'safe']))
    expect(new Set(sample.flatMap((c) => c.rule ?? [])).size).toBe(6) // all but load (superuser only)
    for (const w of [
      'plain',
      'multi',
      'cte',
      'distinct-on',
      'explain',
      'explain-analyze',
      'do',
      'do-nested',
      'operand',
      'do-cursor',
    ])
      expect(
        sample.some((c) => c.stratum.endsWith(`/${w}`)),
        w,
      ).toBe(true)
  })

  it(`what B observes matches every label (${sample.length} cases, ${new Set(sample.map((c) => c.stratum)).size} strata), and the guard refuses exactly what leaks`, async () => {
    const wrong: string[] = []
    let leaks = 0
    for (const c of sample) {
      const { leaked, error } = await observe(c.sql)
      const refused = checkSql(c.sql).length > 0
      const saw = leaked.length > 0
      leaks += saw ? 1 : 0
      if (error) wrong.push(`${c.stratum}: failed on the server (${error}): ${c.sql}`)
      else if (saw !== (c.label === 'leaks') || (saw && !leaked.includes(c.probe)))
        wrong.push(`${c.stratum}: label ${c.label}/${c.probe}, observed [${leaked}]: ${c.sql}`)
      else if (refused !== saw)
        wrong.push(`${c.stratum}: guard ${refused ? 'refuses' : 'allows'}, observed [${leaked}]: ${c.sql}`)
    }
    expect(wrong).toEqual([])
    expect(leaks).toBeGreaterThan(sample.length / 4)
    expect(sample.length - leaks).toBeGreaterThan(sample.length / 4)
  }, 120_000)
})
