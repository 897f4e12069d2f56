import type { Sql, TransactionSql } from 'postgres'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { PoolerError } from '../src/errors'
import { buildSettings, withSettings } from '../src/guard/settings'

/** A fake postgres.js client recording what `withSettings` sends (no database needed). */
function fakeSql() {
  const sent: [string, unknown[] | undefined][] = []
  let begins = 0
  const tx = {
    unsafe: async (text: string, params?: unknown[]) => {
      sent.push([text, params])
      return []
    },
  } as unknown as TransactionSql<any>
  const sql = {
    begin: async (fn: (t: TransactionSql<any>) => unknown) => {
      begins++
      return fn(tx)
    },
  } as unknown as Sql<any>
  return { sql, tx, sent, begins: () => begins }
}

describe('withSettings', () => {
  it('applies all settings with one transaction-local set_config statement, values as parameters', async () => {
    const { sql, sent, begins } = fakeSql()
    const claims = { sub: 'u1', role: 'authenticated' }
    const result = await withSettings(
      sql,
      {
        search_path: 'app,public',
        statement_timeout: '2s',
        role: 'authenticated',
        'request.jwt.claims': JSON.stringify(claims),
        'app.debug': true,
        'app.limit': 10,
      },
      async () => 'done',
    )
    expect(result).toBe('done')
    expect(begins()).toBe(1)
    expect(sent).toEqual([
      ['set local role "authenticated"', undefined],
      [
        'select set_config($1, $2, true), set_config($3, $4, true), set_config($5, $6, true), set_config($7, $8, true), set_config($9, $10, true)',
        [
          'search_path',
          'app,public',
          'statement_timeout',
          '2s',
          'request.jwt.claims',
          JSON.stringify(claims),
          'app.debug',
          'true',
          'app.limit',
          '10',
        ],
      ],
    ])
  })

  it('just begins a transaction when there are no settings', async () => {
    const { sql, tx, sent } = fakeSql()
    let got: unknown
    await withSettings(sql, {}, (t) => {
      got = t
    })
    expect(got).toBe(tx)
    expect(sent).toEqual([])
  })

  it('rejects invalid setting and role names before sending anything', async () => {
    const { sql, sent } = fakeSql()
    const bad: Record<string, string>[] = [
      { 'x; drop table t': '1' },
      { '1abc': '1' },
      { role: 'a"; drop' },
      { role: 'x y' },
    ]
    for (const settings of bad) {
      const err = await withSettings(sql, settings, () => 1).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PoolerError)
      expect((err as PoolerError).code).toBe('INVALID_SETTING')
    }
    expect(sent).toEqual([])
  })

  it('infers the callback result type (checked by tsc, never executed)', () => {
    const { sql } = fakeSql()
    const typeOnly = (): void => {
      expectTypeOf(withSettings(sql, { a: 1 }, async () => 42)).toEqualTypeOf<Promise<number>>()
      expectTypeOf(withSettings(sql, { a: true }, (tx) => tx`select 1`)).toMatchTypeOf<Promise<unknown>>()
    }
    expect(typeof typeOnly).toBe('function')
  })
})

describe('buildSettings', () => {
  it('builds the statement and the quoted role', () => {
    expect(buildSettings({ statement_timeout: '2s', role: 'app' })).toEqual({
      role: '"app"',
      text: 'select set_config($1, $2, true)',
      params: ['statement_timeout', '2s'],
    })
    expect(buildSettings({ role: 'Mixed$1' })).toEqual({ role: '"Mixed$1"', text: '', params: [] })
  })
})
