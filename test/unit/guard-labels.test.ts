/**
 * The guard against labelled statements: a seeded generator (test/support/guard-labels.ts) embeds effects
 * that do or do not leave session state in every wrapper (multi-statement, CTE, EXPLAIN [ANALYZE], DO in
 * each PL/pgSQL shape, EXECUTE '…', nested DO), with random casing, comments and quoting. The labels are
 * checked against a real one-connection PgBouncer pool by test/integration/guard-observed.test.ts.
 * GUARD_LABEL_SEED / GUARD_LABEL_COUNT override the defaults.
 */
import { describe, expect, it } from 'vitest'
import { checkSql } from '../../src'
import { generateLabelled } from '../support/guard-labels'

const SEED = Number(process.env.GUARD_LABEL_SEED ?? 20261129)
const COUNT = Number(process.env.GUARD_LABEL_COUNT ?? 4000)

describe(`labelled statements (seed ${SEED}, ${COUNT} cases)`, () => {
  const cases = generateLabelled(SEED, COUNT)

  it('cover every effect, wrapper and label', () => {
    const strata = new Set(cases.map((c) => c.stratum))
    expect(strata.size).toBeGreaterThan(100)
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
        cases.some((c) => c.stratum.endsWith(`/${w}`)),
        w,
      ).toBe(true)
    const labels = new Set(cases.map((c) => c.label))
    expect([...labels].sort()).toEqual(['leaks', 'safe', 'undecidable'])
    expect(new Set(cases.flatMap((c) => c.rule ?? [])).size).toBe(8) // the 7 rules and undecidable
  })

  it('the guard agrees with every label: 0 false negatives, 0 false positives', () => {
    const wrong: string[] = []
    for (const c of cases) {
      const got = checkSql(c.sql).map((f) => f.rule)
      const want = c.label === 'safe' ? [] : [c.rule]
      if (JSON.stringify(got) !== JSON.stringify(want))
        wrong.push(`${c.stratum} ${c.label}: got [${got}] for ${JSON.stringify(c.sql)}`)
    }
    expect(wrong.slice(0, 20)).toEqual([])
  })
})
